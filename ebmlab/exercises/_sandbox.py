"""The sandbox side: a process that holds the student's code and answers the grader's requests.

The grader sends pickled requests (:class:`RunCell`, :class:`ListCallables`,
:class:`Prepare`, :class:`ForkCheck`, :class:`Reset`, :class:`Call`, :class:`EndCheck`);
:func:`serve` runs each and answers with plain data only (see
:mod:`ebmlab.exercises._wire`). A :class:`Call` runs the student's
function on the arguments the check built, with the check's grad mode, with the
exercise's library shortcuts disabled, its output captured; it answers with the result,
the side effects on the arguments (:mod:`ebmlab.exercises._mirror`), the grad mode after
the call and, if the function raised, a description of the error.

Nothing here decides points: the grader treats every answer as untrusted.

:func:`main` starts a sandbox process for the command-line grader (see
:mod:`ebmlab.exercises._confine`); :func:`serve_forked` is the sandbox of ``check()`` in a
notebook, a fork of the kernel.
"""

from __future__ import annotations

import builtins
import codeop
import contextlib
import functools
import importlib
import io
import json
import linecache
import os
import pickle
import random
import sys
import sysconfig
import traceback
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._confine import Limits
from ._mirror import Snapshot, watched
from ._wire import MAX_HEADER, Channel, ChannelClosed, Encoder, Unencodable
from .expect import CheckFailure

__all__ = ["Call", "EndCheck", "ForkCheck", "InSandbox", "ListCallables", "Prepare", "Reset",
           "RunCell", "Session", "serve"]

#: Characters a function (or a cell) may print before it is stopped.
OUTPUT_LIMIT = 1_000_000
#: Characters of printed output kept for the report.
OUTPUT_KEEP = 4_000
_TRACEBACK_KEEP = 20_000
_FIELD_KEEP = 1_000

Reply = tuple[dict[str, Any], bytes]


class OutputLimitExceeded(RuntimeError):
    """Raised when student code prints more than :data:`OUTPUT_LIMIT` characters."""


class ForbiddenShortcut(RuntimeError):
    """Raised by a library function that the current exercise asks the student to write."""


class Capture(io.TextIOBase):
    """A text stream that keeps the first characters written and stops a flood."""

    def __init__(self) -> None:
        super().__init__()
        self.size = 0
        self._parts: list[str] = []
        self._kept = 0

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        if self.size >= OUTPUT_LIMIT:
            raise OutputLimitExceeded(f"more than {OUTPUT_LIMIT} characters printed")
        self.size += len(s)
        if self._kept < OUTPUT_KEEP:
            piece = s[: OUTPUT_KEEP - self._kept]
            self._parts.append(piece)
            self._kept += len(piece)
        return len(s)

    def writable(self) -> bool:
        return True

    def text(self) -> str:
        """What was kept, with a marker when output was cut."""
        out = "".join(self._parts)
        if self.size > self._kept:
            out += f"\n... ({self.size - self._kept} more characters not shown)"
        return out


def _no_input(prompt: object = "") -> str:
    raise EOFError("input() is not available while the autograder runs your code")


# --- describing an exception ----------------------------------------------------------
def _library_roots() -> tuple[str, ...]:
    roots = {str(Path(__file__).resolve().parents[1])}  # the ebmlab package
    paths = sysconfig.get_paths()
    roots |= {str(Path(paths[key]).resolve()) for key in ("stdlib", "platstdlib", "purelib",
                                                          "platlib") if key in paths}
    roots |= {str(Path(m.__file__).resolve().parent) for m in (torch, np) if m.__file__}
    return tuple(sorted(roots))


_LIBRARY_ROOTS = _library_roots()


def _is_library(filename: str) -> bool:
    if filename.startswith("<frozen"):
        return True
    if filename.startswith("<"):
        return False
    return str(Path(filename).resolve()).startswith(_LIBRARY_ROOTS)


