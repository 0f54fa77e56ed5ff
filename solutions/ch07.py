"""Reference solutions of the graded exercises of chapter 7 (RBMs and deep EBMs).

Each function has the name and signature of its stub in
``book/exercises/ch07_canonical_models.ipynb``; the test suite proves it scores full marks
(``tests/test_autograder.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def rbm_free_energy(v: torch.Tensor, weight: torch.Tensor, visible_bias: torch.Tensor,
                    hidden_bias: torch.Tensor) -> torch.Tensor:
    r"""Exercise 7.1: the free energy of an RBM, hidden units summed out.

    :math:`F(v) = -a^\top v - \sum_j \operatorname{softplus}(b_j + v^\top W_{:j})`.

    Summing :math:`h_j \in \{0, 1\}` out of :math:`e^{-E(v,h)}` gives one factor
    :math:`1 + e^{b_j + v^\top W_{:j}}` per hidden unit; ``softplus`` is
    :math:`\log(1 + e^x)` computed without overflow. Differentiable in the parameters,
    shape ``(B,)``, dtype and device of ``v``.
    """
    return -(v @ visible_bias) - F.softplus(v @ weight + hidden_bias).sum(-1)


def replay_negatives(energy: Callable[[torch.Tensor], torch.Tensor], buffer: torch.Tensor,
                     idx: torch.Tensor, u: torch.Tensor, fresh: torch.Tensor,
                     noise: torch.Tensor, *, reinit_prob: float, step_size: float,
                     noise_scale: float, grad_clip: float | None) -> torch.Tensor:
    r"""Exercise 7.2: replay-buffer draw, restarts and :math:`K` clipped Langevin steps.

    :math:`x_0 = ` ``fresh`` where :math:`u < ` ``reinit_prob``, else ``buffer[idx]``; then
    :math:`x_{t+1} = x_t - \epsilon\,\operatorname{clip}(\nabla_x E(x_t)) + \sigma\,\xi_t`
    with :math:`\xi_t` = ``noise[t]``. Returns :math:`x_K` without a graph; the inputs and
    the energy's parameters are left untouched, and it works under ``torch.no_grad()``.
    """
    mask = (u < reinit_prob).view((-1,) + (1,) * (fresh.dim() - 1))
    x = torch.where(mask, fresh, buffer[idx]).detach()
    for xi in noise:
        with torch.enable_grad():
            xr = x.requires_grad_(True)
            (grad,) = torch.autograd.grad(energy(xr).sum(), xr)
        if grad_clip is not None:
            grad = grad.clamp(-grad_clip, grad_clip)
        x = (x.detach() - step_size * grad + noise_scale * xi).detach()
    return x.detach()
