"""Minibatches of one epoch over tensors, without :class:`torch.utils.data.DataLoader`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from .._validation import check_bool, check_generator, check_int
from ..utils import randperm

__all__ = ["iterate_minibatches"]


def iterate_minibatches(x: torch.Tensor | Sequence[torch.Tensor], batch_size: int, *,
                        shuffle: bool = True, generator: torch.Generator | None = None,
                        drop_last: bool = False,
                        ) -> Iterator[torch.Tensor | tuple[torch.Tensor, ...]]:
    """Yield minibatches of one epoch over ``x`` (no :class:`torch.utils.data.DataLoader`).

    Parameters
    ----------
    x : torch.Tensor or sequence of torch.Tensor
        Data with a leading batch axis; several tensors (e.g. data and labels)
        with the same length are batched together and yielded as a tuple.
    batch_size : int
        Number of rows per batch.
    shuffle : bool
        Visit the rows in a random order (drawn from ``generator``).
    generator : torch.Generator, optional
        Source of the permutation; may live on another device than ``x``.
    drop_last : bool
        Skip the final batch when it is smaller than ``batch_size``.

    Yields
    ------
    torch.Tensor or tuple of torch.Tensor
        Index views ``x[idx]`` on the device of ``x``.

    Examples
    --------
    >>> import torch
    >>> [b.shape[0] for b in iterate_minibatches(torch.zeros(10, 2), 4, shuffle=False)]
    [4, 4, 2]
    """
    single = isinstance(x, torch.Tensor)
    tensors = (x,) if single else tuple(x)
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise TypeError("x must be a torch.Tensor or a non-empty sequence of tensors, "
                        f"got {type(x).__name__}.")
    if any(t.dim() == 0 for t in tensors):
        raise ValueError("x must have a leading batch axis, got a 0-d tensor.")
    n = tensors[0].shape[0]
    if any(t.shape[0] != n for t in tensors):
        raise ValueError("all tensors in x must have the same length, got "
                         f"{[t.shape[0] for t in tensors]}.")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    check_bool(shuffle, "shuffle")
    check_bool(drop_last, "drop_last")
    check_generator(generator)
    device = tensors[0].device
    if shuffle:
        idx = randperm(n, device, generator)
    else:
        idx = torch.arange(n, device=device)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        b = idx[start:start + batch_size]
        out = tuple(t[b.to(t.device)] for t in tensors)
        yield out[0] if single else out
