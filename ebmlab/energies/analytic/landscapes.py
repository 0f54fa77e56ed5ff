r"""The 2D teaching landscapes: a double well, a banana, a ring and Gaussian wells.

:class:`DoubleWell`, :class:`Banana`, :class:`Ring` and :class:`Wells` each have a
closed-form score and an attribute ``bounds = ((xmin, xmax), (ymin, ymax))`` enclosing
all but a negligible fraction (below :math:`10^{-4}`) of the mass, so grid quadrature
over ``bounds`` gives :math:`Z`.
"""

from __future__ import annotations

import math

import torch

from ..._validation import check_int, check_number
from ...utils import randn_like
from .._common import as_float_tensor, check_input, nice_interval
from ..base import Energy
from .gaussian import (
    _LOG_2PI,
    _TAIL_STDS,
    GaussianMixture,
    _mixture_log_components,
    _mixture_score,
)

__all__ = ["Banana", "DoubleWell", "Ring", "Wells"]

#: Energy rise above the minimum at the edge of ``bounds`` for quartic directions.
_TAIL_ENERGY = 14.0


class _Landscape2D(Energy):
    """Base of the parameter-free 2D landscapes: input checking and ``event_shape``."""

    event_shape: tuple[int, ...] = (2,)

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        return check_input(x, self.event_shape)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._hyper().items())

    def _hyper(self) -> dict[str, float]:  # pragma: no cover - overridden
        return {}


class DoubleWell(_Landscape2D):
    r"""Symmetric double well, :math:`E(x) = h\,(x_1^2/c^2 - 1)^2 + x_2^2/(2w^2)`.

    Two minima at :math:`(\pm c, 0)` separated by a barrier of height :math:`h`
    at :math:`x_1 = 0`; the classic example of slow mixing between modes for
    local samplers (Langevin, MALA) when :math:`h` is a few units or more.

    Parameters
    ----------
    barrier : float
        Barrier height :math:`h > 0`.
    center : float
        Position :math:`c > 0` of the two minima on the first axis.
    width : float
        Standard deviation :math:`w > 0` along the second axis.

    Attributes
    ----------
    bounds : tuple of (float, float)
        Box where :math:`E` rises 14 above its minimum along :math:`x_1` and 4.5
        standard deviations along :math:`x_2`.
    """

    def __init__(self, barrier: float = 2.0, center: float = 1.0, width: float = 1.0) -> None:
        super().__init__()
        self.barrier = check_number(barrier, "barrier", greater_than=0)
        self.center = check_number(center, "center", greater_than=0)
        self.width = check_number(width, "width", greater_than=0)
        x1 = self.center * math.sqrt(1.0 + math.sqrt(_TAIL_ENERGY / self.barrier))
        x2 = _TAIL_STDS * self.width
        self.bounds = (nice_interval(-x1, x1), nice_interval(-x2, x2))

    def _hyper(self) -> dict[str, float]:
        return {"barrier": self.barrier, "center": self.center, "width": self.width}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check(x)
        u2 = (x[:, 0] / self.center).pow(2)
        return self.barrier * (u2 - 1.0).pow(2) + 0.5 * (x[:, 1] / self.width).pow(2)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        r"""Closed form :math:`-\big(4h\,u(u^2-1)/c,\; x_2/w^2\big)`, :math:`u = x_1/c`."""
        x = self._check(x)
        u = x[:, 0] / self.center
        g1 = 4.0 * self.barrier * u * (u * u - 1.0) / self.center
        g2 = x[:, 1] / self.width**2
        return -torch.stack((g1, g2), dim=-1)


