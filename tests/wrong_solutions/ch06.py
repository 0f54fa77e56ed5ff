r"""Deliberately wrong solutions of chapter 6: each must lose points with a clear message.

* ``annealed_step_sizes`` (6.1) normalises by the largest noise level
  (:math:`\epsilon\sigma_i^2/\sigma_1^2`), so the steps shrink but the last one is not
  :math:`\epsilon`.
* ``smoothed_mixture_score`` (6.2) adds :math:`\sigma` (not :math:`\sigma^2`) to the
  variances and normalises the responsibilities by dividing exponentials, which gives
  0/0 = NaN far from the components; it still returns the right shape and dtype.
* ``design_schedule`` (6.3) does not anneal: one small noise level for the whole budget, so
  the chains stay in the basin where they start.
* ``train_ncsn`` (6.4) trains only the smallest noise level, whose score is useless far from
  the data, where annealed Langevin starts.
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


def design_schedule(means: torch.Tensor, stds: torch.Tensor,
                    weights: torch.Tensor) -> tuple[torch.Tensor, float, int]:
    """Wrong on purpose: a single small level (plain Langevin), 1500 steps."""
    sigma = 0.3 * float(stds.min())
    return torch.tensor([sigma], dtype=torch.float64), 0.1 * sigma**2, 1500


def train_ncsn(model: torch.nn.Module, data: torch.Tensor, sigmas: torch.Tensor, *,
               n_steps: int, generator: torch.Generator) -> list[float]:
    """Wrong on purpose: trains at the smallest noise level only."""
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(n_steps):
        x = data[torch.randint(data.shape[0], (256,), generator=generator)]
        sigma = sigmas[-1].expand(x.shape[0])
        eps = torch.randn(x.shape, dtype=x.dtype, generator=generator)
        x_noisy = x + sigma[:, None] * eps
        loss = 0.5 * (sigma[:, None] * model(x_noisy, sigma) + eps).square().sum(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses
