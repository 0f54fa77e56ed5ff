r"""Figures of the book: energy landscapes, densities, score fields, samples, chains, images.

One palette and one style across the book. Every function accepts an energy as
any callable mapping a batch ``(B, d)`` to energies ``(B,)`` (an
:class:`~ebmlab.energies.Energy` or a plain function), evaluates it on a grid
under :func:`torch.no_grad` in chunks on the energy's own device, and moves only
the result to CPU NumPy. Drawing functions take an optional ``ax`` and return
the :class:`~matplotlib.axes.Axes` they drew into.

Conventions: :math:`p(x) = \exp(-E(x))/Z`, the tempered density
:math:`p_T(x) \propto \exp(-E(x)/T)`, and the score :math:`s(x) = -\nabla_x E(x)`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch
from cycler import cycler
from matplotlib.animation import FuncAnimation, HTMLWriter
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from ._validation import check_positive, evaluate_energy
from .energies.base import score_of

__all__ = [
    "DENSITY_CMAP",
    "ENERGY_CMAP",
    "PALETTE",
    "animate_chains",
    "density_grid",
    "energy_grid",
    "image_grid",
    "method_color",
    "plot_chains",
    "plot_density",
    "plot_energy",
    "plot_energy_surface_3d",
    "plot_learning_curves",
    "plot_samples",
    "plot_score_field",
    "small_multiples",
    "tile_images",
    "use_style",
]

EnergyLike = Callable[[torch.Tensor], torch.Tensor]
Bounds = Sequence[Sequence[float]] | Sequence[float]

#: The book's colours (colour-blind safe: Okabe & Ito, and Tol's "muted" for methods).
PALETTE: dict[str, str] = {
    "data": "#0072B2",        # blue: observed data
    "model": "#D55E00",       # vermillion: samples from the model
    "chains": "#CC79A7",      # reddish purple: MCMC chains
    "reference": "#000000",   # black: exact / reference values
    "truth": "#000000",       # alias of "reference"
    "energy": "#3B528B",      # 1-D energy curves
    "density": "#B63679",     # 1-D density curves
    "mle": "#332288",
    "cd1": "#CC6677",
    "cd10": "#AA4499",
    "pcd": "#882255",
    "sm": "#117733",
    "ssm": "#44AA99",
    "dsm": "#88CCEE",
    "ncsn": "#999933",
}
_METHODS = ("mle", "cd1", "cd10", "pcd", "sm", "ssm", "dsm", "ncsn")
_EXTRA_COLORS = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#DDCC77", "#661100", "#6699CC")

#: Perceptually uniform colormap of energies.
ENERGY_CMAP = "viridis"
#: Perceptually uniform colormap of densities.
DENSITY_CMAP = "magma"

_STYLE: dict[str, Any] = {
    "figure.figsize": (7.0, 4.2),
    "figure.dpi": 110,
    "savefig.dpi": "figure",
    "figure.constrained_layout.use": True,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "lines.linewidth": 1.6,
    "image.cmap": ENERGY_CMAP,
    "axes.prop_cycle": cycler(color=[PALETTE[m] for m in _METHODS]),
}
_LABELS = {"data": "data", "model": "model samples", "chains": "chains",
           "reference": "reference", "truth": "truth"}


def use_style() -> None:
    """Set the book-wide matplotlib style (fonts, dpi 110, a 7-inch column, the palette).

    Changes :data:`matplotlib.rcParams` globally; chapters call it once in their
    first cell. Importing :mod:`ebmlab` does not change any setting.
    """
    mpl.rcParams.update(_STYLE)


def method_color(name: str) -> str:
    """Colour of a training method (``"CD-1"``, ``"cd1"`` and ``"CD_1"`` are the same key).

    Unknown names get a fixed colour chosen from their name, so a method keeps
    its colour across figures.
    """
    key = str(name).lower().replace("-", "").replace("_", "").replace(" ", "")
    if key in PALETTE:
        return PALETTE[key]
    return _EXTRA_COLORS[sum(map(ord, key)) % len(_EXTRA_COLORS)]


# ----------------------------------------------------------------------------------- grids


def _check_bounds(bounds: Bounds | None, energy: object = None) -> tuple[tuple[float, float], ...]:
    if bounds is None:
        bounds = getattr(energy, "bounds", None)
        if bounds is None:
            raise ValueError("bounds is required: pass ((xmin, xmax), (ymin, ymax)) or "
                             "(xmin, xmax); the energy has no .bounds attribute.")
    arr = np.asarray(bounds, dtype=float) if not isinstance(bounds, torch.Tensor) \
        else bounds.detach().cpu().double().numpy()
    if arr.shape == (2,):
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] not in (1, 2):
        raise ValueError("bounds must be ((xmin, xmax), (ymin, ymax)) or (xmin, xmax), "
                         f"got {bounds!r}.")
    if not np.all(np.isfinite(arr)) or not np.all(arr[:, 0] < arr[:, 1]):
        raise ValueError(f"bounds must be finite with min < max on each axis, got {bounds!r}.")
    return tuple((float(lo), float(hi)) for lo, hi in arr)


def _check_resolution(resolution: int | Sequence[int], dims: int) -> tuple[int, ...]:
    res = (resolution,) * dims if isinstance(resolution, int | np.integer) else tuple(resolution)
    if len(res) != dims or not all(isinstance(r, int | np.integer) and r >= 2 for r in res):
        raise ValueError(f"resolution must be an int >= 2 or {dims} such ints, got {resolution!r}.")
    return tuple(int(r) for r in res)


def _dtype_device(energy: object, dtype: torch.dtype | None,
                  device: torch.device | str | None) -> tuple[torch.dtype, torch.device]:
    """The dtype and device an energy expects: those of its first floating parameter or buffer."""
    if (dtype is None or device is None) and isinstance(energy, torch.nn.Module):
        for t in (*energy.parameters(), *energy.buffers()):
            if t.is_floating_point():
                dtype = t.dtype if dtype is None else dtype
                device = t.device if device is None else device
                break
    return (dtype or torch.get_default_dtype()), torch.device(device or "cpu")


def _evaluate(energy: EnergyLike, points: np.ndarray, chunk_size: int,
              dtype: torch.dtype | None, device: torch.device | str | None) -> np.ndarray:
    """Energies of ``points`` (n, d), evaluated in chunks under no_grad; returns float64 (n,)."""
    if not callable(energy):
        raise TypeError(f"energy must be callable (B, d) -> (B,), got {type(energy).__name__}.")
    dt, dev = _dtype_device(energy, dtype, device)
    x = torch.as_tensor(points, dtype=dt, device=dev)
    with torch.no_grad():
        out = [evaluate_energy(energy, c) for c in torch.split(x, chunk_size)]
    return torch.cat(out).to("cpu", torch.float64).numpy()


def _grid_points(bounds: tuple[tuple[float, float], ...], res: tuple[int, ...]):
    axes = [np.linspace(lo, hi, n) for (lo, hi), n in zip(bounds, res, strict=True)]
    if len(axes) == 1:
        return axes, axes[0][:, None]
    X, Y = np.meshgrid(axes[0], axes[1], indexing="xy")
    return (X, Y), np.stack([X.ravel(), Y.ravel()], axis=1)


def energy_grid(energy: EnergyLike, bounds: Bounds | None = None, resolution: int = 200, *,
                chunk_size: int = 16384, dtype: torch.dtype | None = None,
                device: torch.device | str | None = None) -> tuple[np.ndarray, ...]:
    r"""Evaluate a 2-D energy on a regular grid.

    Parameters
    ----------
    energy : callable
        Maps ``(B, 2)`` to energies ``(B,)``.
    bounds : ((xmin, xmax), (ymin, ymax)), optional
        The window; defaults to ``energy.bounds``. A single ``(xmin, xmax)`` gives a 1-D grid.
    resolution : int or (int, int)
        Number of grid nodes per axis (end points included).
    chunk_size : int
        Points per call of ``energy``.
    dtype, device : optional
        Where to evaluate; by default those of the energy's parameters (else the
        default dtype on CPU).

    Returns
    -------
    X, Y, E : numpy.ndarray
        Arrays of shape ``(ny, nx)`` (``meshgrid(..., indexing="xy")``); ``E`` in float64.
        For 1-D bounds, ``(x, E)`` of shape ``(n,)``.

    Raises
    ------
    ValueError
        If the bounds or the resolution are malformed or the energy does not return ``(B,)``.
    """
    b = _check_bounds(bounds, energy)
    res = _check_resolution(resolution, len(b))
    grid, pts = _grid_points(b, res)
    E = _evaluate(energy, pts, int(check_positive(chunk_size, "chunk_size")), dtype, device)
    if len(b) == 1:
        return grid[0], E
    return grid[0], grid[1], E.reshape(grid[0].shape)


def density_grid(energy: EnergyLike, bounds: Bounds | None = None, resolution: int = 200, *,
                 temperature: float = 1.0, **kwargs: Any) -> tuple[np.ndarray, ...]:
    r"""The Boltzmann density :math:`p_T(x) \propto \exp(-E(x)/T)` normalised on the grid.

    :math:`Z_T` is replaced by the Riemann sum
    :math:`\sum_{ij} e^{-E(x_{ij})/T}\,\Delta x\,\Delta y` (computed stably, subtracting the
    minimum energy), so ``P.sum() * dx * dy == 1``. Accurate when the window holds essentially
    all the mass.

    Parameters
    ----------
    energy, bounds, resolution, **kwargs
        As in :func:`energy_grid`.
    temperature : float
        :math:`T > 0`.

    Returns
    -------
    X, Y, P : numpy.ndarray
        As :func:`energy_grid`, with densities ``P`` (or ``(x, P)`` in 1-D).

    Raises
    ------
    ValueError
        If ``temperature <= 0`` or an energy is NaN or :math:`-\infty`.
    """
    T = check_positive(temperature, "temperature")
    *grid, E = energy_grid(energy, bounds, resolution, **kwargs)
    if np.isnan(E).any() or np.isneginf(E).any():
        raise ValueError("energy returned NaN or -inf on the grid; the density is undefined there.")
    logp = -E / T
    if not np.isfinite(logp).any():
        raise ValueError("energy is +inf on the whole grid; the density cannot be normalised.")
    p = np.exp(logp - logp.max())
    cell = math.prod((g[-1] - g[0]) / (len(g) - 1) for g in _axes_of(grid))
    return (*grid, p / (p.sum() * cell))


def _axes_of(grid: list[np.ndarray]) -> list[np.ndarray]:
    return [grid[0]] if len(grid) == 1 else [grid[0][0], grid[1][:, 0]]


# ------------------------------------------------------------------------------- drawing


def _get_ax(ax: Axes | None, **subplot_kw: Any) -> Axes:
    if ax is not None:
        if not isinstance(ax, Axes):
            raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}.")
        return ax
    return plt.subplots(subplot_kw=subplot_kw or None)[1]


def _to_numpy(x: object, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    try:
        return np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a tensor or an array of numbers, "
                        f"got {type(x).__name__}.") from None


def _label_axes(ax: Axes, dims: int, bounds: tuple[tuple[float, float], ...] | None = None) -> None:
    if dims == 2:
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
        if bounds is not None:
            ax.set_xlim(*bounds[0])
            ax.set_ylim(*bounds[1])
        ax.set_aspect("equal", adjustable="box")
    else:
        ax.set_xlabel("$x$")
        if bounds is not None:
            ax.set_xlim(*bounds[0])


def _colorbar(ax: Axes, mappable: Any, label: str) -> Any:
    """A colorbar exactly as tall as the (equal-aspect) axes, at its right."""
    cax = ax.inset_axes((1.04, 0.0, 0.05, 1.0))
    return ax.figure.colorbar(mappable, cax=cax, label=label)


def _clip(E: np.ndarray, clip: float | tuple[float, float] | None) -> np.ndarray:
    if clip is None:
        return E
    lo, hi = (-np.inf, clip) if np.ndim(clip) == 0 else clip
    return np.clip(E, lo, hi)


def plot_energy(energy: EnergyLike, bounds: Bounds | None = None, *, resolution: int = 200,
                ax: Axes | None = None, colorbar: bool = True, levels: int | Sequence[float] = 30,
                clip: float | tuple[float, float] | None = None, cmap: str = ENERGY_CMAP,
                **grid_kwargs: Any) -> Axes:
    r"""Filled contours of the energy landscape :math:`E(x)` (a curve for 1-D bounds).

    Parameters
    ----------
    energy : callable
        ``(B, 2) -> (B,)`` (``(B, 1) -> (B,)`` for 1-D bounds).
    bounds : optional
        See :func:`energy_grid`; defaults to ``energy.bounds``.
    resolution : int
        Grid nodes per axis.
    ax : Axes, optional
        Where to draw; a new figure otherwise.
    colorbar : bool
        Add a colorbar labelled "energy :math:`E(x)`".
    levels : int or sequence of float
        Contour levels.
    clip : float or (float, float), optional
        Clip energies to ``(-inf, clip)`` or ``(lo, hi)`` before drawing, so steep
        walls at the window's edge do not take the whole colour range.
    cmap : str
        Colormap (default :data:`ENERGY_CMAP`).

    Returns
    -------
    Axes
    """
    b = _check_bounds(bounds, energy)
    ax = _get_ax(ax)
    *grid, E = energy_grid(energy, b, resolution, **grid_kwargs)
    E = np.ma.masked_invalid(_clip(E, clip))
    if len(b) == 1:
        ax.plot(grid[0], E, color=PALETTE["energy"])
        ax.set_ylabel("energy $E(x)$")
    else:
        cs = ax.contourf(grid[0], grid[1], E, levels=levels, cmap=cmap)
        if colorbar:
            _colorbar(ax, cs, "energy $E(x)$")
    _label_axes(ax, len(b), b)
    return ax


def plot_density(energy: EnergyLike, bounds: Bounds | None = None, *, resolution: int = 200,
                 temperature: float = 1.0, ax: Axes | None = None, colorbar: bool = True,
                 cmap: str = DENSITY_CMAP, **grid_kwargs: Any) -> Axes:
    r"""The Boltzmann density :math:`p_T(x) \propto \exp(-E(x)/T)`, normalised on the grid.

    See :func:`density_grid` for the normalisation. A 2-D density is drawn as a
    smooth image with a colorbar labelled "density :math:`p(x)`"; a 1-D one as a curve.

    Returns
    -------
    Axes
    """
    b = _check_bounds(bounds, energy)
    ax = _get_ax(ax)
    *grid, P = density_grid(energy, b, resolution, temperature=temperature, **grid_kwargs)
    if len(b) == 1:
        ax.plot(grid[0], P, color=PALETTE["density"])
        ax.set_ylabel("density $p(x)$")
        ax.set_ylim(bottom=0)
    else:
        mesh = ax.pcolormesh(grid[0], grid[1], P, cmap=cmap, shading="gouraud", rasterized=True)
        if colorbar:
            _colorbar(ax, mesh, "density $p(x)$")
    _label_axes(ax, len(b), b)
    return ax


def plot_energy_surface_3d(energy: EnergyLike, bounds: Bounds | None = None, *,
                           resolution: int = 80, ax: Axes | None = None,
                           clip: float | tuple[float, float] | None = None,
                           cmap: str = ENERGY_CMAP, elev: float = 35.0, azim: float = -60.0,
                           **grid_kwargs: Any) -> Axes:
    """The energy as a 3-D landscape (valleys are likely configurations).

    ``ax`` must be a 3-D Axes (``projection="3d"``) when given. Returns the 3-D Axes.
    """
    b = _check_bounds(bounds, energy)
    if len(b) != 2:
        raise ValueError(f"plot_energy_surface_3d needs 2-D bounds, got {bounds!r}.")
    if ax is not None and getattr(ax, "name", "") != "3d":
        raise ValueError("ax must be a 3-D Axes (created with projection='3d').")
    ax = _get_ax(ax, projection="3d")
    X, Y, E = energy_grid(energy, b, resolution, **grid_kwargs)
    E = _clip(E, clip)
    ax.plot_surface(X, Y, E, cmap=cmap, linewidth=0, antialiased=True, rcount=resolution,
                    ccount=resolution)
    ax.view_init(elev=elev, azim=azim)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_zlabel("energy $E(x)$")
    return ax


def plot_score_field(energy: EnergyLike | None = None, bounds: Bounds | None = None, *,
                     score: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     n_arrows: int | Sequence[int] = 20, ax: Axes | None = None,
                     background: str | EnergyLike | None = "auto", normalize: bool = False,
                     color: str | None = None, resolution: int = 150, colorbar: bool = True,
                     **grid_kwargs: Any) -> Axes:
    r"""Quiver plot of the score :math:`s(x) = \nabla_x \log p(x) = -\nabla_x E(x)`.

    Parameters
    ----------
    energy : callable, optional
        The energy; its score comes from :func:`ebmlab.energies.score_of` (closed form
        when the energy has one, autograd otherwise).
    bounds : optional
        2-D window; defaults to ``energy.bounds``.
    score : callable, optional
        A score ``(B, 2) -> (B, 2)`` (e.g. a score network) instead of ``energy``.
    n_arrows : int or (int, int)
        Arrows per axis.
    background : {"auto", "energy", "density", None} or callable
        What to draw below the arrows: the energy's landscape, its density, another
        energy (a callable), or nothing. ``"auto"`` is ``"energy"`` when ``energy`` is given.
    normalize : bool
        Draw unit arrows (directions only). By default arrows are the score vectors.
    color : str, optional
        Arrow colour (white over a background, black otherwise).

    Returns
    -------
    Axes

    Raises
    ------
    ValueError
        If not exactly one of ``energy`` and ``score`` is given, or the score has the wrong shape.
    """
    if (energy is None) == (score is None):
        raise ValueError("pass exactly one of energy (an Energy or callable) and score=, "
                         f"got energy={type(energy).__name__}, score={type(score).__name__}.")
    b = _check_bounds(bounds, energy)
    if len(b) != 2:
        raise ValueError(f"plot_score_field needs 2-D bounds, got {bounds!r}.")
    ax = _get_ax(ax)
    if background == "auto":
        background = "energy" if energy is not None else None
    if background in ("energy", "density"):
        if energy is None:
            raise ValueError(f"background={background!r} needs energy=, not only score=.")
        draw = plot_energy if background == "energy" else plot_density
        draw(energy, b, resolution=resolution, ax=ax, colorbar=colorbar, **grid_kwargs)
    elif callable(background):
        plot_energy(background, b, resolution=resolution, ax=ax, colorbar=colorbar, **grid_kwargs)
    elif background is not None:
        raise ValueError("background must be 'auto', 'energy', 'density', None or a callable, "
                         f"got {background!r}.")
    (X, Y), pts = _grid_points(b, _check_resolution(n_arrows, 2))
    fn = score if score is not None else energy
    dt, dev = _dtype_device(fn, grid_kwargs.get("dtype"), grid_kwargs.get("device"))
    x = torch.as_tensor(pts, dtype=dt, device=dev)
    s = score(x) if score is not None else score_of(energy, x)
    if not isinstance(s, torch.Tensor) or s.shape != x.shape:
        got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
        raise ValueError(f"the score must map {tuple(x.shape)} to the same shape, got {got}.")
    U, V = s.detach().to("cpu", torch.float64).numpy().T
    if normalize:
        norm = np.hypot(U, V)
        norm[norm == 0] = 1.0
        U, V = U / norm, V / norm
    color = color or ("white" if background is not None else PALETTE["reference"])
    ax.quiver(X, Y, U.reshape(X.shape), V.reshape(X.shape), color=color, angles="xy",
              pivot="mid", width=0.004)
    _label_axes(ax, 2, b)
    return ax


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
    b = _check_bounds(bounds) if bounds is not None else None
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


def _trajectory(trajectory: object) -> np.ndarray:
    traj = getattr(trajectory, "trajectory", trajectory)  # a SamplerResult works too
    if traj is None:
        raise ValueError("the sampler result holds no trajectory; run it with record_every=1.")
    arr = _to_numpy(traj, "trajectory")
    if arr.ndim != 3 or arr.shape[2] != 2 or arr.shape[0] < 1:
        raise ValueError(f"trajectory must have shape (T, B, 2), got {arr.shape}.")
    return arr


def _spread(n: int, k: int) -> np.ndarray:
    """Up to ``k`` indices spread evenly over ``range(n)``, first and last included."""
    return np.unique(np.round(np.linspace(0, n - 1, min(n, max(int(k), 1)))).astype(int))


def plot_chains(trajectory: object, *, n_chains: int = 8, ax: Axes | None = None,
                color: str | None = None, alpha: float = 0.8, bounds: Bounds | None = None,
                markers: bool = True) -> Axes:
    """Paths of MCMC chains in 2-D, with start (circle) and end (cross) markers.

    Parameters
    ----------
    trajectory : tensor or array (T, B, 2), or a sampler result with ``.trajectory``
        Recorded states.
    n_chains : int
        How many chains to draw (spread over the batch).

    Returns
    -------
    Axes
    """
    traj = _trajectory(trajectory)
    traj = traj[:, _spread(traj.shape[1], int(check_positive(n_chains, "n_chains")))]
    ax = _get_ax(ax)
    color = color or PALETTE["chains"]
    ax.add_collection(LineCollection(traj.transpose(1, 0, 2), colors=color, alpha=alpha,
                                     linewidths=1.0, label="chains"))
    if markers:
        ax.scatter(traj[0, :, 0], traj[0, :, 1], s=18, color=color, edgecolors="k",
                   linewidths=0.5, zorder=3, label="start")
        ax.scatter(traj[-1, :, 0], traj[-1, :, 1], s=30, color=color, marker="X",
                   edgecolors="k", linewidths=0.5, zorder=3, label="end")
    ax.autoscale_view()
    _label_axes(ax, 2, _check_bounds(bounds) if bounds is not None else None)
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


def animate_chains(trajectory: object, *, energy: EnergyLike | None = None,
                   bounds: Bounds | None = None, interval: int = 60, max_frames: int = 80,
                   n_chains: int = 100, tail: int = 6, background: str = "density",
                   record_every: int = 1, resolution: int = 100,
                   figsize: tuple[float, float] = (4.2, 3.6), dpi: int = 72) -> FuncAnimation:
    """Animate MCMC chains moving over the landscape; play it with ``anim.to_jshtml()``.

    Frames and chains are subsampled (at most ``max_frames`` frames and ``n_chains``
    chains) and the figure is small with a flat-colour background, so the HTML stays
    well under 2 MB. The figure is closed so that a notebook shows only the animation.

    Parameters
    ----------
    trajectory : tensor or array (T, B, 2), or a sampler result with ``.trajectory``
    energy : callable, optional
        Background landscape; ``bounds`` default to ``energy.bounds``, else to the data range.
    background : {"density", "energy"}
        What to draw below the chains.
    tail : int
        Recorded states shown as a trail behind each chain (0 for none).
    record_every : int
        Steps between recorded states (for the "step t" title).

    Returns
    -------
    matplotlib.animation.FuncAnimation
        With an extra attribute ``frame_indices`` (the recorded states shown).
    """
    traj = _trajectory(trajectory)
    frames = _spread(traj.shape[0], int(check_positive(max_frames, "max_frames")))
    traj = traj[:, _spread(traj.shape[1], int(check_positive(n_chains, "n_chains")))]
    if background not in ("density", "energy"):
        raise ValueError(f"background must be 'density' or 'energy', got {background!r}.")
    if energy is not None or bounds is not None:
        b = _check_bounds(bounds, energy)
    else:
        lo, hi = traj.min(axis=(0, 1)), traj.max(axis=(0, 1))
        pad = 0.05 * np.maximum(hi - lo, 1e-9)
        b = ((lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1]))
    # Draw the static part (landscape, colorbar, labels) once into a bitmap; every frame
    # then draws only that bitmap, the dots and the trails: fast, and small PNG frames.
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    if energy is not None:
        if background == "density":
            X, Y, Z = density_grid(energy, b, resolution)
            cs = ax.contourf(X, Y, Z, levels=12, cmap=DENSITY_CMAP)
            _colorbar(ax, cs, "density $p(x)$")
        else:
            plot_energy(energy, b, resolution=resolution, ax=ax, levels=12)
    _label_axes(ax, 2, b)
    ax.set_title(f"step {frames[-1] * int(record_every)}", alpha=0.0)  # reserve its space
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    still = np.asarray(canvas.buffer_rgba()).copy()
    box = ax.get_position().bounds

    fig = Figure(figsize=figsize, dpi=dpi, layout="none")
    fig.figimage(still, origin="upper", zorder=-1)
    ax = fig.add_axes(box, xlim=b[0], ylim=b[1])
    ax.set_axis_off()
    color = PALETTE["chains"] if energy is None or background == "energy" else "white"
    trail = LineCollection([], colors=color, alpha=0.5, linewidths=0.8)
    ax.add_collection(trail)
    dots = ax.scatter(traj[0, :, 0], traj[0, :, 1], s=10, color=color, edgecolors="k",
                      linewidths=0.3, zorder=3)

    def update(i: int):
        t = frames[i]
        dots.set_offsets(traj[t])
        trail.set_segments(list(traj[max(0, t - int(tail)):t + 1].transpose(1, 0, 2)))
        ax.set_title(f"step {t * int(record_every)}")
        return dots, trail

    anim = _FixedDpiAnimation(fig, update, frames=len(frames), interval=interval, blit=False,
                              cache_frame_data=False)
    anim.frame_indices = frames
    return anim


_REMOTE_STYLESHEET = re.compile(r"<link[^>]*href=[\"']https?://[^>]*>\s*", re.IGNORECASE)


class _FixedDpiAnimation(FuncAnimation):
    """A FuncAnimation saved at its figure's dpi (its background is a bitmap of that size)."""

    def to_jshtml(self, fps: Any = None, embed_frames: bool = True,
                  default_mode: Any = None) -> str:
        """The animation as self-contained HTML that works offline.

        Matplotlib's player links a Font Awesome stylesheet from a CDN for its button
        icons; the link is removed so a page embedding the animation requests nothing
        from the network (Jupyter and the book's theme provide the icon font).
        """
        html = super().to_jshtml(fps=fps, embed_frames=embed_frames, default_mode=default_mode)
        return _REMOTE_STYLESHEET.sub("", html)

    def save(self, filename: Any, writer: Any = None, fps: Any = None, dpi: Any = None,
             **kwargs: Any) -> None:
        # Matplotlib resets the figure's layout engine after each saved frame; with a
        # style that turns constrained layout on (use_style) that fallback warns on
        # every frame. The layout is fixed when the animation is built, so switch the
        # fallback off while saving.
        # JPEG frames keep a smooth density background several times smaller than PNG
        # (to_jshtml embeds every frame in the page).
        if isinstance(writer, HTMLWriter) and writer.embed_frames:
            writer.frame_format = "jpeg"
        with mpl.rc_context({"figure.constrained_layout.use": False, "figure.autolayout": False}):
            super().save(filename, writer=writer, fps=fps, dpi=self._fig.dpi, **kwargs)


