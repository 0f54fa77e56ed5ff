"""The book's look: one palette, the energy and density colormaps, the matplotlib style.

Colours are looked up by role (``PALETTE["data"]``, ``PALETTE["model"]``, ...) or by
training method (:func:`method_color`); :func:`use_style` applies the book-wide rc settings.
"""

from __future__ import annotations

from typing import Any

from cycler import cycler
from matplotlib import style as mpl_style

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
    mpl_style.use(_STYLE)


def method_color(name: str) -> str:
    """Colour of a training method (``"CD-1"``, ``"cd1"`` and ``"CD_1"`` are the same key).

    Unknown names get a fixed colour chosen from their name, so a method keeps
    its colour across figures.
    """
    key = str(name).lower().replace("-", "").replace("_", "").replace(" ", "")
    if key in PALETTE:
        return PALETTE[key]
    return _EXTRA_COLORS[sum(map(ord, key)) % len(_EXTRA_COLORS)]
