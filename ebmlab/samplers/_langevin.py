"""Langevin dynamics (unadjusted, ULA) and the Metropolis-adjusted Langevin algorithm (MALA)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .._validation import check_positive
from ..utils import rand_like, randn_like
from ._base import (
    DivergenceMonitor,
    EnergyGrad,
    Recorder,
    SamplerResult,
    check_bounds,
    check_n_steps,
    check_record_every,
    check_step_size,
    check_x0,
    clamp_,
    frozen_parameters,
    steps,
)

__all__ = ["langevin", "mala"]


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

    Each step moves every chain by

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
        :math:`E`, maps ``(B, *event_shape)`` to ``(B,)``. An
        :class:`~ebmlab.energies.Energy` with a closed-form ``score`` (e.g.
        :class:`~ebmlab.energies.GaussianMixture`) is used without autograd; any other
        callable is differentiated w.r.t. ``x`` only: the parameters of an
        ``nn.Module`` energy are frozen (``requires_grad=False``) while sampling
        and restored afterwards, so no graph is built for them.
    x0 : torch.Tensor
        Initial states ``(B, *event_shape)``, finite, floating point; one chain per
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
        On invalid arguments (named in the message).
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
    x = check_x0(x0)
    eps = check_step_size(step_size)
    n_steps = check_n_steps(n_steps)
    record_every = check_record_every(record_every)
    sigma = math.sqrt(2.0 * eps)
    if noise_scale is not None:
        sigma = check_positive(noise_scale, "noise_scale", strict=False)
    clip = None if grad_clip is None else check_positive(grad_clip, "grad_clip")
    box = check_bounds(bounds, x)
    if box is not None:
        clamp_(x, box)
    recorder = Recorder(x, n_steps, record_every)
    monitor = DivergenceMonitor(x, n_steps, check_divergence, sampler="langevin",
                                step_size=eps, advice=", a grad_clip or bounds")
    with frozen_parameters(energy), torch.no_grad():
        grad = EnergyGrad(energy, x)
        v, sign = grad.initial_drift()
        for t in steps(n_steps, progress, "langevin"):
            if t > 1:
                v, sign = grad.drift(x)
            if clip is not None:
                v = v.clamp(-clip, clip)
            noise = randn_like(x, generator)
            x.add_(v, alpha=sign * eps).add_(noise, alpha=sigma)
            if box is not None:
                clamp_(x, box)
            recorder(t, x)
            monitor(t, x)
        monitor.finish()
    return SamplerResult(samples=x, trajectory=recorder.trajectory)


def _flat_sum(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1).sum(dim=1)


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
    step costs one energy-and-gradient evaluation (at the proposal).

    Parameters
    ----------
    energy : callable
        :math:`E`, maps ``(B, *event_shape)`` to ``(B,)`` (see :func:`langevin`).
    x0 : torch.Tensor
        Initial states ``(B, *event_shape)``, finite, floating point.
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
        On invalid arguments.
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
    x = check_x0(x0)
    eps = check_step_size(step_size)
    n_steps = check_n_steps(n_steps)
    record_every = check_record_every(record_every)
    recorder = Recorder(x, n_steps, record_every)
    monitor = DivergenceMonitor(x, n_steps, check_divergence, sampler="mala", step_size=eps)
    sigma = math.sqrt(2.0 * eps)
    with frozen_parameters(energy), torch.no_grad():
        grad = EnergyGrad(energy, x)
        e, g = grad.initial_value_and_grad()
        n_accepted = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        mask_shape = (x.shape[0],) + (1,) * (x.dim() - 1)
        for t in steps(n_steps, progress, "mala"):
            noise = randn_like(x, generator)
            y = torch.add(x, g, alpha=-eps).add_(noise, alpha=sigma)
            e_y, g_y = grad.value_and_grad(y)
            # log q(y|x) = -|noise|^2 / 2 and log q(x|y) = -|x - y + eps g(y)|^2 / (4 eps)
            log_q_fwd = _flat_sum(noise.square()).mul_(-0.5)
            back = torch.sub(x, y).add_(g_y, alpha=eps)
            log_q_bwd = _flat_sum(back.square()).mul_(-0.25 / eps)
            log_alpha = (e - e_y) + (log_q_bwd - log_q_fwd)
            u = rand_like(log_alpha, generator)
            accept = torch.log(u) < log_alpha  # NaN or -inf proposals are rejected
            x = torch.where(accept.view(mask_shape), y, x)
            g = torch.where(accept.view(mask_shape), g_y, g)
            e = torch.where(accept, e_y, e)
            n_accepted += accept
            recorder(t, x)
            monitor(t, x)
        monitor.finish()
        chain_rate = n_accepted / n_steps if n_steps > 0 else torch.full_like(n_accepted, math.nan)
    return SamplerResult(samples=x, trajectory=recorder.trajectory,
                         acceptance_rate=chain_rate.mean(), chain_acceptance_rate=chain_rate)
