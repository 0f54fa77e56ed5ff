"""Drawing helpers shared by the figure modules: axes, arrays, axis labels, colorbars."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes


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
