"""Reference solutions of the graded exercises of chapter 1 (energy and the partition function).

Each function has the name and signature of its stub in ``book/exercises/ch01_energy.ipynb``;
the test suite proves it scores full marks (``tests/test_autograder.py``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F


def log_partition(energy: Callable[[torch.Tensor], torch.Tensor], n_units: int,
                  support: Sequence[float] = (-1.0, 1.0)) -> torch.Tensor:
    r"""Exercise 1.1: :math:`\log Z = \log \sum_x e^{-E(x)}` over :math:`x \in \text{support}^n`.

    All ``len(support) ** n_units`` states are built as one float64 batch and evaluated in a
    single call; the sum of exponentials uses the max shift
    :math:`\log\sum_s e^{a_s} = m + \log\sum_s e^{a_s - m}`, :math:`m = \max_s a_s`.
    """
    states = torch.tensor(list(itertools.product(support, repeat=n_units)),
                          dtype=torch.float64)
    a = -energy(states).to(torch.float64)          # the exponents -E(x)
    m = a.max()
    return m + torch.log(torch.exp(a - m).sum())


def importance_log_z(energy: Callable[[torch.Tensor], torch.Tensor], proposal: object,
                     n_samples: int, *, generator: torch.Generator | None = None,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Exercise 1.2: importance sampling, :math:`\log \hat Z = \log \frac1n \sum_i w_i`
    with :math:`w_i = e^{-E(x_i)}/q(x_i)` and :math:`x_i \sim q`.

    Returns the estimate and its delta-method standard error
    :math:`\operatorname{sd}(w)/(\sqrt n\,\bar w)`, computed from the normalised weights
    :math:`w_i/\bar w = e^{\log w_i - \log\hat Z}` so that nothing overflows.
    """
    with torch.no_grad():
        x = proposal.sample(n_samples, generator=generator)
        log_w = (-energy(x) - proposal.log_prob(x)).to(torch.float64)
        m = log_w.max()
        log_z = m + torch.log(torch.exp(log_w - m).mean())
        normalised = torch.exp(log_w - log_z)           # mean exactly 1
        stderr = normalised.std() / math.sqrt(n_samples)
    return log_z, stderr


def rbm_free_energy(v: torch.Tensor, weight: torch.Tensor, visible_bias: torch.Tensor,
                    hidden_bias: torch.Tensor) -> torch.Tensor:
    r"""Exercise 1.3: the free energy of an RBM with the hidden units summed out.

    :math:`-E(v, h) = a^\top v + \sum_j h_j u_j` with :math:`u = b + W^\top v` is linear in
    every :math:`h_j`, so the sum over :math:`h` factorises and
    :math:`F(v) = -a^\top v - \sum_j \operatorname{softplus}(b_j + v^\top W_{:j})`.

    ``softplus`` is evaluated stably by :func:`torch.nn.functional.softplus`; the result has
    shape ``(B,)`` and ``v``'s dtype, and keeps the autograd graph to the parameters.
    """
    dtype = v.dtype
    w, a, b = weight.to(dtype), visible_bias.to(dtype), hidden_bias.to(dtype)
    return -(v @ a) - F.softplus(v @ w + b).sum(dim=-1)
