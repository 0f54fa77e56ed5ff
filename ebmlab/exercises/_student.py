"""What a check holds: the student's function behind a proxy, and the context of the check.

A check runs in the grading process. Calling the :class:`Student` it receives sends the
arguments to the sandbox, where the student's function runs; the reply comes back as plain
data (decoded by :func:`ebmlab.exercises._wire.decode`), the side effects on the arguments
are mirrored onto the check's own objects (:mod:`ebmlab.exercises._mirror`) and the grad
mode after the call is restored, so a check reads like a direct call::

    got = score(energy, x)                          # a fresh torch.Tensor, or CheckFailure
    expect_unchanged(x, snapshot, what="x")         # sees an in-place change made in the sandbox

If the student's function raised, the call raises :class:`StudentRaised`; a result that is
not plain data (a NumPy array, a tensor subclass, a custom object) fails the check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ._mirror import apply_changes, watched
from ._registry import Exercise
from ._sandbox import Call, InSandbox
from ._supervisor import Sandbox
from ._wire import ProtocolError, decode
from .expect import CheckFailure

__all__ = ["Budget", "CheckContext", "Student", "StudentRaised", "accept_device"]

Probe = Callable[[object, tuple[object, ...], dict[str, object]], object]


@dataclass(frozen=True)
class CheckContext:
    """The instance a check builds its inputs from, and where it probes devices.

    Attributes
    ----------
    seed : int
        0 for ``check()`` in a notebook; a fresh random seed drawn by ``python -m ebmlab
        grade`` (or ``--seed``), so that outputs hard-coded from the notebook fail.
    device : torch.device
        The device for "follows the input's device" checks: CUDA when the grader and the
        sandbox can both use it, else ``meta`` (no data: tensors created on the wrong
        device are still caught).
    """

    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("meta"))

    def generator(self, stream: int = 0) -> torch.Generator:
        """A CPU generator for input stream ``stream`` of this instance.

        With ``seed`` 0 it is seeded with ``stream`` itself (the notebook's instance);
        otherwise with a mix of both.
        """
        value = stream if self.seed == 0 else (self.seed * 1_000_003 + stream) % (1 << 63)
        return torch.Generator().manual_seed(value)


class StudentRaised(Exception):
    """The student's function raised in the sandbox (a description, never the exception).

    Attributes
    ----------
    kind : str
        ``error``, ``not_implemented``, ``forbidden``, ``failed`` or ``exited``.
    types : tuple of str
        Names of the exception's classes (for :func:`~ebmlab.exercises.expect.call_student`).
    """

    def __init__(self, info: dict[str, Any]) -> None:
        self.kind: str = info["kind"]
        self.type: str = info["type"]
        self.types: tuple[str, ...] = tuple(info["types"])
        self.message: str = info["message"]
        self.where: str | None = info["where"]
        self.traceback: str = info["traceback"]
        self.exit_code: str | None = info["exit_code"]
        self.output_flood: bool = info["output_flood"]
        self.failure = {k: info.get(k) for k in ("what", "expected", "got", "hint")}
        super().__init__(self.headline)

    @property
    def headline(self) -> str:
        """``"ValueError: boom"``."""
        return f"{self.type}: {self.message}" if self.message else self.type

    _KINDS = ("error", "not_implemented", "forbidden", "failed", "exited")
    _TEXT = ("type", "message", "traceback")
    _OPTIONAL = ("where", "exit_code", "what", "expected", "got", "hint")

    @classmethod
    def from_reply(cls, info: object) -> StudentRaised:
        """Validate the sandbox's description; raise :class:`ProtocolError` if malformed."""
        if not (isinstance(info, dict) and info.get("kind") in cls._KINDS
                and all(isinstance(info.get(k), str) for k in cls._TEXT)
                and all(info.get(k) is None or isinstance(info.get(k), str)
                        for k in cls._OPTIONAL)
                and isinstance(info.get("output_flood"), bool)
                and isinstance(info.get("types"), list)
                and all(isinstance(t, str) for t in info["types"])):
            raise ProtocolError("a malformed description of an exception")
        clipped = {k: v[:20_000] if isinstance(v, str) else v for k, v in info.items()}
        return cls(clipped | {"types": [t[:100] for t in info["types"][:20]]})


class Budget:
    """The time a check's calls of the student's function may take, in seconds, together."""

    def __init__(self, seconds: float) -> None:
        self.remaining = seconds

    def spend(self, seconds: float) -> None:
        """Take ``seconds`` off the remaining time."""
        self.remaining = max(self.remaining - seconds, 0.0)


def accept_device(name: str) -> torch.device:
    """The grader's device for a device named in a reply: CPU, meta, or a CUDA device this
    process has; anything else is a :class:`ProtocolError`."""
    if name in ("cpu", "meta"):
        return torch.device(name)
    if name.startswith("cuda") and torch.cuda.is_available():
        try:
            device = torch.device(name)
        except RuntimeError:
            raise ProtocolError(f"a tensor on an unknown device {name[:50]!r}") from None
        if device.index is None or device.index < torch.cuda.device_count():
            return device
    raise ProtocolError(f"a tensor on an unknown device {name[:50]!r}")


class Student:
    """The student's function as a check sees it: each call runs in the sandbox.

    Parameters
    ----------
    sandbox : Sandbox
        Where the student's code lives.
    exercise : Exercise
        Its function's name and its forbidden library shortcuts.
    budget : Budget
        The check's remaining time for calls.
    """

    def __init__(self, sandbox: Sandbox, exercise: Exercise, budget: Budget) -> None:
        self.sandbox = sandbox
        self.exercise = exercise
        self.budget = budget
        self.__name__ = exercise.function
        self.outputs: list[str] = []

    def __repr__(self) -> str:
        return f"<student's function {self.__name__}>"

    def __call__(self, *args: object, **kwargs: object) -> Any:
        """Call the student's function; returns its result as plain data."""
        return self._call(args, kwargs, None)[0]

    def with_probe(self, probe: Probe) -> Callable[..., tuple[Any, Any]]:
        """A caller that also runs ``probe(result, args, kwargs)`` in the sandbox.

        For what only the sandbox can compute, such as the gradient of the student's result
        with respect to an argument (a graph does not cross processes). ``probe`` is a
        picklable function returning plain data; the caller returns ``(result, probe's
        value)``. Like every reply, the probe's value is untrusted: use it to fail a student
        (a wrong gradient), never as a reference.
        """
        def call(*args: object, **kwargs: object) -> tuple[Any, Any]:
            return self._call(args, kwargs, probe)
        return call

    def _call(self, args: tuple[object, ...], kwargs: dict[str, object],
              probe: Probe | None) -> tuple[Any, Any]:
        objects = watched((args, kwargs), skip=(InSandbox,))
        request = Call(self.exercise.function, args, kwargs, torch.is_grad_enabled(),
                       self.exercise.id, self.exercise.forbidden, probe)
        start = time.monotonic()
        try:
            frame = self.sandbox.request(request, timeout=max(self.budget.remaining, 1e-3))
        finally:
            self.budget.spend(time.monotonic() - start)
        reply = frame.header
        outcome = reply.get("outcome")
        if outcome not in ("returned", "raised", "unencodable") or not (
                isinstance(reply.get("grad_enabled"), bool)
                and isinstance(reply.get("output"), str)):
            raise ProtocolError("a malformed reply to a call")
        apply_changes(objects, reply.get("changes"), frame.body, accept_device)
        torch.set_grad_enabled(reply["grad_enabled"])
        self.outputs.append(reply["output"][:10_000])
        what = f"the value returned by {self.__name__}(...)"
        if outcome == "raised":
            raise StudentRaised.from_reply(reply.get("error"))
        if outcome == "unencodable":
            raise CheckFailure(what, expected="plain data: a torch.Tensor, a number, a string, "
                                              "or a tuple, list or dict of these",
                               got=str(reply.get("message"))[:300],
                               hint="return a torch.Tensor (not a NumPy array or a subclass "
                                    "such as nn.Parameter), or a tuple of them.")
        value = decode(reply.get("value"), frame.body, accept_device)
        if probe is None:
            return value, None
        if "probe_error" in reply:
            return value, ProbeError(str(reply["probe_error"])[:300])
        return value, decode(reply.get("probe"), frame.body, accept_device)


@dataclass(frozen=True)
class ProbeError:
    """What a probe returns when it raised in the sandbox (e.g. the result has no graph)."""

    message: str
