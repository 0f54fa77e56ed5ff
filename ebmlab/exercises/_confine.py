"""Confinement of a sandbox process (Linux): resource limits, Landlock, a pids cgroup, a keeper.

The command-line grader starts a fresh isolated interpreter (``python -I``, see
:func:`ebmlab.exercises._sandbox.main`) in a fresh session and temporary directory. That
process becomes the *keeper*: a child subreaper (``PR_SET_CHILD_SUBREAPER``) that forks
the sandbox itself and, when the sandbox
ends or the grader asks (``SIGTERM``), kills every process below it, also those that left
the session with ``setsid``, and reports how the sandbox ended (:func:`keep`). The sandbox,
before it runs any student code, applies :func:`confine`:

* resource limits: data segment (memory), CPU time, file size, no core files, and the
  number of processes (``RLIMIT_NPROC``; it does not bind root, so for root the grader
  puts the keeper in a pids cgroup when one is writable, :class:`PidsCgroup`);
* ``no_new_privs`` and, where the kernel has it (Landlock ABI >= 1, Linux >= 5.13), a
  Landlock domain: reads only below the Python installation, the ``ebmlab`` package and the
  system's libraries; writes only in its temporary directory; no TCP (ABI >= 4); no signals
  to processes outside the domain, i.e. the keeper and the grader (ABI >= 6).

What is in force is returned as a list of sentences, which the grader records.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import json
import os
import resource
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

__all__ = ["Limits", "PidsCgroup", "confine", "die_with_parent", "keep"]

_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox process.

    Attributes
    ----------
    memory_bytes : int
        Data segment (heap and anonymous mappings, ``RLIMIT_DATA``).
    cpu_seconds : int
        CPU time of the whole sandbox process (a backstop behind the wall-clock limits).
    file_bytes : int
        Largest file it may write.
    processes : int
        Processes and threads it may add.
    message_bytes : int
        Largest reply the grader accepts from it.
    """

    memory_bytes: int = 4 << 30
    cpu_seconds: int = 1800
    file_bytes: int = 64 << 20
    processes: int = 64
    message_bytes: int = 64 << 20

    def __post_init__(self) -> None:
        for name in ("memory_bytes", "cpu_seconds", "file_bytes", "processes",
                     "message_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"Limits.{name} must be a positive integer, got {value!r}.")


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, value: int) -> bool:
    return bool(_libc().prctl(option, value, 0, 0, 0) == 0)


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Have the kernel send ``sig`` to this process when its parent ends."""
    _prctl(_PR_SET_PDEATHSIG, int(sig))


# --- resource limits ------------------------------------------------------------------
def _tasks_of_user(uid: int) -> int:
    """Processes and threads whose real user is ``uid`` (what ``RLIMIT_NPROC`` counts)."""
    count = 0
    for status in glob.glob("/proc/[0-9]*/status"):
        with contextlib.suppress(OSError):
            fields = dict(line.split(":", 1) for line in Path(status).read_text().splitlines()
                          if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields.get("Threads", "1"))
    return count


def set_resource_limits(limits: Limits) -> list[str]:
    """Lower this process's limits; returns what is in force, in words."""
    done = []
    for name, value in (("RLIMIT_DATA", limits.memory_bytes), ("RLIMIT_CPU", limits.cpu_seconds),
                        ("RLIMIT_FSIZE", limits.file_bytes), ("RLIMIT_CORE", 0)):
        key = getattr(resource, name)
        _, hard = resource.getrlimit(key)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(key, (value, hard))
        done.append(f"{name}={value}")
    if os.getuid() != 0:
        _, hard = resource.getrlimit(resource.RLIMIT_NPROC)
        value = _tasks_of_user(os.getuid()) + limits.processes
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(resource.RLIMIT_NPROC, (value, hard))
        done.append(f"RLIMIT_NPROC={value}")
    return [f"resource limits {', '.join(done)}"]


