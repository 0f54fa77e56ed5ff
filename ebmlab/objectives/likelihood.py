r"""Likelihood-based losses: exact negative log-likelihood and the contrastive surrogate.

* :func:`exact_nll` — :math:`\frac1B\sum_b E_\theta(x_b) + \log Z(\theta)` where
  :math:`\log Z` is tractable (closed form, enumeration, quadrature);
* :func:`contrastive_loss` — :math:`\bar E(x^+) - \bar E(x^-)`, whose gradient is the
  Monte-Carlo MLE gradient behind CD-:math:`k`, PCD and Langevin training.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._validation import (
    check_batch,
    check_in_support,
    check_model_data,
    check_number,
    evaluate_energy,
)
from ..energies.base import EnergyLike
from ..partition import resolve_log_partition

__all__ = ["contrastive_loss", "exact_nll"]


# ---------------------------------------------------------------------------- exact likelihood


def exact_nll(model: EnergyLike, x: torch.Tensor,
              log_partition: torch.Tensor | float | Callable[[object], torch.Tensor] | None = None,
              ) -> torch.Tensor:
    r"""Exact negative log-likelihood :math:`\frac1B\sum_b E_\theta(x_b) + \log Z(\theta)`.

    Its gradient is the exact maximum-likelihood gradient

    .. math:: \nabla_\theta\,\mathrm{NLL} = \mathbb E_\text{data}[\nabla_\theta E_\theta]
              - \mathbb E_{p_\theta}[\nabla_\theta E_\theta],

    since :math:`\nabla_\theta \log Z = -\mathbb E_{p_\theta}[\nabla_\theta E_\theta]`, provided
    :math:`\log Z` is computed differentiably (enumeration, closed form, grid quadrature).

    Parameters
    ----------
    model : Energy or callable
        Maps ``(B, *event_shape)`` to energies ``(B,)`` (the free energy for an RBM).
    x : torch.Tensor
        Data batch, floating point; for a discrete model, values in ``model.support``.
    log_partition : tensor, float or callable, optional
        :math:`\log Z(\theta)`, or a callable ``model -> 0-d tensor`` computing it. Default:
        ``model.log_partition()`` if the model has one, otherwise differentiable exact
        enumeration in float64 (:func:`ebmlab.partition.exact_log_partition`) for discrete
        models (those with ``support``; an RBM is summed over its smaller layer).

    Returns
    -------
    torch.Tensor
        0-d loss (float64 when :math:`\log Z` comes from enumeration).

    Raises
    ------
    ValueError
        Bad data (integer dtype, wrong shape, non-finite, values outside the support) or
        no way to compute :math:`\log Z`.

    Examples
    --------
    >>> import math
    >>> import torch
    >>> energy = lambda x: 0.5 * (x ** 2).sum(1)
    >>> log_z = torch.tensor(math.log(2 * math.pi))
    >>> loss = exact_nll(energy, torch.zeros(4, 2), log_partition=log_z)
    >>> round(float(loss), 4)
    1.8379
    """
    x = check_in_support(check_model_data(x, "x", model), model, "x")
    log_z = resolve_log_partition(model, log_partition)
    e = evaluate_energy(model, x, "model")
    return e.mean() + log_z.to(device=e.device)


# ---------------------------------------------------------------------------- contrastive


def contrastive_loss(energy: EnergyLike, x_data: torch.Tensor, x_model: torch.Tensor, *,
                     alpha: float = 0.0, validate: bool = True) -> torch.Tensor:
    r"""Contrastive surrogate :math:`\bar E(x^+) - \bar E(x^-)`, plus an energy-magnitude penalty.

    With :math:`x^+` the data and :math:`x^-` model samples (detached: no gradient
    flows through the sampler), the gradient is the Monte-Carlo estimate of the
    negative log-likelihood gradient

    .. math:: \frac1{B^+}\sum_b \nabla_\theta E_\theta(x^+_b)
              - \frac1{B^-}\sum_b \nabla_\theta E_\theta(x^-_b)

    ("push down the data, push up the samples"). With :math:`x^-` from :math:`k` Gibbs
    steps started at the data it is CD-:math:`k` (Hinton 2002), from persistent chains
    PCD (Tieleman 2008), from Langevin chains with a replay buffer the method of Du &
    Mordatch (2019), whose energy-magnitude regulariser is the ``alpha`` term.

    Parameters
    ----------
    energy : Energy or callable
        Maps ``(B, *event_shape)`` to ``(B,)``.
    x_data : torch.Tensor
        Positive (data) batch.
    x_model : torch.Tensor
        Negative (model sample) batch, same event shape; the batch size may differ.
    alpha : float
        Weight of the regulariser :math:`\alpha(\mathbb E[E(x^+)^2] + \mathbb E[E(x^-)^2])` (>= 0).
    validate : bool
        Check the batches (floating point, finite, matching shapes and devices) and
        ``alpha``. Checking finiteness reads the batches back from the device, so a
        training loop that validated its data once and whose sampler cannot leave the
        support (e.g. :func:`ebmlab.training.fit`) passes ``False``.

    Returns
    -------
    torch.Tensor
        0-d loss.

    Raises
    ------
    ValueError
        Bad batches (integer dtype, non-finite values, different event shapes) or ``alpha < 0``.

    Notes
    -----
    The energy is evaluated once, on the two batches concatenated, and the gradient
    comes from autograd. For an RBM it equals the textbook update
    :func:`ebmlab.energies.contrastive_divergence_gradient`, which the training methods
    CD and PCD use.
    """
    if validate:
        x_data, x_model = check_batch(x_data, "x_data"), check_batch(x_model, "x_model")
        if x_data.device != x_model.device:
            raise ValueError(f"x_data and x_model must be on the same device, got "
                             f"{x_data.device} and {x_model.device}.")
        if x_data.shape[1:] != x_model.shape[1:]:
            raise ValueError(f"x_data and x_model must have the same event shape, got "
                             f"{tuple(x_data.shape)} and {tuple(x_model.shape)}.")
        x_data = check_model_data(x_data, "x_data", energy)
        x_model = check_model_data(x_model, "x_model", energy)
        alpha = check_number(alpha, "alpha", at_least=0)
    x_model = x_model.detach()
    n_pos = x_data.shape[0]
    if x_data.dtype != x_model.dtype:  # energies of each batch in its own dtype
        e_pos = evaluate_energy(energy, x_data)
        e_neg = evaluate_energy(energy, x_model)
    else:
        e = evaluate_energy(energy, torch.cat([x_data, x_model]))
        e_pos, e_neg = e[:n_pos], e[n_pos:]
    loss = e_pos.mean() - e_neg.mean()
    if alpha > 0:
        loss = loss + alpha * (e_pos.square().mean() + e_neg.square().mean())
    return loss
