r"""Score matching of an energy: exact (Hyvärinen 2005) and sliced (Song et al. 2019).

* :func:`score_matching_loss` — the exact Hessian trace, one backward pass per dimension
  (batched into blocks on accelerators);
* :func:`sliced_score_matching_loss` — random projections, one Hessian-vector product.
"""

from __future__ import annotations

import torch

from .._validation import (
    check_bool,
    check_choice,
    check_continuous_model,
    check_generator,
    check_int,
    check_model_data,
    evaluate_energy,
)
from ..energies.base import EnergyLike
from ..utils import bernoulli, randn_like

__all__ = ["score_matching_loss", "sliced_score_matching_loss"]

#: Largest number of elements of one batched Hessian-row block in :func:`score_matching_loss`.
_TRACE_BLOCK_ELEMENTS = 2**22
#: Use batched backward passes for the Hessian trace on the CPU too (off: no faster there).
_BATCHED_TRACE_ON_CPU = False


# ---------------------------------------------------------------------------- scores


def _score_with_graph(energy: EnergyLike, x: torch.Tensor,
                      name: str = "energy") -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(x_, s)`` with ``x_`` a leaf requiring grad and ``s = -dE/dx_`` differentiable."""
    x_ = x.detach().requires_grad_(True)
    e = evaluate_energy(energy, x_, name)
    (g,) = torch.autograd.grad(e.sum(), x_, create_graph=True, allow_unused=True)
    if g is None:
        g = torch.zeros_like(x_)
    return x_, -g


def _trace_loop(x_: torch.Tensor, s_flat: torch.Tensor) -> torch.Tensor:
    """Jacobian diagonal by one backward pass per dimension."""
    batch, dim = s_flat.shape
    tr = torch.zeros(batch, dtype=s_flat.dtype, device=s_flat.device)
    for i in range(dim):
        (g,) = torch.autograd.grad(s_flat[:, i].sum(), x_, create_graph=True, retain_graph=True,
                                   allow_unused=True)
        if g is not None:
            tr = tr + g.reshape(batch, dim)[:, i]
    return tr


def _trace_batched(x_: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Jacobian diagonal by batched backward passes over blocks of basis vectors."""
    batch = x_.shape[0]
    dim = s[0].numel()
    block = max(1, min(dim, _TRACE_BLOCK_ELEMENTS // max(1, batch * dim)))
    eye = torch.eye(dim, dtype=s.dtype, device=s.device)
    tr = torch.zeros(batch, dtype=s.dtype, device=s.device)
    for start in range(0, dim, block):
        rows = eye[start:start + block]  # (k, D)
        k = rows.shape[0]
        grad_out = rows[:, None, :].expand(k, batch, dim).reshape(k, *s.shape)
        (g,) = torch.autograd.grad(s, x_, grad_outputs=grad_out, is_grads_batched=True,
                                   create_graph=True, retain_graph=True, allow_unused=True)
        if g is None:
            return tr
        g = g.reshape(k, batch, dim)[:, :, start:start + k]  # (k, B, k)
        tr = tr + g.diagonal(dim1=0, dim2=2).sum(-1)
    return tr


def _hessian_trace(x_: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    r"""Exact :math:`\operatorname{tr} \nabla_x s(x)` per example, differentiable.

    On accelerators the Jacobian rows are computed in blocks by batched backward passes
    (``is_grads_batched``, few kernel launches); on the CPU, where measurements show no
    gain from batching, by one backward pass per dimension. A model whose operations
    have no batching rule falls back to the loop.
    """
    batch = x_.shape[0]
    dim = s[0].numel()
    if dim > 1 and (x_.device.type != "cpu" or _BATCHED_TRACE_ON_CPU):
        try:
            return _trace_batched(x_, s)
        except RuntimeError:
            pass
    return _trace_loop(x_, s.reshape(batch, dim))


# ---------------------------------------------------------------------------- score matching


def score_matching_loss(energy: EnergyLike, x: torch.Tensor) -> torch.Tensor:
    r"""Hyvärinen's (2005) score-matching objective with the exact Hessian trace.

    .. math:: J(\theta) = \frac1B \sum_b \Big[\operatorname{tr}\nabla_x s_\theta(x_b)
              + \tfrac12 \|s_\theta(x_b)\|^2\Big],
              \qquad s_\theta = -\nabla_x E_\theta,\
              \operatorname{tr}\nabla_x s_\theta = -\Delta_x E_\theta,

    equal to the Fisher divergence
    :math:`\tfrac12\mathbb E\|s_\theta - \nabla_x \log p_\text{data}\|^2`
    up to a constant independent of :math:`\theta`; :math:`Z(\theta)` never appears. The trace
    needs one backward pass per dimension :math:`D` (batched into blocks on GPUs), so the cost
    grows with :math:`D`; see :func:`sliced_score_matching_loss` for a cheaper unbiased estimate.

    Parameters
    ----------
    energy : Energy or callable
        A continuous energy, twice differentiable in ``x``.
    x : torch.Tensor
        Continuous data ``(B, *event_shape)``.

    Returns
    -------
    torch.Tensor
        0-d loss.

    Raises
    ------
    ValueError
        Discrete models (score matching needs continuous data; use CD/PCD), bad data.
    """
    check_continuous_model(energy, "score_matching_loss")
    x = check_model_data(x, "x", energy, min_event_dims=1)
    with torch.enable_grad():
        x_, s = _score_with_graph(energy, x)
        trace = _hessian_trace(x_, s)
        sq = s.reshape(x.shape[0], -1).square().sum(1)
    return (trace + 0.5 * sq).mean()


def sliced_score_matching_loss(energy: EnergyLike, x: torch.Tensor, n_projections: int = 1,
                               variance_reduced: bool = True, *,
                               distribution: str = "gaussian",
                               generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Sliced score matching (Song, Garg, Shi & Ermon 2019).

    .. math:: J_\text{SSM}(\theta) = \frac{1}{BM}\sum_{b,m}
              \Big[v_m^\top \nabla_x s_\theta(x_b)\, v_m
              + \tfrac12 \big(v_m^\top s_\theta(x_b)\big)^2\Big]

    with :math:`M` random projections per example, :math:`\mathbb E[v v^\top] = I`, so each term
    is an unbiased estimate of :math:`\operatorname{tr}\nabla_x s + \tfrac12\|s\|^2`; one
    Hessian-vector product replaces the :math:`D` backward passes of the exact trace. The
    variance-reduced form (SSM-VR) uses the exact :math:`\tfrac12\|s_\theta(x_b)\|^2` in place of
    :math:`\tfrac12 (v^\top s_\theta)^2`.

    Parameters
    ----------
    energy : Energy or callable
        A continuous energy.
    x : torch.Tensor
        Continuous data ``(B, *event_shape)``.
    n_projections : int
        Projections :math:`M` per example.
    variance_reduced : bool
        Use SSM-VR.
    distribution : {"gaussian", "rademacher"}
        Law of the projections: standard normal, or independent :math:`\pm1` entries.
    generator : torch.Generator, optional
        Source of the projections.

    Returns
    -------
    torch.Tensor
        0-d loss, an unbiased estimate of :func:`score_matching_loss` on the same batch.

    Raises
    ------
    ValueError
        Discrete models, bad data, ``n_projections < 1`` or an unknown ``distribution``.
    """
    check_continuous_model(energy, "sliced_score_matching_loss")
    x = check_model_data(x, "x", energy, min_event_dims=1)
    n_projections = check_int(n_projections, "n_projections", minimum=1)
    check_bool(variance_reduced, "variance_reduced")
    check_choice(distribution, "distribution", ("gaussian", "rademacher"))
    check_generator(generator)
    batch = x.shape[0]
    xr = x.detach().repeat(n_projections, *([1] * (x.dim() - 1)))
    if distribution == "gaussian":
        v = randn_like(xr, generator)
    else:
        v = bernoulli(torch.full_like(xr, 0.5), generator) * 2 - 1
    with torch.enable_grad():
        x_, s = _score_with_graph(energy, xr)
        (gv,) = torch.autograd.grad((s * v).sum(), x_, create_graph=True, allow_unused=True)
        if gv is None:
            gv = torch.zeros_like(x_)
        n = batch * n_projections
        quad = (gv * v).reshape(n, -1).sum(1)
        if variance_reduced:
            second = 0.5 * s.reshape(n, -1).square().sum(1)
        else:
            second = 0.5 * (s * v).reshape(n, -1).sum(1).square()
    return (quad + second).mean()
