r"""Deliberately wrong solutions of chapter 5: each must lose points with a clear message.

* ``score_matching`` (5.1) sums every entry of the Jacobian :math:`\nabla_x s` (one backward
  pass of ``s.sum()``) instead of its diagonal, the classic shortcut that is only right
  for diagonal Hessians; it keeps the graph, returns a 0-d tensor of x's dtype.
* ``denoising_score_matching`` (5.2) uses the target :math:`-(\tilde x - x)/\sigma` (one
  power of :math:`\sigma` short).
* ``score_matching_fit`` (5.3) flips the sign of the Laplacian term, the usual slip in the
  integration by parts: :math:`-G^{-1}b`.
* ``train_sliced_score_matching`` (5.4) drops the ½ of :math:`\tfrac12\|s\|^2`: the loss is
  then minimised by half the data score, a density flattened to :math:`p^{1/2}`.
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


def score_matching_fit(x: torch.Tensor, powers: tuple[int, ...]) -> torch.Tensor:
    """Wrong on purpose: the linear term's sign is flipped."""
    p = torch.tensor(powers, dtype=torch.float64)
    xs = x.detach().to(torch.float64)[:, None]
    b = (p * (p - 1) * xs ** (p - 2).clamp_min(0)).mean(0)
    grad_features = p * xs ** (p - 1)
    gram = grad_features.T @ grad_features / xs.shape[0]
    return -torch.linalg.solve(gram, b)


def train_sliced_score_matching(energy: torch.nn.Module, data: torch.Tensor, *, n_steps: int,
                                generator: torch.Generator) -> list[float]:
    """Wrong on purpose: ‖s‖² without the ½."""
    optimizer = torch.optim.Adam(energy.parameters(), lr=3e-3)
    losses = []
    for _ in range(n_steps):
        x = data[torch.randint(data.shape[0], (256,), generator=generator)]
        x = x.detach().requires_grad_(True)
        v = torch.randn(x.shape, dtype=x.dtype, generator=generator)
        (grad,) = torch.autograd.grad(energy(x).sum(), x, create_graph=True)
        s = -grad
        (hvp,) = torch.autograd.grad((s * v).sum(), x, create_graph=True)
        loss = ((hvp * v).sum(1) + s.square().sum(1)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses
