"""Samples: points as a scatter (a histogram in 1-D), images as one tiled grid."""

from __future__ import annotations

import math

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from ._axes import _get_ax, _label_axes, _to_numpy
from .grids import Bounds, window
from .style import _LABELS, PALETTE


def plot_samples(x: object, *, ax: Axes | None = None, kind: str = "model", alpha: float = 0.5,
                 s: float = 6.0, label: str | None = None, color: str | None = None,
                 bounds: Bounds | None = None, bins: int = 50) -> Axes:
    """Scatter 2-D samples in the palette colour of ``kind`` (a histogram for 1-D samples).

    Parameters
    ----------
    x : tensor or array, shape (N, 2), (N, 1) or (N,)
        Samples, on any device.
    kind : str
        A key of :data:`PALETTE`: ``"data"``, ``"model"``, ``"chains"``, ``"reference"``, ...
    alpha, s : float
        Marker opacity and size.
    label : str, optional
        Legend entry (default from ``kind``, e.g. "model samples").
    bounds : optional
        Axis limits.
    bins : int
        Histogram bins for 1-D samples (normalised to a density).

    Returns
    -------
    Axes
    """
    if kind not in PALETTE:
        raise ValueError(f"kind must be one of {sorted(PALETTE)}, got {kind!r}.")
    pts = _to_numpy(x, "x")
    if pts.ndim == 1:
        pts = pts[:, None]
    if pts.ndim != 2 or pts.shape[1] not in (1, 2):
        raise ValueError(f"x must have shape (N, 2), (N, 1) or (N,), got {pts.shape}.")
    ax = _get_ax(ax)
    b = window(bounds) if bounds is not None else None
    color = color or PALETTE[kind]
    label = label if label is not None else _LABELS.get(kind, kind)
    if pts.shape[1] == 1:
        ax.hist(pts[:, 0], bins=bins, density=True, color=color, alpha=alpha, label=label,
                range=b[0] if b else None)
        if not ax.get_ylabel():
            ax.set_ylabel("density")
    else:
        ax.scatter(pts[:, 0], pts[:, 1], s=s, alpha=alpha, color=color, label=label,
                   linewidths=0)
    _label_axes(ax, pts.shape[1], b)
    return ax


def tile_images(images: object, *, nrow: int | None = None,
                image_shape: tuple[int, int] | None = None, normalize: str | None = "all",
                padding: int = 1) -> np.ndarray:
    """Tile ``N`` images into one array, ``nrow`` images per row, separated by NaN padding.

    Parameters
    ----------
    images : tensor or array, (N, H, W), (N, 1, H, W) or (N, H*W) with ``image_shape``
        The images (an RBM's filters are ``rbm.weight.T`` with ``image_shape=(H, W)``).
    nrow : int, optional
        Images per row (default ``ceil(sqrt(N))``).
    image_shape : (H, W), optional
        Required for flat images.
    normalize : {"all", "each", None}
        Rescale to [0, 1] by the global min/max (``"all"``), per image (``"each"``,
        for filters), or not at all.
    padding : int
        Pixels between images (NaN, drawn in white).

    Returns
    -------
    numpy.ndarray
        Shape ``(rows*(H+p)-p, nrow*(W+p)-p)``.
    """
    arr = _to_numpy(images, "images")
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 2:
        if image_shape is None:
            raise ValueError(f"flat images of shape {arr.shape} need image_shape=(H, W).")
        if math.prod(image_shape) != arr.shape[1]:
            raise ValueError(f"image_shape {tuple(image_shape)} does not match {arr.shape[1]} "
                             "pixels per image.")
        arr = arr.reshape(arr.shape[0], *image_shape)
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise ValueError("images must have shape (N, H, W), (N, 1, H, W) or (N, H*W) with N >= 1, "
                         f"got {arr.shape}.")
    if normalize not in ("all", "each", None):
        raise ValueError(f"normalize must be 'all', 'each' or None, got {normalize!r}.")
    if normalize is not None:
        axes = (1, 2) if normalize == "each" else None
        lo = arr.min(axis=axes, keepdims=True)
        span = arr.max(axis=axes, keepdims=True) - lo
        arr = np.where(span > 0, (arr - lo) / np.where(span > 0, span, 1.0), 0.5)
    n, h, w = arr.shape
    ncol = int(nrow) if nrow is not None else math.ceil(math.sqrt(n))
    if ncol < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow!r}.")
    nrows = math.ceil(n / ncol)
    p = int(padding)
    out = np.full((nrows * (h + p) - p, ncol * (w + p) - p), np.nan)
    for k in range(n):  # N is a display size (tens to hundreds): a loop is fine here
        r, c = divmod(k, ncol)
        out[r * (h + p):r * (h + p) + h, c * (w + p):c * (w + p) + w] = arr[k]
    return out


def image_grid(images: object, *, nrow: int | None = None, ax: Axes | None = None,
               cmap: str = "gray", title: str | None = None,
               image_shape: tuple[int, int] | None = None, normalize: str | None = "all",
               padding: int = 1) -> Axes:
    """Show images (samples, RBM filters) as one grid; see :func:`tile_images`.

    Returns
    -------
    Axes
    """
    tiled = tile_images(images, nrow=nrow, image_shape=image_shape, normalize=normalize,
                        padding=padding)
    if ax is None:
        width = min(7.0, max(2.0, tiled.shape[1] / 16))
        ax = plt.subplots(figsize=(width, width * tiled.shape[0] / tiled.shape[1]))[1]
    ax = _get_ax(ax)
    cm = mpl.colormaps[cmap].with_extremes(bad="white")
    vmin, vmax = (0.0, 1.0) if normalize is not None else (None, None)
    ax.imshow(np.ma.masked_invalid(tiled), cmap=cm, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax
