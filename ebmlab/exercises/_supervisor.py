"""The grader side of a sandbox: start it, send requests with deadlines, kill it, say how it died.

One :class:`Sandbox` interface, three ways to start one:

* :meth:`Sandbox.spawn` (the command-line grader): a fresh isolated interpreter in its own
  session and temporary directory, confined and kept (see :mod:`ebmlab.exercises._confine`);
  it executes the submission's cells, then forks one process per check
  (:meth:`SpawnedSandbox.fork_check`), killed alone when the check times out.
* :meth:`Sandbox.fork` (``check()`` in a notebook, Linux): a fork of the caller's process,
  which already holds the student's function; one per check.
* :meth:`Sandbox.in_process` (no ``fork``): the requests run in a thread of the caller,
  through the same encoding; a call past its time limit is abandoned.

Every reply is a :class:`~ebmlab.exercises._wire.Frame` that the caller decodes as untrusted.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._confine import Limits, PidsCgroup
from ._sandbox import EndCheck, ForkCheck, Request, Session, Setup, serve_forked
from ._wire import Channel, ChannelClosed, ChannelTimeout, Frame, ProtocolError

__all__ = ["CallTimeout", "Sandbox", "SandboxDied"]

#: Seconds a spawned sandbox may take to import its libraries and confine itself.
STARTUP_TIMEOUT = 180.0
_BOOT = "from ebmlab.exercises._sandbox import main; main()"
_ENV_KEPT = ("PATH", "LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH")


class CallTimeout(Exception):
    """A request ran past its time limit; the sandbox was killed."""


class SandboxDied(Exception):
    """The sandbox process ended while a request was pending; the message says how."""


class SandboxFailed(SandboxDied):
    """The sandbox could not carry out a request (the student's code broke what it needs);
    it is still running."""

    def __init__(self, message: str) -> None:
        super().__init__(f"the sandbox could not run the request ({message}): the "
                         "submission's code broke something the grader needs")


class CheckBug(TypeError):
    """A check passed arguments that cannot be sent to the sandbox (a bug of the bank)."""


def _pickled(message: object) -> bytes:
    try:
        return pickle.dumps(message)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise CheckBug(f"the check's arguments cannot be sent to the sandbox ({exc}); a check "
                       "passes module-level functions and classes, not lambdas or closures"
                       ) from None


def describe_end(exit_code: int | None, signal_number: int | None) -> str:
    """How a sandbox process ended, in a sentence a student can act on."""
    if signal_number is not None:
        try:
            name = signal.Signals(signal_number).name
        except ValueError:
            name = str(signal_number)
        why = {"SIGXCPU": "it used up its CPU-time limit",
               "SIGSEGV": "a crash in native code",
               "SIGKILL": "more memory than the machine has, or it was stopped"}.get(name)
        return (f"the process running your code was killed by signal {name}"
                + (f" ({why})" if why else ""))
    return f"the code ended the process (exit code {exit_code})"


class Sandbox:
    """A process (or, without ``fork``, a thread) that holds student code.

    Use :meth:`spawn`, :meth:`fork` or :meth:`in_process`. :meth:`request` sends one
    request and returns the reply; :meth:`close` ends the sandbox and everything it started.
    """

    protections: list[str]
    alive: bool
    peak_memory_kb: int | None = None

    def request(self, message: Request, *, timeout: float | None) -> Frame:
        """Send ``message``, wait at most ``timeout`` seconds for its reply.

        Raises
        ------
        CallTimeout
            Past the time limit (the sandbox is killed).
        SandboxDied
            The sandbox ended before it replied.
        ProtocolError
            The reply broke the protocol.
        """
        raise NotImplementedError

    def close(self) -> None:
        """End the sandbox (idempotent)."""
        raise NotImplementedError

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def spawn(*, limits: Limits, banks: tuple[str, ...] = (),
              startup_timeout: float = STARTUP_TIMEOUT) -> SpawnedSandbox:
        """A confined interpreter for the command-line grader (see the module docstring)."""
        return SpawnedSandbox(limits, banks, startup_timeout)

    @staticmethod
    def fork(namespace: dict[str, Any], *, cpu_seconds: int) -> ForkedSandbox:
        """A fork of this process serving the functions in ``namespace``."""
        return ForkedSandbox(namespace, cpu_seconds)

    @staticmethod
    def in_process(namespace: dict[str, Any]) -> InProcessSandbox:
        """Requests handled in a thread of this process (where ``fork`` is unavailable)."""
        return InProcessSandbox(namespace)


class _ProcessSandbox(Sandbox):
    """A sandbox in another process, reached through a :class:`Channel`."""

    channel: Channel

    def __init__(self) -> None:
        self._next_id = 0
        self.alive = True
        self.protections = []

    def request(self, message: Request, *, timeout: float | None, ident: int | None = None,
                also: int | None = None) -> Frame:
        """See :meth:`Sandbox.request`; ``ident`` names the request (default: the next id)
        and a reply may also carry the id ``also`` (a check process's end)."""
        if not self.alive:
            raise SandboxDied(self.end_description())
        ident = self.new_id() if ident is None else ident
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            self.send(message, ident=ident, timeout=timeout)
            frame = self.channel.receive(deadline=deadline)
        except ChannelTimeout:
            if also is not None:
                raise CallTimeout from None  # the caller kills the check's process
            self.close()
            raise CallTimeout from None
        except ChannelClosed:
            ended = self._wait_for_end(deadline)  # closing its pipes is not the end of it
            self.close()
            if not ended:
                raise CallTimeout from None
            raise SandboxDied(self.end_description()) from None
        if frame.header.get("id") not in (ident, also):
            raise ProtocolError(f"a reply to request {str(frame.header.get('id'))[:20]}, "
                                f"expected {ident}")
        if "handler_error" in frame.header:
            raise SandboxFailed(str(frame.header["handler_error"])[:300])
        return frame

    def send(self, message: Request, *, ident: int, timeout: float | None) -> None:
        """Send one request without waiting for its reply."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.channel.send({"id": ident}, _pickled(message), deadline=deadline)

    def new_id(self) -> int:
        """The id of the next request on the channel."""
        self._next_id += 1
        return self._next_id

    def end_description(self) -> str:
        """How the process ended (after :meth:`close`)."""
        raise NotImplementedError

    def _ended(self) -> bool:
        raise NotImplementedError

    def _wait_for_end(self, deadline: float | None) -> bool:
        """Wait until the process ends by itself, at most until ``deadline``."""
        while not self._ended():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True


class ForkedSandbox(_ProcessSandbox):
    """A fork of the caller that serves ``namespace``; killed with its process group."""

    def __init__(self, namespace: dict[str, Any], cpu_seconds: int) -> None:
        super().__init__()
        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # "fork() with threads" (3.12+)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os.close(from_parent)
            os.close(to_parent)
            serve_forked(namespace, to_child, from_child, cpu_seconds=cpu_seconds)
        os.close(to_child)
        os.close(from_child)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        self.pid = pid
        self.status: int | None = None
        self.channel = Channel(to_parent, from_parent)

    def _ended(self) -> bool:
        with contextlib.suppress(ChildProcessError):
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
        return self.status is not None

    def close(self) -> None:
        if self.alive:
            self.alive = False
            for kill in (lambda: os.killpg(self.pid, signal.SIGKILL),
                         lambda: os.kill(self.pid, signal.SIGKILL)):
                with contextlib.suppress(OSError):
                    kill()
            if self.status is None:
                with contextlib.suppress(ChildProcessError):
                    _, self.status = os.waitpid(self.pid, 0)
            self.channel.close()

    def end_description(self) -> str:
        if self.status is None:
            return "the process running your code stopped"
        if os.WIFSIGNALED(self.status):
            return describe_end(None, os.WTERMSIG(self.status))
        return describe_end(os.WEXITSTATUS(self.status), None)


class SpawnedSandbox(_ProcessSandbox):
    """A confined interpreter started through its keeper (see :mod:`ebmlab.exercises._confine`)."""

    def __init__(self, limits: Limits, banks: tuple[str, ...], startup_timeout: float) -> None:
        super().__init__()
        self.workdir = tempfile.mkdtemp(prefix="ebmlab-sandbox-")
        self.cgroup = PidsCgroup.create(limits.processes) if os.getuid() == 0 else None
        self.end: dict[str, int] = {}
        self.stderr = tempfile.TemporaryFile()
        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()
        env = {k: os.environ[k] for k in _ENV_KEPT if k in os.environ}
        env |= {"HOME": self.workdir, "TMPDIR": self.workdir, "MPLBACKEND": "Agg",
                "MPLCONFIGDIR": os.path.join(self.workdir, ".matplotlib"),
                "EBMLAB_SANDBOX": "1", "OMP_NUM_THREADS": "1"}
        command = [sys.executable, "-I", "-c", _BOOT, "--fds", f"{to_child},{from_child}"]
        if self.cgroup is not None:
            command += ["--cgroup", str(self.cgroup.path)]
        self.channel = Channel(to_parent, from_parent, max_body=limits.message_bytes)
        try:
            self.process = subprocess.Popen(
                command, cwd=self.workdir, env=env, pass_fds=(to_child, from_child),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.stderr,
                start_new_session=True)
        except OSError:
            self.channel.close()
            self._remove_files()
            raise
        finally:
            os.close(to_child)
            os.close(from_child)
        deadline = time.monotonic() + startup_timeout
        try:
            self.channel.send({"id": 0}, _pickled(Setup(limits, banks, self.workdir)),
                              deadline=deadline)
            hello = self.channel.receive(deadline=deadline).header
        except (ChannelTimeout, ChannelClosed, ProtocolError) as exc:
            hello = {"fatal": f"{type(exc).__name__}"}
        if "fatal" in hello or not isinstance(hello.get("protections"), list):
            self.close()
            raise RuntimeError(f"the sandbox process failed to start: {hello.get('fatal')}\n"
                               f"{self._stderr_tail()}")
        self.protections = [str(p) for p in hello["protections"]]
        self.pid = hello.get("pid")

    def fork_check(self) -> CheckProcess:
        """A fork of this sandbox (after its cells) that serves one check."""
        return CheckProcess(self)

    def _stderr_tail(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self.stderr.seek(0)
            return self.stderr.read()[-4000:].decode(errors="replace").strip()
        return ""

    def _ended(self) -> bool:
        return self.process.poll() is not None

    def close(self) -> None:
        if not self.alive:
            return
        self.alive = False
        self.channel.close()  # a sandbox that is still serving ends on end-of-file
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.terminate()  # the keeper kills the sandbox and all below it
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(self.process.pid, signal.SIGKILL)
        try:
            out, _ = self.process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        with contextlib.suppress(ValueError, IndexError):
            status = json.loads(out.decode(errors="replace").strip().splitlines()[-1])
            if isinstance(status, dict):
                self.end = {k: v for k, v in status.items() if isinstance(v, int)}
        self.peak_memory_kb = self.end.get("maxrss_kb")
        self._remove_files()

    def _remove_files(self) -> None:
        if self.cgroup is not None:
            self.cgroup.remove()
        self.stderr.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def end_description(self) -> str:
        if self.end.get("stopped"):
            return "the process running your code was stopped"
        return describe_end(self.end.get("exit"), self.end.get("signal"))


def _parent_of(pid: int) -> int | None:
    try:
        text = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2:].split()[1])


class CheckProcess(Sandbox):
    """A process forked by a :class:`SpawnedSandbox` for one check.

    Its requests travel on the sandbox's channel; when it ends (by itself, or killed at a
    time limit) the sandbox reports how, and stays ready to fork the next one.
    """

    def __init__(self, sandbox: SpawnedSandbox) -> None:
        self.sandbox = sandbox
        self.protections = sandbox.protections
        self.alive = True
        self.ended: dict[str, int] = {}
        self.fork_id = sandbox.new_id()
        frame = sandbox.request(ForkCheck(), timeout=30.0, ident=self.fork_id)
        if "ended" in frame.header:
            self.alive = False
            raise SandboxDied(f"the sandbox could not start a process for the check "
                              f"({str(frame.header.get('error'))[:200]}): too many processes?")
        pid = frame.header.get("pid")
        if not (isinstance(pid, int) and not isinstance(pid, bool) and pid > 0
                and _parent_of(pid) == sandbox.pid):
            raise ProtocolError(f"a forked check process with a wrong pid {str(pid)[:20]}")
        self.pid = pid

    def request(self, message: Request, *, timeout: float | None) -> Frame:
        if not self.alive:
            raise SandboxDied(self.end_description())
        ident = self.sandbox.new_id()
        try:
            frame = self.sandbox.request(message, timeout=timeout, ident=ident,
                                         also=self.fork_id)
        except CallTimeout:
            self.kill()
            raise
        except (SandboxDied, ProtocolError):
            self.alive = False
            raise
        if frame.header.get("id") == self.fork_id:
            self._record_end(frame)
            raise SandboxDied(self.end_description())
        return frame

    def _record_end(self, frame: Frame) -> None:
        ended = frame.header.get("ended")
        if not isinstance(ended, dict):
            raise ProtocolError("a malformed report of a check process's end")
        self.alive = False
        self.ended = {k: v for k, v in ended.items() if isinstance(v, int)}

    def end_description(self) -> str:
        return describe_end(self.ended.get("exit"), self.ended.get("signal"))

    def close(self) -> None:
        """End the check's process: ask it to exit (kill it if it does not) and collect the
        sandbox's report; a sandbox that stops answering is closed."""
        if not self.alive or not self.sandbox.alive:
            self.alive = False
            return
        try:
            self.sandbox.send(EndCheck(), ident=self.sandbox.new_id(), timeout=5.0)
            self._await_end(5.0)
        except (ChannelClosed, ChannelTimeout):
            self.kill()
        self.alive = False

    def kill(self) -> None:
        """Kill the check's process (at a time limit) and collect the sandbox's report."""
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        try:
            self._await_end(10.0)
        except (ChannelClosed, ChannelTimeout):
            self.sandbox.close()
        self.alive = False

    def _await_end(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            frame = self.sandbox.channel.receive(deadline=deadline)
            if frame.header.get("id") == self.fork_id:
                self._record_end(frame)
                return


class InProcessSandbox(Sandbox):
    """Requests handled by a thread of this process, through the same encoding and decoding.

    For platforms without ``fork``. The process-wide state that student code can change
    (default dtype, random generators, threads, streams, ``os._exit``) is the sandbox's own
    while a request runs and the caller's in between. A request past its time limit is
    abandoned (it may keep running in the background).
    """

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.session = Session(namespace, max_bytes=64 << 20)
        self.alive = True
        self.protections = []
        self.state = _GlobalState.capture()

    def request(self, message: Request, *, timeout: float | None) -> Frame:
        if not self.alive:
            raise SandboxDied("the previous call was abandoned")
        copy: Request = pickle.loads(_pickled(message))
        assert not isinstance(copy, (ForkCheck, EndCheck)), "a thread serves a single check"
        box: dict[str, Any] = {}

        def run() -> None:
            torch.set_num_threads(self.state.threads)  # a thread's own setting with OpenMP
            try:
                box["reply"] = copy.handle(self.session)
            except BaseException as exc:  # pragma: no cover - handle() catches student errors
                box["error"] = exc
            box["threads"] = torch.get_num_threads()

        caller = _GlobalState.capture()
        self.state.apply()
        setattr(os, "_exit", _exit_in_thread)  # noqa: B010 - typed NoReturn
        try:
            thread = threading.Thread(target=run, name="ebmlab-check", daemon=True)
            thread.start()
            thread.join(timeout)
        finally:
            self.state = _GlobalState.capture()
            self.state.threads = box.get("threads", self.state.threads)
            caller.apply()
        if thread.is_alive():
            self.alive = False
            raise CallTimeout
        if "error" in box:
            raise SandboxDied(f"the call ended its thread ({box['error']!r})")
        header, body = box["reply"]
        return Frame(json.loads(json.dumps(header)), body)

    def close(self) -> None:
        self.alive = False


def _exit_in_thread(code: int = 0) -> None:
    raise SystemExit(code)


@dataclass
class _GlobalState:
    """The process-wide state that student code running in a thread can change."""

    dtype: torch.dtype
    threads: int
    rngs: tuple[Any, Any, Any]
    streams: tuple[Any, ...]

    @classmethod
    def capture(cls) -> _GlobalState:
        return cls(torch.get_default_dtype(), torch.get_num_threads(),
                   (torch.get_rng_state(), np.random.get_state(),  # noqa: NPY002
                    random.getstate()),
                   (sys.stdin, sys.stdout, sys.stderr, builtins.input, os._exit))

    def apply(self) -> None:
        torch.set_default_dtype(self.dtype)
        torch.set_num_threads(self.threads)
        torch.set_default_device(None)
        torch.set_rng_state(self.rngs[0])
        np.random.set_state(self.rngs[1])  # noqa: NPY002
        random.setstate(self.rngs[2])
        sys.stdin, sys.stdout, sys.stderr = self.streams[:3]
        builtins.input = self.streams[3]
        setattr(os, "_exit", self.streams[4])  # noqa: B010 - typed NoReturn
