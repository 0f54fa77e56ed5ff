"""Small utilities: reproducible seeding and device helpers."""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["make_generator", "rand_like", "randn_like", "seed_everything", "seed_torch"]


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (:func:`seed_torch`) and return a generator.

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
    seed_torch(seed)  # first: it checks the seed
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds the legacy global state on purpose
    return make_generator(seed)


def seed_torch(seed: int) -> None:
    """Seed torch's default generators: the CPU's and those of the accelerators present.

    What :func:`torch.manual_seed` does, without its cost on a machine without an
    accelerator: it queues a deferred seeding of every accelerator backend that is not
    initialised, with a formatted stack trace each, which costs as much as a hundred
    steps of a small model and grows a queue at every call.

    Parameters
    ----------
    seed : int
        The seed.

    Examples
    --------
    >>> seed_torch(0)
    >>> a = torch.rand(2)
    >>> seed_torch(0)
    >>> torch.equal(a, torch.rand(2))
    True
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}.")
    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if torch.backends.mps.is_available():
        torch.mps.manual_seed(seed)
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        xpu.manual_seed_all(seed)


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """Return a :class:`torch.Generator` on ``device`` seeded with ``seed``."""
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def _draw(fill: str, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    # ``torch.empty(...).uniform_()``/``.normal_()`` is what ``torch.rand``/``torch.randn``
    # do (the same numbers), minus their argument parsing: this is on the inner loop of
    # every sampler.
    if generator is None or generator.device == like.device or (
        generator.device.type == like.device.type == "cuda"
        and generator.device.index in (None, like.device.index)
    ):
        out = torch.empty_like(like, memory_format=torch.contiguous_format)
        return getattr(out, fill)(generator=generator)
    # A generator on another device (typically a CPU generator with CUDA inputs):
    # draw where the generator lives, then copy (asynchronous for CUDA targets).
    out = torch.empty(like.shape, dtype=like.dtype, device=generator.device)
    return getattr(out, fill)(generator=generator).to(like.device, non_blocking=True)


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise with the shape, dtype and device of ``x``.

    Unlike :func:`torch.randn_like` it accepts a ``generator``, which may live on
    another device than ``x`` (a CPU generator with CUDA inputs works).
    """
    return _draw("normal_", x, generator)


def rand_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform ``[0, 1)`` noise shaped like ``x`` (dtype, device); see :func:`randn_like`."""
    return _draw("uniform_", x, generator)
