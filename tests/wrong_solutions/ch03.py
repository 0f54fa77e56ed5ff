r"""Deliberately wrong solutions of chapter 3: each must lose points with a clear message.

* ``mle_gradient`` (3.1) differentiates through the samples instead of holding them fixed
  and uses ``.backward()``, which leaves gradients in the parameters' ``.grad``. Where the
  samples carry no graph its values are right, so it keeps the points of the checks that
  compare values there.
* ``model_expectation`` (3.2) forgets to hold the probabilities constant, so autograd adds
  :math:`\sum_s E(s)\nabla_\theta p_\theta(s)` to the expectation; it keeps the points of
  the contract check.
* ``bm_mle_step`` (3.3) normalises :math:`e^{-E}` directly instead of in log space: right,
  and it trains well, until the energies reach thousands and the probabilities are NaN.
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


def bm_mle_step(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor,
                lr: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Wrong on purpose: normalises exp(-E) directly, which overflows for large parameters."""
    d = x.shape[1]
    states = ((torch.arange(2 ** d)[:, None] >> torch.arange(d)) & 1).to(weight.dtype)
    unnormalised = torch.exp(0.5 * ((states @ weight) * states).sum(-1) + states @ bias)
    p = unnormalised / unnormalised.sum()
    grad_w = x.T @ x / x.shape[0] - (states * p[:, None]).T @ states
    grad_w.fill_diagonal_(0.0)
    return weight + lr * grad_w, bias + lr * (x.mean(0) - p @ states)
