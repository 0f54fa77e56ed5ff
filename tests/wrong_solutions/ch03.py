r"""Deliberately wrong solutions of chapter 3: each must lose points with a clear message.

* ``mle_gradient`` (3.1) differentiates through the samples instead of holding them fixed
  and uses ``.backward()``, which leaves gradients in the parameters' ``.grad``. Where the
  samples carry no graph its values are right, so it keeps the points of the checks that
  compare values there.
* ``model_expectation`` (3.2) forgets to hold the probabilities constant, so autograd adds
  :math:`\sum_s E(s)\nabla_\theta p_\theta(s)` to the expectation; it keeps the points of
  the contract check.
"""

from __future__ import annotations

import torch
from torch import nn


def mle_gradient(energy: nn.Module, x_data: torch.Tensor, x_model: torch.Tensor,
                 weights: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Wrong on purpose: the samples are not detached and .backward() fills p.grad."""
    params = list(energy.parameters())
    with torch.enable_grad():
        e_model = energy(x_model)
        model_term = e_model.mean() if weights is None else (weights * e_model).sum()
        objective = model_term - energy(x_data).mean()
        for p in params:
            p.grad = None
        objective.backward()
    return [p.grad.detach().clone() for p in params]


def model_expectation(energy: nn.Module, states: torch.Tensor) -> list[torch.Tensor]:
    """Wrong on purpose: the probabilities are differentiated along with the energies."""
    params = list(energy.parameters())
    with torch.enable_grad():
        e = energy(states)
        p = torch.softmax(-e, dim=0)
        grads = torch.autograd.grad((p * e).sum(), params)
    return list(grads)
