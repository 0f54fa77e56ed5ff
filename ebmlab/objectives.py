r"""Training objectives of energy-based models, as plain loss functions.

Each function returns a scalar loss tensor whose gradient with respect to the
model's parameters is the update of the method (descend it with any
:mod:`torch.optim` optimizer):

* :func:`exact_nll` — maximum likelihood where :math:`\log Z(\theta)` is tractable;
* :func:`contrastive_loss` — the surrogate whose gradient is the MLE gradient estimate
  :math:`\mathbb E_\text{data}[\nabla_\theta E_\theta] - \mathbb E_{x^-}[\nabla_\theta E_\theta]`
  behind CD-:math:`k` (Hinton 2002), PCD (Tieleman 2008) and Langevin training (Du & Mordatch 2019);
* :func:`score_matching_loss` — Hyvärinen (2005), exact Hessian trace;
* :func:`sliced_score_matching_loss` — Song, Garg, Shi & Ermon (2019);
* :func:`denoising_score_matching_loss` — Vincent (2011);
* :func:`multiscale_dsm_loss` — the noise-conditional objective of Song & Ermon (2019).

Notation follows the course: :math:`p_\theta(x) = e^{-E_\theta(x)}/Z(\theta)`, score
:math:`s_\theta(x) = \nabla_x \log p_\theta(x) = -\nabla_x E_\theta(x)`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ._closed_form import (
    GradFn,
    closed_form_gradient,
    contrast_weights,
    weighted_energy_sum,
)
from ._validation import check_batch, check_finite, check_positive, evaluate_energy
from .partition import exact_log_partition
from .utils import rand_like, randn_like

__all__ = [
    "contrastive_loss",
    "denoising_score_matching_loss",
    "exact_nll",
    "multiscale_dsm_loss",
    "score_matching_loss",
    "sliced_score_matching_loss",
]

EnergyLike = Callable[[torch.Tensor], torch.Tensor]

#: Largest number of elements of one batched Hessian-row block in :func:`score_matching_loss`.
_TRACE_BLOCK_ELEMENTS = 2**22
#: Use batched backward passes for the Hessian trace on the CPU too (off: no faster there).
_BATCHED_TRACE_ON_CPU = False


# ---------------------------------------------------------------------------- validation


def _check_data(x: object, name: str, model: object = None, *,
                min_event_dims: int = 0) -> torch.Tensor:
    """Floating, finite ``(B, *event_shape)`` data matching ``model.event_shape`` if it has one."""
    x = check_batch(x, name)
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}; "
                         f"convert it first, e.g. {name}.float() or {name}.double().")
    if x.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one example, got shape {tuple(x.shape)}.")
    if x.dim() - 1 < min_event_dims:
        raise ValueError(
            f"{name} must have shape (B, *event_shape) with at least {min_event_dims} event "
            f"dimension(s), got shape {tuple(x.shape)}; for one-dimensional data use "
            f"{name}[:, None] (shape (B, 1)).")
    event_shape = getattr(model, "event_shape", None)
    if event_shape is not None and tuple(x.shape[1:]) != tuple(event_shape):
        raise ValueError(
            f"{name} has shape {tuple(x.shape)} but {type(model).__name__} expects "
            f"(B, {', '.join(map(str, event_shape))}).")
    check_finite(x, name)
    return x


def _check_in_support(x: torch.Tensor, model: object, name: str) -> None:
    support = getattr(model, "support", None)
    if support is None:
        return
    a, b = float(support[0]), float(support[1])
    if not bool(((x == a) | (x == b)).all()):
        raise ValueError(
            f"{name} must take only the values {a:g} and {b:g} of {type(model).__name__}'s "
            f"support, got other values (e.g. {x[(x != a) & (x != b)][:3].tolist()}).")


def _reject_discrete(model: object, fn_name: str) -> None:
    support = getattr(model, "support", None)
    if support is not None:
        raise ValueError(
            f"{fn_name} needs continuous data and an energy differentiable in x, but "
            f"{type(model).__name__} is a discrete model (each unit takes the values "
            f"{tuple(float(s) for s in support)}): the score -dE/dx is not defined on binary "
            "data. Train it with contrastive divergence instead (CD-k or PCD: "
            "ebmlab.objectives.contrastive_loss with Gibbs samples, or method='cd'/'pcd' in "
            "ebmlab.training), or with exact_nll when log Z can be enumerated.")


def _check_sigma(sigma: object, x: torch.Tensor, name: str = "sigma") -> torch.Tensor:
    """Return the noise level as a ``(B,)`` tensor in ``x``'s dtype and device."""
    if isinstance(sigma, torch.Tensor):
        if sigma.dim() == 0 or (sigma.dim() == 1 and sigma.numel() == 1):
            s = sigma.reshape(()).to(device=x.device, dtype=x.dtype).expand(x.shape[0])
        elif sigma.shape == (x.shape[0],):
            s = sigma.to(device=x.device, dtype=x.dtype)
        else:
            raise ValueError(f"{name} must be a positive number, a 0-d tensor or a tensor of "
                             f"shape ({x.shape[0]},) (one level per example), got shape "
                             f"{tuple(sigma.shape)}.")
        if not bool((torch.isfinite(s) & (s > 0)).all()):
            raise ValueError(f"{name} must be finite and > 0, got {sigma.detach().flatten()[:5]}.")
        return s.detach()
    if isinstance(sigma, bool):
        raise TypeError(f"{name} must be a positive number, got {sigma!r}.")
    v = check_positive(sigma, name)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite and > 0, got {sigma!r}.")
    return torch.full((x.shape[0],), v, dtype=x.dtype, device=x.device)


