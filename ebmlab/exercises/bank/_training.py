"""Helpers shared by the checks that train something (chapters 5-8).

The models these checks train are tiny, and on a busy machine PyTorch's thread pool costs
more than it saves: a 2-d Gaussian fitted by NCE takes 2 ms a step on one thread and tens
of milliseconds on two contended ones. The checks run their own training loops inside
:func:`ebmlab.utils.single_threaded`; the student's code runs in the sandbox, which is not
affected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ..expect import expect_unchanged, fail

__all__ = ["curve_summary", "expect_losses", "expect_training_contract"]


def curve_summary(losses: Sequence[float], points: int = 6) -> str:
    """A learning curve in a hint: ``points`` evenly spaced values, first and last included."""
    n = len(losses)
    if n == 0:
        return "no losses recorded"
    picks = sorted({round(i * (n - 1) / (points - 1)) for i in range(points)}) if n > 1 else [0]
    return ", ".join(f"step {i}: {losses[i]:.4g}" for i in picks)


def expect_losses(losses: object, n_steps: int, what: str, *, finite: bool = False
                  ) -> list[float]:
    """``losses`` as a training loop must return them: a list of ``n_steps`` floats, one per
    update (all finite, with ``finite``); otherwise the check fails and says so."""
    if isinstance(losses, list) and len(losses) == n_steps and all(
            isinstance(v, float) and (math.isfinite(v) or not finite) for v in losses):
        return losses
    shape = f" of length {len(losses)}" if isinstance(losses, list) else ""
    fail(what, expected=f"a list of {n_steps} {'finite ' if finite else ''}floats (the loss of "
                        "each update)",
         got=f"{type(losses).__name__}{shape}: {repr(losses)[:60]}",
         hint="append float(loss) after each optimiser step and return the list.")


def expect_training_contract(train: Callable[..., object], energy: torch.nn.Module,
                             data: torch.Tensor, generator: torch.Generator, *, n_steps: int,
                             what: str) -> None:
    """The contract of a training exercise: ``train(energy, data, n_steps=..., generator=...)``
    returns one finite float per update, trains the energy's parameters in place and leaves
    the data untouched."""
    before = [p.detach().clone() for p in energy.parameters()]
    snapshot = data.clone()
    losses = train(energy, data, n_steps=n_steps, generator=generator)
    expect_losses(losses, n_steps, what, finite=True)
    expect_unchanged(data, snapshot, what="data",
                     hint="draw minibatches by indexing (data[idx]); never write into data.")
    if all(torch.equal(p.detach(), b) for p, b in zip(energy.parameters(), before,
                                                      strict=True)):
        fail(what, expected="the energy's parameters updated in place",
             got="the parameters did not change",
             hint="optimise energy.parameters() (torch.optim.Adam(energy.parameters(), ...)).")
