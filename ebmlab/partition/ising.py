r"""Exact :math:`\log Z` of the periodic 2D Ising model: Kaufman (1949) and Onsager (1944)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ISING_CRITICAL_COUPLING", "ising_log_partition", "onsager_free_energy"]

#: Critical coupling :math:`\beta_c J = \tfrac12 \ln(1 + \sqrt 2)` of the square lattice.
ISING_CRITICAL_COUPLING: float = 0.5 * math.log(1.0 + math.sqrt(2.0))

_MAX_COUPLING = 300.0


def ising_log_partition(rows: int, cols: int, coupling: float, field: float = 0.0) -> float:
    r"""Exact :math:`\log Z` of the 2D Ising model on a periodic ``rows`` x ``cols`` torus.

    For :math:`E(s) = -J \sum_{\langle ij\rangle} s_i s_j` with :math:`s_i = \pm 1`
    and :math:`K = \beta J` (``coupling``), Kaufman (1949) gives, for an
    :math:`m \times n` torus (:math:`m` = ``rows``, :math:`n` = ``cols``),

    .. math::

        Z = \tfrac12 (2 \sinh 2K)^{mn/2} \Big[
            \prod_{r=0}^{n-1} 2\cosh\tfrac{m\gamma_{2r+1}}{2}
          + \prod_{r=0}^{n-1} 2\sinh\tfrac{m\gamma_{2r+1}}{2}
          + \prod_{r=0}^{n-1} 2\cosh\tfrac{m\gamma_{2r}}{2}
          + \prod_{r=0}^{n-1} 2\sinh\tfrac{m\gamma_{2r}}{2} \Big],

    with :math:`\cosh \gamma_l = \cosh 2K \coth 2K - \cos(\pi l / n)` (:math:`\gamma_l > 0`)
    for :math:`l \ge 1` and :math:`\gamma_0 = 2K + \ln \tanh K`, which is negative
    above the critical temperature, so the last product can be negative. Everything is
    computed in log space with the signs tracked, so any lattice size works (a
    :math:`1000 \times 1000` torus is instant).

    The lattice counts every bond of the torus, as ``torch.roll`` does: on a side of
    length 2 each neighbour pair is bonded twice, on a side of length 1 each spin is
    bonded to itself. This matches enumeration of :class:`ebmlab.energies.Ising`.

    Parameters
    ----------
    rows, cols : int
        Lattice size, at least 1 each.
    coupling : float
        :math:`K = \beta J`. Negative (antiferromagnetic) couplings are supported on
        bipartite tori (``rows`` and ``cols`` even), where :math:`Z(-K) = Z(K)`.
    field : float
        Must be 0: the model with a field has no closed form.

    Returns
    -------
    float
        :math:`\log Z`.

    Raises
    ------
    ValueError
        For a nonzero ``field``, a negative coupling on a non-bipartite torus, or a
        non-positive size.

    Examples
    --------
    >>> import math
    >>> n = 64
    >>> per_site = ising_log_partition(n, n, ISING_CRITICAL_COUPLING) / n**2
    >>> abs(per_site - onsager_free_energy(ISING_CRITICAL_COUPLING)) < 1e-3
    True
    """
    for name, value in (("rows", rows), ("cols", cols)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}.")
    k = _check_real(coupling, "coupling")
    h = _check_real(field, "field")
    if h != 0.0:
        raise ValueError(
            f"ising_log_partition is exact at zero field only, got field={field!r}; the Ising "
            "model in a field has no closed form. Enumerate a small lattice with "
            "exact_log_partition(Ising(...)) or estimate log Z with ais."
        )
    m, n = rows, cols
    if k == 0.0:
        return m * n * math.log(2.0)
    if k < 0.0:
        if m % 2 or n % 2:
            raise ValueError(
                f"a negative coupling ({coupling!r}) is supported on tori with an even number "
                f"of rows and columns only (then Z(-K) = Z(K)); got {rows} x {cols}. Use "
                "exact_log_partition for a small frustrated lattice."
            )
        k = -k
    if k > _MAX_COUPLING:
        raise ValueError(f"|coupling| must be at most {_MAX_COUPLING} (sinh 2K overflows "
                         f"float64 beyond), got {coupling!r}.")
    s2k = math.sinh(2.0 * k)
    ell = np.arange(2 * n, dtype=np.float64)
    # cosh 2K coth 2K = cosh^2 2K / sinh 2K = sinh 2K + 1 / sinh 2K (no overflow of cosh^2)
    cosh_gamma = s2k + 1.0 / s2k - np.cos(np.pi * ell / n)
    gamma = np.arccosh(np.maximum(cosh_gamma, 1.0))
    gamma[0] = 2.0 * k + math.log(math.tanh(k))
    half = 0.5 * m * gamma
    log_terms = []
    signs = []
    for parity in (1, 0):  # odd l = 2r + 1, then even l = 2r
        x = half[parity::2]
        log_terms.append(float(np.sum(_log_2cosh(x))))
        signs.append(1.0)
        log_abs_sinh, sign = _log_abs_2sinh(x)
        log_terms.append(float(np.sum(log_abs_sinh)))
        signs.append(sign)
    top = max(log_terms)
    total = sum(s * math.exp(t - top) for s, t in zip(signs, log_terms, strict=True)
                if t > -math.inf)
    return -math.log(2.0) + 0.5 * m * n * math.log(2.0 * s2k) + top + math.log(total)


def onsager_free_energy(coupling: float, *, n_intervals: int = 200) -> float:
    r"""Onsager's (1944) per-site :math:`\lim_{N\to\infty} \frac1N \log Z` of the square lattice.

    .. math::

        \frac{\log Z}{N} \to \ln(2\cosh 2K) + \frac1\pi \int_0^{\pi/2}
        \ln \frac{1 + \sqrt{1 - \kappa^2 \sin^2\theta}}{2}\, d\theta,
        \qquad \kappa = \frac{2 \sinh 2K}{\cosh^2 2K},

    evaluated by composite 16-point Gauss–Legendre quadrature on intervals graded
    towards :math:`\theta = \pi/2`, where the integrand is least smooth near the
    critical point. At the critical coupling it equals :math:`\tfrac12\ln 2 + 2G/\pi`
    (:math:`G` Catalan's constant).

    Parameters
    ----------
    coupling : float
        :math:`K = \beta J` (the infinite lattice is bipartite, so the sign does not matter).
    n_intervals : int
        Number of quadrature intervals (the default is accurate to about 1e-14).

    Returns
    -------
    float
        The per-site log partition function.

    Examples
    --------
    >>> import math
    >>> catalan = 0.915965594177219
    >>> f = onsager_free_energy(ISING_CRITICAL_COUPLING)
    >>> abs(f - (math.log(2) / 2 + 2 * catalan / math.pi)) < 1e-12
    True
    """
    k = _check_real(coupling, "coupling")
    if isinstance(n_intervals, bool) or not isinstance(n_intervals, int) or n_intervals < 1:
        raise ValueError(f"n_intervals must be a positive int, got {n_intervals!r}.")
    if abs(k) > _MAX_COUPLING:
        raise ValueError(f"|coupling| must be at most {_MAX_COUPLING} (cosh 2K overflows "
                         f"float64 beyond), got {coupling!r}.")
    kappa = 2.0 * math.sinh(2.0 * k) / math.cosh(2.0 * k) ** 2
    nodes, weights = np.polynomial.legendre.leggauss(16)
    edges = (math.pi / 2.0) * (1.0 - np.linspace(1.0, 0.0, n_intervals + 1) ** 3)
    lo, hi = edges[:-1, None], edges[1:, None]
    theta = 0.5 * (lo + hi) + 0.5 * (hi - lo) * nodes
    w = 0.5 * (hi - lo) * weights
    root = np.sqrt(np.clip(1.0 - kappa * kappa * np.sin(theta) ** 2, 0.0, None))
    integral = float(np.sum(w * np.log((1.0 + root) / 2.0)))
    return math.log(2.0 * math.cosh(2.0 * k)) + integral / math.pi


def _log_2cosh(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    return a + np.log1p(np.exp(-2.0 * a))


def _log_abs_2sinh(x: np.ndarray) -> tuple[np.ndarray, float]:
    a = np.abs(x)
    with np.errstate(divide="ignore"):
        log_abs = a + np.log(-np.expm1(-2.0 * a))  # -inf where x == 0
    sign = float(np.prod(np.sign(x)))
    return log_abs, sign


def _check_real(value: float, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}.") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    return v