def plot_learning_curves(histories: Mapping[str, object], *, ax: Axes | None = None,
                         ylabel: str = "loss", xlabel: str = "iteration",
                         reference: float | object | None = None,
                         reference_label: str = "reference", logy: bool = False) -> Axes:
    """Curves of a metric per training method, coloured with the method palette.

    Parameters
    ----------
    histories : dict of str to 1-D sequence
        E.g. ``{"MLE": [...], "CD-1": [...], "PCD": [...]}``; keys are matched to
        :data:`PALETTE` by :func:`method_color`.
    reference : float or 1-D sequence, optional
        A reference value (dashed black line, e.g. the exact maximum log-likelihood)
        or curve.

    Returns
    -------
    Axes
    """
    if not isinstance(histories, Mapping) or not histories:
        raise TypeError("histories must be a non-empty dict of method name to values, "
                        f"got {type(histories).__name__}.")
    ax = _get_ax(ax)
    for name, values in histories.items():
        y = _to_numpy(values, f"histories[{name!r}]").ravel()
        ax.plot(np.arange(len(y)), y, color=method_color(name), label=str(name))
    if reference is not None:
        ref = _to_numpy(reference, "reference")
        style = {"color": PALETTE["reference"], "linestyle": "--", "linewidth": 1.2,
                 "label": reference_label}
        if ref.ndim == 0:
            ax.axhline(float(ref), **style)
        else:
            ax.plot(np.arange(ref.size), ref.ravel(), **style)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    return ax


