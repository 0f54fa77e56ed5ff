"""Reference solutions of the graded exercises of chapter 2 (the score and Langevin sampling).

Each function has the name and signature of its stub in
``book/exercises/ch02_score_langevin.ipynb``; the test suite proves it scores full marks
(``tests/test_autograder.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def score(energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    r"""Exercise 2.1: the score :math:`s(x) = \nabla_x \log p(x) = -\nabla_x E(x)`.

    :math:`\log Z` is constant in :math:`x`, so only the energy is differentiated.
    Autograd runs on a detached copy of ``x`` inside ``torch.enable_grad()``: the
    caller's tensor, the energy's parameters and the grad mode are left as they were,
    and the gradient comes back without a graph, with ``x``'s shape, dtype and device.
    """
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(x).sum(), x)
    return -grad


def langevin_step(energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                  step_size: float, noise: torch.Tensor) -> torch.Tensor:
    r"""Exercise 2.2: one step of the unadjusted Langevin algorithm (ULA).

    .. math:: x' = x - \epsilon\,\nabla_x E(x) + \sqrt{2\epsilon}\,\xi

    The gradient comes from autograd on a detached copy (inside ``enable_grad``, so the
    step also works under ``no_grad``); the update is built from the original ``x``, so
    the result carries no graph and ``x`` and ``noise`` are not modified.
    """
    with torch.enable_grad():
        leaf = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(leaf).sum(), leaf)
    return x.detach() - step_size * grad + math.sqrt(2.0 * step_size) * noise


def mala_log_acceptance(energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                        y: torch.Tensor, step_size: float) -> torch.Tensor:
    r"""Exercise 2.3: MALA's log acceptance probability :math:`\log\alpha(x, y)`, shape ``(B,)``.

    .. math::

        \log\alpha = \min\Big\{0,\ E(x) - E(y)
        - \frac{\|x - y + \epsilon\nabla E(y)\|^2 - \|y - x + \epsilon\nabla E(x)\|^2}{4\epsilon}
        \Big\}

    The Gaussian proposal :math:`q(b \mid a) = \mathcal N(b;\ a - \epsilon\nabla E(a),\
    2\epsilon I)` enters through the log of its density ratio (its normalising constants
    cancel), and :math:`Z` through nothing: everything stays in log space.
    """
    with torch.enable_grad():
        xs = x.detach().requires_grad_(True)
        ys = y.detach().requires_grad_(True)
        e_x, e_y = energy(xs), energy(ys)
        grad_x, grad_y = torch.autograd.grad((e_x.sum(), e_y.sum()), (xs, ys))
    forward = (y - x + step_size * grad_x).reshape(x.shape[0], -1).square().sum(-1)
    backward = (x - y + step_size * grad_y).reshape(x.shape[0], -1).square().sum(-1)
    log_ratio = e_x.detach() - e_y.detach() - (backward - forward) / (4.0 * step_size)
    return torch.clamp(log_ratio, max=0.0)


def ula_stationary_covariance(precision: torch.Tensor, step_size: float) -> torch.Tensor:
    r"""Exercise 2.4: the stationary covariance of ULA on :math:`E(x) = \tfrac12 x^\top A x`.

    One step is :math:`x' = M x + \sqrt{2\epsilon}\,\xi` with :math:`M = I - \epsilon A`, so a
    stationary covariance solves :math:`S = M S M^\top + 2\epsilon I`. With
    :math:`A = Q \Lambda Q^\top`, :math:`M` is diagonal in the same basis and
    :math:`S = Q\,\operatorname{diag}\big(2\epsilon / (1 - (1 - \epsilon\lambda_i)^2)\big)\,Q^\top
    = (A - \tfrac\epsilon2 A^2)^{-1}`, which exists when :math:`0 < \epsilon\lambda_i < 2`
    for every eigenvalue.
    """
    eigenvalues, q = torch.linalg.eigh(precision)
    if bool((step_size * eigenvalues >= 2.0).any()):
        raise ValueError(f"step_size {step_size} >= 2 / {float(eigenvalues.max())}: "
                         "the chain diverges and has no stationary covariance.")
    variances = 1.0 / (eigenvalues * (1.0 - 0.5 * step_size * eigenvalues))
    return (q * variances) @ q.T
