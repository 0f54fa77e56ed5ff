r"""Deliberately wrong solutions of chapter 5: each must lose points with a clear message.

* ``score_matching`` (5.1) sums every entry of the Jacobian :math:`\nabla_x s` (one backward
  pass of ``s.sum()``) instead of its diagonal, the classic shortcut that is only right
  for diagonal Hessians; it keeps the graph, returns a 0-d tensor of x's dtype.
* ``denoising_score_matching`` (5.2) uses the target :math:`-(\tilde x - x)/\sigma` (one
  power of :math:`\sigma` short).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def score_matching(energy: Callable[[torch.Tensor], torch.Tensor],
                   x: torch.Tensor) -> torch.Tensor:
    """Wrong on purpose: 1ᵀ(∇s)1 in place of tr ∇s."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(x).sum(), x, create_graph=True)
        s = -grad
        (all_rows,) = torch.autograd.grad(s.sum(), x, create_graph=True)
        return (all_rows.sum(1) + 0.5 * s.square().sum(1)).mean()


def denoising_score_matching(score: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                             eps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Wrong on purpose: the target is divided by σ instead of σ²."""
    x_noisy = x + sigma * eps
    target = -(x_noisy - x) / sigma
    return 0.5 * (score(x_noisy) - target).square().sum(1).mean()
