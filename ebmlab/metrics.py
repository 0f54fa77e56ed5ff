r"""How good is a trained energy-based model? Likelihoods, divergences and sample tests.

* :func:`log_likelihood` — exact mean log-likelihood where :math:`\log Z` is tractable;
* :func:`ais_log_likelihood` — the same with :math:`\log Z` from annealed importance
  sampling (Neal 2001; Salakhutdinov & Murray 2008), with a standard error;
* :func:`kl_divergence_grid` — :math:`\mathrm{KL}(p\,\|\,q)` of two 2D energies on a grid;
* :func:`fisher_divergence` — :math:`\tfrac12\mathbb E_p\|s_p - s_q\|^2` from samples of :math:`p`;
* :func:`mmd` — unbiased squared maximum mean discrepancy (Gretton et al. 2012);
* :func:`mode_weights` — the mass of a sample near each mode, with binomial standard errors;
* :func:`effective_sample_size` — Kish's ESS of importance weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ._validation import check_batch, check_finite, check_positive, evaluate_energy
from .objectives._checks import _check_data, _check_in_support
from .objectives.likelihood import _float64_call, _resolve_log_partition
from .partition import LogPartitionEstimate, ais, effective_sample_size

__all__ = [
    "LogLikelihoodEstimate",
    "ais_log_likelihood",
    "effective_sample_size",
    "fisher_divergence",
    "kl_divergence_grid",
    "log_likelihood",
    "mmd",
    "mode_weights",
]

EnergyLike = Callable[[torch.Tensor], torch.Tensor]


def _as_float_data(x: object, name: str, model: object = None) -> torch.Tensor:
    """Integer/boolean data (e.g. binary patterns) become float64; then the usual checks."""
    x = check_batch(x, name)
    if not x.is_floating_point() and not x.is_complex():
        x = x.to(torch.float64)
    return _check_data(x, name, model)


def _module_device(fn: object, default: torch.device) -> torch.device:
    if isinstance(fn, nn.Module):
        for t in (*fn.parameters(), *fn.buffers()):
            return t.device
    return default


def _energy64(energy: EnergyLike, x: torch.Tensor, name: str) -> torch.Tensor:
    """Energies of ``x`` computed in float64 (parameters cast differentiably), shape ``(B,)``."""
    dev = _module_device(energy, x.device)
    fn = _float64_call(energy)
    e = evaluate_energy(fn, x.to(device=dev, dtype=torch.float64), name)
    return e.to(device=x.device, dtype=torch.float64)


# ---------------------------------------------------------------------------- likelihood


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
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}.")
    x = _as_float_data(x, "x", model)
    _check_in_support(x, model, "x")
    with torch.no_grad():
        log_z = _resolve_log_partition(model, log_partition).to(torch.float64)
        ll = -_energy64(model, x, "model") - log_z.to(x.device)
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
    _check_in_support(x, model, "x")
    est = ais(model, n_temperatures, n_runs, **ais_kwargs)
    with torch.no_grad():
        data_term = (-_energy64(model, x, "model")).mean()
    log_z = est.log_z.detach().to(device=data_term.device, dtype=torch.float64)
    stderr = est.stderr.detach().to(device=data_term.device, dtype=torch.float64)
    return LogLikelihoodEstimate(log_likelihood=data_term - log_z, stderr=stderr,
                                 log_partition=est)


# ---------------------------------------------------------------------------- divergences


def _check_bounds(bounds: object) -> tuple[tuple[float, float], tuple[float, float]]:
    try:
        (x0, x1), (y0, y1) = bounds  # type: ignore[misc]
        b = ((float(x0), float(x1)), (float(y0), float(y1)))
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be ((xmin, xmax), (ymin, ymax)), got {bounds!r}.") from None
    for lo, hi in b:
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"bounds must be finite with min < max, got {bounds!r}.")
    return b


def _check_resolution(resolution: object) -> tuple[int, int]:
    res = (resolution, resolution) if isinstance(resolution, int) else resolution
    try:
        nx, ny = res  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ValueError(f"resolution must be an int or a pair of ints, got {resolution!r}.") \
            from None
    for r in (nx, ny):
        if isinstance(r, bool) or not isinstance(r, int) or r < 2:
            raise ValueError(f"resolution must be an int >= 2 (or a pair), got {resolution!r}.")
    return nx, ny


def _grid(bounds: tuple[tuple[float, float], tuple[float, float]], nx: int, ny: int,
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
    b = _check_bounds(bounds)
    nx, ny = _check_resolution(resolution)
    device = _module_device(p_energy, torch.device("cpu"))
    pts = _grid(b, nx, ny, device)
    with torch.no_grad():
        neg_p = -_energy64(p_energy, pts, "p_energy")
        neg_q = -_energy64(q_energy, pts, "q_energy")
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
    x = _check_data(x, "x", min_event_dims=1)
    sp = _score_any(score_p, x, "score_p")
    sq = _score_any(score_q, x, "score_q")
    per = 0.5 * (sp - sq).reshape(x.shape[0], -1).square().sum(1)
    value = per.mean()
    if not return_stderr:
        return value
    n = per.shape[0]
    se = per.std() / math.sqrt(n) if n > 1 else torch.full_like(value, float("inf"))
    return value, se


# ---------------------------------------------------------------------------- sample tests


def _flat_samples(x: object, name: str) -> torch.Tensor:
    x = check_batch(x, name)
    if not x.is_floating_point():
        x = x.to(torch.float64)
    check_finite(x, name)
    return x.reshape(x.shape[0], -1)


def _median_sq_distance(z: torch.Tensor, max_points: int = 1000) -> torch.Tensor:
    if z.shape[0] > max_points:  # evenly spaced subsample: deterministic, no RNG consumed
        z = z[torch.linspace(0, z.shape[0] - 1, max_points, device=z.device).long()]
    d2 = torch.cdist(z, z).square()
    iu = torch.triu_indices(z.shape[0], z.shape[0], offset=1, device=z.device)
    return d2[iu[0], iu[1]].median()


def _kernel_sum(a: torch.Tensor, b: torch.Tensor, gamma: torch.Tensor,
                chunk: int = 2048) -> torch.Tensor:
    total = torch.zeros((), dtype=a.dtype, device=a.device)
    for start in range(0, a.shape[0], chunk):
        d2 = torch.cdist(a[start:start + chunk], b).square()
        total = total + torch.exp(-gamma * d2).sum()
    return total


def mmd(x: torch.Tensor, y: torch.Tensor, *, bandwidth: float | None = None) -> torch.Tensor:
    r"""Unbiased squared maximum mean discrepancy with a Gaussian kernel (Gretton et al. 2012).

    .. math:: \widehat{\mathrm{MMD}}^2_u = \frac{1}{m(m-1)}\sum_{i\neq j} k(x_i, x_j)
              + \frac{1}{n(n-1)}\sum_{i\neq j} k(y_i, y_j) - \frac{2}{mn}\sum_{i,j} k(x_i, y_j),

    :math:`k(a, b) = \exp(-\|a-b\|^2 / 2h^2)`. Its expectation is the population
    :math:`\mathrm{MMD}^2`, zero iff the two laws agree, so the estimate can be slightly
    negative when they do.

    Parameters
    ----------
    x, y : torch.Tensor
        Samples ``(m, *shape)`` and ``(n, *shape)`` (flattened), ``m, n >= 2``.
    bandwidth : float, optional
        Kernel width :math:`h`; default the median heuristic: :math:`h` = median distance
        between the pooled points (on at most 1000 of them).

    Returns
    -------
    torch.Tensor
        float64 0-d tensor.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(200, 2, generator=g), torch.randn(200, 2, generator=g) + 3
    >>> bool(mmd(x, y) > 0.1)
    True
    """
    xf = _flat_samples(x, "x").to(torch.float64)
    yf = _flat_samples(y, "y").to(device=xf.device, dtype=torch.float64)
    if xf.shape[1] != yf.shape[1]:
        raise ValueError(f"x and y must have the same event shape, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}.")
    m, n = xf.shape[0], yf.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"mmd needs at least 2 samples in x and in y, got {m} and {n}.")
    if bandwidth is None:
        h2 = _median_sq_distance(torch.cat([xf, yf]))
        if not bool(h2 > 0):
            h2 = torch.ones((), dtype=xf.dtype, device=xf.device)
    else:
        h2 = torch.tensor(check_positive(bandwidth, "bandwidth") ** 2, dtype=xf.dtype,
                          device=xf.device)
    gamma = 0.5 / h2
    kxx = (_kernel_sum(xf, xf, gamma) - m) / (m * (m - 1))
    kyy = (_kernel_sum(yf, yf, gamma) - n) / (n * (n - 1))
    kxy = _kernel_sum(xf, yf, gamma) / (m * n)
    return kxx + kyy - 2 * kxy


def mode_weights(x: torch.Tensor, centers: torch.Tensor | Sequence[Sequence[float]], *,
                 max_distance: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Fraction of samples nearest to each center, with binomial standard errors.

    Sample :math:`x_b` is assigned to its nearest center (Euclidean); the weight of
    mode :math:`k` is :math:`\hat w_k = n_k/n` with standard error
    :math:`\sqrt{\hat w_k(1-\hat w_k)/n}`. Used to check that samples put the right mass
    on each mode (e.g. the 0.8/0.2 mixture of Song & Ermon 2019).

    Parameters
    ----------
    x : torch.Tensor
        Samples ``(n, d)``.
    centers : torch.Tensor or sequence
        Mode locations ``(K, d)``.
    max_distance : float, optional
        Samples farther than this from every center belong to no mode (then the weights
        sum to less than one).

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        Weights ``(K,)`` and their standard errors ``(K,)``, float64.

    Examples
    --------
    >>> import torch
    >>> w, se = mode_weights(torch.tensor([[0.1, 0.], [0.9, 1.], [1.1, 1.]]), [[0., 0.], [1., 1.]])
    >>> w.tolist()
    [0.3333333333333333, 0.6666666666666666]
    """
    xf = _flat_samples(x, "x").to(torch.float64)
    c = torch.as_tensor(centers, dtype=torch.float64, device=xf.device)
    if c.dim() != 2 or c.shape[0] == 0 or c.shape[1] != xf.shape[1]:
        raise ValueError(f"centers must have shape (K, {xf.shape[1]}) to match x of shape "
                         f"{tuple(x.shape)}, got {tuple(c.shape)}.")
    if not bool(torch.isfinite(c).all()):
        raise ValueError("centers must be finite.")
    d = torch.cdist(xf, c)
    dmin, nearest = d.min(dim=1)
    keep = torch.ones_like(dmin, dtype=torch.bool)
    if max_distance is not None:
        keep = dmin <= check_positive(max_distance, "max_distance")
    counts = torch.bincount(nearest[keep], minlength=c.shape[0]).to(torch.float64)
    n = xf.shape[0]
    w = counts / n
    return w, (w * (1 - w) / n).sqrt()
