"""Deliberately wrong solutions of chapter 2: each must lose points with a clear message.

* ``score`` (2.1) forgets the minus sign of :math:`s = -\\nabla_x E` and switches on
  ``requires_grad`` of the caller's tensor; it returns a tensor of the right shape, dtype
  and device, but the contract checks award points only to right values.
* ``langevin_step`` (2.2) scales the noise by :math:`\\sqrt{\\epsilon}` instead of
  :math:`\\sqrt{2\\epsilon}` (the chain then samples :math:`e^{-2E}`); its contract checks pass.
* ``mala_log_acceptance`` (2.3) uses the plain Metropolis ratio :math:`p(y)/p(x)` and forgets
  that the Langevin proposal is not symmetric; it is capped and finite, so the bound checks pass.
* ``ula_stationary_covariance`` (2.4) applies the one-dimensional result entry by entry to
  :math:`A^{-1}`: right in one dimension, wrong for a correlated Gaussian, and it never
  raises for a step beyond the stability limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def score(energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Wrong on purpose: the sign is flipped and ``x`` is modified in place."""
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(x).sum(), x)
    return grad


def langevin_step(energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                  step_size: float, noise: torch.Tensor) -> torch.Tensor:
    """Wrong on purpose: the noise is scaled by sqrt(step_size) instead of sqrt(2 * step_size)."""
    with torch.enable_grad():
        leaf = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(leaf).sum(), leaf)
    return x - step_size * grad + math.sqrt(step_size) * noise


def mala_log_acceptance(energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                        y: torch.Tensor, step_size: float) -> torch.Tensor:
    """Wrong on purpose: the Metropolis ratio p(y)/p(x) without the proposal correction."""
    with torch.no_grad():
        return torch.clamp(energy(x) - energy(y), max=0.0)


def ula_stationary_covariance(precision: torch.Tensor, step_size: float) -> torch.Tensor:
    """Wrong on purpose: the one-dimensional formula applied entry by entry to A⁻¹
    (correct for a diagonal A only), and no check of the stability condition."""
    cov = torch.linalg.inv(precision)
    return cov / (1.0 - step_size / (2.0 * cov))
