"""Measures computed from samples alone, with no energy: MMD and the mass near each mode."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._validation import check_batch, check_finite, check_number

__all__ = ["mmd", "mode_weights"]


def _flat_samples(x: object, name: str) -> torch.Tensor:
    x = check_batch(x, name, allow_empty=False)
    if x.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}.")
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
        h2 = torch.tensor(check_number(bandwidth, "bandwidth", greater_than=0) ** 2, dtype=xf.dtype,
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
        keep = dmin <= check_number(max_distance, "max_distance", greater_than=0)
    counts = torch.bincount(nearest[keep], minlength=c.shape[0]).to(torch.float64)
    n = xf.shape[0]
    w = counts / n
    return w, (w * (1 - w) / n).sqrt()
