"""Shared pieces of the samplers: result record, divergence error, validation, recording.

Private module; the public names are re-exported by :mod:`ebmlab.samplers`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .._validation import check_batch, check_finite, check_positive, evaluate_energy
from ..energies.base import Energy, score_of

__all__ = ["SamplerDivergedError", "SamplerResult"]

#: Steps between two on-device finiteness checks of the chain state.
CHECK_EVERY = 10


class SamplerDivergedError(RuntimeError):
    """A sampler's state became non-finite (NaN or inf).

    Raised by the gradient-based samplers unless they are called with
    ``check_divergence=False``. The message names the steps between which the
    divergence was first detected and suggests a smaller step size.

    Attributes
    ----------
    first_step, last_step : int
        The state was finite after step ``first_step - 1`` and non-finite after
        step ``last_step`` (steps are counted from 1).
    """

    def __init__(self, message: str, first_step: int, last_step: int):
        super().__init__(message)
        self.first_step = first_step
        self.last_step = last_step


@dataclass
class SamplerResult:
    """What every sampler of :mod:`ebmlab.samplers` returns.

    Attributes
    ----------
    samples : torch.Tensor
        Final state of the chains, ``(B, *event_shape)``, detached, on the device
        and with the dtype of ``x0``.
    trajectory : torch.Tensor or None
        ``(T, B, *event_shape)`` states recorded every ``record_every`` steps
        (``trajectory[0]`` is the initial state), or ``None`` when not recorded.
    acceptance_rate : torch.Tensor or None
        0-d tensor, fraction of accepted Metropolis–Hastings proposals over all
        chains and steps (``None`` for samplers without an accept/reject step).
    chain_acceptance_rate : torch.Tensor or None
        ``(B,)`` fraction of accepted proposals of each chain (MALA only).
    """

    samples: Tensor
    trajectory: Tensor | None = None
    acceptance_rate: Tensor | None = None
    chain_acceptance_rate: Tensor | None = None

    def __repr__(self) -> str:
        def describe(t: Tensor | None) -> str:
            if t is None:
                return "None"
            return f"<{tuple(t.shape)} {str(t.dtype).removeprefix('torch.')} on {t.device}>"

        parts = [f"samples={describe(self.samples)}", f"trajectory={describe(self.trajectory)}"]
        if self.acceptance_rate is not None:
            parts.append(f"acceptance_rate={float(self.acceptance_rate):.3f}")
        return f"SamplerResult({', '.join(parts)})"


# --------------------------------------------------------------------------- validation


def check_n_steps(n_steps: object, name: str = "n_steps") -> int:
    """Check a non-negative integer step count."""
    if isinstance(n_steps, bool) or not isinstance(n_steps, int):
        raise TypeError(f"{name} must be an int >= 0, got {n_steps!r}.")
    if n_steps < 0:
        raise ValueError(f"{name} must be >= 0, got {n_steps}.")
    return n_steps


def check_record_every(record_every: object) -> int | None:
    """Check ``record_every`` (``None`` or a positive int)."""
    if record_every is None:
        return None
    if isinstance(record_every, bool) or not isinstance(record_every, int):
        raise TypeError(f"record_every must be None or an int >= 1, got {record_every!r}.")
    if record_every < 1:
        raise ValueError(f"record_every must be >= 1, got {record_every}.")
    return record_every


def check_x0(x0: object, name: str = "x0") -> Tensor:
    """Check a floating batch of finite initial states; return a detached copy."""
    x0 = check_batch(x0, name)
    if not x0.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor, got dtype {x0.dtype}; "
            f"convert it with {name}.float() (or .double())."
        )
    check_finite(x0, name)
    return x0.detach().clone()


def check_module_device(fn: object, x: Tensor, name: str) -> None:
    """If ``fn`` is a module with parameters or buffers, check they live on ``x``'s device."""
    module = _owning_module(fn)
    if module is None:
        return
    first = next(itertools.chain(module.parameters(), module.buffers()), None)
    if first is not None and first.device != x.device:
        raise ValueError(
            f"{name} lives on {first.device} but x0 is on {x.device}; move one of them "
            f"(e.g. {name}.to(x0.device))."
        )


