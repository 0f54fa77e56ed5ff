r"""Score-based methods: score matching (exact, sliced), denoising and noise-conditional (NCSN).

The losses are those of :mod:`ebmlab.objectives`; none needs :math:`Z` or samples
from the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from ..._validation import (
    check_bool,
    check_continuous_model,
    check_int,
    check_noise_conditional,
    check_noise_levels,
    check_number,
)
from ...objectives import (
    denoising_score_matching_loss,
    multiscale_dsm_loss,
    score_matching_loss,
    sliced_score_matching_loss,
)
from .base import KeywordOptions, Method

__all__ = ["NCSN", "DenoisingScoreMatching", "ScoreMatching", "SlicedScoreMatching"]


class _ContinuousMethod(KeywordOptions, Method):
    """A method for continuous energies (or score networks): :meth:`init` refuses discrete
    models, whose score :math:`-\\nabla_x E` does not exist."""

    def init(self, model: nn.Module, data: torch.Tensor,
             generator: torch.Generator | None) -> None:
        check_continuous_model(model, f"method {self.name!r}")


@dataclass(kw_only=True)
class ScoreMatching(_ContinuousMethod):
    r"""Score matching with the exact Hessian trace (Hyvärinen 2005).

    Minimises :math:`\mathbb{E}[\operatorname{tr}\nabla_x s_\theta(x) + \tfrac12\|s_\theta(x)\|^2]`
    (:func:`~ebmlab.objectives.score_matching_loss`); the trace costs one backward
    pass per dimension.
    """

    name: ClassVar[str] = "sm"
    hint: ClassVar[str] = ("method 'dsm' (the score-matching loss of a flexible energy is "
                           "unbounded below far from the data)")

    def loss(self, model: nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        return score_matching_loss(model, batch)


@dataclass(kw_only=True)
class SlicedScoreMatching(_ContinuousMethod):
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

    name: ClassVar[str] = "ssm"
    hint: ClassVar[str] = "method 'dsm'"
    n_projections: int = 1
    variance_reduced: bool = True

    def __post_init__(self) -> None:
        check_int(self.n_projections, "n_projections", minimum=1)
        check_bool(self.variance_reduced, "variance_reduced")

    def loss(self, model: nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        return sliced_score_matching_loss(model, batch, self.n_projections,
                                          self.variance_reduced, generator=generator)


@dataclass(kw_only=True)
class DenoisingScoreMatching(_ContinuousMethod):
    r"""Denoising score matching at one noise level :math:`\sigma` (Vincent 2011).

    Fits :math:`s_\theta(\tilde x)` to :math:`-(\tilde x - x)/\sigma^2` with
    :math:`\tilde x = x + \sigma\epsilon`; the model learns the score of
    :math:`p_\text{data} * \mathcal N(0, \sigma^2 I)`. ``model`` may be an energy
    (score by autograd) or a score network.

    Parameters
    ----------
    sigma : float
        Noise standard deviation, ``> 0``.
    """

    name: ClassVar[str] = "dsm"
    hint: ClassVar[str] = "a larger sigma"
    sigma: float

    def __post_init__(self) -> None:
        self.sigma = check_number(self.sigma, "sigma", greater_than=0)

    def loss(self, model: nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        return denoising_score_matching_loss(model, batch, self.sigma, generator=generator)


@dataclass(kw_only=True)
class NCSN(_ContinuousMethod):
    r"""Noise-conditional score network training (Song & Ermon 2019).

    Minimises :math:`\sum_i \sigma_i^2\,\mathrm{DSM}_{\sigma_i}` over a ladder
    :math:`\sigma_1 > \dots > \sigma_L` (:func:`~ebmlab.objectives.multiscale_dsm_loss`);
    the model is called as ``model(x, sigma)`` and returns the score (or an energy).
    Sample the result with :func:`ebmlab.samplers.annealed_langevin`.

    Parameters
    ----------
    sigmas : sequence of float or torch.Tensor
        The noise levels, e.g. ``torch.logspace(0, -2, 10)``.
    """

    name: ClassVar[str] = "ncsn"
    sigmas: Sequence[float] | torch.Tensor
    _ladder: torch.Tensor | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.sigmas = check_noise_levels(self.sigmas)

    def init(self, model: nn.Module, data: torch.Tensor,
             generator: torch.Generator | None) -> None:
        """Check that ``model`` takes a noise level, ``model(x, sigma)``."""
        super().init(model, data, generator)
        check_noise_conditional(model)
        self._ladder = torch.tensor(self.sigmas, dtype=data.dtype, device=data.device)

    def loss(self, model: nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        if self._ladder is None:
            raise RuntimeError("NCSN.init(model, data, generator) must be called before loss().")
        return multiscale_dsm_loss(model, batch, self._ladder, generator=generator)

