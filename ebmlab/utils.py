"""Small utilities: reproducible seeding and device helpers."""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["make_generator", "rand_like", "randn_like", "seed_everything"]


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) and return a generator.

    Parameters
    ----------
    seed : int
        The seed.

    Returns
    -------
    torch.Generator
        A CPU generator seeded with ``seed``, for functions that take
        ``generator=``.

    Examples
    --------
    >>> import ebmlab as el
    >>> g = el.seed_everything(0)
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}.")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds the legacy global state on purpose
    torch.manual_seed(seed)
    return make_generator(seed)


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """Return a :class:`torch.Generator` on ``device`` seeded with ``seed``."""
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def _draw(fn, shape, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    if generator is None:
        return fn(shape, device=like.device, dtype=like.dtype)
    if generator.device == like.device or (
        generator.device.type == like.device.type == "cuda"
        and generator.device.index in (None, like.device.index)
    ):
        return fn(shape, generator=generator, device=like.device, dtype=like.dtype)
    # A generator on another device (typically a CPU generator with CUDA inputs):
    # draw where the generator lives, then copy (asynchronous for CUDA targets).
    return fn(shape, generator=generator, device=generator.device, dtype=like.dtype).to(
        like.device, non_blocking=True
    )


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise with the shape, dtype and device of ``x``.

    Unlike :func:`torch.randn_like` it accepts a ``generator``, which may live on
    another device than ``x`` (a CPU generator with CUDA inputs works).
    """
    return _draw(torch.randn, x.shape, x, generator)


def rand_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform ``[0, 1)`` noise shaped like ``x`` (dtype, device); see :func:`randn_like`."""
    return _draw(torch.rand, x.shape, x, generator)
