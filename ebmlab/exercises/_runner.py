"""Run an exercise's checks on a student's function, each check isolated from the caller.

Two runners:

* ``"fork"`` (Linux): each check runs in a forked child process with a time limit. The
  child starts from a canonical global state, its output is captured, and its result
  comes back as JSON over a pipe. Whatever the student's code does (loop forever, exit,
  crash, change the default dtype, the seeds or the grad mode, mutate globals) it cannot
  touch the caller's process.
* ``"inprocess"`` (platforms without a safe ``fork``): the check runs in a thread of the
  caller's process; global state (default dtype, grad mode, RNGs, thread count, streams)
  is saved and restored, ``sys.exit``/``os._exit`` are caught, and a check past its time
  limit is abandoned (reported as timed out; it may keep running in the background).
"""

from __future__ import annotations

import builtins
import contextlib
import faulthandler
import io
import json
import os
import random
import select
import signal
import sys
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from . import _state
from ._isolation import (
    Capture,
    ExitCalled,
    classify_exception,
    die_with_parent,
    exit_process,
    limit_cpu_time,
    no_input,
    redirect_process_io,
    reset_global_state,
)
from ._registry import DEFAULT_TIMEOUT, Check, Exercise, get_exercise
from ._report import CheckResult, Report

__all__ = ["default_isolation", "grade_function", "run_check"]

_ISOLATIONS = ("auto", "fork", "inprocess")


def default_isolation() -> str:
    """``"fork"`` on Linux, ``"inprocess"`` elsewhere (fork is unsafe with threads on macOS)."""
    return "fork" if sys.platform.startswith("linux") and hasattr(os, "fork") else "inprocess"


def _seed(exercise: Exercise, check: Check) -> int:
    return zlib.crc32(f"{exercise.id}/{check.name}".encode())


def _timeout_hint() -> str:
    return ("look for an infinite loop, or a computation far larger than needed "
            "(a Python loop over the batch, or over many steps).")


def _run_check_body(check: Check, fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        check.function(fn)
    except BaseException as exc:
        return classify_exception(exc)
    return {"status": "passed"}


# --- fork runner ------------------------------------------------------------------------
def _child(check: Check, fn: Callable[..., Any], seed: int, timeout: float,
           write_fd: int) -> None:
    """Body of the forked child: never returns."""
    code = 0
    try:
        for fd in _state.CLOSE_IN_CHILD:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)
        faulthandler.disable()  # a crash must not write to the caller's terminal
        die_with_parent()
        limit_cpu_time(timeout)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        capture = redirect_process_io()
        _quiet_ipython()
        _state.GRADING = True
        reset_global_state(seed)
        record = _run_check_body(check, fn)
        record["output"] = capture.text()
        data = json.dumps(record).encode()
        payload = len(data).to_bytes(8, "big") + data
        view = memoryview(payload)
        while view:
            n = os.write(write_fd, view)
            view = view[n:]
    except BaseException:
        code = 70
    finally:
        exit_process(code)


def _quiet_ipython() -> None:
    """In a forked Jupyter kernel, stop display calls and plots from using the kernel's sockets."""
    if "matplotlib" in sys.modules:
        with contextlib.suppress(Exception):
            import matplotlib

            matplotlib.use("Agg", force=True)
    if "IPython" in sys.modules:
        with contextlib.suppress(Exception):
            from IPython import get_ipython

            shell = get_ipython()
            if shell is not None:
                shell.display_pub.publish = lambda *args, **kwargs: None
                shell.displayhook = lambda *args, **kwargs: None
    sys.displayhook = lambda value: None


def _kill(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        with contextlib.suppress(OSError):
            target()


def _decode(buffer: bytes) -> dict[str, Any] | None:
    if len(buffer) < 8:
        return None
    size = int.from_bytes(buffer[:8], "big")
    if len(buffer) < 8 + size:
        return None
    try:
        record = json.loads(buffer[8:8 + size].decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"status": "crashed", "what": "the grader could not read the check's result"}
    if not isinstance(record, dict) or not isinstance(record.get("status"), str):
        return {"status": "crashed", "what": "the grader could not read the check's result"}
    return record


def _exit_record(status: int) -> dict[str, Any]:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return {"status": "crashed",
                "what": f"the process running your function was killed by signal {name}",
                "hint": "a crash in native code, or more memory than the machine has."}
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    return {"status": "exited", "what": f"the function exited the process (exit code {code})",
            "hint": "a function returns its result; it must never end the program "
                    "(no sys.exit, exit(), quit() or os._exit)."}


def _run_forked(check: Check, fn: Callable[..., Any], seed: int,
                timeout: float) -> dict[str, Any]:
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "fork() with threads" (3.12+)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read_fd)
        _child(check, fn, seed, timeout, write_fd)
    os.close(write_fd)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)
    buffer = b""
    record: dict[str, Any] | None = None
    status: int | None = None
    deadline = time.monotonic() + timeout
    eof = False
    try:
        while record is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill(pid)
                record = {"status": "timeout", "what": f"timed out after {timeout:g} s",
                          "hint": _timeout_hint()}
                break
            if eof:  # the pipe closed but the child may still run: poll its status only
                time.sleep(min(remaining, 0.02))
            else:
                ready, _, _ = select.select([read_fd], [], [], min(remaining, 0.05))
                if ready:
                    chunk = os.read(read_fd, 1 << 16)
                    if chunk:
                        buffer += chunk
                        record = _decode(buffer)
                        continue
                    eof = True
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
                while not eof:  # drain what the child wrote before it ended
                    ready, _, _ = select.select([read_fd], [], [], 0)
                    chunk = os.read(read_fd, 1 << 16) if ready else b""
                    eof = not chunk
                    buffer += chunk
                record = _decode(buffer) or _exit_record(status)
    except BaseException:
        _kill(pid)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise
    finally:
        os.close(read_fd)
    if status is None:
        _kill(pid)  # also ends processes the student's code started in the child's group
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    return record


