"""Deliberately wrong solutions of chapter 2: each must lose points with a clear message.

* ``score`` (2.1) forgets the minus sign of :math:`s = -\\nabla_x E` and switches on
  ``requires_grad`` of the caller's tensor; it still returns a tensor of the right shape,
  dtype and device, so it keeps the points of those checks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def score(energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Wrong on purpose: the sign is flipped and ``x`` is modified in place."""
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(x).sum(), x)
    return grad