def _clip(text: object, limit: int = _FIELD_KEEP) -> str:
    s = str(text)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def describe_exception(exc: BaseException) -> dict[str, Any]:
    """What the grader needs to report an exception raised by student code (plain data).

    ``kind`` is ``not_implemented``, ``forbidden``, ``failed`` (a check helper failed
    inside the call, e.g. an energy given a malformed batch), ``exited`` (``sys.exit``) or
    ``error``; ``types`` are the names of the exception's classes, for ``call_student``.
    """
    lines = str(exc).strip().splitlines()
    text = _clip("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
                 _TRACEBACK_KEEP)
    where = None
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if not _is_library(frame.filename):
            line = _clip((frame.line or "").strip(), 120)
            where = f"in `{frame.name}`, line {frame.lineno}" + (f": `{line}`" if line else "")
            break
    kind = "error"
    if isinstance(exc, NotImplementedError):
        kind = "not_implemented"
    elif isinstance(exc, ForbiddenShortcut):
        kind = "forbidden"
    elif isinstance(exc, SystemExit):
        kind = "exited"
    elif isinstance(exc, CheckFailure):
        kind = "failed"
    out: dict[str, Any] = {
        "kind": kind, "type": type(exc).__name__,
        "types": [c.__name__ for c in type(exc).__mro__][:20],
        "message": _clip(lines[0] if lines else "", 300), "where": where, "traceback": text,
        "exit_code": _clip(repr(exc.code), 100) if isinstance(exc, SystemExit) else None,
        "output_flood": isinstance(exc, OutputLimitExceeded),
    }
    if isinstance(exc, CheckFailure):
        out |= {k: None if getattr(exc, k) is None else _clip(getattr(exc, k))
                for k in ("what", "expected", "got", "hint")}
    return out


# --- library shortcuts ----------------------------------------------------------------
def _resolve(dotted: str) -> tuple[object, str] | None:
    """``(owner, attribute)`` of a dotted name such as ``ebmlab.Energy.score``, or None."""
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            owner: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for name in parts[split:-1]:
                owner = getattr(owner, name)
        except AttributeError:
            return None
        return (owner, parts[-1]) if hasattr(owner, parts[-1]) else None
    return None


def _raiser_code(original: types.CodeType, message: str) -> types.CodeType:
    """Code that raises :class:`ForbiddenShortcut`, with as many free variables as
    ``original`` (so that it can replace the ``__code__`` of a function with a closure)."""
    names = [f"_v{i}" for i in range(len(original.co_freevars))]
    source = ["def _outer():", *[f"    {n} = None" for n in names],
              "    def forbidden(*args, **kwargs):"]
    if names:
        source += ["        if False:", f"            ({', '.join(names)},)"]
    source += ["        raise __import__('ebmlab.exercises._sandbox', fromlist=['_'])"
               f".ForbiddenShortcut({message!r})", "    return forbidden"]
    namespace: dict[str, Any] = {}
    exec("\n".join(source), namespace)
    code: types.CodeType = namespace["_outer"]().__code__
    return code.replace(co_name=original.co_name, co_qualname=original.co_qualname)


@contextlib.contextmanager
def shortcuts_disabled(names: tuple[str, ...], exercise_id: str) -> Iterator[None]:
    """Make the library functions ``names`` raise :class:`ForbiddenShortcut` for a while.

    A Python function gets the code of a raiser (``__code__`` is swapped), so references
    bound before the call raise too; anything else (a builtin, a class) is replaced by a
    raiser in its owner's namespace. Names that do not resolve are skipped.
    """
    undo: list[Callable[[], None]] = []
    try:
        for dotted in names:
            found = _resolve(dotted)
            if found is None:
                continue
            owner, attr = found
            target = getattr(owner, attr)
            function = getattr(target, "__func__", target)
            message = (f"{dotted} solves exercise {exercise_id} for you; the point is to write "
                       "it yourself, so it is not available inside this function.")
            if isinstance(function, types.FunctionType):
                original = function.__code__
                function.__code__ = _raiser_code(original, message)
                undo.append(functools.partial(setattr, function, "__code__", original))
            else:
                def raiser(*args: object, _message: str = message, **kwargs: object) -> None:
                    raise ForbiddenShortcut(_message)
                setattr(owner, attr, raiser)
                undo.append(functools.partial(setattr, owner, attr, target))
        yield
    finally:
        for step in reversed(undo):
            step()


