r"""Reference solutions of the graded exercises of chapter 9 (joint energy models).

Each function has the name and signature of its stub in
``book/exercises/ch09_jem.ipynb``; the test suite proves it scores full marks
(``tests/test_autograder.py``).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def jem_energies(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Exercise 9.1: :math:`E(x, y) = -f(x)[y]` and :math:`E(x) = -\log\sum_y e^{f(x)[y]}`.

    ``torch.logsumexp`` subtracts the largest logit before exponentiating, so
    :math:`E(x)` is finite for any finite logits.
    """
    return -logits, -torch.logsumexp(logits, dim=1)


def class_conditional_langevin(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor,
                               noise: torch.Tensor, *, step_size: float) -> torch.Tensor:
    r"""Exercise 9.2: Langevin chains on :math:`p(x\mid y) \propto e^{f(x)[y]}`.

    :math:`p(x\mid y) = p(x, y)/p(y)` and :math:`p(y)` does not depend on :math:`x`, so the
    energy is :math:`-f(x)[y]`: :math:`x_{t+1} = x_t + \epsilon\nabla_x f(x_t)[y] +
    \sqrt{2\epsilon}\,\xi_t`.
    """
    x = x.detach().clone()
    for xi in noise:
        with torch.enable_grad():
            xr = x.requires_grad_(True)
            own = classifier(xr).gather(1, y[:, None]).sum()
            (grad,) = torch.autograd.grad(own, xr)
        x = (x.detach() + step_size * grad + math.sqrt(2 * step_size) * xi).detach()
    return x


def reshape_density(x: torch.Tensor, logits: torch.Tensor,
                    target: torch.Tensor) -> torch.Tensor:
    r"""Exercise 9.3: new logits with the same softmax whose JEM density is ``target``.

    Adding :math:`c(x)` to every logit of :math:`x` keeps :math:`p(y\mid x)`; with
    :math:`c(x) = \log t(x) - \log\sum_y e^{f(x)[y]}` the new log-sum-exp is :math:`\log
    t(x)`, so :math:`p(x) \propto t(x)`.
    """
    shift = target.log() - torch.logsumexp(logits, dim=1)
    return logits + shift[:, None]
