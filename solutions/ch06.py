r"""Reference solutions of the graded exercises of chapter 6 (from score matching to diffusion).

Each function has the name and signature of its stub in
``book/exercises/ch06_diffusion.ipynb``; the test suite proves it scores full marks
(``tests/test_autograder.py``).
"""

from __future__ import annotations

import math

import torch


def annealed_step_sizes(sigmas: torch.Tensor, step_size: float) -> torch.Tensor:
    r"""Exercise 6.1: annealed Langevin's steps :math:`\alpha_i = \epsilon\,\sigma_i^2/\sigma_L^2`.

    ``sigmas`` is the ladder :math:`\sigma_1 > \dots > \sigma_L` (largest first), so
    :math:`\sigma_L` is its last entry; the result keeps its dtype and device.
    """
    return step_size * sigmas**2 / sigmas[-1] ** 2


def smoothed_mixture_score(x: torch.Tensor, means: torch.Tensor, stds: torch.Tensor,
                           weights: torch.Tensor, sigma: float) -> torch.Tensor:
    r"""Exercise 6.2: the score of a Gaussian mixture smoothed by :math:`\mathcal N(0, \sigma^2 I)`.

    The convolution of :math:`\sum_k \pi_k\mathcal N(\mu_k, s_k^2 I)` with the noise is the
    mixture :math:`\sum_k \pi_k \mathcal N(\mu_k, (s_k^2 + \sigma^2) I)`,
    whose score is :math:`\sum_k r_k(x)\,(\mu_k - x)/(s_k^2 + \sigma^2)` with responsibilities
    :math:`r_k` computed by a softmax of the component log-densities (stable far from the
    components).
    """
    var = stds**2 + sigma**2                                   # (K,)
    diff = means[None, :, :] - x[:, None, :]                   # (B, K, d)
    dim = x.shape[1]
    log_comp = (weights.log() - 0.5 * dim * torch.log(2 * math.pi * var)
                - 0.5 * diff.square().sum(-1) / var)           # (B, K)
    resp = torch.softmax(log_comp, dim=1)
    return (resp[:, :, None] * diff / var[None, :, None]).sum(1)
