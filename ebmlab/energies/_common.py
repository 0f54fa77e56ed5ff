"""Helpers shared by the concrete energies: argument conversion and input checks."""

from __future__ import annotations

import math

import torch

from .._validation import check_batch

__all__ = ["as_float_tensor", "check_input", "check_parameter_dtype", "nice_interval"]


def as_float_tensor(value: object, name: str, *, dtype: torch.dtype | None = None,
                    device: torch.device | None = None) -> torch.Tensor:
    """Convert ``value`` to a finite real floating tensor (a copy, detached).

    Integer and boolean inputs become the default floating dtype; a floating tensor
    keeps its dtype unless ``dtype`` is given. Complex numbers are refused.
    """
    try:
        # Convert straight to the requested dtype: going through float32 first would
        # round Python floats (0.6 -> 0.60000002) before a float64 cast.
        if dtype is not None and not isinstance(value, torch.Tensor):
            t = torch.as_tensor(value, dtype=dtype, device=device)
        else:
            t = torch.as_tensor(value, device=device)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a tensor or an array-like of real numbers, "
                        f"got {type(value).__name__}.") from None
    if t.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {t.dtype}.")
    if dtype is not None:
        t = t.to(dtype)
    elif not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    t = t.detach().clone()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must contain finite numbers only, got {value!r}.")
    return t


def check_input(x: object, event_shape: tuple[int, ...], *, name: str = "x",
                dtype: torch.dtype | None = None) -> torch.Tensor:
    """Check a batch ``(B, *event_shape)`` and return it as a floating tensor.

    Floating inputs pass through unchanged (no copy, no device synchronisation);
    integer or boolean inputs are cast to ``dtype`` (default: the default dtype).
    """
    x = check_batch(x, name, event_shape=event_shape)
    if x.is_complex():
        raise TypeError(f"{name} must be a real tensor, got dtype {x.dtype}.")
    if not x.is_floating_point():
        x = x.to(dtype if dtype is not None else torch.get_default_dtype())
    return x


def check_parameter_dtype(x: torch.Tensor, module: torch.nn.Module, name: str = "x") -> None:
    """Refuse inputs whose dtype is not that of ``module``'s parameters, naming both."""
    param = next(module.parameters(), None)
    if param is not None and x.dtype != param.dtype:
        raise TypeError(f"{name} has dtype {x.dtype} but the parameters of "
                        f"{type(module).__name__} are {param.dtype}; convert one of them "
                        f"({name}.to({param.dtype}) or model.to({x.dtype})).")


def nice_interval(lo: float, hi: float) -> tuple[float, float]:
    """Widen ``[lo, hi]`` outwards to multiples of a round step (1, 2.5 or 5 times a power
    of ten, the largest one below a 40th of the span)."""
    span = hi - lo
    if not span > 0:
        return (float(lo), float(hi))
    target = span / 40.0
    power = 10.0 ** math.floor(math.log10(target))
    step = max(m * power for m in (1.0, 2.5, 5.0) if m * power <= target)
    return (round(math.floor(lo / step) * step, 12), round(math.ceil(hi / step) * step, 12))