# --- in-process runner ------------------------------------------------------------------
@contextlib.contextmanager
def _preserved_state() -> Iterator[Capture]:
    """Save the global state student code could change, and restore it afterwards."""
    dtype = torch.get_default_dtype()
    grad = torch.is_grad_enabled()
    threads = torch.get_num_threads()
    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    np_state = np.random.get_state()  # noqa: NPY002
    py_state = random.getstate()
    streams = (sys.stdin, sys.stdout, sys.stderr)
    real_exit = os._exit
    saved_input = builtins.input
    grading = _state.GRADING
    capture = Capture()

    def fake_exit(code: int = 0) -> None:
        raise ExitCalled(code)

    sys.stdin, sys.stdout, sys.stderr = io.StringIO(""), capture, capture
    os._exit = fake_exit
    builtins.input = no_input
    _state.GRADING = True
    try:
        yield capture
    finally:
        _state.GRADING = grading
        builtins.input = saved_input
        os._exit = real_exit
        sys.stdin, sys.stdout, sys.stderr = streams
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002
        torch.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        torch.set_num_threads(threads)
        torch.set_grad_enabled(grad)
        torch.set_default_dtype(dtype)


@contextlib.contextmanager
def _canonical_state() -> Iterator[None]:
    """Run grader code (an exercise's preparations) in the canonical dtype and grad mode,
    whatever the caller's code set, and restore the caller's state afterwards."""
    dtype, grad, rng = torch.get_default_dtype(), torch.is_grad_enabled(), torch.get_rng_state()
    torch.set_default_dtype(torch.float32)
    torch.set_grad_enabled(True)
    try:
        yield
    finally:
        torch.set_rng_state(rng)
        torch.set_grad_enabled(grad)
        torch.set_default_dtype(dtype)


def _run_inprocess(check: Check, fn: Callable[..., Any], seed: int,
                   timeout: float) -> dict[str, Any]:
    box: dict[str, Any] = {}

    def target() -> None:
        torch.set_grad_enabled(True)
        box["record"] = _run_check_body(check, fn)

    with _preserved_state() as capture:
        torch.set_default_dtype(torch.float32)
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002
        random.seed(seed)
        thread = threading.Thread(target=target, name="ebmlab-check", daemon=True)
        thread.start()
        thread.join(timeout)
        output = capture.text()
    if thread.is_alive():
        return {"status": "timeout", "what": f"timed out after {timeout:g} s",
                "hint": _timeout_hint() + " (It may still be running in the background: "
                        "restart the kernel if the notebook slows down.)", "output": output}
    record = box.get("record", {"status": "crashed", "what": "the check ended without a result"})
    record["output"] = output
    return record


# --- public -----------------------------------------------------------------------------
def run_check(exercise: Exercise, check: Check, fn: Callable[..., Any], *,
              timeout: float | None = None, isolation: str = "auto") -> CheckResult:
    """Run one check of ``exercise`` on the student's ``fn`` and return its result.

    ``timeout`` (seconds) overrides the check's own limit.
    """
    mode = default_isolation() if isolation == "auto" else isolation
    limit = float(timeout if timeout is not None else (check.timeout or DEFAULT_TIMEOUT))
    start = time.monotonic()
    runner = _run_forked if mode == "fork" else _run_inprocess
    record = runner(check, fn, _seed(exercise, check), limit)
    record = {k: v for k, v in record.items() if k not in ("name", "max_points", "seconds")}
    return CheckResult(name=check.name, max_points=check.points,
                       seconds=time.monotonic() - start, **record)


def grade_function(exercise: str | Exercise, fn: Callable[..., Any], *,
                   timeout: float | None = None, isolation: str = "auto",
                   verbose: bool = False) -> Report:
    """Run every check of an exercise on ``fn`` (isolated) and return the :class:`Report`.

    Parameters
    ----------
    exercise : str or Exercise
        The exercise id ``"N.M"`` or the exercise.
    fn : callable
        The student's function.
    timeout : float, optional
        Time limit of every check in seconds (default: each check's own limit).
    isolation : {"auto", "fork", "inprocess"}
        How to isolate the student's code; ``"auto"`` forks on Linux.
    verbose : bool
        Show tracebacks and printed output in the report.

    Returns
    -------
    Report
    """
    ex = exercise if isinstance(exercise, Exercise) else get_exercise(exercise)
    if isolation not in _ISOLATIONS:
        raise ValueError(f"isolation must be one of {_ISOLATIONS}, got {isolation!r}.")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a number of seconds > 0 or None, got {timeout!r}.")
    if not callable(fn):
        raise TypeError(f"pass your function `{ex.function}` itself (not its result): got "
                        f"{type(fn).__name__}.")
    with _canonical_state():
        ex.run_preparations()
    results = [run_check(ex, c, fn, timeout=timeout, isolation=isolation) for c in ex.checks]
    return Report(ex.id, ex.title, ex.function, results, verbose=verbose)
