"""Gibbs sampling for discrete models that provide a ``gibbs_step`` sweep."""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import check_batch
from ._base import (
    Recorder,
    SamplerResult,
    check_module_device,
    check_n_steps,
    check_record_every,
    steps,
)

__all__ = ["gibbs"]


def gibbs(
    model: object,
    x0: Tensor,
    n_steps: int,
    *,
    record_every: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> SamplerResult:
    r"""Run ``n_steps`` Gibbs sweeps of a discrete model, batched over chains.

    Each sweep calls ``model.gibbs_step(x, generator=generator)``, which resamples
    every unit from its conditional given the others: block Gibbs
    :math:`v \to h \sim p(h\mid v) \to v \sim p(v\mid h)` for an
    :class:`~ebmlab.energies.RBM`, a sequential sweep for a
    :class:`~ebmlab.energies.BoltzmannMachine`, a checkerboard heat-bath sweep for
    :class:`~ebmlab.energies.Ising`. Each sweep leaves :math:`p \propto e^{-E}` invariant
    (Geman & Geman 1984), so no step size is involved.

    Parameters
    ----------
    model : object
        Any object with ``gibbs_step(x, *, generator=None) -> x``; its
        ``event_shape`` and ``support`` attributes, when present, are used to
        validate ``x0``.
    x0 : torch.Tensor
        Initial configurations ``(B, *event_shape)``, floating point, values in
        ``model.support``.
    n_steps : int
        Number of sweeps, ``>= 0``.
    record_every : int, optional
        Record the state every ``record_every`` sweeps (``trajectory[0] = x0``).
    generator : torch.Generator, optional
        Source of randomness, passed to ``gibbs_step``.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    SamplerResult
        ``samples`` and ``trajectory`` (or ``None``).

    Raises
    ------
    TypeError
        If ``model`` has no ``gibbs_step`` or ``x0`` is not a floating tensor.
    ValueError
        If ``x0`` has the wrong event shape or values outside the support.
    """
    step = getattr(model, "gibbs_step", None)
    if not callable(step):
        raise TypeError(
            f"gibbs needs a model with a gibbs_step(x, *, generator=None) method "
            f"(e.g. ebmlab.RBM, ebmlab.BoltzmannMachine, ebmlab.Ising); got "
            f"{type(model).__name__}, which has none. For continuous energies use "
            f"langevin or mala."
        )
    event_shape = getattr(model, "event_shape", None)
    x0 = check_batch(x0, "x0", event_shape=tuple(event_shape) if event_shape else None)
    if not x0.is_floating_point():
        raise TypeError(f"x0 must be a floating-point tensor, got dtype {x0.dtype}; "
                        "convert it with x0.float().")
    support = getattr(model, "support", None)
    if support is not None:
        lo, hi = support
        if not bool(((x0 == lo) | (x0 == hi)).all()):
            raise ValueError(f"x0 must only hold the values {lo} and {hi} of "
                             f"{type(model).__name__}.support, got other values.")
    n_steps = check_n_steps(n_steps)
    record_every = check_record_every(record_every)
    check_module_device(model, x0, "model")

    with torch.no_grad():
        x = x0.detach().clone()
        recorder = Recorder(x, n_steps, record_every)
        for t in steps(n_steps, progress, "gibbs"):
            x = step(x, generator=generator)
            recorder(t, x)
    return SamplerResult(samples=x, trajectory=recorder.trajectory)
