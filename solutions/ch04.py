r"""Reference solutions of the graded exercises of chapter 4 (contrastive divergence).

Each function has the name and signature of its stub in
``book/exercises/ch04_contrastive_divergence.ipynb``; the test suite proves it scores full
marks (``tests/test_autograder.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gibbs_sweep(v: torch.Tensor, w: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
    r"""One block-Gibbs sweep of an RBM: :math:`h \sim p(h \mid v)`, then
    :math:`v \sim p(v \mid h)`, each unit drawn by comparing a uniform from ``generator``
    (hidden units first) with its conditional probability, in ``v``'s dtype and device."""
    p_h = torch.sigmoid(v @ w + b)
    h = (torch.rand(p_h.shape, generator=generator, dtype=v.dtype,
                    device=v.device) < p_h).to(v.dtype)
    p_v = torch.sigmoid(h @ w.T + a)
    return (torch.rand(p_v.shape, generator=generator, dtype=v.dtype,
                       device=v.device) < p_v).to(v.dtype)


def cd_k_gradient(rbm, v: torch.Tensor, k: int,
                  generator: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Exercise 4.1: the CD-:math:`k` estimate of the log-likelihood gradient of an RBM.

    With :math:`\phi(v) = -\nabla_\theta F(v) = (v\,\sigma(b + W^\top v)^\top, v,
    \sigma(b + W^\top v))` the estimate is :math:`\frac1B\sum_b \phi(v_b) - \frac1B\sum_b
    \phi(\tilde v_b)`, :math:`\tilde v_b` after :math:`k` block-Gibbs sweeps from
    :math:`v_b`. Each sweep draws :math:`h` then :math:`v` by comparing uniforms from
    ``generator`` with the conditional probabilities, on ``v``'s device and in its dtype.
    """
    with torch.no_grad():
        w = rbm.weight.detach().to(v.dtype)
        a = rbm.visible_bias.detach().to(v.dtype)
        b = rbm.hidden_bias.detach().to(v.dtype)
        x = v
        for _ in range(k):
            x = gibbs_sweep(x, w, a, b, generator)
        p0 = torch.sigmoid(v @ w + b)
        pk = torch.sigmoid(x @ w + b)
        n = v.shape[0]
        return (v.T @ p0 - x.T @ pk) / n, (v - x).mean(0), (p0 - pk).mean(0)


def cd1_failure_data(n_visible: int, n_hidden: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Exercise 4.2: two well-separated clusters of unequal size.

    200 rows: 80% near the all-zeros image and 20% near the all-ones image, every bit
    flipped with probability 0.05. A one-sweep chain started at a row stays in its
    cluster, so CD-1's negative phase always has the data's 80/20 proportions and never
    corrects the relative depth of the two valleys; the bright valley deepens and the
    dark cluster, most of the data, loses its probability.
    """
    n = 200
    bright = torch.rand(n, 1, generator=generator) < 0.2
    flips = torch.rand(n, n_visible, generator=generator) < 0.05
    return (bright ^ flips).to(torch.float64)


def ais_log_weight_step(rbm, v: torch.Tensor, beta_prev: float, beta: float,
                        base_visible_bias: torch.Tensor) -> torch.Tensor:
    r"""Exercise 4.3: :math:`\log f_\beta(v) - \log f_{\beta'}(v)` on the RBM path.

    :math:`f_\beta(v) = \sum_h e^{-(1-\beta)E_0(v,h) - \beta E(v,h)}`; the exponent is
    linear in every :math:`h_j`, so the hidden units sum out as in the free energy:

    :math:`\log f_\beta(v) = ((1-\beta)a_0 + \beta a)^\top v + \sum_j
    \operatorname{softplus}(\beta(b_j + v^\top W_{:j}))`; the difference of the linear
    parts is :math:`(\beta - \beta')(a - a_0)^\top v`.
    """
    with torch.no_grad():
        w = rbm.weight.detach().to(v.dtype)
        a = rbm.visible_bias.detach().to(v.dtype)
        b = rbm.hidden_bias.detach().to(v.dtype)
        a0 = base_visible_bias.detach().to(v.dtype)
        z = v @ w + b
        return ((beta - beta_prev) * (v @ (a - a0))
                + (F.softplus(beta * z) - F.softplus(beta_prev * z)).sum(-1))


def pcd_step(params: tuple[torch.Tensor, torch.Tensor, torch.Tensor], data: torch.Tensor,
             chains: torch.Tensor, lr: float, generator: torch.Generator | None = None
             ) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    r"""Exercise 4.4: one step of persistent contrastive divergence (Tieleman 2008).

    The persistent chains make one block-Gibbs sweep; the parameters then move by
    ``lr`` times :math:`\frac1N\sum_n \phi(v_n) - \frac1M\sum_m \phi(\tilde v_m)`, with
    :math:`\phi(v) = (v\,\sigma(b + W^\top v)^\top, v, \sigma(b + W^\top v))` and
    :math:`\tilde v_m` the chains after the sweep, which are returned for the next step.
    """
    w, a, b = params
    with torch.no_grad():
        chains = gibbs_sweep(chains, w, a, b, generator)
        p_data = torch.sigmoid(data @ w + b)
        p_chains = torch.sigmoid(chains @ w + b)
        w = w + lr * (data.T @ p_data / len(data) - chains.T @ p_chains / len(chains))
        a = a + lr * (data.mean(0) - chains.mean(0))
        b = b + lr * (p_data.mean(0) - p_chains.mean(0))
    return (w, a, b), chains
