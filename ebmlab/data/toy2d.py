r"""The 2D toy densities: two moons, rings, eight Gaussians, two Gaussians, checkerboard.

Each sampler draws ``n`` points of shape ``(n, 2)`` from a ``torch.Generator``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .._validation import check_int, check_number
from ..utils import generator_device
from ._common import categorical, check_mixture_weights, check_output, finish, rand, randn

__all__ = ["checkerboard", "eight_gaussians", "rings", "two_gaussians", "two_moons"]


def two_moons(n: int, noise: float = 0.05, *, generator: torch.Generator | None = None,
              dtype: torch.dtype = torch.float32,
              device: torch.device | str | None = None) -> torch.Tensor:
    r"""Two interleaving half circles (as :func:`sklearn.datasets.make_moons`), sampled.

    The outer moon is :math:`(\cos t, \sin t)` and the inner one
    :math:`(1 - \cos t, \tfrac12 - \sin t)`, with :math:`t \sim \mathcal U[0, \pi]`,
    each holding half of the points, plus isotropic Gaussian noise of standard
    deviation ``noise``.

    Parameters
    ----------
    n : int
        Number of points.
    noise : float
        Standard deviation of the Gaussian noise added to each coordinate.
    generator : torch.Generator, optional
        Source of randomness.
    dtype, device
        Of the returned tensor (default float32 on the CPU).

    Returns
    -------
    torch.Tensor
        Shape ``(n, 2)``.

    Examples
    --------
    >>> import torch
    >>> x = two_moons(100, generator=torch.Generator().manual_seed(0))
    >>> x.shape
    torch.Size([100, 2])
    """
    n = check_int(n, "n", minimum=1)
    noise = check_number(noise, "noise", at_least=0)
    check_output(dtype, device, generator)
    t = rand((n,), generator, torch.float64) * math.pi
    outer = torch.arange(n, device=t.device) < (n + 1) // 2
    x = torch.where(outer, torch.cos(t), 1.0 - torch.cos(t))
    y = torch.where(outer, torch.sin(t), 0.5 - torch.sin(t))
    pts = torch.stack([x, y], dim=1) + noise * randn((n, 2), generator, torch.float64)
    return finish(pts, dtype, device)


def rings(n: int, radii: Sequence[float] = (1.0, 2.0, 3.0), noise: float = 0.05, *,
          weights: Sequence[float] | None = None, generator: torch.Generator | None = None,
          dtype: torch.dtype = torch.float32,
          device: torch.device | str | None = None) -> torch.Tensor:
    r"""Concentric circles with Gaussian radial blur.

    A point picks ring :math:`k` with probability ``weights[k]`` (default: equal
    mass per ring), an angle :math:`\phi\sim\mathcal U[0, 2\pi)`, and lies at
    :math:`r_k(\cos\phi, \sin\phi)` plus isotropic Gaussian noise of standard
    deviation ``noise``.

    Parameters
    ----------
    n : int
        Number of points.
    radii : sequence of float
        Radii of the rings (positive).
    noise : float
        Standard deviation of the Gaussian noise per coordinate.
    weights : sequence of float, optional
        Mass of each ring (normalised); default equal.
    generator, dtype, device
        As in :func:`two_moons`.

    Returns
    -------
    torch.Tensor
        Shape ``(n, 2)``.
    """
    n = check_int(n, "n", minimum=1)
    noise = check_number(noise, "noise", at_least=0)
    check_output(dtype, device, generator)
    try:
        r = torch.as_tensor(radii, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"radii must be a sequence of positive numbers, got {radii!r}.") from None
    if r.dim() != 1 or r.numel() == 0 or not bool(torch.isfinite(r).all()) or bool((r <= 0).any()):
        raise ValueError(f"radii must be a non-empty sequence of positive numbers, got {radii!r}.")
    w = (torch.full((r.numel(),), 1.0 / r.numel(), dtype=torch.float64) if weights is None
         else check_mixture_weights(weights, r.numel()))
    k = categorical(n, w, generator)
    phi = rand((n,), generator, torch.float64) * (2 * math.pi)
    rad = r.to(k.device)[k]
    pts = torch.stack([rad * torch.cos(phi), rad * torch.sin(phi)], dim=1)
    pts = pts + noise * randn((n, 2), generator, torch.float64)
    return finish(pts, dtype, device)


def _mixture(n: int, means: torch.Tensor, std: float, w: torch.Tensor,
             generator: torch.Generator | None, return_labels: bool, dtype: torch.dtype,
             device: torch.device | str | None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    k = categorical(n, w, generator)
    pts = means.to(k.device)[k] + std * randn((n, means.shape[1]), generator, torch.float64)
    x = finish(pts, dtype, device)
    if return_labels:
        return x, k.to(x.device)
    return x


def eight_gaussians(n: int, radius: float = 2.0, std: float = 0.1, *,
                    return_labels: bool = False, generator: torch.Generator | None = None,
                    dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None,
                    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""Equal mixture of 8 isotropic Gaussians on a circle.

    Component :math:`k = 0..7` has mean :math:`r(\cos\tfrac{2\pi k}{8}, \sin\tfrac{2\pi k}{8})`
    and covariance :math:`\text{std}^2 I`.

    Parameters
    ----------
    n : int
        Number of points.
    radius : float
        Radius of the circle of means.
    std : float
        Standard deviation of each component.
    return_labels : bool
        Also return the component index of each point, shape ``(n,)`` (int64).
    generator, dtype, device
        As in :func:`two_moons`.

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        Points of shape ``(n, 2)`` (and labels).

    Notes
    -----
    The means are ``radius * torch.stack([cos(2πk/8), sin(2πk/8)], 1)``; pass them to
    :func:`ebmlab.metrics.mode_weights` to check the mass of each mode.
    """
    n = check_int(n, "n", minimum=1)
    radius = check_number(radius, "radius", at_least=0)
    std = check_number(std, "std", at_least=0)
    check_output(dtype, device, generator)
    ang = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    means = radius * torch.stack([torch.cos(ang), torch.sin(ang)], dim=1)
    w = torch.full((8,), 1 / 8, dtype=torch.float64)
    return _mixture(n, means, std, w, generator, return_labels, dtype, device)


