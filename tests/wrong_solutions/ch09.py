r"""Deliberately wrong solutions of chapter 9: each must lose points with a clear message.

* ``jem_energies`` (9.1) writes :math:`E(x) = -\log\sum_y e^{f_y}` with ``exp`` and ``log``,
  which overflows for large logits.
* ``class_conditional_langevin`` (9.2) samples with the energy :math:`-\log p(y\mid x)`
  (the log-softmax), the usual misreading of "the class-conditional".
* ``reshape_density`` (9.3) rescales the logits by a per-input factor, which changes the
  predictions.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def jem_energies(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Wrong on purpose: log(sum(exp)) overflows for logits of size 100 in float32."""
    return -logits, -logits.exp().sum(1).log()


def class_conditional_langevin(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor,
                               noise: torch.Tensor, *, step_size: float) -> torch.Tensor:
    """Wrong on purpose: Langevin on -log p(y | x) instead of -f(x)[y]."""
    x = x.detach().clone()
    for xi in noise:
        with torch.enable_grad():
            xr = x.requires_grad_(True)
            own = torch.log_softmax(classifier(xr), 1).gather(1, y[:, None]).sum()
            (grad,) = torch.autograd.grad(own, xr)
        x = (x.detach() + step_size * grad + math.sqrt(2 * step_size) * xi).detach()
    return x


def reshape_density(x: torch.Tensor, logits: torch.Tensor,
                    target: torch.Tensor) -> torch.Tensor:
    """Wrong on purpose: scales the logits, so the softmax changes."""
    return logits * (target / target.mean())[:, None]
