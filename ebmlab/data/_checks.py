"""Argument checks and random helpers shared by the data sets.

Boundary validation (positive counts, non-negative numbers, floating dtypes, mixture
weights) and the draws that follow a ``torch.Generator`` onto its device, plus the final
cast to the requested ``dtype`` and ``device``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch


def _check_n(n: object, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int, got {n!r}.")
    if n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}.")
    return int(n)


def _check_nonneg(value: object, name: str) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
    return v


def _check_float_dtype(dtype: torch.dtype) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}.")
    return dtype


def _gen_device(generator: torch.Generator | None) -> torch.device:
    return torch.device("cpu") if generator is None else generator.device


def _randn(shape: tuple[int, ...], generator: torch.Generator | None,
           dtype: torch.dtype) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=_gen_device(generator), dtype=dtype)


def _rand(shape: tuple[int, ...], generator: torch.Generator | None,
          dtype: torch.dtype) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=_gen_device(generator), dtype=dtype)


def _categorical(n: int, weights: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    w = weights.to(_gen_device(generator), torch.float64)
    return torch.multinomial(w, n, replacement=True, generator=generator)


def _finish(x: torch.Tensor, dtype: torch.dtype, device: torch.device | str | None) -> torch.Tensor:
    return x.to(device=device if device is not None else "cpu", dtype=dtype)


def _check_weights(weights: Sequence[float], k: int | None, name: str = "weights") -> torch.Tensor:
    w = torch.as_tensor(weights, dtype=torch.float64)
    if w.dim() != 1 or w.numel() == 0 or (k is not None and w.numel() != k):
        expected = f"{k} values" if k is not None else "a non-empty 1-D sequence"
        raise ValueError(f"{name} must be {expected}, got {list(w.reshape(-1).tolist())}.")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or float(w.sum()) <= 0:
        raise ValueError(f"{name} must be finite, non-negative and not all zero, "
                         f"got {w.tolist()}.")
    return w / w.sum()
