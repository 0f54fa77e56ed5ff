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


def bm_mle_step(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor,
                lr: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Exercise 3.3: one step of exact maximum likelihood for a fully visible Boltzmann
    machine :math:`E(x) = -\tfrac12 x^\top W x - b^\top x` on :math:`d` binary units.

    With :math:`W_{ij} = W_{ji}` one parameter, :math:`-\partial E/\partial W_{ij} = x_i x_j`
    and :math:`-\partial E/\partial b_i = x_i`, so the gradient of the mean log-likelihood is
    the data moments minus the model moments (zero on the diagonal of :math:`W`). The model
    moments come from all :math:`2^d` states with :math:`p = \operatorname{softmax}(-E)`.
    """
    d = x.shape[1]
    codes = torch.arange(2 ** d, device=x.device)
    states = ((codes[:, None] >> torch.arange(d, device=x.device)) & 1).to(weight.dtype)
    energy = -0.5 * ((states @ weight) * states).sum(-1) - states @ bias
    p = torch.softmax(-energy, dim=0)
    grad_w = x.T @ x / x.shape[0] - (states * p[:, None]).T @ states
    grad_w = grad_w - torch.diag(torch.diagonal(grad_w))
    grad_b = x.mean(0) - p @ states
    return weight + lr * grad_w, bias + lr * grad_b