def _check_sigmas(sigmas: object, x: torch.Tensor) -> torch.Tensor:
    try:
        s = torch.as_tensor(sigmas)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError("sigmas must be a 1-d sequence or tensor of positive noise levels, "
                        f"got {type(sigmas).__name__}.") from None
    if s.dim() != 1 or s.numel() == 0:
        raise ValueError("sigmas must be a non-empty 1-d sequence of noise levels, "
                         f"got shape {tuple(s.shape)}.")
    s = s.detach()
    if not s.is_floating_point():
        s = s.to(torch.float64)
    if not bool((torch.isfinite(s) & (s > 0)).all()):  # on the CPU for a list: no device sync
        raise ValueError(f"sigmas must all be finite and > 0, got {s.tolist()}.")
    return s.to(device=x.device, dtype=x.dtype)


def _event_view(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a per-example ``(B,)`` tensor to broadcast against ``x``."""
    return v.reshape(v.shape[0], *([1] * (x.dim() - 1)))


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


def _is_conditional(model: object) -> bool:
    """Whether ``model`` takes a noise level as second argument, from its signature.

    True when the callable has a parameter named ``sigma``, ``sigmas``, ``noise_level`` or
    ``noise_std`` after the first, or at least two required positional parameters.
    """
    fn = model.forward if isinstance(model, nn.Module) else model
    try:
        sig = inspect.signature(fn)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    positional = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.name in ("sigma", "sigmas", "noise_level", "noise_std") for p in positional[1:]):
        return True
    return sum(p.default is p.empty for p in positional) >= 2


def _model_score(model: Callable[..., torch.Tensor], x_t: torch.Tensor, sigma: torch.Tensor,
                 model_type: str, conditional: bool, name: str) -> torch.Tensor:
    """Score of ``model`` at ``x_t``: the output of a score network or ``-dE/dx`` of an energy."""
    if model_type not in ("auto", "energy", "score"):
        raise ValueError(f"model_type must be 'auto', 'energy' or 'score', got {model_type!r}.")
    x_in = x_t.detach().requires_grad_(model_type != "score")
    out = model(x_in, sigma) if conditional else model(x_in)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{name} must return a tensor, got {type(out).__name__}.")
    batch = x_t.shape[0]
    kind = model_type
    if kind == "auto":
        if out.shape == (batch,):
            kind = "energy"
        elif out.shape == x_t.shape:
            kind = "score"
        else:
            raise ValueError(
                f"{name} returned shape {tuple(out.shape)} for input {tuple(x_t.shape)}: expected "
                f"({batch},) (an energy) or {tuple(x_t.shape)} (a score network).")
    if kind == "score":
        if out.shape != x_t.shape:
            raise ValueError(f"{name} (a score network) must return the input's shape "
                             f"{tuple(x_t.shape)}, got {tuple(out.shape)}.")
        return out
    if out.shape != (batch,):
        raise ValueError(f"{name} (an energy) must return shape ({batch},), "
                         f"got {tuple(out.shape)}.")
    (g,) = torch.autograd.grad(out.sum(), x_in, create_graph=True, allow_unused=True)
    return -g if g is not None else torch.zeros_like(x_in)


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


# ---------------------------------------------------------------------------- exact likelihood


def _float64_call(model: object,
                  method: str | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """A differentiable float64 version of ``model`` (or of ``model.<method>``).

    For an :class:`torch.nn.Module` the floating parameters and buffers are cast to
    float64 inside :func:`torch.func.functional_call` (the casts are differentiable, so
    gradients reach the original parameters). Plain callables are called as they are.
    """
    if not isinstance(model, nn.Module):
        fn = model if method is None else getattr(model, method)
        return lambda x: fn(x)

    class _Call(nn.Module):
        def __init__(self, inner: nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x) if method is None else getattr(self.inner, method)(x)

    wrapper = _Call(model)
    state = {
        name: (t.double() if t.is_floating_point() else t)
        for name, t in [*wrapper.named_parameters(), *wrapper.named_buffers()]
    }

    def call(x: torch.Tensor) -> torch.Tensor:
        try:
            return torch.func.functional_call(wrapper, state, (x.double(),))
        except RuntimeError:  # a model that cannot run in float64: evaluate natively
            native = next(iter(state.values()), x)
            return wrapper(x.to(native.dtype if native.is_floating_point() else x.dtype)).double()

    return call


def _resolve_log_partition(model: object, log_partition: object) -> torch.Tensor:
    if log_partition is None:
        lp = getattr(model, "log_partition", None)
        if callable(lp):
            log_z = lp()
        elif getattr(model, "support", None) is not None:
            log_z = exact_log_partition(model)
        else:
            raise ValueError(
                f"log Z of {type(model).__name__} is unknown: it has no log_partition() method "
                "and no discrete support to enumerate. Pass log_partition= as a tensor or a "
                "callable model -> 0-d tensor, e.g. lambda m: "
                "ebmlab.partition.grid_log_partition(m, bounds, resolution).")
    elif callable(log_partition):
        log_z = log_partition(model)
    else:
        log_z = log_partition
    if not isinstance(log_z, torch.Tensor):
        try:
            log_z = torch.as_tensor(float(log_z), dtype=torch.float64)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise TypeError("log_partition must be a number, a 0-d tensor or a callable "
                            f"returning one, got {type(log_z).__name__}.") from None
    if log_z.numel() != 1:
        raise ValueError(f"log_partition must be a scalar (0-d tensor), got shape "
                         f"{tuple(log_z.shape)}.")
    log_z = log_z.reshape(())
    if not bool(torch.isfinite(log_z)):
        raise ValueError(f"log_partition is not finite ({float(log_z)}).")
    return log_z


def exact_nll(model: EnergyLike, x: torch.Tensor,
              log_partition: torch.Tensor | float | Callable[[object], torch.Tensor] | None = None,
              ) -> torch.Tensor:
    r"""Exact negative log-likelihood :math:`\frac1B\sum_b E_\theta(x_b) + \log Z(\theta)`.

    Its gradient is the exact maximum-likelihood gradient

    .. math:: \nabla_\theta\,\mathrm{NLL} = \mathbb E_\text{data}[\nabla_\theta E_\theta]
              - \mathbb E_{p_\theta}[\nabla_\theta E_\theta],

    since :math:`\nabla_\theta \log Z = -\mathbb E_{p_\theta}[\nabla_\theta E_\theta]`, provided
    :math:`\log Z` is computed differentiably (enumeration, closed form, grid quadrature).

    Parameters
    ----------
    model : Energy or callable
        Maps ``(B, *event_shape)`` to energies ``(B,)`` (the free energy for an RBM).
    x : torch.Tensor
        Data batch, floating point; for a discrete model, values in ``model.support``.
    log_partition : tensor, float or callable, optional
        :math:`\log Z(\theta)`, or a callable ``model -> 0-d tensor`` computing it. Default:
        ``model.log_partition()`` if the model has one, otherwise differentiable exact
        enumeration in float64 (:func:`ebmlab.partition.exact_log_partition`) for discrete
        models (those with ``support``; an RBM is summed over its smaller layer).

    Returns
    -------
    torch.Tensor
        0-d loss (float64 when :math:`\log Z` comes from enumeration).

    Raises
    ------
    ValueError
        Bad data (integer dtype, wrong shape, non-finite, values outside the support) or
        no way to compute :math:`\log Z`.

    Examples
    --------
    >>> import torch
    >>> energy = lambda x: 0.5 * (x ** 2).sum(1)
    >>> log_z = torch.tensor(math.log(2 * math.pi))
    >>> loss = exact_nll(energy, torch.zeros(4, 2), log_partition=log_z)
    >>> round(float(loss), 4)
    1.8379
    """
    x = _check_data(x, "x", model)
    _check_in_support(x, model, "x")
    log_z = _resolve_log_partition(model, log_partition)
    e = evaluate_energy(model, x, "model")
    return e.mean() + log_z.to(device=e.device)


# ---------------------------------------------------------------------------- contrastive


def _closed_form_route(energy: EnergyLike, x_data: torch.Tensor, x_model: torch.Tensor,
                       alpha: float) -> tuple[GradFn, torch.Tensor, torch.Tensor] | None:
    """``(grad_fn, x, weights)`` of :math:`\\bar E(x^+) - \\bar E(x^-)` in closed form, or None.

    The closed form applies when the model has one (``free_energy_grad``), there is no
    regulariser, gradients are being recorded and none is wanted for the data.
    """
    if (alpha != 0 or not torch.is_grad_enabled() or x_data.requires_grad
            or x_data.dtype != x_model.dtype):
        return None
    grad_fn = closed_form_gradient(energy)
    if grad_fn is None:
        return None
    x = torch.cat([x_data, x_model.detach()])
    return grad_fn, x, contrast_weights(x_data.shape[0], x_model.shape[0], x.dtype, x.device)


def contrastive_loss(energy: EnergyLike, x_data: torch.Tensor, x_model: torch.Tensor, *,
                     alpha: float = 0.0, validate: bool = True) -> torch.Tensor:
    r"""Contrastive surrogate :math:`\bar E(x^+) - \bar E(x^-)`, plus an energy-magnitude penalty.

    With :math:`x^+` the data and :math:`x^-` model samples (detached: no gradient
    flows through the sampler), the gradient is the Monte-Carlo estimate of the
    negative log-likelihood gradient

    .. math:: \frac1{B^+}\sum_b \nabla_\theta E_\theta(x^+_b)
              - \frac1{B^-}\sum_b \nabla_\theta E_\theta(x^-_b)

    ("push down the data, push up the samples"). With :math:`x^-` from :math:`k` Gibbs
    steps started at the data it is CD-:math:`k` (Hinton 2002), from persistent chains
    PCD (Tieleman 2008), from Langevin chains with a replay buffer the method of Du &
    Mordatch (2019), whose energy-magnitude regulariser is the ``alpha`` term.

    Parameters
    ----------
    energy : Energy or callable
        Maps ``(B, *event_shape)`` to ``(B,)``.
    x_data : torch.Tensor
        Positive (data) batch.
    x_model : torch.Tensor
        Negative (model sample) batch, same event shape; the batch size may differ.
    alpha : float
        Weight of the regulariser :math:`\alpha(\mathbb E[E(x^+)^2] + \mathbb E[E(x^-)^2])` (>= 0).
    validate : bool
        Check the batches (floating point, finite, matching shapes and devices) and
        ``alpha``. Checking finiteness reads the batches back from the device, so a
        training loop that validated its data once and whose sampler cannot leave the
        support (e.g. :func:`ebmlab.training.fit`) passes ``False``.

    Returns
    -------
    torch.Tensor
        0-d loss.

    Raises
    ------
    ValueError
        Bad batches (integer dtype, non-finite values, different event shapes) or ``alpha < 0``.

    Notes
    -----
    The energy is evaluated once, on the two batches concatenated. When ``alpha`` is 0
    and the model has a closed-form gradient (``free_energy_grad``, e.g.
    :meth:`ebmlab.energies.RBM.free_energy_grad`), no autograd graph is built: the loss
    carries the closed-form gradient, which ``backward()`` and :func:`torch.autograd.grad`
    return for the parameters (with ``create_graph=True`` it is recomputed by autograd,
    so higher derivatives work). Data with ``requires_grad`` and :mod:`torch.func`
    transforms take the autograd route.
    """
    if validate:
        x_data = _check_data(x_data, "x_data", energy)
        x_model = _check_data(x_model, "x_model", energy)
        if x_data.shape[1:] != x_model.shape[1:]:
            raise ValueError(f"x_data and x_model must have the same event shape, got "
                             f"{tuple(x_data.shape)} and {tuple(x_model.shape)}.")
        if x_data.device != x_model.device:
            raise ValueError(f"x_data and x_model must be on the same device, got "
                             f"{x_data.device} and {x_model.device}.")
        alpha = check_positive(alpha, "alpha", strict=False)
    x_model = x_model.detach()
    route = _closed_form_route(energy, x_data, x_model, alpha)
    if route is not None:
        return weighted_energy_sum(energy, *route)  # type: ignore[arg-type]
    n_pos = x_data.shape[0]
    if x_data.dtype != x_model.dtype:  # energies of each batch in its own dtype
        e_pos = evaluate_energy(energy, x_data)
        e_neg = evaluate_energy(energy, x_model)
    else:
        e = evaluate_energy(energy, torch.cat([x_data, x_model]))
        e_pos, e_neg = e[:n_pos], e[n_pos:]
    loss = e_pos.mean() - e_neg.mean()
    if alpha > 0:
        loss = loss + alpha * (e_pos.square().mean() + e_neg.square().mean())
    return loss


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
    _reject_discrete(energy, "score_matching_loss")
    x = _check_data(x, "x", energy, min_event_dims=1)
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
    _reject_discrete(energy, "sliced_score_matching_loss")
    x = _check_data(x, "x", energy, min_event_dims=1)
    if isinstance(n_projections, bool) or not isinstance(n_projections, int) or n_projections < 1:
        raise ValueError(f"n_projections must be an int >= 1, got {n_projections!r}.")
    if distribution not in ("gaussian", "rademacher"):
        raise ValueError(f"distribution must be 'gaussian' or 'rademacher', got {distribution!r}.")
    batch = x.shape[0]
    xr = x.detach().repeat(n_projections, *([1] * (x.dim() - 1)))
    if distribution == "gaussian":
        v = randn_like(xr, generator)
    else:
        v = (rand_like(xr, generator) < 0.5).to(xr.dtype) * 2 - 1
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


def denoising_score_matching_loss(model: Callable[..., torch.Tensor], x: torch.Tensor,
                                  sigma: float | torch.Tensor, *,
                                  generator: torch.Generator | None = None,
                                  model_type: str = "auto",
                                  conditional: bool | None = None) -> torch.Tensor:
    r"""Denoising score matching (Vincent 2011) at noise level :math:`\sigma`.

    With :math:`\tilde x = x + \sigma\epsilon`, :math:`\epsilon\sim\mathcal N(0, I)`,

    .. math:: J_\text{DSM}(\theta) = \frac1B\sum_b \tfrac12 \Big\| s_\theta(\tilde x_b)
              + \frac{\tilde x_b - x_b}{\sigma^2}\Big\|^2,

    whose expectation equals explicit score matching against the smoothed density
    :math:`q_\sigma = p_\text{data} * \mathcal N(0, \sigma^2 I)` up to a constant: the minimiser
    is the score of :math:`q_\sigma`, not of :math:`p_\text{data}`.

    Parameters
    ----------
    model : callable
        An energy ``(B, *shape) -> (B,)`` (score by autograd, differentiable) or a score
        network ``(B, *shape) -> (B, *shape)``; noise-conditional models are called as
        ``model(x_tilde, sigma)`` with ``sigma`` a ``(B,)`` tensor.
    x : torch.Tensor
        Clean continuous data ``(B, *event_shape)``.
    sigma : float or torch.Tensor
        Noise level (> 0): a number, a 0-d tensor, or one level per example ``(B,)``.
    generator : torch.Generator, optional
        Source of the noise.
    model_type : {"auto", "energy", "score"}
        How to read the model's output; ``"auto"`` decides by shape: ``(B,)`` is an
        energy, the shape of ``x`` a score.
    conditional : bool, optional
        Whether to pass ``sigma`` to the model. Default: decided from the signature
        (a parameter named ``sigma``, or two required positional parameters).

    Returns
    -------
    torch.Tensor
        0-d loss.

    Raises
    ------
    ValueError
        ``sigma <= 0``, discrete models, bad data, or an output of the wrong shape.
    """
    _reject_discrete(model, "denoising_score_matching_loss")
    x = _check_data(x, "x", model, min_event_dims=1)
    sig = _check_sigma(sigma, x)
    cond = _is_conditional(model) if conditional is None else bool(conditional)
    eps = randn_like(x, generator)
    sig_b = _event_view(sig, x)
    x_t = x.detach() + sig_b * eps
    with torch.enable_grad():
        s = _model_score(model, x_t, sig, model_type, cond, "model")
        resid = s + eps / sig_b
        return 0.5 * resid.reshape(x.shape[0], -1).square().sum(1).mean()


def multiscale_dsm_loss(score_model: Callable[..., torch.Tensor], x: torch.Tensor,
                        sigmas: Sequence[float] | torch.Tensor, *,
                        generator: torch.Generator | None = None,
                        model_type: str = "auto") -> torch.Tensor:
    r"""Noise-conditional denoising score matching of NCSN (Song & Ermon 2019).

    Each example draws a level :math:`\sigma_i` uniformly from the ladder and contributes
    :math:`\lambda(\sigma_i)\,\tfrac12\|s_\theta(\tilde x, \sigma_i)
    + (\tilde x - x)/\sigma_i^2\|^2`
    with :math:`\lambda(\sigma) = \sigma^2`, i.e.
    :math:`\tfrac12\|\sigma_i s_\theta(\tilde x, \sigma_i) + \epsilon\|^2`; the expectation is
    :math:`\frac1L\sum_i \lambda(\sigma_i)\, J_\text{DSM}^{\sigma_i}(\theta)`, every level on a
    comparable scale.

    Parameters
    ----------
    score_model : callable
        ``score_model(x_tilde, sigma)`` with ``sigma`` a ``(B,)`` tensor, returning a score
        ``(B, *shape)`` or an energy ``(B,)`` (score by autograd; see ``model_type``).
    x : torch.Tensor
        Clean continuous data ``(B, *event_shape)``.
    sigmas : sequence of float or 1-d tensor
        The noise ladder :math:`\sigma_1 > \dots > \sigma_L` (positive; order irrelevant).
    generator : torch.Generator, optional
        Source of the levels and of the noise.
    model_type : {"auto", "energy", "score"}
        As in :func:`denoising_score_matching_loss`.

    Returns
    -------
    torch.Tensor
        0-d loss.

    Raises
    ------
    ValueError
        Non-positive levels, discrete models, bad data, outputs of the wrong shape.
    """
    _reject_discrete(score_model, "multiscale_dsm_loss")
    x = _check_data(x, "x", score_model, min_event_dims=1)
    ladder = _check_sigmas(sigmas, x)
    batch = x.shape[0]
    idx_device = generator.device if generator is not None else x.device
    idx = torch.randint(ladder.numel(), (batch,), generator=generator, device=idx_device)
    sig = ladder[idx.to(x.device)]
    eps = randn_like(x, generator)
    sig_b = _event_view(sig, x)
    x_t = x.detach() + sig_b * eps
    with torch.enable_grad():
        s = _model_score(score_model, x_t, sig, model_type, True, "score_model")
        resid = sig_b * s + eps
        return 0.5 * resid.reshape(batch, -1).square().sum(1).mean()
