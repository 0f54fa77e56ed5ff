r"""Energies with closed-form scores: Gaussians, mixtures and 2D toy landscapes.

Every class here is an :class:`~ebmlab.energies.Energy` with a closed-form
:meth:`score` (no autograd), and, where it exists, a closed-form log-partition
function :math:`\log Z` and an exact sampler. The 2D landscapes carry an attribute
``bounds = ((xmin, xmax), (ymin, ymax))`` enclosing all but a negligible fraction
(below :math:`10^{-4}`) of the mass, so grid quadrature over ``bounds`` gives
:math:`Z`.
"""

from __future__ import annotations

import math

import torch

from ..utils import rand_like, randn_like
from ._common import as_float_tensor, check_input, check_positive_int, nice_interval
from .base import Energy

__all__ = ["Banana", "DoubleWell", "Gaussian", "GaussianMixture", "Ring", "Wells"]

#: Half-width, in standard deviations, of the boxes returned by ``bounds`` for
#: Gaussian-tailed directions (two-sided tail mass 6.8e-6 per direction).
_TAIL_STDS = 4.5
#: Energy rise above the minimum at the edge of ``bounds`` for quartic directions.
_TAIL_ENERGY = 14.0
_LOG_2PI = math.log(2.0 * math.pi)


def _check_n(n: object) -> int:
    return check_positive_int(n, "n")


