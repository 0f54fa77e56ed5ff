"""Low-level isolation of student code: output capture, a canonical global state, classification.

Used by both runners (a forked child process, or the in-process fallback) and by the
command-line worker that executes a submission's cells.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import random
import signal
import sys
import sysconfig
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import torch

from .expect import CheckFailure

__all__ = [
    "OUTPUT_LIMIT",
    "Capture",
    "ExitCalled",
    "OutputLimitExceeded",
    "classify_exception",
    "die_with_parent",
    "limit_cpu_time",
    "reset_global_state",
]

#: Characters of printed output a check (or a cell) may write before it is stopped.
OUTPUT_LIMIT = 1_000_000
#: Characters of printed output kept for the report.
OUTPUT_KEEP = 4_000
_FIELD_LIMIT = 1_000
_TRACEBACK_LIMIT = 20_000

_REAL_EXIT = os._exit


class ExitCalled(BaseException):
    """Raised by the in-process runner's stand-in for :func:`os._exit`."""

    def __init__(self, code: object = 0) -> None:
        super().__init__(code)
        self.code = code


class OutputLimitExceeded(RuntimeError):
    """Raised by :class:`Capture` when student code prints more than its limit."""


class Capture(io.TextIOBase):
    """A text stream that keeps the first characters written and stops a flood.

    After ``limit`` characters every write raises :class:`OutputLimitExceeded`, so a
    function printing millions of lines ends at once instead of running into the time
    limit.
    """

    def __init__(self, limit: int = OUTPUT_LIMIT, keep: int = OUTPUT_KEEP) -> None:
        super().__init__()
        self.limit = limit
        self.keep = keep
        self.size = 0
        self._parts: list[str] = []
        self._kept = 0

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        if self.size >= self.limit:
            raise OutputLimitExceeded(f"more than {self.limit} characters printed")
        self.size += len(s)
        if self._kept < self.keep:
            piece = s[: self.keep - self._kept]
            self._parts.append(piece)
            self._kept += len(piece)
        return len(s)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def text(self) -> str:
        """What was kept, with a marker when output was cut."""
        out = "".join(self._parts)
        if self.size > self._kept:
            out += f"\n... ({self.size - self._kept} more characters not shown)"
        return out


def no_input(prompt: object = "") -> str:
    """Stand-in for :func:`input` while student code runs: raises :class:`EOFError`."""
    raise EOFError("input() is not available while the autograder runs your function")


def redirect_process_io() -> Capture:
    """Point fds 0/1/2 at /dev/null and sys.stdin/stdout/stderr at a :class:`Capture`.

    For a process that runs student code and reports through its own channel (a forked
    check, the grading worker). Returns the capture.
    """
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        try:
            os.dup2(devnull, fd)
        except OSError:
            pass
    os.close(devnull)
    capture = Capture()
    sys.stdin = io.StringIO("")
    sys.stdout = capture
    sys.stderr = capture
    builtins.input = no_input
    return capture


def die_with_parent() -> None:
    """On Linux, have the kernel kill this process when its parent dies (no orphans)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl
        pass


def limit_cpu_time(seconds: float) -> None:
    """Cap this process's CPU time (a backstop behind the wall-clock limit)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return
    soft = int(seconds) + 5
    with contextlib.suppress(ValueError, OSError):
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def reset_global_state(seed: int) -> None:
    """The canonical state every check starts from, whatever the caller had set.

    Default dtype float32, gradients enabled, one CPU thread (safe after ``fork``), no
    default device, and every global random generator seeded with ``seed``.
    """
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    torch.set_grad_enabled(True)
    if hasattr(torch, "set_default_device"):
        try:
            torch.set_default_device(None)
        except (TypeError, RuntimeError):  # pragma: no cover - very old torch
            pass
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the legacy global generator is the state
    random.seed(seed)


def _library_roots() -> tuple[str, ...]:
    roots = {str(Path(__file__).resolve().parents[1])}  # the ebmlab package
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if key in paths:
            roots.add(str(Path(paths[key]).resolve()))
    roots.add(str(Path(torch.__file__).resolve().parent))
    roots.add(str(Path(np.__file__).resolve().parent))
    return tuple(sorted(roots))


_LIBRARY_ROOTS = _library_roots()


def _is_library(filename: str) -> bool:
    if filename.startswith("<frozen"):
        return True
    if filename.startswith("<"):
        return False
    try:
        resolved = str(Path(filename).resolve())
    except (OSError, ValueError):  # pragma: no cover - defensive
        return False
    return resolved.startswith(_LIBRARY_ROOTS)


def _clip(text: object, limit: int = _FIELD_LIMIT) -> str:
    s = str(text)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _exception_text(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    first = msg[0] if msg else ""
    return _clip(f"{type(exc).__name__}: {first}" if first else type(exc).__name__, 300)


def _student_frame(tb: TracebackType | None) -> traceback.FrameSummary | None:
    frames = traceback.extract_tb(tb)
    for frame in reversed(frames):
        if not _is_library(frame.filename):
            return frame
    return None


def classify_exception(exc: BaseException, timeout_hint: str | None = None) -> dict[str, Any]:
    """Turn an exception raised while a check ran into the fields of a check result."""
    if isinstance(exc, CheckFailure):
        return {"status": "failed", "what": _clip(exc.what), "expected": _clip(exc.expected)
                if exc.expected is not None else None,
                "got": _clip(exc.got) if exc.got is not None else None,
                "hint": _clip(exc.hint) if exc.hint else None}
    tb_text = _clip("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
                    _TRACEBACK_LIMIT)
    if isinstance(exc, NotImplementedError):
        return {"status": "not_implemented", "what": "not implemented yet",
                "traceback": tb_text}
    if isinstance(exc, SystemExit):
        return {"status": "exited", "what": f"the function called sys.exit({exc.code!r})",
                "hint": "a function returns its result; it must never end the program "
                        "(no sys.exit, exit(), quit() or os._exit).",
                "traceback": tb_text}
    if isinstance(exc, ExitCalled):
        return {"status": "exited", "what": f"the function called os._exit({exc.code!r})",
                "hint": "a function returns its result; it must never end the program "
                        "(no sys.exit, exit(), quit() or os._exit).",
                "traceback": tb_text}
    if isinstance(exc, OutputLimitExceeded):
        return {"status": "error",
                "what": f"the function printed more than {OUTPUT_LIMIT} characters and was stopped",
                "hint": "remove the print calls from loops.", "traceback": tb_text}
    if isinstance(exc, RecursionError):
        return {"status": "error", "what": "the function recursed too deeply (RecursionError)",
                "hint": "look for a function that calls itself without a base case.",
                "traceback": tb_text}
    frame = _student_frame(exc.__traceback__)
    if frame is not None:
        line = (frame.line or "").strip()
        where = f"in `{frame.name}`, line {frame.lineno}" + (f": `{_clip(line, 120)}`" if line
                                                             else "")
        return {"status": "error", "what": f"your function raised {_exception_text(exc)}",
                "hint": f"the error happened {where}.", "traceback": tb_text}
    return {"status": "error",
            "what": f"the check could not use your function's result ({_exception_text(exc)})",
            "hint": "return what the docstring describes (type, shape and dtype).",
            "traceback": tb_text}


def exit_process(code: int = 0) -> None:
    """End the current process at once (no cleanup handlers, no buffered output flushed)."""
    _REAL_EXIT(code)
