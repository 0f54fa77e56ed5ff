r"""How good is a trained energy-based model? Likelihoods, divergences and sample tests.

* :func:`log_likelihood` — exact mean log-likelihood where :math:`\log Z` is tractable;
* :func:`ais_log_likelihood` — the same with :math:`\log Z` from annealed importance
  sampling (Neal 2001; Salakhutdinov & Murray 2008), with a standard error;
* :func:`kl_divergence_grid` — :math:`\mathrm{KL}(p\,\|\,q)` of two 2D energies on a grid;
* :func:`fisher_divergence` — :math:`\tfrac12\mathbb E_p\|s_p - s_q\|^2` from samples of :math:`p`;
* :func:`mmd` — unbiased squared maximum mean discrepancy (Gretton et al. 2012);
* :func:`mode_weights` — the mass of a sample near each mode, with binomial standard errors;
* :func:`auroc` — how well a score (e.g. :math:`-E_\theta(x)`) tells two sets of inputs apart;
* :func:`effective_sample_size` — Kish's ESS of importance weights.

The code is grouped in the submodules ``likelihood``, ``divergences``, ``samples`` (measures
computed from samples alone) and ``detection``; import the metrics from here.
"""

from __future__ import annotations

from ..partition import effective_sample_size
from .detection import auroc
from .divergences import fisher_divergence, kl_divergence_grid
from .likelihood import LogLikelihoodEstimate, ais_log_likelihood, log_likelihood
from .samples import mmd, mode_weights

__all__ = [
    "LogLikelihoodEstimate",
    "ais_log_likelihood",
    "auroc",
    "effective_sample_size",
    "fisher_divergence",
    "kl_divergence_grid",
    "log_likelihood",
    "mmd",
    "mode_weights",
]