# --- requests -------------------------------------------------------------------------
@dataclass(frozen=True)
class InSandbox:
    """An argument built in the sandbox, right before the call: ``builder(*args)``.

    For an argument that must keep an autograd graph to another argument (a graph does
    not survive the trip to the sandbox), e.g. reparametrised samples of an energy's
    parameters. ``builder`` must be picklable (a module-level function); ``args`` may
    share objects with the call's other arguments (they travel in one pickle).
    """

    builder: Callable[..., object]
    args: tuple[object, ...] = ()

    def build(self) -> object:
        """The argument's value."""
        return self.builder(*self.args)


def _built(value: object) -> object:
    if isinstance(value, InSandbox):
        return value.build()
    if isinstance(value, (tuple, list)):
        return type(value)(_built(v) for v in value)
    if isinstance(value, dict):
        return {k: _built(v) for k, v in value.items()}
    return value


@dataclass
class Session:
    """The sandbox's state: the namespace of the student's code and the limits of replies."""

    namespace: dict[str, Any]
    max_bytes: int
    compiler: codeop.Compile = field(default_factory=codeop.Compile)

    def capture(self) -> Capture:
        """A fresh output capture for the next cell or call."""
        capture = Capture()
        sys.stdout = sys.stderr = capture
        sys.stdin = io.StringIO("")
        builtins.input = _no_input
        return capture


@dataclass(frozen=True)
class RunCell:
    """Execute one cell of the submission; reply ``{"error": str | None, "output": str}``."""

    source: str
    filename: str

    def handle(self, session: Session) -> Reply:
        # the cells of a .py share its file name, padded with empty lines to their place
        lines = self.source.splitlines(keepends=True)
        entry = linecache.cache.get(self.filename)
        merged = list(entry[2]) if entry is not None and len(entry) == 4 else []
        merged += [""] * (len(lines) - len(merged))
        start = len(self.source) - len(self.source.lstrip("\n"))
        merged[start:len(lines)] = lines[start:]
        linecache.cache[self.filename] = (len(self.source), None, merged, self.filename)
        capture = session.capture()
        error = None
        try:
            exec(session.compiler(self.source, self.filename, "exec"), session.namespace)
        except BaseException as exc:  # a cell may raise anything, even SystemExit
            lines = str(exc).strip().splitlines()
            error = _clip(f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__,
                          300)
        return {"error": error, "output": capture.text()}, b""


@dataclass(frozen=True)
class ListCallables:
    """Reply ``{"names": [...]}``: the callables the student's code defined."""

    def handle(self, session: Session) -> Reply:
        names = [name for name, value in list(session.namespace.items())
                 if isinstance(name, str) and not name.startswith("_") and callable(value)]
        return {"names": [_clip(n, 200) for n in names[:10_000]]}, b""


@dataclass(frozen=True)
class Prepare:
    """Run an exercise's set-up functions (e.g. warming up the meta device) before its checks."""

    functions: tuple[Callable[[], None], ...]

    def handle(self, session: Session) -> Reply:
        for function in self.functions:
            function()
        return {}, b""


@dataclass(frozen=True)
class Reset:
    """The canonical state a check starts from: float32 default dtype, gradients on, one
    thread, no default device, every global random generator seeded with ``seed``."""

    seed: int

    def handle(self, session: Session) -> Reply:
        reset_global_state(self.seed)
        return {}, b""


def reset_global_state(seed: int) -> None:
    """See :class:`Reset`."""
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    torch.set_grad_enabled(True)
    torch.set_default_device(None)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the legacy global generator is the state
    random.seed(seed)


