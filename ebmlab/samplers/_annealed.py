"""Annealed Langevin dynamics over a noise ladder (Song & Ermon 2019, NCSN)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..utils import randn_like
from ._base import (
    DivergenceMonitor,
    Recorder,
    SamplerResult,
    check_module_device,
    check_n_steps,
    check_record_every,
    check_step_size,
    check_x0,
    frozen_parameters,
    steps,
)

__all__ = ["annealed_langevin"]


def _check_sigmas(sigmas: object) -> list[float]:
    if isinstance(sigmas, Tensor):
        if sigmas.dim() != 1:
            raise ValueError(f"sigmas must be one-dimensional, got shape {tuple(sigmas.shape)}.")
        values = [float(s) for s in sigmas.detach().cpu()]
    elif isinstance(sigmas, Sequence) and not isinstance(sigmas, str):
        try:
            values = [float(s) for s in sigmas]
        except (TypeError, ValueError):
            raise TypeError(f"sigmas must hold numbers, got {sigmas!r}.") from None
    else:
        raise TypeError(f"sigmas must be a sequence or a 1-D tensor of noise levels, got "
                        f"{type(sigmas).__name__}.")
    if not values:
        raise ValueError("sigmas must hold at least one noise level, got none.")
    if not all(math.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"sigmas must be finite and > 0, got {values}.")
    if any(b > a for a, b in itertools.pairwise(values)):
        raise ValueError(f"sigmas must be non-increasing (largest first, "
                         f"sigma_1 >= ... >= sigma_L), got {values}.")
    return values


def annealed_langevin(
    score: Callable[[Tensor, float], Tensor],
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

    where :math:`s(x, \sigma) \approx \nabla_x \log q_\sigma(x)`. Large noise
    levels connect distant modes, so the chains settle into the modes in
    proportion to their mass, which plain Langevin started far away does not.
    With ``denoise=True`` a final step :math:`x \leftarrow x + \sigma_L^2\, s(x,
    \sigma_L)` (Tweedie's denoiser) removes the last level's noise.

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
        Initial states ``(B, *event_shape)`` (NCSN: uniform noise).
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
    if not callable(score):
        raise TypeError(f"score must be callable score(x, sigma) -> x-shaped tensor, "
                        f"got {type(score).__name__}.")
    x = check_x0(x0)
    levels = _check_sigmas(sigmas)
    eps = check_step_size(step_size)
    per_level = check_n_steps(n_steps_per_level, "n_steps_per_level")
    record_every = check_record_every(record_every)
    check_module_device(score, x, "score")
    n_total = len(levels) * per_level
    sigma_min2 = levels[-1] ** 2

    recorder = Recorder(x, n_total, record_every)
    monitor = DivergenceMonitor(x, n_total, check_divergence, sampler="annealed_langevin",
                                step_size=eps)
    with frozen_parameters(score), torch.no_grad():
        s = score(x, levels[0])
        if not isinstance(s, Tensor) or s.shape != x.shape:
            got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
            raise ValueError(f"score(x, sigma) must return the shape of x, {tuple(x.shape)}, "
                             f"got {got}.")
        bar = steps(n_total, progress, "annealed_langevin")
        counter = iter(bar)
        for i, sigma in enumerate(levels):
            alpha = eps * sigma**2 / sigma_min2
            noise_std = math.sqrt(alpha)
            for j in range(per_level):
                t = next(counter)
                if i > 0 or j > 0:
                    s = score(x, sigma)
                noise = randn_like(x, generator)
                x.add_(s, alpha=alpha / 2).add_(noise, alpha=noise_std)
                recorder(t, x)
                monitor(t, x)
        if hasattr(bar, "close"):
            bar.close()
        monitor.finish()
        if denoise:
            x.add_(score(x, levels[-1]), alpha=sigma_min2)
    return SamplerResult(samples=x, trajectory=recorder.trajectory)