def check_bounds(bounds: object, x: Tensor) -> tuple[Tensor | float, Tensor | float] | None:
    """Check ``bounds=(low, high)`` with ``low < high``; tensors are moved to ``x``."""
    if bounds is None:
        return None
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise ValueError(f"bounds must be a pair (low, high), got {bounds!r}.")
    low, high = bounds
    out: list[Tensor | float] = []
    for name, b in (("low", low), ("high", high)):
        if isinstance(b, Tensor):
            out.append(b.to(device=x.device, dtype=x.dtype))
        else:
            try:
                out.append(float(b))
            except (TypeError, ValueError):
                raise TypeError(f"bounds {name} must be a number or a tensor, got {b!r}.") from None
    lo, hi = out
    if isinstance(lo, Tensor) or isinstance(hi, Tensor):  # clamp_ wants two tensors or two numbers
        lo, hi = (torch.as_tensor(b, device=x.device, dtype=x.dtype) for b in (lo, hi))
        for name, b in (("low", lo), ("high", hi)):
            try:
                fits = torch.broadcast_shapes(b.shape, x.shape) == x.shape
            except RuntimeError:
                fits = False
            if not fits:
                raise ValueError(f"bounds {name} of shape {tuple(b.shape)} does not broadcast "
                                 f"to the event shape {tuple(x.shape[1:])}.")
    if not bool(torch.all(torch.as_tensor(lo) < torch.as_tensor(hi))):
        raise ValueError(f"bounds must satisfy low < high, got bounds={bounds!r}.")
    return lo, hi


def clamp_(x: Tensor, bounds: tuple[Tensor | float, Tensor | float]) -> Tensor:
    """Clamp ``x`` in place to the box ``bounds``."""
    lo, hi = bounds
    return x.clamp_(min=lo, max=hi)


def steps(n: int, progress: bool, desc: str) -> Iterable[int]:
    """``range(1, n + 1)``, wrapped in a tqdm bar when ``progress``."""
    if not progress:
        return range(1, n + 1)
    from tqdm.auto import tqdm

    return tqdm(range(1, n + 1), desc=desc, leave=False)


# --------------------------------------------------------------------------- gradients


def _owning_module(fn: object) -> nn.Module | None:
    if isinstance(fn, nn.Module):
        return fn
    owner = getattr(fn, "__self__", None)  # a bound method such as net.score
    return owner if isinstance(owner, nn.Module) else None


