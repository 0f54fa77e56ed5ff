r"""Likelihood-based losses: exact negative log-likelihood and the contrastive surrogate.

* :func:`exact_nll` — :math:`\frac1B\sum_b E_\theta(x_b) + \log Z(\theta)` where
  :math:`\log Z` is tractable (closed form, enumeration, quadrature);
* :func:`contrastive_loss` — :math:`\bar E(x^+) - \bar E(x^-)`, whose gradient is the
  Monte-Carlo MLE gradient behind CD-:math:`k`, PCD and Langevin training.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .._closed_form import (
    GradFn,
    closed_form_gradient,
    contrast_weights,
    weighted_energy_sum,
)
from .._validation import check_positive, evaluate_energy
from ..partition import exact_log_partition
from ._checks import EnergyLike, _check_data, _check_in_support

__all__ = ["contrastive_loss", "exact_nll"]


# ---------------------------------------------------------------------------- exact likelihood


def _float64_call(model: object,
                  method: str | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """A differentiable float64 version of ``model`` (or of ``model.<method>``).

    For an :class:`torch.nn.Module` the floating parameters and buffers are cast to
    float64 inside :func:`torch.func.functional_call` (the casts are differentiable, so
    gradients reach the original parameters). Plain callables are called as they are.
    """
    if not isinstance(model, nn.Module):
        fn = model if method is None else getattr(model, method)
        return lambda x: fn(x)

    class _Call(nn.Module):
        def __init__(self, inner: nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x) if method is None else getattr(self.inner, method)(x)

    wrapper = _Call(model)
    state = {
        name: (t.double() if t.is_floating_point() else t)
        for name, t in [*wrapper.named_parameters(), *wrapper.named_buffers()]
    }

    def call(x: torch.Tensor) -> torch.Tensor:
        try:
            return torch.func.functional_call(wrapper, state, (x.double(),))
        except RuntimeError:  # a model that cannot run in float64: evaluate natively
            native = next(iter(state.values()), x)
            return wrapper(x.to(native.dtype if native.is_floating_point() else x.dtype)).double()

    return call


def _resolve_log_partition(model: object, log_partition: object) -> torch.Tensor:
    if log_partition is None:
        lp = getattr(model, "log_partition", None)
        if callable(lp):
            log_z = lp()
        elif getattr(model, "support", None) is not None:
            log_z = exact_log_partition(model)
        else:
            raise ValueError(
                f"log Z of {type(model).__name__} is unknown: it has no log_partition() method "
                "and no discrete support to enumerate. Pass log_partition= as a tensor or a "
                "callable model -> 0-d tensor, e.g. lambda m: "
                "ebmlab.partition.grid_log_partition(m, bounds, resolution).")
    elif callable(log_partition):
        log_z = log_partition(model)
    else:
        log_z = log_partition
    if not isinstance(log_z, torch.Tensor):
        try:
            log_z = torch.as_tensor(float(log_z), dtype=torch.float64)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise TypeError("log_partition must be a number, a 0-d tensor or a callable "
                            f"returning one, got {type(log_z).__name__}.") from None
    if log_z.numel() != 1:
        raise ValueError(f"log_partition must be a scalar (0-d tensor), got shape "
                         f"{tuple(log_z.shape)}.")
    log_z = log_z.reshape(())
    if not bool(torch.isfinite(log_z)):
        raise ValueError(f"log_partition is not finite ({float(log_z)}).")
    return log_z


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
    x = _check_data(x, "x", model)
    _check_in_support(x, model, "x")
    log_z = _resolve_log_partition(model, log_partition)
    e = evaluate_energy(model, x, "model")
    return e.mean() + log_z.to(device=e.device)


# ---------------------------------------------------------------------------- contrastive


def _closed_form_route(energy: EnergyLike, x_data: torch.Tensor, x_model: torch.Tensor,
                       alpha: float) -> tuple[GradFn, torch.Tensor, torch.Tensor] | None:
    """``(grad_fn, x, weights)`` of :math:`\\bar E(x^+) - \\bar E(x^-)` in closed form, or None.

    The closed form applies when the model has one (``free_energy_grad``), there is no
    regulariser, gradients are being recorded and none is wanted for the data.
    """
    if (alpha != 0 or not torch.is_grad_enabled() or x_data.requires_grad
            or x_data.dtype != x_model.dtype):
        return None
    grad_fn = closed_form_gradient(energy)
    if grad_fn is None:
        return None
    x = torch.cat([x_data, x_model.detach()])
    return grad_fn, x, contrast_weights(x_data.shape[0], x_model.shape[0], x.dtype, x.device)


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
    The energy is evaluated once, on the two batches concatenated. When ``alpha`` is 0
    and the model has a closed-form gradient (``free_energy_grad``, e.g.
    :meth:`ebmlab.energies.RBM.free_energy_grad`), no autograd graph is built: the loss
    carries the closed-form gradient, which ``backward()`` and :func:`torch.autograd.grad`
    return for the parameters (with ``create_graph=True`` it is recomputed by autograd,
    so higher derivatives work). Data with ``requires_grad`` and :mod:`torch.func`
    transforms take the autograd route.
    """
    if validate:
        x_data = _check_data(x_data, "x_data", energy)
        x_model = _check_data(x_model, "x_model", energy)
        if x_data.shape[1:] != x_model.shape[1:]:
            raise ValueError(f"x_data and x_model must have the same event shape, got "
                             f"{tuple(x_data.shape)} and {tuple(x_model.shape)}.")
        if x_data.device != x_model.device:
            raise ValueError(f"x_data and x_model must be on the same device, got "
                             f"{x_data.device} and {x_model.device}.")
        alpha = check_positive(alpha, "alpha", strict=False)
    x_model = x_model.detach()
    route = _closed_form_route(energy, x_data, x_model, alpha)
    if route is not None:
        return weighted_energy_sum(energy, *route)  # type: ignore[arg-type]
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
