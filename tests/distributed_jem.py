"""Worker of ``tests/test_recipes_torchrun.py``: :func:`digits_jem.train` with deterministic
negatives, in one process or on each process of a ``torchrun`` launch.

The negatives are each process's batch images mirrored left to right, and the replay buffer
starts from zeros and is never drawn from, so the only randomness left is the batch order.
Data-parallel training must then give the network of one process with the same global
batch, up to rounding (float64). Run as ``python tests/distributed_jem.py OUT`` under
``torchrun``; each process writes ``OUT/rank<r>.pt``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ebmlab.recipes import digits_jem

#: A small run: a global batch of 14 (7 + 7 on two processes) for :data:`STEPS` steps.
CONFIG: dict[str, Any] = {**digits_jem.CONFIG, "features": 4, "batch_size": 14,
                          "buffer_size": 8, "lr": 1e-2}
STEPS = 5


@contextmanager
def mirrored_negatives() -> Iterator[None]:
    """Make :func:`digits_jem.train`'s negatives the batch mirrored, its buffer zeros."""
    loss, negatives, uniform = (digits_jem.jem_loss, digits_jem.negatives,
                                digits_jem._uniform_images)

    def mirrored_loss(model: Any, x: torch.Tensor, y: torch.Tensor, x_neg: torch.Tensor, *,
                      alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
        return loss(model, x, y, x.flip(-1), alpha=alpha)

    def no_negatives(model: Any, buffer: Any, n: int, config: Any,
                     generator: Any = None) -> torch.Tensor:
        return torch.zeros(0)

    def zeros(shape: Any, device: torch.device) -> Any:
        return lambda n, generator=None: torch.zeros(n, *shape, device=device)

    digits_jem.jem_loss, digits_jem.negatives = mirrored_loss, no_negatives
    digits_jem._uniform_images = zeros
    try:
        yield
    finally:
        digits_jem.jem_loss, digits_jem.negatives = loss, negatives
        digits_jem._uniform_images = uniform


def deterministic_train() -> dict[str, Any]:
    """Train :data:`CONFIG` for :data:`STEPS` steps in float64 with mirrored negatives."""
    data = digits_jem.make_data(CONFIG)
    data = digits_jem.LabelledImages(data.x_train[:98].double(), data.y_train[:98],
                                     data.x_test[:10].double(), data.y_test[:10])
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with mirrored_negatives():
            return digits_jem.train(CONFIG, steps=STEPS, data=data, with_metrics=False)
    finally:
        torch.set_default_dtype(default)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    dist.init_process_group("gloo")
    result = deterministic_train()
    torch.save({"state_dict": result["state_dict"], "history": result["history"]},
               out / f"rank{dist.get_rank()}.pt")
    dist.destroy_process_group()
