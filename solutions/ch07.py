"""Reference solutions of the graded exercises of chapter 7 (RBMs and deep EBMs).

Each function has the name and signature of its stub in
``book/exercises/ch07_canonical_models.ipynb``; the test suite proves it scores full marks
(``tests/test_autograder.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn


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


def train_replay_ebm(energy: nn.Module, data: torch.Tensor, *, n_steps: int,
                     generator: torch.Generator) -> list[float]:
    r"""Exercise 7.3: deep-EBM training with a replay buffer (Du & Mordatch 2019).

    Negatives come from 1000 persistent chains (5 % restarted from uniform noise on the
    data's box), each continued for 20 Langevin steps with a clipped gradient and written
    back; the loss is :math:`\overline{E(x^+)} - \overline{E(x^-)} + \alpha(\overline{E(x^+)^2}
    + \overline{E(x^-)^2})` with :math:`\alpha = 0.1`, minimised by Adam.
    """
    lo, hi = data.min(0).values - 0.5, data.max(0).values + 0.5

    def uniform(n: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, data.shape[1], dtype=data.dtype,
                                           generator=generator)

    buffer = uniform(1000)
    optimizer = torch.optim.Adam(energy.parameters(), lr=2e-3, betas=(0.0, 0.999))
    losses = []
    for _ in range(n_steps):
        idx = torch.randint(data.shape[0], (128,), generator=generator)
        slots = torch.randint(buffer.shape[0], (128,), generator=generator)
        restart = torch.rand(128, generator=generator) < 0.05
        x = torch.where(restart[:, None], uniform(128), buffer[slots])
        for _ in range(20):
            with torch.enable_grad():
                xr = x.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(energy(xr).sum(), xr)
            noise = torch.randn(x.shape, dtype=x.dtype, generator=generator)
            x = (x - 0.01 * grad.clamp(-3.0, 3.0) + 0.05 * noise).detach()
        buffer[slots] = x
        e_data, e_model = energy(data[idx]), energy(x)
        loss = (e_data.mean() - e_model.mean()
                + 0.1 * (e_data.square().mean() + e_model.square().mean()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def gb_rbm_log_partition(weight: torch.Tensor, visible_bias: torch.Tensor,
                         hidden_bias: torch.Tensor) -> torch.Tensor:
    r"""Exercise 7.4: :math:`\log Z` of a Gaussian–Bernoulli RBM.

    With :math:`E(v, h) = \tfrac12\|v - a\|^2 - b^\top h - v^\top W h`, completing the square
    for each :math:`h` gives :math:`\int e^{-E(v,h)}dv = (2\pi)^{d/2}\exp(b^\top h + a^\top W h +
    \tfrac12\|Wh\|^2)`; the :math:`2^{n_h}` terms are summed with ``logsumexp``.
    """
    n_v, n_h = weight.shape
    codes = torch.arange(2**n_h, device=weight.device)
    hs = ((codes[:, None] >> torch.arange(n_h, device=weight.device)) & 1).to(weight.dtype)
    wh = hs @ weight.T
    exponent = hs @ hidden_bias + wh @ visible_bias + 0.5 * wh.square().sum(1)
    return torch.logsumexp(exponent, 0) + 0.5 * n_v * math.log(2 * math.pi)
