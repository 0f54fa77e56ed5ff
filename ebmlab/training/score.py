r"""Score-based methods: score matching (exact, sliced), denoising and noise-conditional (NCSN).

The losses are those of :mod:`ebmlab.objectives`; none needs :math:`Z` or samples
from the model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..objectives import (
    denoising_score_matching_loss,
    multiscale_dsm_loss,
    score_matching_loss,
    sliced_score_matching_loss,
)
from .objective import Objective, _check_int, _check_sigmas, _require_continuous

__all__ = ["DenoisingScoreMatching", "NCSNObjective", "ScoreMatching", "SlicedScoreMatching"]


class ScoreMatching(Objective):
    r"""Score matching with the exact Hessian trace (Hyvärinen 2005).

    Minimises :math:`\mathbb{E}[\operatorname{tr}\nabla_x s_\theta(x) + \tfrac12\|s_\theta(x)\|^2]`
    (:func:`~ebmlab.objectives.score_matching_loss`); the trace costs one backward
    pass per dimension.
    """

    name = "sm"
    hint = ("method 'dsm' (the score-matching loss of a flexible energy is unbounded below "
            "far from the data)")

    def init(self, model: nn.Module, data: torch.Tensor,
             generator: torch.Generator | None) -> None:
        _require_continuous(model, data, self.name, "score matching")

    def loss(self, model: nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        return score_matching_loss(model, batch)


class SlicedScoreMatching(Objective):
    r"""Sliced score matching (Song, Garg, Shi & Ermon 2019).

    Random projections :math:`v` replace the Hessian trace by
    :math:`v^\top \nabla_x s_\theta v` (:func:`~ebmlab.objectives.sliced_score_matching_loss`).

    Parameters
    ----------
    n_projections : int
        Projections per data point.
    variance_reduced : bool
        Use :math:`\tfrac12\|s_\theta\|^2` in place of :math:`\tfrac12(v^\top s_\theta)^2`.
    """

    name = "ssm"
    hint = "method 'dsm'"

    def __init__(self, n_projections: int = 1, variance_reduced: bool = True):
        self.n_projections = _check_int(n_projections, "n_projections")
        self.variance_reduced = bool(variance_reduced)

    def init(self, model: nn.Module, data: torch.Tensor,
             generator: torch.Generator | None) -> None:
        _require_continuous(model, data, self.name, "sliced score matching")

    def loss(self, model: nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        return sliced_score_matching_loss(model, batch, self.n_projections,
                                          self.variance_reduced, generator=generator)


class DenoisingScoreMatching(Objective):
    r"""Denoising score matching at one noise level :math:`\sigma` (Vincent 2011).

    Fits :math:`s_\theta(\tilde x)` to :math:`-(\tilde x - x)/\sigma^2` with
    :math:`\tilde x = x + \sigma\epsilon`; the model learns the score of
    :math:`p_\text{data} * \mathcal N(0, \sigma^2 I)`. ``model`` may be an energy
    (score by autograd) or a score network.

    Parameters
    ----------
    sigma : float
        Noise standard deviation.
    """

    name = "dsm"
    hint = "a larger sigma"

    def __init__(self, sigma: float):
        _check_sigmas(sigma, "sigma")
        self.sigma = float(sigma)

    def init(self, model: nn.Module, data: torch.Tensor,
             generator: torch.Generator | None) -> None:
        _require_continuous(model, data, self.name, "denoising score matching")

    def loss(self, model: nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        return denoising_score_matching_loss(model, batch, self.sigma, generator=generator)


class NCSNObjective(Objective):
    r"""Noise-conditional score network training (Song & Ermon 2019).

    Minimises :math:`\sum_i \sigma_i^2\,\mathrm{DSM}_{\sigma_i}` over a ladder
    :math:`\sigma_1 > \dots > \sigma_L` (:func:`~ebmlab.objectives.multiscale_dsm_loss`);
    the model is called as ``model(x, sigma)`` and returns the score. Sample the
    result with :func:`ebmlab.samplers.annealed_langevin`.

    Parameters
    ----------
    sigmas : sequence of float or torch.Tensor
        The noise levels, e.g. ``torch.logspace(0, -2, 10)``.
    """

    name = "ncsn"

    def __init__(self, sigmas: Any):
        s = _check_sigmas(sigmas, "sigmas")
        self.sigmas = s.tolist()

    def init(self, model: nn.Module, data: torch.Tensor,
             generator: torch.Generator | None) -> None:
        _require_continuous(model, data, self.name, "noise-conditional score matching")
        self._sigmas = torch.tensor(self.sigmas, dtype=data.dtype, device=data.device)

    def loss(self, model: nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        return multiscale_dsm_loss(model, batch, self._sigmas, generator=generator)
