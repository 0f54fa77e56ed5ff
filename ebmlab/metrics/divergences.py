r"""Divergences between two models: KL on a 2D grid and the Fisher divergence from samples."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from .._validation import check_bool, check_model_data, check_rectangle, check_resolution
from ..energies.base import EnergyLike
from ..utils import tensor_device_of
from ._common import energies_float64

__all__ = ["fisher_divergence", "kl_divergence_grid"]


def _grid(bounds: tuple[tuple[float, float], ...], nx: int, ny: int,
          device: torch.device) -> torch.Tensor:
    (x0, x1), (y0, y1) = bounds
    hx, hy = (x1 - x0) / nx, (y1 - y0) / ny
    gx = x0 + hx * (torch.arange(nx, dtype=torch.float64, device=device) + 0.5)
    gy = y0 + hy * (torch.arange(ny, dtype=torch.float64, device=device) + 0.5)
    return torch.cartesian_prod(gx, gy)


def kl_divergence_grid(p_energy: EnergyLike, q_energy: EnergyLike,
                       bounds: Sequence[Sequence[float]], resolution: int | tuple[int, int] = 200,
                       ) -> torch.Tensor:
    r""":math:`\mathrm{KL}(p\,\|\,q)` of two 2D energies, each normalised on a grid.

    On the midpoints :math:`x_i` of a regular grid over ``bounds``, with
    :math:`p_i = e^{-E_p(x_i)}/\sum_j e^{-E_p(x_j)}` and :math:`q_i` likewise,

    .. math:: \mathrm{KL}(p\,\|\,q) \approx \sum_i p_i\,(\log p_i - \log q_i),

    the midpoint-rule quadrature of :math:`\int p \log(p/q)\,dx` (cell areas cancel). Energies
    are evaluated in float64 and combined with ``logsumexp``; neither needs to be normalised.

    Parameters
    ----------
    p_energy, q_energy : Energy or callable
        Energies ``(B, 2) -> (B,)``.
    bounds : ((float, float), (float, float))
        The window; it should hold essentially all the mass of both densities.
    resolution : int or (int, int)
        Grid points per axis.

    Returns
    -------
    torch.Tensor
        float64 0-d tensor, ``>= 0`` (``inf`` if :math:`q` vanishes where :math:`p` does not).

    Examples
    --------
    >>> import torch
    >>> e = lambda x: 0.5 * (x ** 2).sum(1)
    >>> float(kl_divergence_grid(e, e, ((-5, 5), (-5, 5)), 50))
    0.0
    """
    b = check_rectangle(bounds, dims=(2,))
    nx, ny = check_resolution(resolution, 2)
    pts = _grid(b, nx, ny, tensor_device_of(p_energy, torch.device("cpu")))
    with torch.no_grad():
        neg_p = -energies_float64(p_energy, pts, "p_energy")
        neg_q = -energies_float64(q_energy, pts, "q_energy")
    if torch.isnan(neg_p).any() or torch.isnan(neg_q).any():
        raise ValueError("an energy returned NaN on the grid; check the energies and bounds.")
    log_p = neg_p - torch.logsumexp(neg_p, 0)
    log_q = neg_q - torch.logsumexp(neg_q, 0)
    p = log_p.exp()
    terms = torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p))
    return terms.sum().clamp_min(0.0)


def _score_any(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
               name: str) -> torch.Tensor:
    """Output of a score function, or ``-dE/dx`` when ``fn`` returns energies ``(B,)``."""
    with torch.enable_grad():
        x_ = x.detach().requires_grad_(True)
        out = fn(x_)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"{name} must return a tensor, got {type(out).__name__}.")
        if out.shape == x.shape:
            return out.detach()
        if out.shape == (x.shape[0],):
            (g,) = torch.autograd.grad(out.sum(), x_, allow_unused=True)
            return (-g if g is not None else torch.zeros_like(x_)).detach()
    raise ValueError(f"{name} returned shape {tuple(out.shape)} for input {tuple(x.shape)}: "
                     f"expected a score {tuple(x.shape)} or energies ({x.shape[0]},).")


def fisher_divergence(score_p: Callable[[torch.Tensor], torch.Tensor],
                      score_q: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *,
                      return_stderr: bool = False,
                      ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""Fisher divergence :math:`\tfrac12\,\mathbb E_{x\sim p}\|s_p(x) - s_q(x)\|^2`, sampled.

    The quantity score matching minimises (Hyvärinen 2005), estimated by the sample mean
    over ``x``.

    Parameters
    ----------
    score_p, score_q : callable
        Score functions ``(B, *shape) -> (B, *shape)``; a callable returning energies
        ``(B,)`` is accepted too (its score is taken by autograd).
    x : torch.Tensor
        Samples of :math:`p`, continuous ``(B, *event_shape)``.
    return_stderr : bool
        Also return the standard error of the mean.

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        0-d estimate (and its standard error), detached.
    """
    x = check_model_data(x, "x", min_event_dims=1)
    check_bool(return_stderr, "return_stderr")
    sp = _score_any(score_p, x, "score_p")
    sq = _score_any(score_q, x, "score_q")
    per = 0.5 * (sp - sq).reshape(x.shape[0], -1).square().sum(1)
    value = per.mean()
    if not return_stderr:
        return value
    n = per.shape[0]
    se = per.std() / math.sqrt(n) if n > 1 else torch.full_like(value, float("inf"))
    return value, se
