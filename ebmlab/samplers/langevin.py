"""Unadjusted Langevin dynamics (ULA): its kernel and :func:`langevin`."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from .._validation import Box, check_box, check_int, check_number, check_sampler_arguments
from ..energies.base import score_of
from ..utils import frozen_parameters, randn_like
from .driver import run_chain
from .result import SamplerResult

__all__ = ["LangevinKernel", "LangevinState", "langevin"]

ScoreFn = Callable[[Tensor], Tensor]


class LangevinState(NamedTuple):
    """The state of Langevin chains: their positions :math:`x_t`, ``(B, *event_shape)``."""

    position: Tensor


@dataclass(frozen=True)
class LangevinKernel:
    r"""One step of unadjusted Langevin dynamics on every chain:

    .. math::

        x_{t+1} = \Pi\big(x_t + \epsilon\, c(s(x_t)) + \sigma\,\xi_t\big),
        \qquad \xi_t \sim \mathcal N(0, I),

    with :math:`s = -\nabla_x E` the score, :math:`c` the elementwise clip to
    ``[-grad_clip, grad_clip]`` (identity when ``grad_clip`` is None) and :math:`\Pi`
    the clamp to the box ``bounds`` (identity when None). With
    :math:`\sigma = \sqrt{2\epsilon}` this is the Euler–Maruyama step of the Langevin
    diffusion whose stationary law is :math:`p \propto e^{-E}`.

    Attributes
    ----------
    score : callable
        :math:`x \mapsto s(x)`, e.g. ``functools.partial(ebmlab.energies.score_of, energy)``.
    step_size : float
        :math:`\epsilon > 0`.
    noise_scale : float
        :math:`\sigma \ge 0`.
    grad_clip : float, optional
        Clip of the score (Du & Mordatch 2019).
    bounds : (low, high), optional
        The box, as returned by ``check_box`` (numbers, or tensors on the chains' device).
    """

    score: ScoreFn
    step_size: float
    noise_scale: float
    grad_clip: float | None = None
    bounds: Box | None = None

    def init(self, x0: Tensor) -> LangevinState:
        """Chains starting at (a copy of) ``x0``, clamped to the box."""
        x = x0.detach().clone()
        if self.bounds is not None:
            x.clamp_(*self.bounds)
        return LangevinState(x)

    def step(self, state: LangevinState, generator: torch.Generator | None) -> LangevinState:
        """One Langevin step of every chain (a new state; ``state`` is left unchanged)."""
        x = state.position
        drift = self.score(x)
        if self.grad_clip is not None:
            drift = drift.clamp(-self.grad_clip, self.grad_clip)
        noise = randn_like(x, generator)
        x = torch.add(x, drift, alpha=self.step_size).add_(noise, alpha=self.noise_scale)
        if self.bounds is not None:
            x.clamp_(*self.bounds)
        return LangevinState(x)


def langevin(
    energy: Callable[[Tensor], Tensor],
    x0: Tensor,
    *,
    step_size: float,
    n_steps: int,
    noise_scale: float | None = None,
    grad_clip: float | None = None,
    bounds: tuple[float | Tensor, float | Tensor] | None = None,
    record_every: int | None = None,
    generator: torch.Generator | None = None,
    check_divergence: bool = True,
    progress: bool = False,
) -> SamplerResult:
    r"""Unadjusted Langevin dynamics (ULA), batched over chains.

    Each step moves every chain by (see :class:`LangevinKernel`)

    .. math::

        x_{t+1} = x_t - \epsilon\,\nabla_x E(x_t) + \sqrt{2\epsilon}\,\xi_t,
        \qquad \xi_t \sim \mathcal N(0, I),

    the Euler–Maruyama discretisation of the Langevin diffusion whose stationary
    law is :math:`p(x) \propto e^{-E(x)}`. For :math:`\epsilon > 0` the chain's
    stationary law is only close to :math:`p` (a bias of order :math:`\epsilon`;
    on a unit Gaussian its variance is :math:`1/(1 - \epsilon/2)`); use
    :func:`mala` for an exact sampler. Only the score :math:`-\nabla_x E` is
    needed, so :math:`Z` never appears.

    Deep-EBM training (Du & Mordatch 2019) decouples the noise from the step:
    with ``noise_scale`` :math:`= \sigma` the update is
    :math:`x_{t+1} = x_t - \epsilon\nabla_x E(x_t) + \sigma\,\xi_t` (this no longer
    targets :math:`p`; it is a noisy descent used to produce short-run samples).

    Parameters
    ----------
    energy : callable
        :math:`E`, maps ``(B, *event_shape)`` to ``(B,)``, continuous in ``x``. An
        :class:`~ebmlab.energies.Energy` with a closed-form ``score`` (e.g.
        :class:`~ebmlab.energies.GaussianMixture`) is used without autograd; any other
        callable is differentiated w.r.t. ``x`` only: the parameters of an
        ``nn.Module`` energy are frozen (``requires_grad=False``) while sampling
        and restored afterwards, so no graph is built for them.
    x0 : torch.Tensor
        Initial states ``(B, *event_shape)``, finite, float32 or float64; one chain per
        row. The samples keep its device and dtype.
    step_size : float
        :math:`\epsilon > 0`.
    n_steps : int
        Number of steps, ``>= 0``.
    noise_scale : float, optional
        :math:`\sigma \ge 0` of the decoupled update; ``None`` (default) means
        :math:`\sqrt{2\epsilon}`, the correct Langevin noise.
    grad_clip : float, optional
        Clamp every element of :math:`\nabla_x E` to ``[-grad_clip, grad_clip]``
        (elementwise, as in Du & Mordatch's implementation) before the step.
    bounds : (low, high), optional
        Box constraint: ``x0`` and every new state are clamped to ``[low, high]``
        (numbers or tensors broadcastable to the event shape, ``low < high``).
    record_every : int, optional
        Record the state every ``record_every`` steps. The trajectory has
        ``1 + n_steps // record_every`` entries, the first being ``x0``.
    generator : torch.Generator, optional
        Source of the noise; the same seed gives the same chains, independently
        of the global RNG.
    check_divergence : bool
        Raise :class:`SamplerDivergedError` if the state becomes non-finite
        (checked on the device every few steps, read without a sync in the loop).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    SamplerResult
        ``samples`` (final states) and ``trajectory`` (or ``None``).

    Raises
    ------
    TypeError, ValueError
        On invalid arguments (named in the message), e.g. a discrete model such as
        an RBM, which :func:`gibbs` samples.
    SamplerDivergedError
        If the chains diverge and ``check_divergence`` is true.

    Examples
    --------
    >>> import torch, ebmlab as el
    >>> quadratic = lambda x: 0.5 * (x ** 2).sum(dim=1)
    >>> g = torch.Generator().manual_seed(0)
    >>> out = el.langevin(quadratic, torch.zeros(1000, 2), step_size=0.1, n_steps=200, generator=g)
    >>> out.samples.shape
    torch.Size([1000, 2])
    """
    x0 = check_sampler_arguments(energy, x0)
    eps = check_number(step_size, "step_size", greater_than=0)
    n_steps = check_int(n_steps, "n_steps", minimum=0)
    sigma = (math.sqrt(2.0 * eps) if noise_scale is None
             else check_number(noise_scale, "noise_scale", at_least=0))
    clip = None if grad_clip is None else check_number(grad_clip, "grad_clip", greater_than=0)
    kernel = LangevinKernel(functools.partial(score_of, energy), eps, sigma, clip,
                            check_box(bounds, x0))
    advice = f"The step size is probably too large for this energy: try a smaller step_size " \
             f"(got {eps:g}), a grad_clip or bounds"
    with frozen_parameters(energy), torch.no_grad():
        run = run_chain(kernel.init(x0), [(kernel, n_steps)], generator=generator,
                        record_every=record_every, check_divergence=check_divergence,
                        progress=progress, sampler="langevin", advice=advice)
    return SamplerResult(samples=run.state.position, trajectory=run.trajectory)