def _check_scalar(value: object, name: str, *, positive: bool = True) -> float:
    """A finite Python float (positive when ``positive``), with a clear error otherwise."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got a tensor of shape "
                             f"{tuple(value.shape)}.")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}.")
    v = float(value)
    if not math.isfinite(v) or (positive and v <= 0):
        raise ValueError(f"{name} must be a finite number{' > 0' if positive else ''}, "
                         f"got {value!r}.")
    return v


def _empty(n: int, d: int, like: torch.Tensor) -> torch.Tensor:
    return torch.empty(n, d, dtype=like.dtype, device=like.device)


class Gaussian(Energy):
    r"""Multivariate Gaussian energy :math:`E(x) = \tfrac12 (x-\mu)^\top \Sigma^{-1} (x-\mu)`.

    The energy is unnormalised (:math:`E(\mu) = 0`); its partition function is
    :math:`\log Z = \tfrac d2 \log 2\pi + \tfrac12 \log\det\Sigma` (Bishop 2006, §2.3).

    Parameters
    ----------
    mean : array-like, shape (d,)
        The mean :math:`\mu`.
    covariance : array-like, shape (d, d), (d,) or scalar
        The covariance :math:`\Sigma`: a symmetric positive-definite matrix, a vector
        of variances (diagonal covariance) or one variance :math:`\sigma^2 I`.

    Attributes
    ----------
    mean, covariance, precision : torch.Tensor
        Buffers (they follow ``.to(device, dtype)``); ``precision`` is :math:`\Sigma^{-1}`.
    event_shape : tuple of int
        ``(d,)``.

    Raises
    ------
    ValueError
        If the shapes disagree or ``covariance`` is not symmetric positive definite.

    Examples
    --------
    >>> g = Gaussian(torch.zeros(2), torch.eye(2))
    >>> g(torch.zeros(3, 2))
    tensor([0., 0., 0.])
    """

    mean: torch.Tensor
    covariance: torch.Tensor
    precision: torch.Tensor
    scale_tril: torch.Tensor

    def __init__(self, mean: object, covariance: object) -> None:
        super().__init__()
        mu = as_float_tensor(mean, "mean")
        cov = as_float_tensor(covariance, "covariance", device=mu.device)
        dtype = torch.promote_types(mu.dtype, cov.dtype)
        mu, cov = mu.to(dtype), cov.to(dtype)
        if mu.dim() != 1 or mu.numel() == 0:
            raise ValueError(f"mean must have shape (d,), got {tuple(mu.shape)}.")
        d = mu.numel()
        if cov.dim() == 0:
            cov = cov * torch.eye(d, dtype=dtype, device=mu.device)
        elif cov.dim() == 1:
            if cov.shape != (d,):
                raise ValueError(f"covariance given as variances must have shape ({d},) to "
                                 f"match mean, got {tuple(cov.shape)}.")
            cov = torch.diag(cov)
        if cov.shape != (d, d):
            raise ValueError(f"covariance must have shape ({d}, {d}) to match mean of shape "
                             f"({d},), got {tuple(cov.shape)}.")
        tol = 1e-6 * float(cov.abs().max()) if dtype == torch.float64 else \
            1e-4 * float(cov.abs().max())
        asym = float((cov - cov.T).abs().max())
        if asym > tol:
            raise ValueError(f"covariance must be symmetric, got max |Σ - Σᵀ| = {asym:.3g}.")
        cov = 0.5 * (cov + cov.T)
        chol, info = torch.linalg.cholesky_ex(cov)
        if int(info) != 0:
            eig = float(torch.linalg.eigvalsh(cov).min())
            raise ValueError("covariance must be positive definite, got smallest eigenvalue "
                             f"{eig:.3g}.")
        self.register_buffer("mean", mu)
        self.register_buffer("covariance", cov)
        self.register_buffer("scale_tril", chol)
        self.register_buffer("precision", torch.cholesky_inverse(chol))
        self.event_shape: tuple[int, ...] = (d,)

    @property
    def dim(self) -> int:
        """The dimension :math:`d`."""
        return self.event_shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_input(x, self.event_shape, dtype=self.mean.dtype)
        diff = x - self.mean.to(x.dtype)
        return 0.5 * ((diff @ self.precision.to(x.dtype)) * diff).sum(-1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        r"""Closed-form score :math:`s(x) = -\Sigma^{-1}(x-\mu)`, shape ``(B, d)``."""
        x = check_input(x, self.event_shape, dtype=self.mean.dtype)
        return -(x - self.mean.to(x.dtype)) @ self.precision.to(x.dtype)

    def log_partition(self) -> torch.Tensor:
        r""":math:`\log Z = \tfrac d2 \log 2\pi + \tfrac12\log\det\Sigma` (0-d tensor)."""
        return 0.5 * self.dim * _LOG_2PI + self.scale_tril.diagonal().log().sum()

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        r"""Normalised log-density :math:`\log p(x) = -E(x) - \log Z`, shape ``(B,)``."""
        e = self(x)
        return -e - self.log_partition().to(e.dtype)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Exact samples :math:`x = \mu + L\epsilon`, :math:`LL^\top = \Sigma`, ``(n, d)``."""
        n = _check_n(n)
        eps = randn_like(_empty(n, self.dim, self.mean), generator)
        return self.mean + eps @ self.scale_tril.T

    @property
    def bounds(self) -> tuple[tuple[float, float], ...]:
        """Per-coordinate box :math:`\\mu_i \\pm 4.5\\sqrt{\\Sigma_{ii}}`, rounded outwards."""
        sd = self.covariance.diagonal().sqrt()
        lo = (self.mean - _TAIL_STDS * sd).tolist()
        hi = (self.mean + _TAIL_STDS * sd).tolist()
        return tuple(nice_interval(a, b) for a, b in zip(lo, hi, strict=True))


def _mixture_log_components(x: torch.Tensor, means: torch.Tensor, variances: torch.Tensor,
                            log_coef: torch.Tensor) -> torch.Tensor:
    """``log_coef_k - |x - means_k|² / (2 var_k)`` for every point and component, ``(B, K)``.

    When no autograd graph is being recorded the distances come from
    :func:`torch.cdist` (exact differences, several times faster, but not twice
    differentiable); otherwise from broadcast differences, which support the
    double backward of score matching.
    """
    if torch.is_grad_enabled() and (x.requires_grad or means.requires_grad):
        sq = (x.unsqueeze(1) - means.unsqueeze(0)).pow(2).sum(-1)
    else:
        sq = torch.cdist(x, means, compute_mode="donot_use_mm_for_euclid_dist").pow(2)
    return log_coef - 0.5 * sq / variances