def small_multiples(fn: Callable[[Any, Axes], object], values: Sequence[Any], *, ncols: int = 4,
                    titles: Sequence[str] | Callable[[Any], str] | None = None,
                    panel_size: tuple[float, float] | None = None, sharex: bool = True,
                    sharey: bool = True, subplot_kw: dict[str, Any] | None = None,
                    suptitle: str | None = None) -> Figure:
    """One panel per value: ``fn(value, ax)`` draws each; the static version of a widget.

    Parameters
    ----------
    fn : callable ``(value, ax) -> Any``
        Draws one panel.
    values : sequence
        The slider values to show.
    ncols : int
        Panels per row.
    titles : sequence of str or callable, optional
        Panel titles (a callable maps a value to its title); by default ``fn`` titles them.
    panel_size : (float, float), optional
        Size of one panel in inches (default: the 7-inch column split into ``ncols``).

    Returns
    -------
    Figure
    """
    values = list(values)
    if not values:
        raise ValueError("values must hold at least one value.")
    ncols = min(int(check_positive(ncols, "ncols")), len(values))
    nrows = math.ceil(len(values) / ncols)
    w, h = panel_size or (7.0 / ncols, 7.0 / ncols * 0.85)
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), sharex=sharex,
                             sharey=sharey, squeeze=False, subplot_kw=subplot_kw,
                             layout="compressed")
    flat = axes.ravel()
    for k, (value, ax) in enumerate(zip(values, flat, strict=False)):
        fn(value, ax)
        if titles is not None:
            ax.set_title(titles(value) if callable(titles) else titles[k])
        if sharex or sharey:
            ax.label_outer()  # shared axes: labels on the outer panels only
    for ax in flat[len(values):]:
        ax.set_axis_off()
    first = flat[0]
    if panel_size is None and first.get_aspect() == 1.0 and first.name != "3d":
        # Equal-aspect panels (landscapes): fit the height to the window's shape, leaving
        # room for a colorbar at the side and for the title and labels.
        (x0, x1), (y0, y1) = first.get_xlim(), first.get_ylim()
        ratio = min(max(abs(y1 - y0) / abs(x1 - x0), 0.3), 3.0)
        fig.set_size_inches(w * ncols, (0.75 * w * ratio + 0.55) * nrows)
    if suptitle:
        fig.suptitle(suptitle)
    return fig
