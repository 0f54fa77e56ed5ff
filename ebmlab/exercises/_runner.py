"""Run an exercise's checks on a student's function held by a sandbox; ``check()`` in notebooks.

:func:`run_check` is the one place where a check runs, for the notebook (a fork of the
kernel per check) and for the command-line grader (a confined interpreter per submission):
it resets the sandbox to the canonical state, gives the check a :class:`Student` proxy and a
:class:`CheckContext`, and turns the way the check ended into a :class:`CheckResult`.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import time
import traceback
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from ._registry import DEFAULT_TIMEOUT, Check, Exercise, get_exercise
from ._report import CheckResult, Report
from ._sandbox import Reset
from ._student import Budget, CheckContext, Student, StudentRaised
from ._supervisor import CallTimeout, CheckBug, Sandbox, SandboxDied
from ._wire import ProtocolError
from .expect import CheckFailure

__all__ = ["check", "grade_function", "run_check"]

#: Seconds a sandbox may take to reset its state before a check.
_RESET_TIMEOUT = 30.0
_ISOLATIONS = ("auto", "fork", "inprocess")
_NEVER_EXIT = ("a function returns its result; it must never end the program (no sys.exit, "
               "exit(), quit() or os._exit).")


def check_seed(exercise: Exercise, check: Check, seed: int) -> int:
    """The seed of the global random generators at the start of a check."""
    return zlib.crc32(f"{exercise.id}/{check.name}".encode()) ^ seed


@contextlib.contextmanager
def grader_state(seed: int) -> Iterator[None]:
    """Run grader code (a check, a preparation) from the canonical state, seeded, and
    restore the caller's state afterwards: the checks may change the grad mode (it follows
    the student's calls) and draw from the global generators."""
    dtype, grad = torch.get_default_dtype(), torch.is_grad_enabled()
    rngs = (torch.get_rng_state(), np.random.get_state(), random.getstate())  # noqa: NPY002
    torch.set_default_dtype(torch.float32)
    torch.set_grad_enabled(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_rng_state(rngs[0])
        np.random.set_state(rngs[1])  # noqa: NPY002
        random.setstate(rngs[2])
        torch.set_grad_enabled(grad)
        torch.set_default_dtype(dtype)


def _raised(exc: StudentRaised) -> dict[str, Any]:
    """The fields of a result for an exception of the student's function."""
    tb = exc.traceback
    if exc.kind == "not_implemented":
        return {"status": "not_implemented", "what": "not implemented yet", "traceback": tb}
    if exc.kind == "forbidden":
        return {"status": "forbidden", "what": exc.message, "traceback": tb,
                "hint": "write the computation yourself from torch operations; the library "
                        "function may check your answer in the notebook, not inside it."}
    if exc.kind == "failed":
        return {"status": "failed", "traceback": tb} | {
            k: v for k, v in exc.failure.items() if v is not None} | {
            "what": exc.failure.get("what") or exc.headline}
    if exc.kind == "exited":
        return {"status": "error", "what": f"the function called sys.exit({exc.exit_code})",
                "hint": _NEVER_EXIT, "traceback": tb}
    if exc.output_flood:
        return {"status": "error", "traceback": tb,
                "what": "the function printed more than 1000000 characters and was stopped",
                "hint": "remove the print calls from loops."}
    hint = f"the error happened {exc.where}." if exc.where else None
    if exc.type == "RecursionError":
        hint = "look for a function that calls itself without a base case."
    elif exc.type == "MemoryError" or "allocate" in exc.message.lower():
        hint = ("the grader's memory limit was reached: look for a tensor far larger than "
                "needed (e.g. of shape (B, B) or (B, d, d) where (B, d) is enough).")
    return {"status": "error", "what": f"your function raised {exc.headline}", "hint": hint,
            "traceback": tb}


def _ended(exc: BaseException, limit: float) -> dict[str, Any]:
    """The fields of a result for a check that did not end with a pass or a failure."""
    if isinstance(exc, CheckFailure):
        return {"status": "failed", "what": exc.what, "expected": exc.expected, "got": exc.got,
                "hint": exc.hint}
    if isinstance(exc, StudentRaised):
        return _raised(exc)
    if isinstance(exc, CallTimeout):
        return {"status": "timeout", "what": f"timed out after {limit:g} s",
                "hint": "look for an infinite loop, or a computation far larger than needed "
                        "(a Python loop over the batch, or over many steps)."}
    if isinstance(exc, SandboxDied):
        text = str(exc)
        return {"status": "error", "what": text,
                "hint": _NEVER_EXIT if "exit code" in text else
                "a crash of the process that runs your function (native code, or memory)."}
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-20_000:]
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    if isinstance(exc, CheckBug):
        return {"status": "error", "what": f"the check itself failed: {first}",
                "hint": "a bug of the exercise's checks, not of your function: tell your "
                        "instructor.", "traceback": tb}
    return {"status": "error",
            "what": f"the check could not use your function's result ({type(exc).__name__}: "
                    f"{first})",
            "hint": "return what the docstring describes (type, shape and dtype).",
            "traceback": tb}


