"""Shuffled minibatches for :func:`ebmlab.training.fit`, checkpointable mid-epoch."""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["Batches"]


def _randperm(n: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    where = device if generator is None else generator.device
    return torch.randperm(n, generator=generator, device=where).to(device)


class Batches:
    """Shuffled minibatches, one permutation per epoch; checkpointable mid-epoch."""

    def __init__(self, data: torch.Tensor, batch_size: int):
        self.data = data
        self.n = data.shape[0]
        self.batch_size = min(batch_size, self.n)
        self.perm: torch.Tensor | None = None
        self.pos = 0

    @property
    def per_epoch(self) -> int:
        """Steps per epoch."""
        return math.ceil(self.n / self.batch_size)

    def next(self, generator: torch.Generator | None) -> torch.Tensor:
        """The next minibatch (the whole data set, uncopied, when it fits in one batch)."""
        if self.batch_size == self.n:
            return self.data
        if self.perm is None or self.pos >= self.n:
            self.perm = _randperm(self.n, self.data.device, generator)
            self.pos = 0
        idx = self.perm[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return torch.index_select(self.data, 0, idx)

    def state_dict(self) -> dict[str, Any]:
        """The epoch's permutation and the position in it (and the sizes, to check a resume)."""
        return {"perm": self.perm, "pos": self.pos, "n": self.n, "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the data size and batch size must be those saved."""
        saved = (state.get("n", self.n), state.get("batch_size", self.batch_size))
        if saved != (self.n, self.batch_size):
            raise ValueError(
                f"the checkpoint was written for {saved[0]} examples in batches of {saved[1]}; "
                f"got {self.n} examples in batches of {self.batch_size}. Resume with the "
                "same data and batch_size."
            )
        perm = state.get("perm")
        self.perm = None if perm is None else perm.to(self.data.device)
        self.pos = int(state.get("pos", 0))
