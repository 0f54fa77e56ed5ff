r"""Input checks of the objectives: data batches, discrete supports and noise levels.

The boundary validation shared by every loss (and by the likelihood metrics): floating,
finite ``(B, *event_shape)`` data, values in a discrete model's support, the rejection of
discrete models by the score-based losses, and noise levels :math:`\sigma`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._validation import check_batch, check_finite, check_positive

EnergyLike = Callable[[torch.Tensor], torch.Tensor]


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
