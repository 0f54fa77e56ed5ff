r"""Deliberately wrong solutions of chapter 8: each must lose points with a clear message.

* ``nce_posterior`` (8.1) forgets the prior odds: :math:`\sigma(\log p_m - \log p_n)`, right
  only for :math:`\nu = 1`.
* ``nce_objective`` (8.2) averages each class over its own size instead of normalising by
  the number of data points.
* ``design_noise`` (8.3) takes a standard normal noise, which the classifier tells from
  data far from the origin at a glance.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F


def nce_posterior(log_model: torch.Tensor, log_noise: torch.Tensor,
                  nu: float) -> torch.Tensor:
    """Wrong on purpose: no log ν."""
    return torch.sigmoid(log_model - log_noise)


def nce_objective(energy: Callable[[torch.Tensor], torch.Tensor], x_data: torch.Tensor,
                  x_noise: torch.Tensor,
                  noise_log_prob: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Wrong on purpose: the mean over each class instead of the sum over B_d."""
    log_nu = math.log(x_noise.shape[0] / x_data.shape[0])
    g_data = -energy(x_data) - noise_log_prob(x_data) - log_nu
    g_noise = -energy(x_noise) - noise_log_prob(x_noise) - log_nu
    return -(F.logsigmoid(g_data).mean() + F.logsigmoid(-g_noise).mean())


def design_noise(data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Wrong on purpose: the standard normal, far from the data."""
    return torch.zeros(data.shape[1], dtype=data.dtype), torch.ones(data.shape[1],
                                                                     dtype=data.dtype)