def _mixture_score(x: torch.Tensor, means: torch.Tensor, variances: torch.Tensor,
                   log_coef: torch.Tensor) -> torch.Tensor:
    r"""Score of :math:`\log\sum_k c_k e^{-\lVert x-\mu_k\rVert^2/2v_k}`, in closed form:
    :math:`\sum_k r_k(x)(\mu_k - x)/v_k` with posteriors :math:`r_k` (no autograd)."""
    logits = _mixture_log_components(x, means, variances, log_coef)
    # Responsibilities by a max-shifted softmax. Clamping the shifted logits at -80 changes
    # nothing numerically (e^-80 is below float32 resolution relative to the top term) but
    # keeps CPU `exp` out of its slow denormal range once chains sit deep in one mode.
    w = (logits - logits.amax(-1, keepdim=True)).clamp_min(-80.0).exp()
    r = w / (w.sum(-1, keepdim=True) * variances)
    return r @ means - r.sum(-1, keepdim=True) * x


class GaussianMixture(Energy):
    r"""Isotropic Gaussian mixture, :math:`p(x) = \sum_k \pi_k \mathcal N(x;\mu_k,\sigma_k^2 I)`.

    The energy is the normalised negative log-density :math:`E(x) = -\log p(x)`,
    so :math:`\log Z = 0`. The score is the responsibility-weighted pull towards
    the means, :math:`s(x) = \sum_k r_k(x)\,(\mu_k - x)/\sigma_k^2` with
    :math:`r_k(x) = p(k \mid x)` (Bishop 2006, §9.2).

    Parameters
    ----------
    means : array-like, shape (K, d)
        Component means :math:`\mu_k`.
    stds : float or array-like, shape (K,)
        Component standard deviations :math:`\sigma_k > 0`.
    weights : array-like, shape (K,), optional
        Positive mixture weights; they are divided by their sum. Default: uniform.

    Attributes
    ----------
    means, stds, weights : torch.Tensor
        Buffers of shapes ``(K, d)``, ``(K,)``, ``(K,)``; ``weights`` sums to 1.
    event_shape : tuple of int
        ``(d,)``.

    Raises
    ------
    ValueError
        On inconsistent shapes, non-positive standard deviations or non-positive weights.

    Examples
    --------
    >>> gm = GaussianMixture([[-4.0, 0.0], [4.0, 0.0]], 1.0, [0.8, 0.2])
    >>> gm.sample(5).shape
    torch.Size([5, 2])
    """

    means: torch.Tensor
    stds: torch.Tensor
    weights: torch.Tensor

    def __init__(self, means: object, stds: object = 1.0, weights: object | None = None) -> None:
        super().__init__()
        mu = as_float_tensor(means, "means")
        if mu.dim() != 2 or mu.shape[0] == 0 or mu.shape[1] == 0:
            raise ValueError(f"means must have shape (K, d), got {tuple(mu.shape)}.")
        k, d = mu.shape
        sd = as_float_tensor(stds, "stds", dtype=mu.dtype, device=mu.device)
        if sd.dim() == 0:
            sd = sd.expand(k).clone()
        if sd.shape != (k,):
            raise ValueError(f"stds must be a number or have shape ({k},) to match means of "
                             f"shape {(k, d)}, got {tuple(sd.shape)}.")
        if not bool((sd > 0).all()):
            raise ValueError(f"stds must all be > 0, got {sd.tolist()}.")
        if weights is None:
            w = torch.full((k,), 1.0 / k, dtype=mu.dtype, device=mu.device)
        else:
            w = as_float_tensor(weights, "weights", dtype=mu.dtype, device=mu.device)
            if w.shape != (k,):
                raise ValueError(f"weights must have shape ({k},) to match means of shape "
                                 f"{(k, d)}, got {tuple(w.shape)}.")
            if not bool((w > 0).all()):
                raise ValueError(f"weights must all be > 0, got {w.tolist()}.")
            w = w / w.sum()
        self.register_buffer("means", mu)
        self.register_buffer("stds", sd)
        self.register_buffer("weights", w)
        self.event_shape: tuple[int, ...] = (d,)

    @property
    def dim(self) -> int:
        """The dimension :math:`d`."""
        return self.event_shape[0]

    @property
    def n_components(self) -> int:
        """The number of components :math:`K`."""
        return self.means.shape[0]

    def _coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Means, variances and ``log π_k - d/2 log(2π σ_k²)`` in the dtype of ``x``."""
        var = self.stds.to(x.dtype).pow(2)
        log_coef = self.weights.to(x.dtype).log() - 0.5 * self.dim * (_LOG_2PI + var.log())
        return self.means.to(x.dtype), var, log_coef

    def _log_components(self, x: torch.Tensor) -> torch.Tensor:
        """``log π_k + log N(x; μ_k, σ_k² I)`` per component, ``(B, K)``."""
        return _mixture_log_components(x, *self._coefficients(x))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(x) = \log\sum_k \pi_k \mathcal N(x;\mu_k,\sigma_k^2 I)`, ``(B,)``."""
        x = check_input(x, self.event_shape, dtype=self.means.dtype)
        return torch.logsumexp(self._log_components(x), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.log_prob(x)

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        r"""Posterior component probabilities :math:`r_k(x) = p(k\mid x)`, shape ``(B, K)``."""
        x = check_input(x, self.event_shape, dtype=self.means.dtype)
        return torch.softmax(self._log_components(x), dim=-1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        r"""Closed-form score :math:`\sum_k r_k(x)(\mu_k - x)/\sigma_k^2`, shape ``(B, d)``."""
        x = check_input(x, self.event_shape, dtype=self.means.dtype)
        return _mixture_score(x, *self._coefficients(x))

    def log_partition(self) -> torch.Tensor:
        """``0``: the energy is already normalised (0-d tensor)."""
        return self.weights.new_zeros(())

    def sample(self, n: int, *, generator: torch.Generator | None = None,
               return_components: bool = False
               ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Exact samples, shape ``(n, d)``: a component by its weight, then its Gaussian.

        With ``return_components=True`` also return the component index of each
        sample (a ``(n,)`` long tensor).
        """
        n = _check_n(n)
        u = rand_like(self.weights.new_empty(n), generator)
        k = torch.searchsorted(self.weights.cumsum(0).contiguous(), u, right=True)
        k = k.clamp_max(self.n_components - 1)
        eps = randn_like(_empty(n, self.dim, self.means), generator)
        x = self.means[k] + self.stds[k].unsqueeze(-1) * eps
        return (x, k) if return_components else x

    def smoothed(self, sigma: float) -> GaussianMixture:
        r"""The mixture convolved with :math:`\mathcal N(0, \sigma^2 I)`.

        Adding independent Gaussian noise to a Gaussian mixture keeps it a
        mixture: :math:`\sigma_k \to \sqrt{\sigma_k^2 + \sigma^2}`, same means and
        weights. Its score is the noise-conditional score of Song & Ermon (2019).

        Parameters
        ----------
        sigma : float
            Noise level :math:`\sigma \ge 0`.

        Returns
        -------
        GaussianMixture
            On the same device and dtype.
        """
        s = _check_scalar(sigma, "sigma", positive=False)
        if s < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma!r}.")
        return GaussianMixture(self.means, (self.stds.pow(2) + s * s).sqrt(), self.weights)

    @property
    def bounds(self) -> tuple[tuple[float, float], ...]:
        """Per-coordinate box covering every component to 4.5 standard deviations."""
        lo = (self.means - _TAIL_STDS * self.stds.unsqueeze(-1)).amin(0).tolist()
        hi = (self.means + _TAIL_STDS * self.stds.unsqueeze(-1)).amax(0).tolist()
        return tuple(nice_interval(a, b) for a, b in zip(lo, hi, strict=True))


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
        self.barrier = _check_scalar(barrier, "barrier")
        self.center = _check_scalar(center, "center")
        self.width = _check_scalar(width, "width")
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
        self.scale = _check_scalar(scale, "scale")
        self.curvature = _check_scalar(curvature, "curvature", positive=False)
        self.width = _check_scalar(width, "width")
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
        n = _check_n(n)
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
        self.radius = _check_scalar(radius, "radius")
        self.width = _check_scalar(width, "width")
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
