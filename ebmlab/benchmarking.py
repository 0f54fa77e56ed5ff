"""Timing helpers for measurements that chapters and ``benchmarks/`` make.

The book's speed claims are ratios measured side by side on the reader's machine (never
absolute numbers); :func:`time_loss` is the one measurement they share.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["time_loss"]


def time_loss(loss_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor], energy: nn.Module,
              x: torch.Tensor, repeats: int = 5) -> float:
    """Median wall-clock seconds of one forward and backward pass of a loss.

    Each repeat calls ``loss_fn(energy, x)`` and backpropagates into the parameters of
    ``energy`` (their gradients are cleared first). One warm-up call is made first and not
    counted. On a CUDA device the clock is read after a synchronisation, so the time is
    that of the work, not of launching it.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(energy, x)`` returns a scalar tensor, e.g.
        :func:`ebmlab.objectives.score_matching_loss`.
    energy : torch.nn.Module
        The model whose loss is timed.
    x : torch.Tensor
        The batch.
    repeats : int
        Number of timed calls.

    Returns
    -------
    float
        The median of the ``repeats`` timings, in seconds.

    Raises
    ------
    TypeError
        If ``repeats`` is not an int.
    ValueError
        If ``repeats`` is smaller than 1.

    Examples
    --------
    >>> import torch, ebmlab as el
    >>> from ebmlab.benchmarking import time_loss
    >>> seconds = time_loss(el.score_matching_loss, el.MLPEnergy(2), torch.randn(8, 2))
    >>> seconds > 0
    True
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int):
        raise TypeError(f"repeats must be an int, got {type(repeats).__name__} ({repeats!r}).")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}.")
    times = []
    for i in range(repeats + 1):
        energy.zero_grad(set_to_none=True)
        _synchronize(x.device)
        start = time.perf_counter()
        loss_fn(energy, x).backward()
        _synchronize(x.device)
        elapsed = time.perf_counter() - start
        if i > 0:
            times.append(elapsed)
    return statistics.median(times)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
