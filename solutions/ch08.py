r"""Reference solutions of the graded exercises of chapter 8 (noise-contrastive estimation).

Each function has the name and signature of its stub in
``book/exercises/ch08_nce.ipynb``; the test suite proves it scores full marks
(``tests/test_autograder.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F


def nce_posterior(log_model: torch.Tensor, log_noise: torch.Tensor,
                  nu: float) -> torch.Tensor:
    r"""Exercise 8.1: :math:`P(\text{data}\mid u) = p_m/(p_m + \nu p_n)`.

    Bayes' rule with prior odds :math:`1:\nu`; dividing numerator and denominator by
    :math:`p_m` gives :math:`\sigma(\log p_m - \log p_n - \log\nu)`, which ``torch.sigmoid``
    computes without overflow.
    """
    return torch.sigmoid(log_model - log_noise - math.log(nu))


def nce_objective(energy: Callable[[torch.Tensor], torch.Tensor], x_data: torch.Tensor,
                  x_noise: torch.Tensor,
                  noise_log_prob: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    r"""Exercise 8.2: the NCE loss, normalised per data point.

    With :math:`G(u) = -E(u) - \log p_n(u)` and :math:`\nu = B_n/B_d`,
    :math:`\mathcal L = -\frac{1}{B_d}\big[\sum_t \log\sigma(G(x_t) - \log\nu) + \sum_t
    \log\sigma(\log\nu - G(y_t))\big]`.
    """
    log_nu = math.log(x_noise.shape[0] / x_data.shape[0])
    g_data = -energy(x_data) - noise_log_prob(x_data) - log_nu
    g_noise = -energy(x_noise) - noise_log_prob(x_noise) - log_nu
    return -(F.logsigmoid(g_data).sum() + F.logsigmoid(-g_noise).sum()) / x_data.shape[0]


def design_noise(data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Exercise 8.3: a Gaussian noise the NCE classifier has to work to tell from the data.

    It sits on the data (their mean) with their scale in every coordinate, a little broader
    so that its tails cover the data's: then :math:`p_m/p_n` stays moderate where either
    has mass and every parameter, the log-normaliser included, is well determined.
    """
    return data.mean(0), 1.2 * data.std(0)
