r"""Log-likelihood of data under a model: exact, or with :math:`\log Z` from AIS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from .._validation import check_batch, check_choice, check_in_support, check_model_data
from ..energies.base import EnergyLike
from ..partition import LogPartitionEstimate, ais, resolve_log_partition
from ._common import energies_float64

__all__ = ["LogLikelihoodEstimate", "ais_log_likelihood", "log_likelihood"]


def _as_float_data(x: object, name: str, model: object = None) -> torch.Tensor:
    """Integer/boolean data (e.g. binary patterns) become float64; then the usual checks,
    values in the support of a discrete model included."""
    x = check_batch(x, name)
    if not x.is_floating_point() and not x.is_complex():
        x = x.to(torch.float64)
    return check_in_support(check_model_data(x, name, model), model, name)


def log_likelihood(model: EnergyLike, x: torch.Tensor,
                   log_partition: torch.Tensor | float | Callable[[object], torch.Tensor]
                   | None = None, *, reduction: str = "mean") -> torch.Tensor:
    r"""Exact log-likelihood :math:`\log p_\theta(x) = -E_\theta(x) - \log Z(\theta)`, in float64.

    Parameters
    ----------
    model : Energy or callable
        The energy (free energy :math:`F_\theta(v)` for an RBM).
    x : torch.Tensor
        Data ``(B, *event_shape)``; integer or boolean binary data is accepted.
    log_partition : tensor, float or callable, optional
        :math:`\log Z`, or a callable ``model -> 0-d tensor``; default as in
        :func:`ebmlab.objectives.exact_nll` (``model.log_partition()`` or exact enumeration
        by :func:`ebmlab.partition.exact_log_partition`).
    reduction : {"mean", "none"}
        Mean over the batch (0-d) or one value per example ``(B,)``.

    Returns
    -------
    torch.Tensor
        float64, no autograd graph.

    Raises
    ------
    ValueError
        Bad data, values outside a discrete model's support, or unknown :math:`\log Z`.

    Examples
    --------
    >>> import torch
    >>> from ebmlab.energies import RBM
    >>> rbm = RBM(4, 2, generator=torch.Generator().manual_seed(0))
    >>> ll = log_likelihood(rbm, torch.ones(3, 4))
    >>> ll.dtype
    torch.float64
    """
    check_choice(reduction, "reduction", ("mean", "none"))
    x = _as_float_data(x, "x", model)
    with torch.no_grad():
        log_z = resolve_log_partition(model, log_partition).to(torch.float64)
        ll = -energies_float64(model, x, "model") - log_z.to(x.device)
    return ll.mean() if reduction == "mean" else ll


@dataclass(repr=False)
class LogLikelihoodEstimate:
    r"""Mean log-likelihood with :math:`\log Z` estimated by AIS.

    Attributes
    ----------
    log_likelihood : torch.Tensor
        :math:`\frac1B\sum_b -E_\theta(x_b) - \log\hat Z`, a float64 0-d tensor. Because
        :math:`\log\hat Z` is a stochastic lower bound of :math:`\log Z` (Jensen), the estimate
        tends to *over*-state the log-likelihood (Salakhutdinov & Murray 2008).
    stderr : torch.Tensor
        Its standard error, the AIS delta-method standard error of :math:`\log\hat Z` (the
        data term is exact).
    log_partition : LogPartitionEstimate
        The AIS estimate itself (weights, ESS).

    Notes
    -----
    Unpacks as ``mean, stderr = ais_log_likelihood(...)``; ``float(estimate)`` is the mean.
    """

    log_likelihood: torch.Tensor
    stderr: torch.Tensor
    log_partition: LogPartitionEstimate

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.log_likelihood, self.stderr))

    def __float__(self) -> float:
        return float(self.log_likelihood)

    def __repr__(self) -> str:
        n = self.log_partition.log_weights.numel()
        return (f"log-likelihood = {float(self.log_likelihood):.3f} ± {float(self.stderr):.3f} "
                f"(AIS, ESS {float(self.log_partition.ess):.0f}/{n})")


def ais_log_likelihood(model: EnergyLike, x: torch.Tensor, *, n_temperatures: int | None = None,
                       n_runs: int | None = None, **ais_kwargs: object) -> LogLikelihoodEstimate:
    r"""Mean log-likelihood :math:`\frac1B\sum_b -E_\theta(x_b) - \log\hat Z_\text{AIS}`.

    :math:`\log Z` is estimated by :func:`ebmlab.partition.ais` (Neal 2001), the standard
    way to evaluate RBMs too large to enumerate (Salakhutdinov & Murray 2008).

    Parameters
    ----------
    model : Energy or callable
        The model (free energy for an RBM).
    x : torch.Tensor
        Data ``(B, *event_shape)``; integer or boolean binary data is accepted.
    n_temperatures, n_runs : int, optional
        Passed to :func:`ebmlab.partition.ais`: length of the temperature ladder and the
        number of independent AIS runs (its defaults: 1000 and 100).
    **ais_kwargs
        Further keyword arguments of :func:`ebmlab.partition.ais` (``generator``, ``base``,
        ``schedule``, ``transition``, ``step_size``, ``progress``, ...).

    Returns
    -------
    LogLikelihoodEstimate
        Mean, standard error and the underlying :class:`LogPartitionEstimate`; unpacks as
        ``(mean, stderr)``.

    Raises
    ------
    ValueError
        Bad data, or ``reverse=True`` (a reverse run bounds :math:`\log Z` from above; call
        :func:`ebmlab.partition.ais` directly for that).
    """
    if ais_kwargs.get("reverse", False):
        raise ValueError("ais_log_likelihood uses forward AIS; reverse=True is not supported "
                         "here (call ebmlab.partition.ais(..., reverse=True) directly).")
    x = _as_float_data(x, "x", model)
    est = ais(model, n_temperatures, n_runs, **ais_kwargs)  # type: ignore[arg-type]
    with torch.no_grad():
        data_term = (-energies_float64(model, x, "model")).mean()
    log_z = est.log_z.detach().to(device=data_term.device, dtype=torch.float64)
    stderr = est.stderr.detach().to(device=data_term.device, dtype=torch.float64)
    return LogLikelihoodEstimate(log_likelihood=data_term - log_z, stderr=stderr,
                                 log_partition=est)
