r"""Data sets of the course: 2D toy densities, bars-and-stripes and the 8x8 digits.

Nothing is downloaded: the toy sets are sampled here (seeded through ``generator=``),
bars-and-stripes is enumerated, and the digits ship with scikit-learn
(:func:`sklearn.datasets.load_digits`, 1797 images of 8x8 pixels with values 0..16).

Every sampler returns a float tensor of shape ``(n, 2)`` (``dtype`` and ``device``
selectable) and takes ``generator: torch.Generator | None`` for reproducibility.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from functools import lru_cache

import numpy as np
import torch

__all__ = [
    "bars_and_stripes",
    "binarized_digits",
    "checkerboard",
    "digits",
    "eight_gaussians",
    "iterate_minibatches",
    "rings",
    "two_gaussians",
    "two_moons",
]


# ---------------------------------------------------------------------------- validation


def _check_n(n: object, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int, got {n!r}.")
    if n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}.")
    return int(n)


def _check_nonneg(value: object, name: str) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
    return v


def _check_float_dtype(dtype: torch.dtype) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}.")
    return dtype


def _gen_device(generator: torch.Generator | None) -> torch.device:
    return torch.device("cpu") if generator is None else generator.device


def _randn(shape: tuple[int, ...], generator: torch.Generator | None,
           dtype: torch.dtype) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=_gen_device(generator), dtype=dtype)


def _rand(shape: tuple[int, ...], generator: torch.Generator | None,
          dtype: torch.dtype) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=_gen_device(generator), dtype=dtype)


def _categorical(n: int, weights: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    w = weights.to(_gen_device(generator), torch.float64)
    return torch.multinomial(w, n, replacement=True, generator=generator)


def _finish(x: torch.Tensor, dtype: torch.dtype, device: torch.device | str | None) -> torch.Tensor:
    return x.to(device=device if device is not None else "cpu", dtype=dtype)


def _check_weights(weights: Sequence[float], k: int | None, name: str = "weights") -> torch.Tensor:
    w = torch.as_tensor(weights, dtype=torch.float64)
    if w.dim() != 1 or w.numel() == 0 or (k is not None and w.numel() != k):
        expected = f"{k} values" if k is not None else "a non-empty 1-D sequence"
        raise ValueError(f"{name} must be {expected}, got {list(w.reshape(-1).tolist())}.")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or float(w.sum()) <= 0:
        raise ValueError(f"{name} must be finite, non-negative and not all zero, "
                         f"got {w.tolist()}.")
    return w / w.sum()


# ---------------------------------------------------------------------------- 2D toy sets


def two_moons(n: int, noise: float = 0.05, *, generator: torch.Generator | None = None,
              dtype: torch.dtype = torch.float32,
              device: torch.device | str | None = None) -> torch.Tensor:
    r"""Two interleaving half circles (as :func:`sklearn.datasets.make_moons`), sampled.

    The outer moon is :math:`(\cos t, \sin t)` and the inner one
    :math:`(1 - \cos t, \tfrac12 - \sin t)`, with :math:`t \sim \mathcal U[0, \pi]`,
    each holding half of the points, plus isotropic Gaussian noise of standard
    deviation ``noise``.

    Parameters
    ----------
    n : int
        Number of points.
    noise : float
        Standard deviation of the Gaussian noise added to each coordinate.
    generator : torch.Generator, optional
        Source of randomness.
    dtype, device
        Of the returned tensor (default float32 on the CPU).

    Returns
    -------
    torch.Tensor
        Shape ``(n, 2)``.

    Examples
    --------
    >>> import torch
    >>> x = two_moons(100, generator=torch.Generator().manual_seed(0))
    >>> x.shape
    torch.Size([100, 2])
    """
    n = _check_n(n)
    noise = _check_nonneg(noise, "noise")
    _check_float_dtype(dtype)
    t = _rand((n,), generator, torch.float64) * math.pi
    outer = torch.arange(n, device=t.device) < (n + 1) // 2
    x = torch.where(outer, torch.cos(t), 1.0 - torch.cos(t))
    y = torch.where(outer, torch.sin(t), 0.5 - torch.sin(t))
    pts = torch.stack([x, y], dim=1) + noise * _randn((n, 2), generator, torch.float64)
    return _finish(pts, dtype, device)


def rings(n: int, radii: Sequence[float] = (1.0, 2.0, 3.0), noise: float = 0.05, *,
          weights: Sequence[float] | None = None, generator: torch.Generator | None = None,
          dtype: torch.dtype = torch.float32,
          device: torch.device | str | None = None) -> torch.Tensor:
    r"""Concentric circles with Gaussian radial blur.

    A point picks ring :math:`k` with probability ``weights[k]`` (default: equal
    mass per ring), an angle :math:`\phi\sim\mathcal U[0, 2\pi)`, and lies at
    :math:`r_k(\cos\phi, \sin\phi)` plus isotropic Gaussian noise of standard
    deviation ``noise``.

    Parameters
    ----------
    n : int
        Number of points.
    radii : sequence of float
        Radii of the rings (positive).
    noise : float
        Standard deviation of the Gaussian noise per coordinate.
    weights : sequence of float, optional
        Mass of each ring (normalised); default equal.
    generator, dtype, device
        As in :func:`two_moons`.

    Returns
    -------
    torch.Tensor
        Shape ``(n, 2)``.
    """
    n = _check_n(n)
    noise = _check_nonneg(noise, "noise")
    _check_float_dtype(dtype)
    r = torch.as_tensor(radii, dtype=torch.float64)
    if r.dim() != 1 or r.numel() == 0 or not bool(torch.isfinite(r).all()) or bool((r <= 0).any()):
        raise ValueError(f"radii must be a non-empty sequence of positive numbers, got {radii!r}.")
    w = (torch.full((r.numel(),), 1.0 / r.numel(), dtype=torch.float64) if weights is None
         else _check_weights(weights, r.numel()))
    k = _categorical(n, w, generator)
    phi = _rand((n,), generator, torch.float64) * (2 * math.pi)
    rad = r.to(k.device)[k]
    pts = torch.stack([rad * torch.cos(phi), rad * torch.sin(phi)], dim=1)
    pts = pts + noise * _randn((n, 2), generator, torch.float64)
    return _finish(pts, dtype, device)


def _mixture(n: int, means: torch.Tensor, std: float, w: torch.Tensor,
             generator: torch.Generator | None, return_labels: bool, dtype: torch.dtype,
             device: torch.device | str | None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    k = _categorical(n, w, generator)
    pts = means.to(k.device)[k] + std * _randn((n, means.shape[1]), generator, torch.float64)
    x = _finish(pts, dtype, device)
    if return_labels:
        return x, k.to(x.device)
    return x


def eight_gaussians(n: int, radius: float = 2.0, std: float = 0.1, *,
                    return_labels: bool = False, generator: torch.Generator | None = None,
                    dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None,
                    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""Equal mixture of 8 isotropic Gaussians on a circle.

    Component :math:`k = 0..7` has mean :math:`r(\cos\tfrac{2\pi k}{8}, \sin\tfrac{2\pi k}{8})`
    and covariance :math:`\text{std}^2 I`.

    Parameters
    ----------
    n : int
        Number of points.
    radius : float
        Radius of the circle of means.
    std : float
        Standard deviation of each component.
    return_labels : bool
        Also return the component index of each point, shape ``(n,)`` (int64).
    generator, dtype, device
        As in :func:`two_moons`.

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        Points of shape ``(n, 2)`` (and labels).

    Notes
    -----
    The means are ``radius * torch.stack([cos(2πk/8), sin(2πk/8)], 1)``; pass them to
    :func:`ebmlab.metrics.mode_weights` to check the mass of each mode.
    """
    n = _check_n(n)
    radius = _check_nonneg(radius, "radius")
    std = _check_nonneg(std, "std")
    _check_float_dtype(dtype)
    ang = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    means = radius * torch.stack([torch.cos(ang), torch.sin(ang)], dim=1)
    w = torch.full((8,), 1 / 8, dtype=torch.float64)
    return _mixture(n, means, std, w, generator, return_labels, dtype, device)


