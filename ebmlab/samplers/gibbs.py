"""Gibbs sampling of discrete models with a ``gibbs_step`` sweep: its kernel and :func:`gibbs`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch
from torch import Tensor

from .._validation import (
    check_batch,
    check_in_support,
    check_int,
    check_module_device,
)
from .driver import run_chain
from .result import SamplerResult

__all__ = ["GibbsKernel", "GibbsModel", "GibbsState", "check_gibbs_model", "gibbs"]


class GibbsModel(Protocol):
    """A discrete model with a Gibbs sweep (:class:`~ebmlab.energies.RBM`, ...)."""

    def gibbs_step(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Resample every unit from its conditional given the others."""
        ...


class GibbsState(NamedTuple):
    """The state of Gibbs chains: their configurations, ``(B, *event_shape)``."""

    position: Tensor


@dataclass(frozen=True)
class GibbsKernel:
    """One Gibbs sweep of ``model`` on every chain: ``model.gibbs_step``.

    Each sweep resamples every unit from its conditional given the others, which
    leaves :math:`p \\propto e^{-E}` invariant (Geman & Geman 1984).
    """

    model: GibbsModel

    def init(self, x0: Tensor) -> GibbsState:
        """Chains at (a copy of) ``x0``."""
        return GibbsState(x0.detach().clone())

    def step(self, state: GibbsState, generator: torch.Generator | None) -> GibbsState:
        """One sweep of every chain (a new state)."""
        return GibbsState(self.model.gibbs_step(state.position, generator=generator))


def check_gibbs_model(model: object) -> GibbsModel:
    """A model with a ``gibbs_step(x, *, generator=None)`` sweep."""
    if not callable(getattr(model, "gibbs_step", None)):
        raise TypeError(
            f"gibbs needs a model with a gibbs_step(x, *, generator=None) method "
            f"(e.g. ebmlab.RBM, ebmlab.BoltzmannMachine, ebmlab.Ising); got "
            f"{type(model).__name__}, which has none. For continuous energies use "
            f"langevin or mala.")
    return model  # type: ignore[return-value]


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
    every unit from its conditional given the others (see :class:`GibbsKernel`): block
    Gibbs :math:`v \to h \sim p(h\mid v) \to v \sim p(v\mid h)` for an
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
    kernel = GibbsKernel(check_gibbs_model(model))
    event_shape = getattr(model, "event_shape", None)
    x0 = check_batch(x0, "x0", event_shape=event_shape, floating=True)
    check_in_support(x0, model, "x0")
    n_steps = check_int(n_steps, "n_steps", minimum=0)
    check_module_device(model, x0, "model")
    with torch.no_grad():
        run = run_chain(kernel.init(x0), [(kernel, n_steps)], generator=generator,
                        record_every=record_every, progress=progress, sampler="gibbs")
    return SamplerResult(samples=run.state.position, trajectory=run.trajectory)
