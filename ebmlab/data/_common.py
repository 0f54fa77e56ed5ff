"""What the data sets share: the check of their output settings, draws that follow a
``torch.Generator`` onto its device, and the final cast to the requested dtype and device."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._validation import check_device, check_float_dtype, check_generator
from ..utils import generator_device

_CPU = torch.device("cpu")


def check_output(dtype: object, device: object, generator: object = None) -> None:
    """The ``dtype`` (floating), ``device`` (one that exists) and ``generator`` of a data set."""
    check_float_dtype(dtype)
    if device is not None:
        check_device(device)
    check_generator(generator)


def randn(shape: tuple[int, ...], generator: torch.Generator | None,
          dtype: torch.dtype) -> torch.Tensor:
    """Standard normal draws, made on the generator's device."""
    return torch.randn(shape, generator=generator, device=generator_device(generator, _CPU),
                       dtype=dtype)


def rand(shape: tuple[int, ...], generator: torch.Generator | None,
         dtype: torch.dtype) -> torch.Tensor:
    """Uniform ``[0, 1)`` draws, made on the generator's device."""
    return torch.rand(shape, generator=generator, device=generator_device(generator, _CPU),
                      dtype=dtype)


def categorical(n: int, weights: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``n`` indices drawn with probabilities ``weights``, on the generator's device."""
    w = weights.to(generator_device(generator, _CPU), torch.float64)
    return torch.multinomial(w, n, replacement=True, generator=generator)


def finish(x: torch.Tensor, dtype: torch.dtype, device: torch.device | str | None) -> torch.Tensor:
    """``x`` in the requested dtype on the requested device (the CPU by default)."""
    return x.to(device=device if device is not None else "cpu", dtype=dtype)


def check_mixture_weights(weights: Sequence[float], k: int | None,
                          name: str = "weights") -> torch.Tensor:
    """Non-negative weights, not all zero, ``k`` of them when given; divided by their sum."""
    try:
        w = torch.as_tensor(weights, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a sequence of numbers, got {weights!r}.") from None
    if w.dim() != 1 or w.numel() == 0 or (k is not None and w.numel() != k):
        expected = (f"{k} values, one per component" if k is not None
                    else "a non-empty 1-D sequence")
        raise ValueError(f"{name} must be {expected}, got {list(w.reshape(-1).tolist())}.")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or float(w.sum()) <= 0:
        raise ValueError(f"{name} must be finite, non-negative and not all zero, "
                         f"got {w.tolist()}.")
    return w / w.sum()
