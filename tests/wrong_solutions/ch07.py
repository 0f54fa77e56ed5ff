"""Deliberately wrong solutions of chapter 7: each must lose points with a clear message.

* ``rbm_free_energy`` (7.1) writes the softplus as ``log(1 + exp(x))``, which overflows
  for large pre-activations; it is right everywhere else.
* ``replay_negatives`` (7.2) reverses the restart mask (it restarts the chains with
  ``u > reinit_prob``, nearly all of them) and clips the gradient's norm instead of its
  elements.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def rbm_free_energy(v: torch.Tensor, weight: torch.Tensor, visible_bias: torch.Tensor,
                    hidden_bias: torch.Tensor) -> torch.Tensor:
    """Wrong on purpose: ``log(1 + exp(x))`` overflows to inf for x > 88 in float32."""
    return -(v @ visible_bias) - torch.log(1 + torch.exp(v @ weight + hidden_bias)).sum(-1)


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
