"""Helpers shared by the checks that train something (chapters 5-8).

The models these checks train are tiny, and on a busy machine PyTorch's thread pool costs
more than it saves: a 2-d Gaussian fitted by NCE takes 2 ms a step on one thread and tens
of milliseconds on two contended ones. The checks run their own training loops inside
:func:`single_thread`; the student's code runs in the sandbox, which is not affected.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

__all__ = ["curve_summary", "single_thread"]


@contextmanager
def single_thread() -> Iterator[None]:
    """Run the enclosed torch code on one intra-op thread, restoring the setting after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def curve_summary(losses: Sequence[float], points: int = 6) -> str:
    """A learning curve in a hint: ``points`` evenly spaced values, first and last included."""
    n = len(losses)
    if n == 0:
        return "no losses recorded"
    picks = sorted({round(i * (n - 1) / (points - 1)) for i in range(points)}) if n > 1 else [0]
    return ", ".join(f"step {i}: {losses[i]:.4g}" for i in picks)