def two_gaussians(n: int, weights: Sequence[float] = (0.8, 0.2),
                  means: Sequence[Sequence[float]] = ((5.0, 5.0), (-5.0, -5.0)),
                  std: float = 1.0, *, return_labels: bool = False,
                  generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                  device: torch.device | str | None = None,
                  ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""The two-Gaussian mixture of Song & Ermon (2019), section 3.2.

    :math:`p = \tfrac45\,\mathcal N((5,5), I) + \tfrac15\,\mathcal N((-5,-5), I)` by default:
    plain Langevin dynamics with the exact score gets the 0.8/0.2 weights wrong,
    annealed Langevin gets them right.

    Parameters
    ----------
    n : int
        Number of points.
    weights : sequence of float
        Mixture weights (normalised), one per mean.
    means : sequence of (float, float)
        Component means, shape ``(K, d)``.
    std : float
        Standard deviation of every component.
    return_labels : bool
        Also return the component index of each point.
    generator, dtype, device
        As in :func:`two_moons`.

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        Points of shape ``(n, d)`` (and labels ``(n,)``).
    """
    n = _check_n(n)
    std = _check_nonneg(std, "std")
    _check_float_dtype(dtype)
    m = torch.as_tensor(means, dtype=torch.float64)
    if m.dim() != 2 or m.shape[0] == 0 or not bool(torch.isfinite(m).all()):
        raise ValueError(f"means must be a (K, d) array of finite numbers, got {means!r}.")
    w = _check_weights(weights, m.shape[0])
    return _mixture(n, m, std, w, generator, return_labels, dtype, device)


def checkerboard(n: int, n_squares: int = 4, size: float = 8.0, *,
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> torch.Tensor:
    r"""Uniform density on the dark squares of a checkerboard.

    The square :math:`[-\text{size}/2, \text{size}/2]^2` is cut into
    ``n_squares`` × ``n_squares`` cells; cell :math:`(i, j)` is dark when
    :math:`i + j` is even, and the points are uniform on the dark cells (the
    standard 4×4 board on :math:`[-4, 4]^2` by default).

    Parameters
    ----------
    n : int
        Number of points.
    n_squares : int
        Cells per side (at least 2).
    size : float
        Side length of the board.
    generator, dtype, device
        As in :func:`two_moons`.

    Returns
    -------
    torch.Tensor
        Shape ``(n, 2)``.
    """
    n = _check_n(n)
    n_squares = _check_n(n_squares, "n_squares")
    if n_squares < 2:
        raise ValueError(f"n_squares must be >= 2, got {n_squares}.")
    size = _check_nonneg(size, "size")
    if size == 0:
        raise ValueError("size must be > 0, got 0.")
    _check_float_dtype(dtype)
    ij = torch.cartesian_prod(torch.arange(n_squares), torch.arange(n_squares))
    dark = ij[(ij.sum(1) % 2) == 0].to(torch.float64)
    w = torch.full((dark.shape[0],), 1.0 / dark.shape[0], dtype=torch.float64)
    cell = dark.to(_gen_device(generator))[_categorical(n, w, generator)]
    u = _rand((n, 2), generator, torch.float64)
    width = size / n_squares
    pts = (cell + u) * width - size / 2
    return _finish(pts, dtype, device)


# ---------------------------------------------------------------------------- binary sets


def bars_and_stripes(size: int, *, dtype: torch.dtype = torch.float32,
                     device: torch.device | str | None = None) -> torch.Tensor:
    r"""All distinct bars-and-stripes patterns of a ``size`` × ``size`` image (MacKay 2003).

    A pattern switches on a subset of the columns (bars) or a subset of the rows
    (stripes). Both families contain the all-off and all-on images, so there are
    :math:`2^{\text{size}+1} - 2` distinct patterns.

    Parameters
    ----------
    size : int
        Side of the image (at least 1).
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor
        Shape ``(2**(size+1) - 2, size*size)``, values in {0, 1}, rows are the
        images flattened in row-major order; bars first, then the stripes that are
        not also bars.

    Examples
    --------
    >>> bars_and_stripes(3).shape
    torch.Size([14, 9])
    """
    size = _check_n(size, "size")
    _check_float_dtype(dtype)
    subsets = torch.cartesian_prod(*([torch.tensor([0.0, 1.0])] * size)).reshape(-1, size)
    bars = subsets[:, None, :].expand(-1, size, size)  # column j on when subsets[j] == 1
    stripes = subsets[:, :, None].expand(-1, size, size)  # row i on
    constant = (subsets == subsets[:, :1]).all(dim=1)
    pats = torch.cat([bars, stripes[~constant]]).reshape(-1, size * size)
    return _finish(pats, dtype, device)


@lru_cache(maxsize=1)
def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.astype(np.float64), d.target.astype(np.int64)


def digits(*, as_images: bool = False, return_labels: bool = False,
           dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
           ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""scikit-learn's 8x8 handwritten digits, grey levels scaled to :math:`[0, 1]`.

    The 1797 images of :func:`sklearn.datasets.load_digits` (shipped with
    scikit-learn, no download), pixel values divided by 16.

    Parameters
    ----------
    as_images : bool
        Return shape ``(1797, 1, 8, 8)`` (for convolutional energies) instead of
        ``(1797, 64)``.
    return_labels : bool
        Also return the digit labels (int64, shape ``(1797,)``).
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
    """
    _check_float_dtype(dtype)
    data, target = _load_digits()
    x = torch.from_numpy(data / 16.0)
    if as_images:
        x = x.reshape(-1, 1, 8, 8)
    x = _finish(x, dtype, device)
    if return_labels:
        return x, torch.from_numpy(target).to(x.device)
    return x


def binarized_digits(threshold: float = 0.5, *, scale: bool = True, as_images: bool = False,
                     return_labels: bool = False, dtype: torch.dtype = torch.float32,
                     device: torch.device | str | None = None,
                     ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""scikit-learn's 8x8 digits binarised: pixel on when its grey level exceeds ``threshold``.

    The binary data of chapter 7 (RBMs trained by CD/PCD): :math:`x_i = 1` when
    :math:`\text{pixel}_i / 16 > \text{threshold}`.

    Parameters
    ----------
    threshold : float
        Threshold on the grey level; on the :math:`[0, 1]` scale when ``scale`` is
        true (default 0.5), on the raw 0..16 scale otherwise.
    scale : bool
        Whether ``threshold`` refers to grey levels divided by 16.
    as_images : bool
        Return shape ``(1797, 1, 8, 8)`` instead of ``(1797, 64)``.
    return_labels : bool
        Also return the digit labels.
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        Values in {0, 1}, shape ``(1797, 64)`` by default.
    """
    t = _check_nonneg(threshold, "threshold")
    _check_float_dtype(dtype)
    data, target = _load_digits()
    grey = data / 16.0 if scale else data
    x = torch.from_numpy((grey > t).astype(np.float64))
    if as_images:
        x = x.reshape(-1, 1, 8, 8)
    x = _finish(x, dtype, device)
    if return_labels:
        return x, torch.from_numpy(target).to(x.device)
    return x


# ---------------------------------------------------------------------------- batching


def iterate_minibatches(x: torch.Tensor | Sequence[torch.Tensor], batch_size: int, *,
                        shuffle: bool = True, generator: torch.Generator | None = None,
                        drop_last: bool = False,
                        ) -> Iterator[torch.Tensor | tuple[torch.Tensor, ...]]:
    """Yield minibatches of one epoch over ``x`` (no :class:`torch.utils.data.DataLoader`).

    Parameters
    ----------
    x : torch.Tensor or sequence of torch.Tensor
        Data with a leading batch axis; several tensors (e.g. data and labels)
        with the same length are batched together and yielded as a tuple.
    batch_size : int
        Number of rows per batch.
    shuffle : bool
        Visit the rows in a random order (drawn from ``generator``).
    generator : torch.Generator, optional
        Source of the permutation; may live on another device than ``x``.
    drop_last : bool
        Skip the final batch when it is smaller than ``batch_size``.

    Yields
    ------
    torch.Tensor or tuple of torch.Tensor
        Index views ``x[idx]`` on the device of ``x``.

    Examples
    --------
    >>> import torch
    >>> [b.shape[0] for b in iterate_minibatches(torch.zeros(10, 2), 4, shuffle=False)]
    [4, 4, 2]
    """
    single = isinstance(x, torch.Tensor)
    tensors = (x,) if single else tuple(x)
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise TypeError("x must be a torch.Tensor or a non-empty sequence of tensors, "
                        f"got {type(x).__name__}.")
    if any(t.dim() == 0 for t in tensors):
        raise ValueError("x must have a leading batch axis, got a 0-d tensor.")
    n = tensors[0].shape[0]
    if any(t.shape[0] != n for t in tensors):
        raise ValueError("all tensors in x must have the same length, got "
                         f"{[t.shape[0] for t in tensors]}.")
    batch_size = _check_n(batch_size, "batch_size")
    device = tensors[0].device
    if shuffle:
        idx = torch.randperm(n, generator=generator, device=_gen_device(generator)).to(device)
    else:
        idx = torch.arange(n, device=device)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        b = idx[start:start + batch_size]
        out = tuple(t[b.to(t.device)] for t in tensors)
        yield out[0] if single else out
