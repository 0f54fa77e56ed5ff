"""Figures that compare: training methods by their learning curves, values by small multiples."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._validation import check_int
from ._axes import _get_ax, _to_numpy
from .style import PALETTE, method_color


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
        style: dict[str, Any] = {"color": PALETTE["reference"], "linestyle": "--",
                                 "linewidth": 1.2, "label": reference_label}
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
    ncols = min(check_int(ncols, "ncols", minimum=1), len(values))
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