def two_gaussians(n: int, weights: Sequence[float] = (0.8, 0.2),
                  means: Sequence[Sequence[float]] = ((5.0, 5.0), (-5.0, -5.0)),
                  std: float = 1.0, *, return_labels: bool = False,
                  generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                  device: torch.device | str | None = None,
                  ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""The two-Gaussian mixture of Song & Ermon (2019), section 3.2.

    :math:`p = \tfrac45\,\mathcal N((5,5), I) + \tfrac15\,\mathcal N((-5,-5), I)` by default:
    plain Langevin dynamics with the exact score gets the 0.8/0.2 weights wrong,
    annealed Langevin gets them right.

    Parameters
    ----------
    n : int
        Number of points.
    weights : sequence of float
        Mixture weights (normalised), one per mean.
    means : sequence of (float, float)
        Component means, shape ``(K, d)``.
    std : float
        Standard deviation of every component.
    return_labels : bool
        Also return the component index of each point.
    generator, dtype, device
        As in :func:`two_moons`.

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        Points of shape ``(n, d)`` (and labels ``(n,)``).
    """
    n = check_int(n, "n", minimum=1)
    std = check_number(std, "std", at_least=0)
    check_output(dtype, device, generator)
    m = torch.as_tensor(means, dtype=torch.float64)
    if m.dim() != 2 or m.shape[0] == 0 or not bool(torch.isfinite(m).all()):
        raise ValueError(f"means must be a (K, d) array of finite numbers, got {means!r}.")
    w = check_mixture_weights(weights, m.shape[0])
    return _mixture(n, m, std, w, generator, return_labels, dtype, device)


def checkerboard(n: int, n_squares: int = 4, size: float = 8.0, *,
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> torch.Tensor:
    r"""Uniform density on the dark squares of a checkerboard.

    The square :math:`[-\text{size}/2, \text{size}/2]^2` is cut into
    ``n_squares`` × ``n_squares`` cells; cell :math:`(i, j)` is dark when
    :math:`i + j` is even, and the points are uniform on the dark cells (the
    standard 4×4 board on :math:`[-4, 4]^2` by default).

    Parameters
    ----------
    n : int
        Number of points.
    n_squares : int
        Cells per side (at least 2).
    size : float
        Side length of the board.
    generator, dtype, device
        As in :func:`two_moons`.

    Returns
    -------
    torch.Tensor
        Shape ``(n, 2)``.
    """
    n = check_int(n, "n", minimum=1)
    n_squares = check_int(n_squares, "n_squares", minimum=2)
    size = check_number(size, "size", greater_than=0)
    check_output(dtype, device, generator)
    ij = torch.cartesian_prod(torch.arange(n_squares), torch.arange(n_squares))
    dark = ij[(ij.sum(1) % 2) == 0].to(torch.float64)
    w = torch.full((dark.shape[0],), 1.0 / dark.shape[0], dtype=torch.float64)
    cell = dark.to(generator_device(generator, torch.device("cpu")))[categorical(n, w, generator)]
    u = rand((n, 2), generator, torch.float64)
    width = size / n_squares
    pts = (cell + u) * width - size / 2
    return finish(pts, dtype, device)
