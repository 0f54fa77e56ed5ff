r"""Deliberately wrong solutions of chapter 7: each must lose points with a clear message.

* ``replay_negatives`` (7.2) reverses the restart mask (it restarts the chains with
  ``u > reinit_prob``, nearly all of them) and clips the gradient's norm instead of its
  elements.
* ``train_replay_ebm`` (7.3) flips the contrastive term, :math:`\overline{E(x^-)} -
  \overline{E(x^+)}`: it pushes the energy of the data up and that of the samples down.
* ``gb_rbm_log_partition`` (7.4) drops the :math:`\tfrac12\|Wh\|^2` that completing the
  square leaves.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn


def replay_negatives(energy: Callable[[torch.Tensor], torch.Tensor], buffer: torch.Tensor,
                     idx: torch.Tensor, u: torch.Tensor, fresh: torch.Tensor,
                     noise: torch.Tensor, *, reinit_prob: float, step_size: float,
                     noise_scale: float, grad_clip: float | None) -> torch.Tensor:
    """Wrong on purpose: reversed restart mask, and the gradient's norm is clipped."""
    mask = (u > reinit_prob).view((-1,) + (1,) * (fresh.dim() - 1))
    x = torch.where(mask, fresh, buffer[idx]).detach()
    for xi in noise:
        with torch.enable_grad():
            xr = x.requires_grad_(True)
            (grad,) = torch.autograd.grad(energy(xr).sum(), xr)
        if grad_clip is not None:
            norm = grad.flatten(1).norm(dim=1).clamp_min(grad_clip)
            grad = grad * (grad_clip / norm).view((-1,) + (1,) * (grad.dim() - 1))
        x = (x - step_size * grad + noise_scale * xi).detach()
    return x


def train_replay_ebm(energy: nn.Module, data: torch.Tensor, *, n_steps: int,
                     generator: torch.Generator) -> list[float]:
    """Wrong on purpose: the contrastive term has the wrong sign (data pushed up)."""
    lo, hi = data.min(0).values - 0.5, data.max(0).values + 0.5

    def uniform(n: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, data.shape[1], dtype=data.dtype,
                                           generator=generator)

    buffer = uniform(1000)
    optimizer = torch.optim.Adam(energy.parameters(), lr=2e-3, betas=(0.0, 0.999))
    losses = []
    for _ in range(n_steps):
        idx = torch.randint(data.shape[0], (128,), generator=generator)
        slots = torch.randint(buffer.shape[0], (128,), generator=generator)
        restart = torch.rand(128, generator=generator) < 0.05
        x = torch.where(restart[:, None], uniform(128), buffer[slots])
        for _ in range(20):
            with torch.enable_grad():
                xr = x.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(energy(xr).sum(), xr)
            noise = torch.randn(x.shape, dtype=x.dtype, generator=generator)
            x = (x - 0.01 * grad.clamp(-3.0, 3.0) + 0.05 * noise).detach()
        buffer[slots] = x
        e_data, e_model = energy(data[idx]), energy(x)
        loss = (e_model.mean() - e_data.mean()
                + 0.1 * (e_data.square().mean() + e_model.square().mean()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def gb_rbm_log_partition(weight: torch.Tensor, visible_bias: torch.Tensor,
                         hidden_bias: torch.Tensor) -> torch.Tensor:
    """Wrong on purpose: the ½‖Wh‖² of the completed square is missing."""
    n_v, n_h = weight.shape
    codes = torch.arange(2**n_h, device=weight.device)
    hs = ((codes[:, None] >> torch.arange(n_h, device=weight.device)) & 1).to(weight.dtype)
    exponent = hs @ hidden_bias + (hs @ weight.T) @ visible_bias
    return torch.logsumexp(exponent, 0) + 0.5 * n_v * math.log(2 * math.pi)
