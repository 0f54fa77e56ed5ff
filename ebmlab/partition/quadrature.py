r"""Partition functions of continuous energies: grid quadrature and importance sampling."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from .._validation import (
    check_callable,
    check_choice,
    check_device,
    check_float_dtype,
    check_generator,
    check_int,
    check_rectangle,
    check_resolution,
)
from ..utils import floating_dtype_of, tensor_device_of
from .estimate import LogPartitionEstimate, estimate_from_log_weights

__all__ = ["grid_log_partition", "importance_log_partition"]

_DEFAULT_RESOLUTION = {1: 4096, 2: 512, 3: 96}


def grid_log_partition(
    energy: Callable[[torch.Tensor], torch.Tensor],
    bounds: Sequence[Sequence[float]] | None = None,
    resolution: int | Sequence[int] | None = None,
    *,
    rule: str = "midpoint",
    chunk_size: int = 65536,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""Log partition function of a 1–3 dimensional energy by quadrature on a grid.

    .. math:: \log Z = \log \int_{\text{box}} e^{-E(x)}\,dx \approx
              \operatorname{LSE}_{i}\big(-E(x_i) + \log \omega_i\big),

    with :math:`x_i` the nodes of a regular grid over the box and :math:`\omega_i`
    their quadrature weights: the cell volume :math:`\prod_k h_k` at cell midpoints
    (``rule="midpoint"``), or the tensor-product trapezoid weights on the cell corners
    (``rule="trapezoid"``). The box must hold essentially all the mass: quadrature
    does not see what lies outside.

    Energies are evaluated ``chunk_size`` nodes at a time and reduced with
    ``logsumexp`` in float64, so memory stays bounded.

    Parameters
    ----------
    energy : Energy or callable
        Maps ``(B, d)`` to ``(B,)``, with ``d`` in 1, 2, 3.
    bounds : sequence of (low, high), optional
        One pair per dimension, e.g. ``((-3, 3), (-3, 3))``; a single pair for 1-D.
        Defaults to ``energy.bounds`` (the 2D landscapes of :mod:`ebmlab.energies`
        carry one).
    resolution : int or sequence of int, optional
        Number of nodes per dimension (one int for all, or one per dimension).
        Defaults to 4096, 512 and 96 nodes per axis in 1, 2 and 3 dimensions.
    rule : {"midpoint", "trapezoid"}
        Quadrature rule.
    chunk_size : int
        Number of nodes evaluated at once.
    dtype, device : optional
        Where to evaluate the energy; defaults to the dtype and device of the
        energy's parameters, or float64 on the CPU for a plain callable.

    Returns
    -------
    torch.Tensor
        :math:`\log Z`, a float64 0-d tensor (differentiable with respect to the
        energy's parameters; wrap the call in :func:`torch.no_grad` otherwise).

    Raises
    ------
    ValueError
        For bounds that are not 1–3 pairs with low < high, a bad resolution or rule,
        or an energy that returns the wrong shape or NaN.

    Examples
    --------
    >>> import math, torch
    >>> energy = lambda x: 0.5 * (x**2).sum(dim=1)       # standard normal, log Z = log 2 pi
    >>> log_z = grid_log_partition(energy, ((-8, 8), (-8, 8)), 256)
    >>> abs(float(log_z) - math.log(2 * math.pi)) < 1e-6
    True
    """
    check_callable(energy, "energy", "(B, d) -> (B,)")
    box = _window(energy, bounds)
    d = len(box)
    sizes = (list(_DEFAULT_RESOLUTION[d] for _ in box) if resolution is None
             else check_resolution(resolution, d))
    check_choice(rule, "rule", ("midpoint", "trapezoid"))
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    dtype = (floating_dtype_of(energy) or torch.float64) if dtype is None \
        else check_float_dtype(dtype)
    device = (tensor_device_of(energy, torch.device("cpu")) if device is None
              else check_device(device))

    axes, log_w = [], []
    for (lo, hi), n in zip(box, sizes, strict=True):
        if rule == "midpoint":
            h = (hi - lo) / n
            nodes = lo + h * (torch.arange(n, dtype=torch.float64) + 0.5)
            lw = torch.full((n,), math.log(h), dtype=torch.float64)
        else:
            h = (hi - lo) / (n - 1)
            nodes = torch.linspace(lo, hi, n, dtype=torch.float64)
            lw = torch.full((n,), math.log(h), dtype=torch.float64)
            lw[[0, -1]] = math.log(h / 2)
        axes.append(nodes.to(device=device, dtype=dtype))
        log_w.append(lw.to(device))
    total = math.prod(sizes)
    strides = [math.prod(sizes[k + 1:]) for k in range(d)]
    partial = []
    for start in range(0, total, chunk_size):
        flat = torch.arange(start, min(start + chunk_size, total), device=device)
        index = [(flat // strides[k]) % sizes[k] for k in range(d)]
        x = torch.stack([axes[k][index[k]] for k in range(d)], dim=1)
        weight = sum(log_w[k][index[k]] for k in range(d))
        e = energy(x)
        if not isinstance(e, torch.Tensor) or e.shape != (x.shape[0],):
            got = tuple(e.shape) if isinstance(e, torch.Tensor) else type(e).__name__
            raise ValueError(f"energy must map a batch of shape {tuple(x.shape)} to energies of "
                             f"shape ({x.shape[0]},), got {got}.")
        partial.append(torch.logsumexp(weight - e.to(torch.float64), dim=0))
    log_z = torch.logsumexp(torch.stack(partial), dim=0)
    if bool(torch.isnan(log_z)):
        raise ValueError("energy returned NaN on the grid; check the energy and the bounds.")
    return log_z


def importance_log_partition(
    energy: Callable[[torch.Tensor], torch.Tensor],
    proposal: object,
    n_samples: int,
    *,
    generator: torch.Generator | None = None,
    chunk_size: int = 65536,
) -> LogPartitionEstimate:
    r"""Estimate :math:`\log Z` by importance sampling from a normalised proposal :math:`q`.

    .. math:: Z = \mathbb E_{x\sim q}\Big[\frac{e^{-E(x)}}{q(x)}\Big], \qquad
              \log \hat Z = \log \frac1n \sum_{i=1}^n w_i, \quad
              \log w_i = -E(x_i) - \log q(x_i).

    :math:`\hat Z` is unbiased, so :math:`\log \hat Z` underestimates :math:`\log Z`
    on average (Jensen); the standard error is the delta-method one,
    :math:`\operatorname{sd}(w) / (\sqrt n\, \bar w)`, and the effective sample size
    :math:`(\sum w)^2 / \sum w^2` warns when a few weights dominate (a proposal
    narrower than the target).

    Parameters
    ----------
    energy : Energy or callable
        Maps ``(B, *event_shape)`` to ``(B,)``.
    proposal : object
        A normalised distribution with ``sample(n, generator=...)`` and
        ``log_prob(x)``, such as :class:`ebmlab.energies.Gaussian` or
        :class:`ebmlab.energies.GaussianMixture`, or a
        :class:`torch.distributions.Distribution` (sampled under a forked RNG seeded
        from ``generator``).
    n_samples : int
        Number of proposal samples.
    generator : torch.Generator, optional
        Source of randomness.
    chunk_size : int
        Number of samples whose energies are evaluated at once.

    Returns
    -------
    LogPartitionEstimate
        ``log_z``, ``stderr``, ``log_weights`` and ``ess``. Not differentiable.

    Raises
    ------
    TypeError
        If ``proposal`` has no ``sample``/``log_prob``.
    ValueError
        If ``n_samples`` is not a positive int, or the proposal or energy return
        the wrong shapes.

    Examples
    --------
    >>> import torch
    >>> from torch.distributions import MultivariateNormal
    >>> q = MultivariateNormal(torch.zeros(2), 2.0 * torch.eye(2))
    >>> est = importance_log_partition(lambda x: 0.5 * (x**2).sum(1), q, 10_000,
    ...                                generator=torch.Generator().manual_seed(0))
    >>> abs(float(est.log_z) - 1.8379) < 3 * float(est.stderr)   # log 2 pi = 1.8379
    True
    """
    check_callable(energy, "energy", "(B, ...) -> (B,)")
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    check_generator(generator)
    with torch.no_grad():
        x = sample_proposal(proposal, n_samples, generator, "proposal")
        log_q = proposal_log_prob(proposal, x, "proposal")
        parts = []
        for start in range(0, n_samples, chunk_size):
            xb = x[start:start + chunk_size]
            e = energy(xb)
            if not isinstance(e, torch.Tensor) or e.shape != (xb.shape[0],):
                got = tuple(e.shape) if isinstance(e, torch.Tensor) else type(e).__name__
                raise ValueError(f"energy must map a batch of shape {tuple(xb.shape)} to "
                                 f"energies of shape ({xb.shape[0]},), got {got}.")
            parts.append(e.to(torch.float64))
        log_w = -torch.cat(parts) - log_q.to(torch.float64)
    if bool(torch.isnan(log_w).any()):
        raise ValueError(f"the energy or proposal.log_prob returned NaN at "
                         f"{int(torch.isnan(log_w).sum())} of the {n_samples} samples.")
    return estimate_from_log_weights(log_w)


def check_proposal(proposal: object, name: str) -> None:
    """Raise a TypeError unless ``proposal`` can be sampled and evaluated."""
    if isinstance(proposal, torch.distributions.Distribution):
        return
    if not (callable(getattr(proposal, "sample", None))
            and callable(getattr(proposal, "log_prob", None))):
        raise TypeError(
            f"{name} must be a normalised distribution with sample(n, generator=...) and "
            f"log_prob(x) (e.g. ebmlab.energies.Gaussian) or a torch.distributions.Distribution, "
            f"got {type(proposal).__name__}."
        )


def sample_proposal(proposal: object, n: int, generator: torch.Generator | None,
                    name: str) -> torch.Tensor:
    """Draw ``n`` samples ``(n, *event_shape)`` from ``proposal`` (see :func:`check_proposal`)."""
    check_proposal(proposal, name)
    if isinstance(proposal, torch.distributions.Distribution):
        if generator is None:
            x = proposal.sample((n,))
        else:
            # torch.distributions takes no generator: fork the global RNG, seeded from it.
            seed = int(torch.randint(0, 2**62, (), generator=generator, device=generator.device))
            devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                x = proposal.sample((n,))
    else:
        x = proposal.sample(n, generator=generator)  # type: ignore[attr-defined]
    if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[0] != n:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name}.sample({n}) must return a tensor of shape ({n}, ...), got {got}.")
    return x


def proposal_log_prob(proposal: object, x: torch.Tensor, name: str) -> torch.Tensor:
    """``proposal.log_prob(x)`` checked to have shape ``(B,)``."""
    lq = proposal.log_prob(x)  # type: ignore[attr-defined]
    if not isinstance(lq, torch.Tensor) or lq.shape != (x.shape[0],):
        got = tuple(lq.shape) if isinstance(lq, torch.Tensor) else type(lq).__name__
        hint = (" (wrap a factorised torch distribution in torch.distributions.Independent)"
                if isinstance(proposal, torch.distributions.Distribution) else "")
        raise ValueError(f"{name}.log_prob must map samples of shape {tuple(x.shape)} to shape "
                         f"({x.shape[0]},), got {got}{hint}.")
    return lq


def _window(energy: object, bounds: object) -> tuple[tuple[float, float], ...]:
    """The integration window: ``bounds``, or the energy's own ``bounds`` attribute."""
    if bounds is None:
        bounds = getattr(energy, "bounds", None)
        if bounds is None:
            raise ValueError(f"bounds must be given: {type(energy).__name__} has no attribute "
                             "'bounds'; pass e.g. bounds=((-4, 4), (-4, 4)).")
    box = check_rectangle(bounds, dims=None)
    if not 1 <= len(box) <= 3:
        raise ValueError(f"grid quadrature handles 1 to 3 dimensions, got {len(box)} pairs of "
                         f"bounds; use importance_log_partition or ais in higher dimensions.")
    return box