# --- Landlock -------------------------------------------------------------------------
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # x86_64 and arm64
_RULE_PATH_BENEATH = 1
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_BITS_BY_ABI = {1: 13, 2: 14, 3: 15, 4: 15, 5: 16}  # number of filesystem rights
_TRUNCATE, _IOCTL_DEV = 1 << 14, 1 << 15
_NET_TCP = 1 | 2
_SCOPE_ABSTRACT_SOCKET, _SCOPE_SIGNAL = 1, 2


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when it has none (or not on x86_64/arm64)."""
    if not sys.platform.startswith("linux") or os.uname().machine not in ("x86_64", "aarch64"):
        return 0
    abi = _libc().syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(abi), 0)


def restrict_filesystem(readable: list[str], writable: list[str]) -> int:
    """Landlock: read below ``readable``, read and write below ``writable``, nothing else.

    Also forbids TCP (ABI >= 4) and signals or abstract sockets to processes outside the
    domain (ABI >= 6). Returns the ABI used, 0 when Landlock is not available.
    """
    abi = landlock_abi()
    if abi == 0:
        return 0
    every = (1 << _FS_BITS_BY_ABI.get(abi, 16)) - 1
    attr = _RulesetAttr(every, _NET_TCP if abi >= 4 else 0,
                        _SCOPE_ABSTRACT_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0)
    libc = _libc()
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(
        ctypes.sizeof(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    file_rights = (_EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV) & every
    try:
        for paths, rights in ((readable, _EXECUTE | _READ_FILE | _READ_DIR), (writable, every)):
            for path in paths:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue
                allowed = rights if os.path.isdir(path) else rights & file_rights
                rule = _PathBeneath(allowed, fd)
                result = libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH,
                                      ctypes.byref(rule), ctypes.c_uint32(0))
                os.close(fd)
                if result < 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
        if not _prctl(_PR_SET_NO_NEW_PRIVS, 1):
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_SYS_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return abi


_SYSTEM_READABLE = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/proc", "/sys",
                    "/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group",
                    "/etc/nsswitch.conf", "/dev/null", "/dev/zero", "/dev/urandom",
                    "/dev/random")


def runtime_paths(package_dir: str) -> list[str]:
    """What a sandbox must read: the Python installation (prefixes and the ``sys.path``
    entries below them), the ``ebmlab`` package, system libraries, ``/proc`` and ``/sys``.

    A ``sys.path`` entry outside the Python installation (e.g. a repository added by a
    ``.pth`` file) is left out, and removed from ``sys.path``.
    """
    prefixes = {str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                                  sys.base_exec_prefix)}
    inside = [p for p in sys.path if p and str(Path(p).resolve()).startswith(tuple(prefixes))]
    sys.path[:] = inside
    return sorted(prefixes | set(inside) | {package_dir, *_SYSTEM_READABLE,
                                            *glob.glob("/dev/nvidia*")})


def confine(limits: Limits, *, workdir: str, package_dir: str) -> list[str]:
    """Apply the resource limits, ``no_new_privs`` and Landlock to this process.

    Returns what is in force, in words (see the module docstring).
    """
    notes = set_resource_limits(limits)
    abi = restrict_filesystem(runtime_paths(package_dir), [workdir, "/dev/null"])
    if abi:
        scope = "; no TCP" if abi >= 4 else ""
        scope += "; no signals outside the sandbox" if abi >= 6 else ""
        notes.append(f"Landlock ABI {abi}: reads limited to the Python installation, ebmlab "
                     f"and system libraries, writes to its temporary directory{scope}")
    else:
        _prctl(_PR_SET_NO_NEW_PRIVS, 1)
        notes.append("no Landlock on this kernel: the sandbox can read and write whatever "
                     "its user can (run the grader in a container)")
    return notes


# --- a pids cgroup (for root, whom RLIMIT_NPROC does not bind) -------------------------
class PidsCgroup:
    """A fresh cgroup with a ``pids.max`` limit, where one is writable; :meth:`create`
    returns None otherwise."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, limit: int) -> PidsCgroup | None:
        """A new cgroup below this process's own, in the v1 ``pids`` or the v2 hierarchy."""
        try:
            lines = Path("/proc/self/cgroup").read_text().splitlines()
        except OSError:
            return None
        own = {}
        for line in lines:
            _, controllers, own_path = line.split(":", 2)
            own[controllers] = own_path
        candidates = []
        if "pids" in own:
            candidates.append(Path("/sys/fs/cgroup/pids") / own["pids"].lstrip("/"))
        if "" in own:
            candidates.append(Path("/sys/fs/cgroup") / own[""].lstrip("/"))
        for parent in candidates:
            path = parent / f"ebmlab-{uuid.uuid4().hex[:12]}"
            try:
                path.mkdir()
            except OSError:
                continue
            try:
                (path / "pids.max").write_text(str(limit))
            except OSError:
                with contextlib.suppress(OSError):
                    path.rmdir()
                continue
            return cls(path)
        return None

    def join(self) -> None:
        """Move this process into the cgroup (its children inherit it)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self) -> None:
        """Kill whatever is left in the cgroup and remove it."""
        for _ in range(1000):
            try:
                pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
            except OSError:
                break
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)
        with contextlib.suppress(OSError):
            self.path.rmdir()


# --- the keeper -----------------------------------------------------------------------
def _parents() -> dict[int, int]:
    """pid -> parent pid of every live (not zombie) process."""
    out = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = Path(stat).read_text()
            fields = text[text.rindex(")") + 2:].split()
            if fields[0] != "Z":
                out[int(stat.split("/")[2])] = int(fields[1])
    return out


def descendants(root: int) -> set[int]:
    """Every live process below ``root``."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def kill_descendants() -> None:
    """Kill every process below this one until none is left (orphans come back to a
    subreaper, so processes that escaped with ``setsid`` are found too)."""
    for _ in range(10_000):
        pids = descendants(os.getpid())
        if not pids:
            _reap()
            if not descendants(os.getpid()):
                return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        _reap()
        time.sleep(0.001)


class _Stop(Exception):
    pass


def _stop(signum: int, frame: object) -> None:
    raise _Stop


def keep(child: int, *, status_fd: int = 1) -> NoReturn:
    """The keeper's life: wait for the sandbox ``child`` (or ``SIGTERM``), kill everything
    below, write ``{"exit": code}`` or ``{"signal": number}`` and ``"maxrss_kb"`` as one
    JSON line on ``status_fd``, and exit."""
    signal.signal(signal.SIGTERM, _stop)
    result: dict[str, int] = {}
    try:
        _, status, usage = os.wait4(child, 0)
    except _Stop:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGKILL)
        _, status, usage = os.wait4(child, 0)
        result["stopped"] = 1
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    kill_descendants()
    if os.WIFSIGNALED(status):
        result["signal"] = os.WTERMSIG(status)
    else:
        result["exit"] = os.WEXITSTATUS(status)
    result["maxrss_kb"] = int(usage.ru_maxrss)
    with contextlib.suppress(OSError):
        os.write(status_fd, (json.dumps(result) + "\n").encode())
    os._exit(0)


def become_subreaper() -> None:
    """Orphans below this process are re-parented to it instead of to init."""
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
