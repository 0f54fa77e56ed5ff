r"""Deliberately wrong solutions of chapter 6: each must lose points with a clear message.

* ``annealed_step_sizes`` (6.1) normalises by the largest noise level
  (:math:`\epsilon\sigma_i^2/\sigma_1^2`), so the steps shrink but the last one is not
  :math:`\epsilon`.
* ``smoothed_mixture_score`` (6.2) adds :math:`\sigma` (not :math:`\sigma^2`) to the
  variances and normalises the responsibilities by dividing exponentials, which gives
  0/0 = NaN far from the components; it still returns the right shape and dtype.
"""

from __future__ import annotations

import math

import torch


def annealed_step_sizes(sigmas: torch.Tensor, step_size: float) -> torch.Tensor:
    """Wrong on purpose: divides by the largest level instead of the smallest."""
    return step_size * sigmas**2 / sigmas[0] ** 2


def smoothed_mixture_score(x: torch.Tensor, means: torch.Tensor, stds: torch.Tensor,
                           weights: torch.Tensor, sigma: float) -> torch.Tensor:
    """Wrong on purpose: variance s_k² + σ, and unstable responsibilities."""
    var = stds**2 + sigma
    diff = means[None, :, :] - x[:, None, :]
    dim = x.shape[1]
    dens = weights * torch.exp(-0.5 * diff.square().sum(-1) / var) \
        / (2 * math.pi * var) ** (dim / 2)
    resp = dens / dens.sum(1, keepdim=True)
    return (resp[:, :, None] * diff / var[None, :, None]).sum(1)
