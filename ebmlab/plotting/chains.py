"""MCMC chains: their paths as a static figure, and an animation that works offline.

:func:`animate_chains` returns a :class:`~matplotlib.animation.FuncAnimation` whose
``to_jshtml`` strips matplotlib's remote stylesheet link, so a page embedding it
requests nothing from the network.
"""

from __future__ import annotations

import re
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.animation import FuncAnimation, HTMLWriter
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from .._validation import check_int
from ._axes import _colorbar, _get_ax, _label_axes, _to_numpy
from .grids import Bounds, EnergyLike, density_grid, window
from .landscapes import plot_energy
from .style import DENSITY_CMAP, PALETTE


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
    traj = traj[:, _spread(traj.shape[1], check_int(n_chains, "n_chains", minimum=1))]
    ax = _get_ax(ax)
    color = color or PALETTE["chains"]
    ax.add_collection(LineCollection(list(traj.transpose(1, 0, 2)), colors=color, alpha=alpha,
                                     linewidths=1.0, label="chains"))
    if markers:
        ax.scatter(traj[0, :, 0], traj[0, :, 1], s=18, color=color, edgecolors="k",
                   linewidths=0.5, zorder=3, label="start")
        ax.scatter(traj[-1, :, 0], traj[-1, :, 1], s=30, color=color, marker="X",
                   edgecolors="k", linewidths=0.5, zorder=3, label="end")
    ax.autoscale_view()
    _label_axes(ax, 2, window(bounds) if bounds is not None else None)
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
    frames = _spread(traj.shape[0], check_int(max_frames, "max_frames", minimum=1))
    traj = traj[:, _spread(traj.shape[1], check_int(n_chains, "n_chains", minimum=1))]
    if background not in ("density", "energy"):
        raise ValueError(f"background must be 'density' or 'energy', got {background!r}.")
    if energy is not None or bounds is not None:
        b = window(bounds, energy)
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

    fig = Figure(figsize=figsize, dpi=dpi, layout="none")  # type: ignore[arg-type]
    fig.figimage(still, origin="upper", zorder=-1)
    ax = fig.add_axes(box, xlim=b[0], ylim=b[1])
    ax.set_axis_off()
    color = PALETTE["chains"] if energy is None or background == "energy" else "white"
    trail = LineCollection([], colors=color, alpha=0.5, linewidths=0.8)
    ax.add_collection(trail)
    dots = ax.scatter(traj[0, :, 0], traj[0, :, 1], s=10, color=color, edgecolors="k",
                      linewidths=0.3, zorder=3)

    def update(i: int) -> tuple[Any, LineCollection]:
        t = frames[i]
        dots.set_offsets(traj[t])
        trail.set_segments(list(traj[max(0, t - int(tail)):t + 1].transpose(1, 0, 2)))
        ax.set_title(f"step {t * int(record_every)}")
        return dots, trail

    anim = _FixedDpiAnimation(fig, update, frames=len(frames), interval=interval, blit=False,
                              cache_frame_data=False)
    anim.frame_indices = frames  # type: ignore[attr-defined]
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

    def save(self, filename: Any, writer: Any = None, fps: Any = None,  # type: ignore[override]
             dpi: Any = None, **kwargs: Any) -> None:
        # Matplotlib resets the figure's layout engine after each saved frame; with a
        # style that turns constrained layout on (use_style) that fallback warns on
        # every frame. The layout is fixed when the animation is built, so switch the
        # fallback off while saving.
        # JPEG frames keep a smooth density background several times smaller than PNG
        # (to_jshtml embeds every frame in the page).
        if isinstance(writer, HTMLWriter) and writer.embed_frames:
            writer.frame_format = "jpeg"
        with mpl.rc_context({"figure.constrained_layout.use": False, "figure.autolayout": False}):
            super().save(filename, writer=writer, fps=fps, dpi=self._fig.dpi,  # type: ignore[attr-defined]
                         **kwargs)
