"""Evaluating an energy on a regular grid: :func:`energy_grid` and :func:`density_grid`.

Also the checks of a window (``bounds``) and a ``resolution``, and the dtype and device an
energy is evaluated on, which the drawing modules share.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .._validation import (
    check_device,
    check_float_dtype,
    check_int,
    check_number,
    check_rectangle,
    check_resolution,
    evaluate_energy,
)
from ..utils import floating_dtype_of, tensor_device_of

EnergyLike = Callable[[torch.Tensor], torch.Tensor]
Bounds = Sequence[Sequence[float]] | Sequence[float]


def window(bounds: Bounds | None, energy: object = None) -> tuple[tuple[float, float], ...]:
    """The plotting window: ``bounds`` (one or two ``(min, max)`` pairs), or else the
    energy's own ``bounds`` attribute (the 2D landscapes of :mod:`ebmlab.energies` have one)."""
    if bounds is None:
        bounds = getattr(energy, "bounds", None)
        if bounds is None:
            raise ValueError("bounds is required: pass ((xmin, xmax), (ymin, ymax)) or "
                             "(xmin, xmax); the energy has no .bounds attribute.")
    return check_rectangle(bounds, dims=(1, 2))


def evaluation_dtype_device(energy: object, dtype: torch.dtype | None,
                            device: torch.device | str | None
                            ) -> tuple[torch.dtype, torch.device]:
    """The dtype and device to evaluate ``energy`` in: those given, else those of its
    first floating parameter or buffer, else the default dtype on the CPU."""
    dt = (floating_dtype_of(energy) or torch.get_default_dtype()) if dtype is None \
        else check_float_dtype(dtype)
    dev = tensor_device_of(energy, torch.device("cpu")) if device is None \
        else check_device(device)
    return dt, dev


def _evaluate(energy: EnergyLike, points: np.ndarray, chunk_size: int,
              dtype: torch.dtype | None, device: torch.device | str | None) -> np.ndarray:
    """Energies of ``points`` (n, d), evaluated in chunks under no_grad; returns float64 (n,)."""
    if not callable(energy):
        raise TypeError(f"energy must be callable (B, d) -> (B,), got {type(energy).__name__}.")
    dt, dev = evaluation_dtype_device(energy, dtype, device)
    x = torch.as_tensor(points, dtype=dt, device=dev)
    with torch.no_grad():
        out = [evaluate_energy(energy, c) for c in torch.split(x, chunk_size)]
    return torch.cat(out).to("cpu", torch.float64).numpy()


def _grid_points(bounds: tuple[tuple[float, float], ...], res: tuple[int, ...]
                 ) -> tuple[Any, np.ndarray]:
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
    b = window(bounds, energy)
    res = check_resolution(resolution, len(b))
    grid, pts = _grid_points(b, res)
    E = _evaluate(energy, pts, check_int(chunk_size, "chunk_size", minimum=1), dtype, device)
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
    T = check_number(temperature, "temperature", greater_than=0)
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
