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

from .chains import animate_chains, plot_chains
from .comparisons import plot_learning_curves, small_multiples
from .grids import Bounds as Bounds
from .grids import EnergyLike as EnergyLike
from .grids import density_grid, energy_grid
from .landscapes import plot_density, plot_energy, plot_energy_surface_3d, plot_score_field
from .samples import image_grid, plot_samples, tile_images
from .style import DENSITY_CMAP, ENERGY_CMAP, PALETTE, method_color, use_style

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

# Sphinx reads ``#:`` doc-comments only from the documented module's own source, so the
# API page (automodule ebmlab.plotting) gets the constants' descriptions from these
# declarations; they bind nothing. Keep them identical to those in style.py.

#: The book's colours (colour-blind safe: Okabe & Ito, and Tol's "muted" for methods).
PALETTE: dict[str, str]  # type: ignore[no-redef]
#: Perceptually uniform colormap of energies.
ENERGY_CMAP: str  # type: ignore[no-redef]
#: Perceptually uniform colormap of densities.
DENSITY_CMAP: str  # type: ignore[no-redef]
