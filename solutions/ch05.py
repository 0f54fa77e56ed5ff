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


def score_matching_fit(x: torch.Tensor, powers: tuple[int, ...]) -> torch.Tensor:
    r"""Exercise 5.3: the score-matching estimate of :math:`E_\theta(x) = \sum_k \theta_k x^{p_k}`.

    With :math:`s = -\sum_k \theta_k p_k x^{p_k - 1}`, Hyvärinen's objective
    :math:`\overline{s' + \tfrac12 s^2}` is a quadratic,
    :math:`-\theta^\top b + \tfrac12\theta^\top G\theta`, with
    :math:`b_k = \overline{p_k(p_k - 1)x^{p_k - 2}}` and
    :math:`G_{kl} = \overline{p_k p_l x^{p_k + p_l - 2}}`; its minimiser is
    :math:`\hat\theta = G^{-1} b`. Computed in float64.
    """
    p = torch.tensor(powers, dtype=torch.float64)
    xs = x.detach().to(torch.float64)[:, None]
    b = (p * (p - 1) * xs ** (p - 2).clamp_min(0)).mean(0)
    grad_features = p * xs ** (p - 1)
    gram = grad_features.T @ grad_features / xs.shape[0]
    return torch.linalg.solve(gram, b)


def train_sliced_score_matching(energy: torch.nn.Module, data: torch.Tensor, *, n_steps: int,
                                generator: torch.Generator) -> list[float]:
    r"""Exercise 5.4: sliced score matching (Song et al. 2019), the training loop.

    Each update draws 256 points and one direction :math:`v \sim \mathcal N(0, I)` per point,
    and minimises :math:`\overline{v^\top \nabla_x s\, v + \tfrac12\|s\|^2}` (the
    variance-reduced form) with Adam, its learning rate decaying linearly to 0 (the last,
    small steps settle the fit: without the decay one run in ten ends noticeably worse);
    :math:`v^\top\nabla_x s\,v` is one Hessian-vector product,
    :math:`\nabla_x(s\cdot v)\cdot v`.
    """
    optimizer = torch.optim.Adam(energy.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 1 - t / n_steps)
    losses = []
    for _ in range(n_steps):
        x = data[torch.randint(data.shape[0], (256,), generator=generator)]
        x = x.detach().requires_grad_(True)
        v = torch.randn(x.shape, dtype=x.dtype, generator=generator)
        (grad,) = torch.autograd.grad(energy(x).sum(), x, create_graph=True)
        s = -grad
        (hvp,) = torch.autograd.grad((s * v).sum(), x, create_graph=True)
        loss = ((hvp * v).sum(1) + 0.5 * s.square().sum(1)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
    return losses