@contextmanager
def frozen_parameters(fn: object) -> Iterator[None]:
    """Temporarily set ``requires_grad=False`` on the parameters of ``fn``'s module.

    Sampling differentiates w.r.t. ``x`` only; with frozen parameters autograd
    records no nodes for them (a leaner graph, measurably faster per step). The
    flags are restored on exit, also after an exception. Plain callables (closures
    over a module) are left alone.
    """
    module = _owning_module(fn)
    params = [] if module is None else [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def has_closed_form_score(energy: object) -> bool:
    """True when :func:`score_of` would use a closed-form :meth:`Energy.score`."""
    return isinstance(energy, Energy) and type(energy).score is not Energy.score


class EnergyGrad:
    r"""Evaluate :math:`E(x)` and :math:`\nabla_x E(x)` with as little overhead as possible.

    With a closed-form score (an :class:`~ebmlab.energies.Energy` overriding ``score``) no
    graph is built. Otherwise one forward pass on a detached leaf and one
    :func:`torch.autograd.grad` call w.r.t. that leaf only (never w.r.t. the
    energy's parameters, no ``create_graph``), exactly what a hand-written loop does.

    Construction evaluates the energy once at ``x0`` and validates its output
    (shape ``(B,)``, differentiable in ``x``); that evaluation is kept in
    :attr:`initial` so the first step of a sampler reuses it.
    """

    def __init__(self, energy: Callable[[Tensor], Tensor], x0: Tensor, *, name: str = "energy"):
        if not callable(energy):
            raise TypeError(
                f"{name} must be callable (B, ...) -> (B,), got {type(energy).__name__}."
            )
        check_module_device(energy, x0, name)
        self.energy = energy
        self.closed_form = has_closed_form_score(energy)
        if self.closed_form:
            with torch.no_grad():
                e0 = evaluate_energy(energy, x0, name).detach()
                s0 = score_of(energy, x0)
            if s0.shape != x0.shape:
                raise ValueError(
                    f"{name}.score must return the shape of x, {tuple(x0.shape)}, "
                    f"got {tuple(s0.shape)}."
                )
            self.initial = (e0, s0)
            return
        with torch.enable_grad():
            leaf = x0.detach().requires_grad_(True)
            e0 = evaluate_energy(energy, leaf, name)
            if not e0.requires_grad:
                raise TypeError(
                    f"{name}(x) does not depend differentiably on x (its output has no "
                    "gradient); gradient-based samplers need a differentiable energy."
                )
            self._ones = torch.ones_like(e0)
            (g0,) = torch.autograd.grad(e0, leaf, grad_outputs=self._ones)
        self.initial = (e0.detach(), g0)

    def drift(self, x: Tensor) -> tuple[Tensor, float]:
        r"""Return ``(v, sign)`` with ``sign * v`` the score :math:`-\nabla_x E(x)`.

        Returning the raw autograd gradient with ``sign = -1`` (instead of
        negating it) saves one elementwise kernel per step.
        """
        if self.closed_form:
            return score_of(self.energy, x), 1.0
        with torch.enable_grad():
            leaf = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.energy(leaf), leaf, grad_outputs=self._ones)
        return g, -1.0

    def initial_drift(self) -> tuple[Tensor, float]:
        """The drift at ``x0`` computed during validation, in :meth:`drift`'s format."""
        return self.initial[1], (1.0 if self.closed_form else -1.0)

    def value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""Return :math:`(E(x), \nabla_x E(x))`, both detached."""
        if self.closed_form:
            return self.energy(x).detach(), -score_of(self.energy, x)
        with torch.enable_grad():
            leaf = x.detach().requires_grad_(True)
            e = self.energy(leaf)
            (g,) = torch.autograd.grad(e, leaf, grad_outputs=self._ones)
        return e.detach(), g

    def initial_value_and_grad(self) -> tuple[Tensor, Tensor]:
        """:meth:`value_and_grad` at ``x0``, from the validation evaluation."""
        e0, v0 = self.initial
        return e0, (-v0 if self.closed_form else v0)


# --------------------------------------------------------------------------- loop helpers


class Recorder:
    """Preallocated trajectory: ``trajectory[0] = x0``, then the state every ``every`` steps."""

    def __init__(self, x0: Tensor, n_steps: int, every: int | None):
        self.every = every
        self.trajectory: Tensor | None = None
        if every is not None:
            self.trajectory = x0.new_empty((1 + n_steps // every, *x0.shape))
            self.trajectory[0].copy_(x0)

    def __call__(self, t: int, x: Tensor) -> None:
        if self.every is not None and t % self.every == 0:
            self.trajectory[t // self.every].copy_(x)  # type: ignore[index]


class DivergenceMonitor:
    """Detect a non-finite chain state without a device sync inside the loop.

    Every :data:`CHECK_EVERY` steps (and at the last step) the flag
    ``isfinite(x).all()`` is written into a preallocated boolean tensor on the
    device; a non-finite state stays non-finite (NaN propagates), so the first
    false flag brackets the step where the chain diverged. On the CPU, where
    reading a flag costs nothing, the error is raised at once; on an accelerator
    the flags are read once, in :meth:`finish`.
    """

    def __init__(self, x0: Tensor, n_steps: int, enabled: bool, *, sampler: str,
                 step_size: float, advice: str = ""):
        self.enabled = bool(enabled) and n_steps > 0
        self.n_steps = n_steps
        self.sampler = sampler
        self.step_size = step_size
        self.advice = advice
        self.eager = x0.device.type == "cpu"
        if self.enabled:
            n_checks = math.ceil(n_steps / CHECK_EVERY)
            self.flags = torch.ones(n_checks, dtype=torch.bool, device=x0.device)

    def __call__(self, t: int, x: Tensor) -> None:
        if not self.enabled or (t % CHECK_EVERY != 0 and t != self.n_steps):
            return
        k = (t - 1) // CHECK_EVERY
        ok = torch.isfinite(x).all()
        if self.eager:
            if not bool(ok):
                self._raise(k)
        else:
            self.flags[k].copy_(ok)

    def finish(self) -> None:
        if self.enabled and not self.eager and not bool(self.flags.all()):
            self._raise(int(torch.argmin(self.flags.to(torch.uint8))))

    def _raise(self, k: int) -> None:
        first = k * CHECK_EVERY + 1
        last = min((k + 1) * CHECK_EVERY, self.n_steps)
        raise SamplerDivergedError(
            f"{self.sampler} diverged: the chain state became non-finite (NaN or inf) "
            f"between step {first} and step {last} of {self.n_steps}. The step size is "
            f"probably too large for this energy: try a smaller step_size (got "
            f"{self.step_size:g}){self.advice}. Pass check_divergence=False to skip this check.",
            first,
            last,
        )


def check_step_size(step_size: object) -> float:
    """Check a strictly positive, finite step size."""
    eps = check_positive(step_size, "step_size")
    if not math.isfinite(eps):
        raise ValueError(f"step_size must be finite, got {step_size!r}.")
    return eps