def run_check(sandbox: Sandbox, exercise: Exercise, check: Check, ctx: CheckContext, *,
              timeout: float | None = None) -> CheckResult:
    """Run one check on the student's function held by ``sandbox``.

    Parameters
    ----------
    sandbox : Sandbox
        Holds the student's function (named ``exercise.function``).
    exercise, check : Exercise, Check
        What to run; points and names come from here only.
    ctx : CheckContext
        The instance (seed) and the probe device.
    timeout : float, optional
        Time limit of the student's calls in this check (default: the check's own).

    Returns
    -------
    CheckResult

    Raises
    ------
    ProtocolError
        When the sandbox broke the protocol: the submission cannot be graded.
    """
    limit = float(timeout if timeout is not None else (check.timeout or DEFAULT_TIMEOUT))
    student = Student(sandbox, exercise, Budget(limit))
    seed = check_seed(exercise, check, ctx.seed)
    start = time.monotonic()
    fields: dict[str, Any] = {"status": "passed"}
    with grader_state(seed):
        try:
            sandbox.request(Reset(seed), timeout=_RESET_TIMEOUT)
            check.function(student, ctx)
        except ProtocolError:
            raise
        except Exception as exc:
            fields = _ended(exc, limit)
    return CheckResult(check.name, check.points, output="".join(student.outputs),
                       seconds=time.monotonic() - start, **fields)


def default_isolation() -> str:
    """``"fork"`` on Linux, ``"inprocess"`` elsewhere (fork is unsafe with threads on macOS)."""
    return "fork" if sys.platform.startswith("linux") and hasattr(os, "fork") else "inprocess"


def grade_function(exercise: str | Exercise, fn: Callable[..., Any], *,
                   timeout: float | None = None, isolation: str = "auto",
                   verbose: bool = False, seed: int = 0) -> Report:
    """Run every check of an exercise on ``fn`` and return the :class:`Report`.

    Each check gets a fresh sandbox holding ``fn``: a fork of this process (Linux), or a
    thread of it (elsewhere). The checks run here; ``fn`` runs there.

    Parameters
    ----------
    exercise : str or Exercise
        The exercise id ``"N.M"`` or the exercise.
    fn : callable
        The student's function.
    timeout : float, optional
        Time limit of every check in seconds (default: each check's own limit).
    isolation : {"auto", "fork", "inprocess"}
        Where ``fn`` runs; ``"auto"`` forks on Linux.
    verbose : bool
        Show tracebacks and printed output in the report.
    seed : int
        The instance of the checks' inputs (0 in notebooks).

    Returns
    -------
    Report
    """
    ex = exercise if isinstance(exercise, Exercise) else get_exercise(exercise)
    if isolation not in _ISOLATIONS:
        raise ValueError(f"isolation must be one of {_ISOLATIONS}, got {isolation!r}.")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(
            timeout, (int, float)) or not timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0 or None, got {timeout!r}.")
    if not callable(fn):
        raise TypeError(f"pass your function `{ex.function}` itself (not its result): got "
                        f"{type(fn).__name__}.")
    mode = default_isolation() if isolation == "auto" else isolation
    with grader_state(0):
        ex.run_preparations()
    ctx = CheckContext(seed=seed)
    results = []
    for c in ex.checks:
        limit = timeout if timeout is not None else (c.timeout or DEFAULT_TIMEOUT)
        namespace = {ex.function: fn}
        sandbox = (Sandbox.fork(namespace, cpu_seconds=int(limit) + 10) if mode == "fork"
                   else Sandbox.in_process(namespace))
        try:
            results.append(run_check(sandbox, ex, c, ctx, timeout=timeout))
        except ProtocolError as exc:
            results.append(CheckResult(c.name, c.points, "error",
                                       what=f"the process running your function broke the "
                                            f"grader's protocol ({exc})"))
        finally:
            sandbox.close()
    return Report(ex.id, ex.title, ex.function, results, verbose=verbose)


def _displays_results() -> bool:
    """True in IPython/Jupyter and the interactive interpreter, which show the returned value."""
    if hasattr(sys, "ps1"):
        return True
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        return ipython.get_ipython() is not None
    except Exception:  # pragma: no cover - defensive
        return False


def check(exercise_id: str, fn: Callable[..., Any], *, verbose: bool = False,
          timeout: float | None = None) -> Report:
    """Run the checks of exercise ``exercise_id`` on your function ``fn`` and show the result.

    Your function runs in a separate process (on Linux), one per check, with a time limit,
    so whatever it does cannot break the notebook. In Jupyter the returned report displays
    as a table when ``check(...)`` is the last line of the cell: each check with pass/fail,
    its points, and for a failure what was expected, what came back and a hint. In a
    script it is printed. Inside the command-line grader's sandbox it does nothing.

    Parameters
    ----------
    exercise_id : str
        The exercise, ``"N.M"`` (e.g. ``"2.1"``).
    fn : callable
        Your function (the function itself, not a call of it).
    verbose : bool
        Also show tracebacks and what your function printed.
    timeout : float, optional
        Time limit of every check in seconds (default: each check's own, usually 10 s).

    Returns
    -------
    Report
        ``report.points``, ``report.max_points``, ``report.results``.

    Raises
    ------
    ValueError
        For an unknown exercise id.
    TypeError
        If ``fn`` is not callable.

    Examples
    --------
    >>> from ebmlab.exercises import check
    >>> check("2.1", score)  # doctest: +SKIP
    """
    if os.environ.get("EBMLAB_SANDBOX"):
        return Report(str(exercise_id), "", "", [],
                      note="check() does nothing while the autograder grades this file.")
    report = grade_function(exercise_id, fn, timeout=timeout, verbose=verbose)
    if not _displays_results():
        print(report.to_text())
    return report
