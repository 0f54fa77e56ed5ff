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


def design_schedule(means: torch.Tensor, stds: torch.Tensor,
                    weights: torch.Tensor) -> tuple[torch.Tensor, float, int]:
    r"""Exercise 6.3: an annealing schedule for a mixture whose modes are far apart.

    The largest level is the largest distance between two means (Song & Ermon's first
    technique: the chains must be able to move between any two modes), the smallest is
    :math:`0.3\,\min_k s_k` (it widens the narrowest component by 4 %), with 12 levels in a
    geometric ladder and 125 steps each (the budget of 1500). The base step
    :math:`\epsilon = 0.1\,\sigma_L^2` makes every level's step a tenth of its variance:
    stable (:math:`\epsilon/(2\sigma_L^2) < 1`) and about six relaxation times per level.
    """
    sigma_max = float(torch.cdist(means, means).max())
    sigma_min = 0.3 * float(stds.min())
    sigmas = torch.logspace(math.log10(sigma_max), math.log10(sigma_min), 12,
                            dtype=torch.float64)
    return sigmas, 0.1 * sigma_min**2, 125


def train_ncsn(model: torch.nn.Module, data: torch.Tensor, sigmas: torch.Tensor, *,
               n_steps: int, generator: torch.Generator) -> list[float]:
    r"""Exercise 6.4: multi-level denoising score matching (Song & Ermon 2019).

    Each update draws 256 points, one level per point uniformly from the ladder, the noise
    :math:`\epsilon`, and minimises :math:`\overline{\tfrac12\|\sigma s_\theta(x + \sigma\epsilon,
    \sigma) + \epsilon\|^2}`, the denoising loss weighted by :math:`\lambda(\sigma) = \sigma^2`.
    Adam's learning rate decays linearly to 0 over the run.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 1 - t / n_steps)
    losses = []
    for _ in range(n_steps):
        x = data[torch.randint(data.shape[0], (256,), generator=generator)]
        sigma = sigmas[torch.randint(len(sigmas), (x.shape[0],), generator=generator)]
        eps = torch.randn(x.shape, dtype=x.dtype, generator=generator)
        x_noisy = x + sigma[:, None] * eps
        loss = 0.5 * (sigma[:, None] * model(x_noisy, sigma) + eps).square().sum(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
    return losses
