r"""Reference solutions of the graded exercises of chapter 3 (maximum likelihood).

Each function has the name and signature of its stub in
``book/exercises/ch03_maximum_likelihood.ipynb``; the test suite proves it scores full
marks (``tests/test_autograder.py``).
"""

from __future__ import annotations

import torch
from torch import nn


def mle_gradient(energy: nn.Module, x_data: torch.Tensor, x_model: torch.Tensor,
                 weights: torch.Tensor | None = None) -> list[torch.Tensor]:
    r"""Exercise 3.1: the estimate of :math:`\nabla_\theta \mathcal L(\theta)`.

    .. math:: -\frac1N \sum_n \nabla_\theta E_\theta(x_n)
              + \sum_m w_m \nabla_\theta E_\theta(x^-_m), \qquad w_m = 1/M \text{ by default},

    the gradient of the surrogate :math:`\sum_m w_m E_\theta(x^-_m) - \frac1N\sum_n
    E_\theta(x_n)` with the samples and the weights held constant (detached). Autograd
    runs inside ``torch.enable_grad()`` and returns the gradients without touching the
    parameters' ``.grad``.
    """
    params = list(energy.parameters())
    with torch.enable_grad():
        data_term = energy(x_data.detach()).mean()
        e_model = energy(x_model.detach())
        if weights is None:
            model_term = e_model.mean()
        else:
            model_term = (weights.detach().to(e_model.dtype) * e_model).sum()
        grads = torch.autograd.grad(model_term - data_term, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


def model_expectation(energy: nn.Module, states: torch.Tensor) -> list[torch.Tensor]:
    r"""Exercise 3.2: :math:`\mathbb E_{p_\theta}[\nabla_\theta E_\theta] = \sum_s p_\theta(s)
    \nabla_\theta E_\theta(s)` over every state ``s`` of a small discrete model.

    The probabilities :math:`p_\theta(s) = \operatorname{softmax}(-E_\theta)(s)` are computed
    in log space (softmax subtracts the maximum, so no :math:`e^{-E}` overflows) and held
    constant; the gradient of :math:`\sum_s p_\theta(s) E_\theta(s)` is then the expectation.
    It equals :math:`-\nabla_\theta \log Z(\theta)`.
    """
    params = list(energy.parameters())
    with torch.enable_grad():
        e = energy(states.detach())
        p = torch.softmax(-e.detach(), dim=0)
        grads = torch.autograd.grad((p * e).sum(), params, allow_unused=True)
    return [torch.zeros_like(q) if g is None else g for q, g in zip(params, grads, strict=True)]
