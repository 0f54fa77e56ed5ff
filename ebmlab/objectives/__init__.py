r"""Training objectives of energy-based models, as plain loss functions.

Each function returns a scalar loss tensor whose gradient with respect to the
model's parameters is the update of the method (descend it with any
:mod:`torch.optim` optimizer):

* :func:`exact_nll` — maximum likelihood where :math:`\log Z(\theta)` is tractable;
* :func:`contrastive_loss` — the surrogate whose gradient is the MLE gradient estimate
  :math:`\mathbb E_\text{data}[\nabla_\theta E_\theta] - \mathbb E_{x^-}[\nabla_\theta E_\theta]`
  behind CD-:math:`k` (Hinton 2002), PCD (Tieleman 2008) and Langevin training (Du & Mordatch 2019);
* :func:`score_matching_loss` — Hyvärinen (2005), exact Hessian trace;
* :func:`sliced_score_matching_loss` — Song, Garg, Shi & Ermon (2019);
* :func:`denoising_score_matching_loss` — Vincent (2011);
* :func:`multiscale_dsm_loss` — the noise-conditional objective of Song & Ermon (2019);
* :func:`nce_loss` — noise-contrastive estimation (Gutmann & Hyvärinen 2010, 2012), in
  which the energy carries its own learnable log-normaliser.

Notation follows the course: :math:`p_\theta(x) = e^{-E_\theta(x)}/Z(\theta)`, score
:math:`s_\theta(x) = \nabla_x \log p_\theta(x) = -\nabla_x E_\theta(x)`.

The code is grouped by family in the submodules ``likelihood``, ``score_matching``,
``denoising`` and ``nce``; import the losses from here.
"""

from .denoising import denoising_score_matching_loss, multiscale_dsm_loss
from .likelihood import contrastive_loss, exact_nll
from .nce import nce_loss
from .score_matching import score_matching_loss, sliced_score_matching_loss

__all__ = [
    "contrastive_loss",
    "denoising_score_matching_loss",
    "exact_nll",
    "multiscale_dsm_loss",
    "nce_loss",
    "score_matching_loss",
    "sliced_score_matching_loss",
]
