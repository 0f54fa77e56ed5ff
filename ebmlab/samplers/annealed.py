"""Annealed Langevin dynamics over a noise ladder (Song & Ermon 2019, NCSN)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .._validation import (
    check_bool,
    check_callable,
    check_int,
    check_module_device,
    check_noise_levels,
    check_number,
    check_sampler_states,
)
from ..utils import frozen_parameters
from .driver import run_chain
from .langevin import LangevinKernel
from .result import SamplerResult

__all__ = ["annealed_langevin"]

NoiseConditionalScore = Callable[[Tensor, float], Tensor]


@dataclass(frozen=True)
class _ScoreAtLevel:
    """:math:`x \\mapsto s(x, \\sigma)` at one noise level, checked to have the shape of ``x``."""

    score: NoiseConditionalScore
    sigma: float

    def __call__(self, x: Tensor) -> Tensor:
        s = self.score(x, self.sigma)
        if not isinstance(s, Tensor) or s.shape != x.shape:
            got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
            raise ValueError(f"score(x, sigma) must return the shape of x, {tuple(x.shape)}, "
                             f"got {got}.")
        return s


def annealed_langevin(
    score: NoiseConditionalScore,
    x0: Tensor,
    sigmas: Sequence[float] | Tensor,
    *,
    step_size: float,
    n_steps_per_level: int,
    denoise: bool = False,
    record_every: int | None = None,
    generator: torch.Generator | None = None,
    check_divergence: bool = True,
    progress: bool = False,
) -> SamplerResult:
    r"""Annealed Langevin dynamics, NCSN's sampler (Song & Ermon 2019, Algorithm 1).

    For each noise level :math:`\sigma_1 \ge \dots \ge \sigma_L` in turn, with the
    step :math:`\alpha_i = \epsilon\,\sigma_i^2/\sigma_L^2`, run
    ``n_steps_per_level`` Langevin steps on the smoothed density
    :math:`q_{\sigma_i} = p * \mathcal N(0, \sigma_i^2 I)`:

    .. math::

        x \leftarrow x + \frac{\alpha_i}{2}\, s(x, \sigma_i) + \sqrt{\alpha_i}\, z,
        \qquad z \sim \mathcal N(0, I),

    where :math:`s(x, \sigma) \approx \nabla_x \log q_\sigma(x)`: at each level, a
    :class:`~ebmlab.samplers.LangevinKernel` with step :math:`\alpha_i/2` and the
    Langevin noise :math:`\sqrt{2 \cdot \alpha_i/2}`. Large noise levels connect
    distant modes, so the chains settle into the modes in proportion to their mass,
    which plain Langevin started far away does not. With ``denoise=True`` a final step
    :math:`x \leftarrow x + \sigma_L^2\, s(x, \sigma_L)` (Tweedie's denoiser) removes
    the last level's noise.

    Parameters
    ----------
    score : callable
        ``score(x, sigma) -> (B, *event_shape)``, called with ``sigma`` a Python
        float, under :func:`torch.no_grad` (a score computed by autograd must
        enable gradients itself, as :meth:`ebmlab.energies.Energy.score` does; the
        parameters of a module or of a bound method's module are frozen while
        sampling and restored afterwards). For an
        exact toy: ``lambda x, s: mixture.smoothed(s).score(x)``.
    x0 : torch.Tensor
        Initial states ``(B, *event_shape)`` (NCSN: uniform noise), float32 or float64.
    sigmas : sequence of float or 1-D tensor
        Noise levels, positive and non-increasing.
    step_size : float
        :math:`\epsilon > 0`, the step at the smallest level (NCSN uses
        :math:`2\times 10^{-5}` for images with :math:`\sigma_L = 0.01`).
    n_steps_per_level : int
        Langevin steps :math:`T` per level, ``>= 0``.
    denoise : bool
        Apply the final denoising step (not recorded in the trajectory).
    record_every : int, optional
        Record the state every ``record_every`` of the :math:`LT` Langevin steps;
        ``trajectory[0] = x0``.
    generator : torch.Generator, optional
        Source of the noise.
    check_divergence : bool
        Raise :class:`SamplerDivergedError` if the state becomes non-finite.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    SamplerResult
        ``samples`` and ``trajectory`` (or ``None``).

    Raises
    ------
    TypeError, ValueError
        On invalid arguments.
    SamplerDivergedError
        If the chains diverge and ``check_divergence`` is true.
    """
    check_callable(score, "score", "score(x, sigma) -> x-shaped tensor")
    x0 = check_sampler_states(x0)
    check_module_device(score, x0, "score")
    levels = check_noise_levels(sigmas, decreasing=True)
    eps = check_number(step_size, "step_size", greater_than=0)
    per_level = check_int(n_steps_per_level, "n_steps_per_level", minimum=0)
    denoise = check_bool(denoise, "denoise")
    smallest = levels[-1] ** 2
    schedule = []
    for sigma in levels:
        alpha = eps * sigma**2 / smallest
        kernel = LangevinKernel(_ScoreAtLevel(score, sigma), alpha / 2, math.sqrt(alpha))
        schedule.append((kernel, per_level))
    advice = f"The step size is probably too large: try a smaller step_size (got {eps:g})"
    with frozen_parameters(score), torch.no_grad():
        run = run_chain(schedule[0][0].init(x0), schedule, generator=generator,
                        record_every=record_every, check_divergence=check_divergence,
                        progress=progress, sampler="annealed_langevin", advice=advice)
        x = run.state.position
        if denoise:
            x = torch.add(x, _ScoreAtLevel(score, levels[-1])(x), alpha=smallest)
    return SamplerResult(samples=x, trajectory=run.trajectory)
