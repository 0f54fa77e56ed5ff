"""Private helpers shared by the concrete energies: argument conversion and input checks."""

from __future__ import annotations

import math

import torch

from .._validation import check_batch

__all__ = [
    "as_float_tensor",
    "check_input",
    "check_positive_int",
    "nice_interval",
]


def as_float_tensor(value: object, name: str, *, dtype: torch.dtype | None = None,
                    device: torch.device | None = None) -> torch.Tensor:
    """Convert ``value`` to a finite floating tensor (a copy, detached).

    Integer and boolean inputs become the default floating dtype; a floating tensor
    keeps its dtype unless ``dtype`` is given.
    """
    try:
        # Convert straight to the requested dtype: going through float32 first would
        # round Python floats (0.6 -> 0.60000002) before a float64 cast.
        if dtype is not None and not isinstance(value, torch.Tensor):
            t = torch.as_tensor(value, dtype=dtype, device=device)
        else:
            t = torch.as_tensor(value, device=device)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a tensor or an array-like of numbers, "
                        f"got {type(value).__name__}.") from None
    if dtype is not None:
        t = t.to(dtype)
    elif not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    t = t.detach().clone()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must contain finite numbers only, got {value!r}.")
    return t


def check_positive_int(value: object, name: str, *, minimum: int = 1) -> int:
    """Check that ``value`` is an ``int`` (not a bool) no smaller than ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return value


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


def check_input(x: object, event_shape: tuple[int, ...], *, name: str = "x",
                dtype: torch.dtype | None = None) -> torch.Tensor:
    """Check a batch ``(B, *event_shape)`` and return it as a floating tensor.

    Floating inputs pass through unchanged (no copy, no device synchronisation);
    integer or boolean inputs are cast to ``dtype`` (default: the default dtype).
    """
    x = check_batch(x, name, event_shape=event_shape)
    if not x.is_floating_point():
        if x.is_complex():
            raise TypeError(f"{name} must be a real tensor, got dtype {x.dtype}.")
        x = x.to(dtype if dtype is not None else torch.get_default_dtype())
    return x


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