class Banana(_Landscape2D):
    r"""Banana-shaped density: a Gaussian bent along a parabola (Haario et al. 1999).

    .. math::
        E(x) = \frac{x_1^2}{2a^2} + \frac{\big(x_2 - b\,(x_1^2 - a^2)\big)^2}{2s^2},

    i.e. :math:`x_1 \sim \mathcal N(0, a^2)` and
    :math:`x_2 \mid x_1 \sim \mathcal N(b(x_1^2 - a^2), s^2)`. The map
    :math:`(x_1, x_2) \mapsto (x_1, x_2 - b(x_1^2 - a^2))` has unit Jacobian, so
    :math:`Z = 2\pi a s` exactly and samples are exact.

    Parameters
    ----------
    scale : float
        Standard deviation :math:`a > 0` of :math:`x_1`.
    curvature : float
        Bend :math:`b` of the parabola (any real; 0 gives a Gaussian).
    width : float
        Standard deviation :math:`s > 0` across the banana.
    """

    def __init__(self, scale: float = 1.0, curvature: float = 0.5, width: float = 0.5) -> None:
        super().__init__()
        self.scale = check_number(scale, "scale", greater_than=0)
        self.curvature = check_number(curvature, "curvature")
        self.width = check_number(width, "width", greater_than=0)
        a, b, s, k = self.scale, self.curvature, self.width, _TAIL_STDS
        ends = (-b * a * a, b * (k * k - 1.0) * a * a)
        self.bounds = (nice_interval(-k * a, k * a),
                       nice_interval(min(ends) - k * s, max(ends) + k * s))

    def _hyper(self) -> dict[str, float]:
        return {"scale": self.scale, "curvature": self.curvature, "width": self.width}

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 1] - self.curvature * (x[:, 0].pow(2) - self.scale**2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check(x)
        r = self._residual(x)
        return 0.5 * (x[:, 0] / self.scale).pow(2) + 0.5 * (r / self.width).pow(2)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        r"""Closed form; with :math:`r = x_2 - b(x_1^2-a^2)`:
        :math:`s = -\big(x_1/a^2 - 2b x_1 r/s^2,\; r/s^2\big)`."""
        x = self._check(x)
        r = self._residual(x) / self.width**2
        g1 = x[:, 0] / self.scale**2 - 2.0 * self.curvature * x[:, 0] * r
        return -torch.stack((g1, r), dim=-1)

    def log_partition(self) -> torch.Tensor:
        r""":math:`\log Z = \log(2\pi a s)` (float64 0-d tensor)."""
        return torch.tensor(math.log(2.0 * math.pi * self.scale * self.width),
                            dtype=torch.float64)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised log-density :math:`-E(x) - \\log Z`, shape ``(B,)``."""
        e = self(x)
        return -e - self.log_partition().to(e.dtype)

    def sample(self, n: int, *, generator: torch.Generator | None = None,
               dtype: torch.dtype | None = None,
               device: torch.device | str | None = None) -> torch.Tensor:
        """Exact samples, shape ``(n, 2)`` (default dtype and CPU unless given)."""
        n = check_int(n, "n", minimum=1)
        z = randn_like(torch.empty(n, 2, dtype=dtype, device=device), generator)
        x1 = self.scale * z[:, 0]
        x2 = self.curvature * (x1.pow(2) - self.scale**2) + self.width * z[:, 1]
        return torch.stack((x1, x2), dim=-1)


class Ring(_Landscape2D):
    r"""Ring of radius :math:`r`, :math:`E(x) = (\lVert x\rVert - r)^2 / (2w^2)`.

    A density with a one-dimensional manifold of minima. In polar coordinates
    :math:`Z = 2\pi\int_0^\infty \rho\, e^{-(\rho-r)^2/2w^2} d\rho
    = 2\pi\big(w^2 e^{-r^2/2w^2} + r w\sqrt{2\pi}\,\Phi(r/w)\big)`.

    Parameters
    ----------
    radius : float
        Radius :math:`r > 0`.
    width : float
        Radial standard deviation :math:`w > 0`.
    """

    def __init__(self, radius: float = 2.0, width: float = 0.25) -> None:
        super().__init__()
        self.radius = check_number(radius, "radius", greater_than=0)
        self.width = check_number(width, "width", greater_than=0)
        m = self.radius + _TAIL_STDS * self.width
        self.bounds = (nice_interval(-m, m), nice_interval(-m, m))

    def _hyper(self) -> dict[str, float]:
        return {"radius": self.radius, "width": self.width}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check(x)
        rho = torch.linalg.vector_norm(x, dim=-1)
        return 0.5 * ((rho - self.radius) / self.width).pow(2)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        r"""Closed form :math:`-(1 - r/\lVert x\rVert)\,x/w^2` (0 at the origin)."""
        x = self._check(x)
        rho = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        rho = torch.where(rho > 0, rho, torch.ones_like(rho))  # x = 0 gives 0 / 1
        return -(x - self.radius * x / rho) / self.width**2

    def log_partition(self) -> torch.Tensor:
        """Closed-form :math:`\\log Z` (float64 0-d tensor)."""
        r, w = self.radius, self.width
        phi = 0.5 * math.erfc(-r / (w * math.sqrt(2.0)))
        z = 2.0 * math.pi * (w * w * math.exp(-0.5 * (r / w) ** 2)
                             + r * w * math.sqrt(2.0 * math.pi) * phi)
        return torch.tensor(math.log(z), dtype=torch.float64)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised log-density :math:`-E(x) - \\log Z`, shape ``(B,)``."""
        e = self(x)
        return -e - self.log_partition().to(e.dtype)


class Wells(Energy):
    r"""Gaussian wells of chosen depths and widths in the plane.

    .. math::
        E(x) = -\log\sum_k \exp\big(d_k - \lVert x - c_k\rVert^2 / 2w_k^2\big).


    Well :math:`k` bottoms out near energy :math:`-d_k` and holds mass
    :math:`e^{d_k}\,2\pi w_k^2` (exactly, summed over wells it is :math:`Z`). So
    a deep narrow well can hold *less* probability than a shallow wide one: mass
    is depth *and* volume (the energy–entropy trade-off). The defaults make the
    deep well (bottom :math:`-2`, width 0.2) hold 32% of the mass and the shallow
    one (bottom 0, width 0.8) 68%.

    Parameters
    ----------
    centers : array-like, shape (K, 2)
        Well centres :math:`c_k`.
    depths : array-like, shape (K,)
        Depths :math:`d_k` (the energy at the bottom of well :math:`k` is about :math:`-d_k`).
    widths : array-like, shape (K,)
        Widths :math:`w_k > 0`.

    Attributes
    ----------
    centers, depths, widths : torch.Tensor
        Buffers.
    bounds : tuple of (float, float)
        Box covering every well to 4.5 widths.

    Examples
    --------
    >>> w = Wells()
    >>> w.well_masses()
    tensor([0.3159, 0.6841])
    """

    centers: torch.Tensor
    depths: torch.Tensor
    widths: torch.Tensor
    event_shape: tuple[int, ...] = (2,)

    def __init__(self, centers: object = ((-1.5, 0.0), (1.5, 0.0)),
                 depths: object = (2.0, 0.0), widths: object = (0.2, 0.8)) -> None:
        super().__init__()
        c = as_float_tensor(centers, "centers")
        if c.dim() != 2 or c.shape[1] != 2 or c.shape[0] == 0:
            raise ValueError(f"centers must have shape (K, 2), got {tuple(c.shape)}.")
        k = c.shape[0]
        d = as_float_tensor(depths, "depths", dtype=c.dtype, device=c.device)
        w = as_float_tensor(widths, "widths", dtype=c.dtype, device=c.device)
        for name, t in (("depths", d), ("widths", w)):
            if t.shape != (k,):
                raise ValueError(f"{name} must have shape ({k},) to match centers of shape "
                                 f"{(k, 2)}, got {tuple(t.shape)}.")
        if not bool((w > 0).all()):
            raise ValueError(f"widths must all be > 0, got {w.tolist()}.")
        self.register_buffer("centers", c)
        self.register_buffer("depths", d)
        self.register_buffer("widths", w)
        lo = (c - _TAIL_STDS * w.unsqueeze(-1)).amin(0).tolist()
        hi = (c + _TAIL_STDS * w.unsqueeze(-1)).amax(0).tolist()
        self.bounds = tuple(nice_interval(a, b) for a, b in zip(lo, hi, strict=True))

    def _log_well_mass(self) -> torch.Tensor:
        return self.depths + _LOG_2PI + 2.0 * self.widths.log()

    def well_masses(self) -> torch.Tensor:
        r"""Probability of each well, :math:`e^{d_k} w_k^2 / \sum_j e^{d_j} w_j^2`, ``(K,)``."""
        return torch.softmax(self._log_well_mass(), dim=0)

    def log_partition(self) -> torch.Tensor:
        r""":math:`\log Z = \log\sum_k e^{d_k}\, 2\pi w_k^2` (0-d tensor)."""
        return torch.logsumexp(self._log_well_mass(), dim=0)

    def _coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.centers.to(x.dtype), self.widths.to(x.dtype).pow(2), self.depths.to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_input(x, self.event_shape, dtype=self.centers.dtype)
        return -torch.logsumexp(_mixture_log_components(x, *self._coefficients(x)), dim=-1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        r"""Closed form :math:`\sum_k r_k(x)(c_k - x)/w_k^2`, :math:`r_k` the wells' posteriors."""
        x = check_input(x, self.event_shape, dtype=self.centers.dtype)
        return _mixture_score(x, *self._coefficients(x))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised log-density :math:`-E(x) - \\log Z`, shape ``(B,)``."""
        e = self(x)
        return -e - self.log_partition().to(e.dtype)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Exact samples, shape ``(n, 2)``: a well by its mass, then its Gaussian."""
        return GaussianMixture(self.centers, self.widths, self.well_masses()).sample(
            n, generator=generator)
