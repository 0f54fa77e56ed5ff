r"""The Gaussian family in closed form: :class:`Gaussian` and :class:`GaussianMixture`.

Both have a closed-form score, :math:`\log Z` and an exact sampler. The mixture
helpers ``_mixture_log_components`` and ``_mixture_score`` also serve
:class:`~ebmlab.energies.Wells`.
"""

from __future__ import annotations

import math
from typing import Literal, overload

import torch

from ..._validation import check_int, check_number
from ...utils import rand_like, randn_like
from .._common import as_float_tensor, check_input, nice_interval
from ..base import Energy

__all__ = ["Gaussian", "GaussianMixture"]

#: Half-width, in standard deviations, of the boxes returned by ``bounds`` for
#: Gaussian-tailed directions (two-sided tail mass 6.8e-6 per direction).
_TAIL_STDS = 4.5
_LOG_2PI = math.log(2.0 * math.pi)


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
        n = check_int(n, "n", minimum=1)
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

    @overload
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               return_components: Literal[False] = False) -> torch.Tensor: ...

    @overload
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               return_components: Literal[True]) -> tuple[torch.Tensor, torch.Tensor]: ...

    def sample(self, n: int, *, generator: torch.Generator | None = None,
               return_components: bool = False
               ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Exact samples, shape ``(n, d)``: a component by its weight, then its Gaussian.

        With ``return_components=True`` also return the component index of each
        sample (a ``(n,)`` long tensor).
        """
        n = check_int(n, "n", minimum=1)
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
        s = check_number(sigma, "sigma", at_least=0)
        return GaussianMixture(self.means, (self.stds.pow(2) + s * s).sqrt(), self.weights)

    @property
    def bounds(self) -> tuple[tuple[float, float], ...]:
        """Per-coordinate box covering every component to 4.5 standard deviations."""
        lo = (self.means - _TAIL_STDS * self.stds.unsqueeze(-1)).amin(0).tolist()
        hi = (self.means + _TAIL_STDS * self.stds.unsqueeze(-1)).amax(0).tolist()
        return tuple(nice_interval(a, b) for a, b in zip(lo, hi, strict=True))
