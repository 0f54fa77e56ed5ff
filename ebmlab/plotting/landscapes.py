r"""Landscapes over a 2-D (or 1-D) window: the energy, its density, its 3-D surface, its score.

Each function evaluates the energy on a grid (see :mod:`ebmlab.plotting.grids`) and draws
it into one :class:`~matplotlib.axes.Axes`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import torch
from matplotlib.axes import Axes
from mpl_toolkits.mplot3d import Axes3D

from .._validation import check_resolution
from ..energies.base import score_of
from ._axes import _colorbar, _get_ax, _label_axes
from .grids import (
    Bounds,
    EnergyLike,
    _grid_points,
    density_grid,
    energy_grid,
    evaluation_dtype_device,
    window,
)
from .style import DENSITY_CMAP, ENERGY_CMAP, PALETTE


def _clip(E: np.ndarray, clip: float | tuple[float, float] | None) -> np.ndarray:
    if clip is None:
        return E
    lo, hi = (-np.inf, clip) if isinstance(clip, int | float) else clip
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
    b = window(bounds, energy)
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
    b = window(bounds, energy)
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
    b = window(bounds, energy)
    if len(b) != 2:
        raise ValueError(f"plot_energy_surface_3d needs 2-D bounds, got {bounds!r}.")
    if ax is not None and getattr(ax, "name", "") != "3d":
        raise ValueError("ax must be a 3-D Axes (created with projection='3d').")
    ax3d = cast(Axes3D, _get_ax(ax, projection="3d"))
    X, Y, E = energy_grid(energy, b, resolution, **grid_kwargs)
    E = _clip(E, clip)
    ax3d.plot_surface(X, Y, E, cmap=cmap, linewidth=0, antialiased=True, rcount=resolution,
                      ccount=resolution)
    ax3d.view_init(elev=elev, azim=azim)
    ax3d.set_xlabel("$x_1$")
    ax3d.set_ylabel("$x_2$")
    ax3d.set_zlabel("energy $E(x)$")
    return ax3d


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
    b = window(bounds, energy)
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
    (X, Y), pts = _grid_points(b, check_resolution(n_arrows, 2))
    fn = score if score is not None else energy
    dt, dev = evaluation_dtype_device(fn, grid_kwargs.get("dtype"), grid_kwargs.get("device"))
    x = torch.as_tensor(pts, dtype=dt, device=dev)
    if score is not None:
        s = score(x)
    else:
        assert energy is not None  # exactly one of the two is given
        s = score_of(energy, x)
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
