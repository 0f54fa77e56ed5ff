"""The Metropolis-adjusted Langevin algorithm (MALA): its kernel and :func:`mala`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from .._validation import check_int, check_number, check_sampler_arguments
from ..energies.base import energy_and_score
from ..utils import frozen_parameters, rand_like, randn_like
from .driver import run_chain
from .result import SamplerResult

__all__ = ["MALAKernel", "MALAState", "mala"]


class MALAState(NamedTuple):
    r"""The state of MALA chains, with what a step needs cached at the current positions.

    Attributes
    ----------
    position : torch.Tensor
        :math:`x`, ``(B, *event_shape)``.
    energy : torch.Tensor
        :math:`E(x)`, ``(B,)``.
    score : torch.Tensor
        :math:`s(x) = -\nabla_x E(x)`, like ``position``.
    n_accepted : torch.Tensor
        ``(B,)`` number of proposals each chain has accepted so far.
    """

    position: Tensor
    energy: Tensor
    score: Tensor
    n_accepted: Tensor


def _row_sums(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1).sum(dim=1)


@dataclass(frozen=True)
class MALAKernel:
    r"""One Metropolis-adjusted Langevin step (Roberts & Tweedie 1996) on every chain.

    The proposal is a Langevin step,
    :math:`y = x + \epsilon s(x) + \sqrt{2\epsilon}\,\xi`, so
    :math:`q(y \mid x) \propto \exp(-\|y - x - \epsilon s(x)\|^2 / 4\epsilon)`; it is
    accepted with probability
    :math:`\min\{1,\ e^{E(x) - E(y)}\, q(x\mid y) / q(y\mid x)\}`, which leaves
    :math:`p \propto e^{-E}` invariant for every step size. As in BlackJAX the state
    caches :math:`E` and :math:`s` at the current positions, so a step evaluates the
    energy and its gradient once, at the proposal.

    Attributes
    ----------
    energy : callable
        :math:`E`, ``(B, *event_shape) -> (B,)``.
    step_size : float
        :math:`\epsilon > 0`.
    """

    energy: Callable[[Tensor], Tensor]
    step_size: float

    def init(self, x0: Tensor) -> MALAState:
        """Chains at (a copy of) ``x0``, with their energies and scores."""
        x = x0.detach().clone()
        e, s = energy_and_score(self.energy, x)
        return MALAState(x, e, s, torch.zeros(x.shape[0], dtype=x.dtype, device=x.device))

    def step(self, state: MALAState, generator: torch.Generator | None) -> MALAState:
        """Propose, then accept or reject, every chain (a new state)."""
        x, e, s, n_accepted = state
        eps = self.step_size
        noise = randn_like(x, generator)
        y = torch.add(x, s, alpha=eps).add_(noise, alpha=math.sqrt(2.0 * eps))
        e_y, s_y = energy_and_score(self.energy, y)
        # log q(y|x) = -|noise|^2 / 2 and log q(x|y) = -|x - y - eps s(y)|^2 / (4 eps)
        log_q_forward = _row_sums(noise.square()).mul_(-0.5)
        log_q_backward = _row_sums(torch.sub(x, y).sub_(s_y, alpha=eps).square()).mul_(
            -0.25 / eps)
        log_alpha = (e - e_y) + (log_q_backward - log_q_forward)
        accept = torch.log(rand_like(log_alpha, generator)) < log_alpha  # NaN is rejected
        rows = accept.view((x.shape[0],) + (1,) * (x.dim() - 1))
        return MALAState(torch.where(rows, y, x), torch.where(accept, e_y, e),
                         torch.where(rows, s_y, s), n_accepted + accept)


def mala(
    energy: Callable[[Tensor], Tensor],
    x0: Tensor,
    *,
    step_size: float,
    n_steps: int,
    record_every: int | None = None,
    generator: torch.Generator | None = None,
    check_divergence: bool = True,
    progress: bool = False,
) -> SamplerResult:
    r"""Metropolis-adjusted Langevin algorithm (MALA), batched over chains.

    A Langevin step is used as a Metropolis–Hastings proposal (Roberts & Tweedie
    1996):

    .. math::

        y = x - \epsilon\,\nabla_x E(x) + \sqrt{2\epsilon}\,\xi,\qquad
        q(y \mid x) \propto \exp\!\Big(-\tfrac{\|y - x + \epsilon\nabla_x E(x)\|^2}{4\epsilon}\Big),

    accepted with probability
    :math:`\min\{1,\ e^{E(x) - E(y)}\, q(x\mid y) / q(y\mid x)\}`, so the chain
    leaves :math:`p \propto e^{-E}` exactly invariant for every :math:`\epsilon`
    (no discretisation bias, unlike :func:`langevin`). As in BlackJAX, the state
    caches :math:`E(x)` and :math:`\nabla_x E(x)` at the current position, so a
    step costs one energy-and-gradient evaluation (at the proposal); see
    :class:`MALAKernel`.

    Parameters
    ----------
    energy : callable
        :math:`E`, maps ``(B, *event_shape)`` to ``(B,)``, continuous in ``x``
        (see :func:`langevin`).
    x0 : torch.Tensor
        Initial states ``(B, *event_shape)``, finite, float32 or float64, ``B >= 1``.
    step_size : float
        :math:`\epsilon > 0`. Tune for an acceptance rate around 0.5–0.6.
    n_steps : int
        Number of proposals per chain, ``>= 0``.
    record_every : int, optional
        Record the state every ``record_every`` steps (``trajectory[0] = x0``).
    generator : torch.Generator, optional
        Source of the proposal noise and the accept/reject uniforms.
    check_divergence : bool
        Raise :class:`SamplerDivergedError` if the state becomes non-finite.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    SamplerResult
        ``samples``, ``trajectory``, ``acceptance_rate`` (0-d, the fraction of
        accepted proposals over all chains and steps; NaN when ``n_steps == 0``)
        and ``chain_acceptance_rate`` (``(B,)``, per chain).

    Raises
    ------
    TypeError, ValueError
        On invalid arguments, e.g. a discrete model such as an Ising model.
    SamplerDivergedError
        If the chains diverge and ``check_divergence`` is true.

    Examples
    --------
    >>> import torch, ebmlab as el
    >>> quadratic = lambda x: 0.5 * (x ** 2).sum(dim=1)
    >>> out = el.mala(quadratic, torch.zeros(500, 2), step_size=0.5, n_steps=100,
    ...               generator=torch.Generator().manual_seed(0))
    >>> 0.0 < float(out.acceptance_rate) < 1.0
    True
    """
    x0 = check_sampler_arguments(energy, x0)
    kernel = MALAKernel(energy, check_number(step_size, "step_size", greater_than=0))
    n_steps = check_int(n_steps, "n_steps", minimum=0)
    advice = f"The step size is probably too large for this energy: try a smaller step_size " \
             f"(got {kernel.step_size:g})"
    with frozen_parameters(energy), torch.no_grad():
        run = run_chain(kernel.init(x0), [(kernel, n_steps)], generator=generator,
                        record_every=record_every, check_divergence=check_divergence,
                        progress=progress, sampler="mala", advice=advice)
    n_accepted = run.state.n_accepted
    rate = n_accepted / n_steps if n_steps > 0 else torch.full_like(n_accepted, math.nan)
    return SamplerResult(samples=run.state.position, trajectory=run.trajectory,
                         acceptance_rate=rate.mean(), chain_acceptance_rate=rate)