@dataclass(frozen=True)
class Call:
    """Call the student's function ``function(*args, **kwargs)``.

    Reply ``{"outcome": "returned", "value": ...}``, ``{"outcome": "raised", "error":
    ...}`` or ``{"outcome": "unencodable", "message": ...}``, with ``"changes"`` (the side
    effects on the arguments), ``"grad_enabled"``, ``"output"`` and, with a ``probe``,
    ``"probe"`` (``probe(result, args, kwargs)`` as plain data, or ``"probe_error"``).
    """

    function: str
    args: tuple[object, ...]
    kwargs: dict[str, object]
    grad_enabled: bool
    exercise_id: str
    forbidden: tuple[str, ...] = ()
    probe: Callable[[object, tuple[object, ...], dict[str, object]], object] | None = None

    def handle(self, session: Session) -> Reply:
        fn = session.namespace[self.function]
        snapshot = Snapshot(watched((self.args, self.kwargs), skip=(InSandbox,)))
        args, kwargs = _built(self.args), _built(self.kwargs)
        assert isinstance(args, tuple) and isinstance(kwargs, dict)
        capture = session.capture()
        torch.set_grad_enabled(self.grad_enabled)
        result: object = None
        header: dict[str, Any] = {"outcome": "returned"}
        try:
            with shortcuts_disabled(self.forbidden, self.exercise_id):
                result = fn(*args, **kwargs)
        except BaseException as exc:
            header = {"outcome": "raised", "error": describe_exception(exc)}
        header["grad_enabled"] = torch.is_grad_enabled()
        encoder = Encoder(session.max_bytes)
        try:
            if header["outcome"] == "returned":
                header["value"] = encoder.encode(result)
                if self.probe is not None:
                    self._run_probe(result, args, kwargs, encoder, header)
            header["changes"] = snapshot.changes(encoder)
        except Unencodable as exc:
            return self._unencodable(str(exc), header, capture)
        except Exception as exc:  # student objects may misbehave while being read
            return self._unencodable(f"a value that could not be read ({type(exc).__name__}: "
                                     f"{_clip(exc, 200)})", header, capture)
        header["output"] = capture.text()
        if len(json.dumps(header)) > MAX_HEADER // 2:
            return self._unencodable("a value too large to send back", header, capture)
        return header, encoder.body

    def _run_probe(self, result: object, args: tuple[object, ...], kwargs: dict[str, object],
                   encoder: Encoder, header: dict[str, Any]) -> None:
        assert self.probe is not None
        try:
            value = self.probe(result, args, kwargs)
        except Exception as exc:
            header["probe_error"] = _clip(f"{type(exc).__name__}: {exc}", 300)
        else:
            header["probe"] = encoder.encode(value)

    @staticmethod
    def _unencodable(message: str, header: dict[str, Any], capture: Capture) -> Reply:
        return {"outcome": "unencodable", "message": _clip(message, 300),
                "grad_enabled": header["grad_enabled"], "changes": [],
                "output": capture.text()}, b""


@dataclass(frozen=True)
class ForkCheck:
    """Fork a process that serves the requests of one check.

    The child replies ``{"pid": ...}`` and serves until :class:`EndCheck` (or the end of
    the channel); the parent waits for it and then answers, with the same id, ``{"ended":
    {"exit": code} | {"signal": number}}``. So a check that hangs or crashes costs a fork,
    not a new interpreter, and no check sees the state another one left.
    """


@dataclass(frozen=True)
class EndCheck:
    """End the process serving the current check (its parent then reports ``ended``)."""


Request = RunCell | ListCallables | Prepare | Reset | Call | ForkCheck | EndCheck


