r"""Interactive explorers for live notebooks, and their static versions for the HTML book.

Each explorer has one drawing function; the widget's callback calls it for the
slider values, and the ``static_*`` function calls it for a few fixed values as
a small multiple (:func:`ebmlab.plotting.small_multiples`), which the HTML book
shows in the widget's place.

:mod:`ipywidgets` is imported only when an explorer is built, so
``import ebmlab`` and the static figures do not need it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._validation import check_int, check_number
from .plotting import plot_density, plot_samples, small_multiples
from .plotting.grids import EnergyLike, evaluation_dtype_device, window
from .samplers import langevin
from .utils import make_generator, rand_like

__all__ = [
    "langevin_explorer",
    "static_langevin_figure",
    "static_temperature_figure",
    "temperature_explorer",
]


def _ipywidgets() -> Any:
    try:
        import ipywidgets
    except ImportError as err:  # pragma: no cover - ipywidgets is a dependency
        raise ImportError("the explorers need ipywidgets: pip install ipywidgets") from err
    return ipywidgets


# --------------------------------------------------------------------- drawing functions


def _draw_temperature(ax: Axes, energy: EnergyLike, bounds: Any, temperature: float, *,
                      resolution: int, colorbar: bool = True) -> Axes:
    plot_density(energy, bounds, temperature=temperature, resolution=resolution, ax=ax,
                 colorbar=colorbar)
    ax.set_title(f"$T = {temperature:.3g}$")
    return ax


def _draw_langevin(ax: Axes, energy: EnergyLike, bounds: Any, step_size: float, n_steps: int,
                   *, n_chains: int, seed: int, resolution: int, colorbar: bool = True) -> Axes:
    b = window(bounds, energy)
    plot_density(energy, b, resolution=resolution, ax=ax, colorbar=colorbar)
    # The same start (uniform over the window) for every slider value: only the sampler changes.
    dtype, device = evaluation_dtype_device(energy, None, None)
    lo = torch.tensor([lo for lo, _ in b], dtype=dtype, device=device)
    hi = torch.tensor([hi for _, hi in b], dtype=dtype, device=device)
    u = rand_like(torch.empty(n_chains, len(b), dtype=dtype, device=device), make_generator(seed))
    x0 = lo + (hi - lo) * u
    x = langevin(energy, x0, step_size=step_size, n_steps=int(n_steps),
                 generator=make_generator(seed + 1), check_divergence=False).samples
    finite = torch.isfinite(x).all(dim=1)
    plot_samples(x[finite], ax=ax, kind="model", alpha=0.7, s=5, bounds=b)
    n_bad = int((~finite).sum())
    bad = f", {n_bad} diverged" if n_bad else ""
    ax.set_title(rf"$\epsilon = {step_size:.3g}$, {int(n_steps)} steps{bad}")
    return ax


# ------------------------------------------------------------------------------- widgets


def _explorer(draw: Callable[..., Axes], figsize: tuple[float, float],
              **controls: Any) -> Any:
    """An ``ipywidgets.interactive`` whose callback draws into a fresh figure and shows it."""
    widgets = _ipywidgets()
    from IPython.display import display

    def callback(**values: Any) -> Figure:
        # A Figure not managed by pyplot: nothing accumulates between slider moves.
        fig = Figure(figsize=figsize, layout="constrained")
        draw(fig.add_subplot(), **values)
        display(fig)
        return fig

    return widgets.interactive(callback, **controls)


def temperature_explorer(energy: EnergyLike, bounds: Any = None, *,
                         temperature_range: tuple[float, float] = (0.1, 10.0),
                         resolution: int = 120) -> Any:
    r"""A slider over the temperature :math:`T` showing :math:`p_T(x) \propto \exp(-E(x)/T)`.

    Low :math:`T` concentrates the mass in the deepest valleys; high :math:`T`
    flattens the density towards uniform on the window.

    Parameters
    ----------
    energy : callable
        ``(B, 2) -> (B,)`` (or 1-D with 1-D bounds).
    bounds : optional
        The window; defaults to ``energy.bounds``.
    temperature_range : (float, float)
        Slider range (log scale).
    resolution : int
        Grid nodes per axis.

    Returns
    -------
    ipywidgets.interactive
        The slider and the figure; its ``result`` is the last figure drawn.
        In the HTML book, show :func:`static_temperature_figure` instead.
    """
    widgets = _ipywidgets()
    lo, hi = (check_number(t, "temperature_range", greater_than=0) for t in temperature_range)
    if not lo < hi:
        raise ValueError(f"temperature_range must be (low, high) with low < high, "
                         f"got {temperature_range!r}.")
    b = window(bounds, energy)
    slider = widgets.FloatLogSlider(value=min(max(1.0, lo), hi), base=10,
                                    min=math.log10(lo), max=math.log10(hi), step=0.05,
                                    description="T", continuous_update=False)

    def draw(ax: Axes, temperature: float) -> Axes:
        return _draw_temperature(ax, energy, b, temperature, resolution=resolution)

    return _explorer(draw, (5.0, 4.0), temperature=slider)


def langevin_explorer(energy: EnergyLike, bounds: Any = None, *, n_chains: int = 300,
                      max_steps: int = 500, step_range: tuple[float, float] = (1e-3, 1.0),
                      seed: int = 0, resolution: int = 100) -> Any:
    r"""Sliders for the step size :math:`\epsilon` and the number of Langevin steps.

    Runs unadjusted Langevin dynamics :math:`x_{t+1} = x_t - \epsilon\nabla E(x_t) +
    \sqrt{2\epsilon}\,\xi_t` (:func:`ebmlab.samplers.langevin`) from the same uniform
    start for every setting and shows the samples over the density: too few steps
    and the chains have not arrived, too large a step and the samples are too spread
    out (or diverge).

    Parameters
    ----------
    energy : callable
        ``(B, 2) -> (B,)``.
    bounds : optional
        The window (and the start distribution); defaults to ``energy.bounds``.
    n_chains, max_steps : int
        Chains per run, largest number of steps on the slider.
    step_range : (float, float)
        Step-size slider range (log scale).
    seed : int
        Seed of the start and of the noise.

    Returns
    -------
    ipywidgets.interactive
        In the HTML book, show :func:`static_langevin_figure` instead.
    """
    widgets = _ipywidgets()
    lo, hi = (check_number(e, "step_range", greater_than=0) for e in step_range)
    if not lo < hi:
        raise ValueError(f"step_range must be (low, high) with low < high, got {step_range!r}.")
    max_steps = check_int(max_steps, "max_steps", minimum=1)
    b = window(bounds, energy)
    step = widgets.FloatLogSlider(value=min(max(0.05, lo), hi), base=10,
                                  min=math.log10(lo), max=math.log10(hi), step=0.05,
                                  description="step size", continuous_update=False)
    steps = widgets.IntSlider(value=min(100, max_steps), min=1, max=max_steps,
                              step=max(1, max_steps // 100), description="steps",
                              continuous_update=False)

    def draw(ax: Axes, step_size: float, n_steps: int) -> Axes:
        return _draw_langevin(ax, energy, b, step_size, n_steps, n_chains=n_chains, seed=seed,
                              resolution=resolution)

    return _explorer(draw, (5.0, 4.0), step_size=step, n_steps=steps)


# ----------------------------------------------------------------------- static versions


def static_temperature_figure(energy: EnergyLike, bounds: Any = None,
                              temperatures: Sequence[float] = (0.5, 1.0, 2.0, 4.0), *,
                              ncols: int = 2, resolution: int = 120) -> Figure:
    """The temperature explorer's view at a few temperatures, one panel each.

    Returns
    -------
    Figure
    """
    b = window(bounds, energy)
    return small_multiples(
        lambda t, ax: _draw_temperature(ax, energy, b, t, resolution=resolution),
        temperatures, ncols=ncols)


def static_langevin_figure(energy: EnergyLike, bounds: Any = None, *,
                           step_sizes: Sequence[float] = (0.01, 0.1, 0.5),
                           n_steps: int | Sequence[int] = 100, n_chains: int = 300,
                           seed: int = 0, ncols: int = 3, resolution: int = 100) -> Figure:
    """The Langevin explorer's view for each (step size, number of steps) pair.

    Returns
    -------
    Figure
    """
    b = window(bounds, energy)
    counts = [n_steps] if isinstance(n_steps, int) else list(n_steps)
    settings = list(itertools.product(step_sizes, counts))
    ncols = min(check_int(ncols, "ncols", minimum=1), len(settings))

    def panel(k: int, ax: Axes) -> Axes:
        # Every panel shows the same density: one colorbar per row, on the last panel.
        step_size, steps = settings[k]
        last = k % ncols == ncols - 1 or k == len(settings) - 1
        return _draw_langevin(ax, energy, b, step_size, steps, n_chains=n_chains, seed=seed,
                              resolution=resolution, colorbar=last)

    return small_multiples(panel, range(len(settings)), ncols=ncols)
