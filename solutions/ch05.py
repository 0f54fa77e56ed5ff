r"""Reference solutions of the graded exercises of chapter 5 (score matching).

Each function has the name and signature of its stub in
``book/exercises/ch05_score_matching.ipynb``; the test suite proves it scores full marks
(``tests/test_autograder.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def score_matching(energy: Callable[[torch.Tensor], torch.Tensor],
                   x: torch.Tensor) -> torch.Tensor:
    r"""Exercise 5.1: Hyvärinen's loss with the exact Hessian trace.

    .. math:: J_\mathrm{SM} = \frac1B\sum_b \big[\operatorname{tr}\nabla_x s(x_b)
              + \tfrac12\|s(x_b)\|^2\big]

    The score :math:`s = -\nabla_x E` comes from autograd with ``create_graph=True``; the
    trace of its Jacobian takes one more backward pass per coordinate (the diagonal entry
    :math:`\partial s_i/\partial x_i` of each row), again keeping the graph so that the loss
    can be differentiated with respect to the energy's parameters.
    """
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(x).sum(), x, create_graph=True)
        s = -grad
        trace = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for i in range(x.shape[1]):
            (row,) = torch.autograd.grad(s[:, i].sum(), x, create_graph=True)
            trace = trace + row[:, i]
        return (trace + 0.5 * s.square().sum(1)).mean()


def denoising_score_matching(score: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                             eps: torch.Tensor, sigma: float) -> torch.Tensor:
    r"""Exercise 5.2: the denoising score-matching loss with the noise given.

    .. math:: \frac1B\sum_b \tfrac12\big\|s(\tilde x_b) + (\tilde x_b - x_b)/\sigma^2\big\|^2

    The noisy points are :math:`\tilde x = x + \sigma\epsilon` and the target is the score of
    the noising kernel,
    :math:`\nabla_{\tilde x}\log q_\sigma(\tilde x\mid x) = -(\tilde x - x)/\sigma^2`.
    """
    x_noisy = x + sigma * eps
    target = -(x_noisy - x) / sigma**2
    return 0.5 * (score(x_noisy) - target).square().sum(1).mean()