def _serve_check(channel: Channel, session: Session, ident: object) -> None:
    """Handle :class:`ForkCheck`: fork, let the child serve, report how it ended."""
    from ._confine import die_with_parent

    try:
        child = os.fork()
    except OSError as exc:  # e.g. the student's code used up the processes allowed
        channel.send({"id": ident, "ended": {"exit": 71}, "error": _clip(exc, 200)})
        return
    if child == 0:
        code = 0
        try:
            die_with_parent()
            channel.send({"id": ident, "pid": os.getpid()})
            serve(channel, session)
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    ended = ({"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status)
             else {"exit": os.WEXITSTATUS(status)})
    channel.send({"id": ident, "ended": ended})


def serve(channel: Channel, session: Session) -> None:
    """Answer requests until the grader closes the channel (or ends this check's process).

    A request that fails here (the student's code broke what it needs, e.g. a module the
    pickle refers to) is answered with ``{"handler_error": ...}``.
    """
    while True:
        try:
            frame = channel.receive()
        except ChannelClosed:
            return
        ident = frame.header.get("id")
        try:
            request: Request = pickle.loads(frame.body)
            if isinstance(request, EndCheck):
                os._exit(0)
            if isinstance(request, ForkCheck):
                _serve_check(channel, session, ident)
                continue
            header, body = request.handle(session)
        except ChannelClosed:
            return
        except Exception as exc:
            header, body = {"handler_error": _clip(f"{type(exc).__name__}: {exc}", 300)}, b""
        header["id"] = ident
        try:
            channel.send(header, body)
        except ChannelClosed:
            return


# --- starting a sandbox process -------------------------------------------------------
def new_namespace() -> dict[str, Any]:
    """A fresh module namespace for the student's code (in ``sys.modules``, so that classes
    and functions defined there can be pickled)."""
    module = types.ModuleType("__submission__")
    module.__dict__["display"] = lambda *args, **kwargs: None
    sys.modules[module.__name__] = module
    return module.__dict__


def _detach_standard_streams() -> None:
    """Point fds 0, 1 and 2 at /dev/null: nothing the student prints reaches a terminal or
    a pipe of the grader."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            os.dup2(devnull, fd)
    os.close(devnull)


def _quiet_ipython() -> None:
    """In a forked Jupyter kernel, keep display calls and plots away from the kernel's sockets."""
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


def serve_forked(namespace: dict[str, Any], read_fd: int, write_fd: int, *,
                 cpu_seconds: int) -> None:
    """Body of a sandbox forked from the caller's process (``check()`` in a notebook): no
    hostility model, only a CPU-time backstop, its own process group, quiet output. Never
    returns."""
    import faulthandler
    import resource
    import signal

    from ._confine import die_with_parent

    code = 0
    try:
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)
        faulthandler.disable()
        die_with_parent()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = cpu_seconds if hard == resource.RLIM_INFINITY else min(cpu_seconds, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        _detach_standard_streams()
        _quiet_ipython()
        os.environ["EBMLAB_SANDBOX"] = "1"
        serve(Channel(read_fd, write_fd), Session(namespace, max_bytes=64 << 20))
    except BaseException:
        code = 70
    finally:
        os._exit(code)


@dataclass(frozen=True)
class Setup:
    """The first message to a spawned sandbox: its limits and the instructor's banks."""

    limits: Limits
    banks: tuple[str, ...]
    workdir: str


def _sandbox_child(read_fd: int, write_fd: int) -> None:
    """The sandbox proper, forked by the keeper: set up, confine, then serve. Never returns."""
    from ._confine import confine, die_with_parent
    from ._registry import load_bank

    die_with_parent()
    _detach_standard_streams()
    channel = Channel(read_fd, write_fd)
    try:
        setup: Setup = pickle.loads(channel.receive().body)
        for bank in setup.banks:
            load_bank(bank)
        notes = confine(setup.limits, workdir=setup.workdir,
                        package_dir=str(Path(__file__).resolve().parents[1]))
        channel.send({"pid": os.getpid(), "protections": notes})
        serve(channel, Session(new_namespace(), max_bytes=setup.limits.message_bytes))
    except BaseException:
        with contextlib.suppress(Exception):
            channel.send({"fatal": _clip(traceback.format_exc(), 4000)})
        os._exit(70)
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    """Become the keeper of a new sandbox (see :mod:`ebmlab.exercises._confine`); never returns.

    The grader runs ``python -I -c "from ebmlab.exercises._sandbox import main; main()"
    --fds R,W [--cgroup DIR]``.
    """
    import argparse
    import signal

    from ._confine import PidsCgroup, become_subreaper, die_with_parent, keep

    parser = argparse.ArgumentParser(prog="ebmlab sandbox")
    parser.add_argument("--fds", required=True)
    parser.add_argument("--cgroup", default=None)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    read_fd, write_fd = (int(fd) for fd in args.fds.split(","))
    if args.cgroup:
        PidsCgroup(Path(args.cgroup)).join()
    become_subreaper()
    die_with_parent(signal.SIGTERM)
    child = os.fork()
    if child == 0:
        _sandbox_child(read_fd, write_fd)
    os.close(read_fd)
    os.close(write_fd)
    keep(child)

