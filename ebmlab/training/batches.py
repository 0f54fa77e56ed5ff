"""The training data of :func:`ebmlab.training.fit`: its checks and shuffled minibatches."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .._validation import check_batch, check_finite, check_in_support
from ..utils import floating_dtype_of, randperm, tensor_device_of

__all__ = ["Batches", "check_training_data"]


def check_training_data(model: object, data: object) -> torch.Tensor:
    """Check ``data`` against ``model`` before any training: a non-empty floating batch
    with the model's event shape, dtype and device, finite, and in a discrete model's
    support."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    data = check_batch(data, "data", event_shape=getattr(model, "event_shape", None),
                       allow_empty=False)
    dtype = floating_dtype_of(model)
    if not data.is_floating_point():
        raise TypeError(f"data must be a floating-point tensor, got dtype {data.dtype}; "
                        f"convert it with data.to({dtype or torch.get_default_dtype()}).")
    if dtype is not None and data.dtype != dtype:
        raise TypeError(f"data has dtype {data.dtype} but the parameters of "
                        f"{type(model).__name__} are {dtype}; convert one of them "
                        f"(data.to({dtype}) or model.to({data.dtype})).")
    device = tensor_device_of(model, data.device)
    if data.device != device:
        raise ValueError(f"data is on {data.device} but {type(model).__name__} is on "
                         f"{device}; move one of them (data.to({str(device)!r})).")
    if getattr(model, "support", None) is None:
        return check_finite(data, "data")
    return check_in_support(data, model, "data")  # values in the support are finite


#: Data sets up to this size (bytes) are gathered in shuffled order once per epoch, so
#: that each minibatch is a slice (a view); larger ones are gathered batch by batch.
GATHER_EPOCH_BYTES = 64 * 2**20


class Batches:
    """Shuffled minibatches, one permutation per epoch; checkpointable mid-epoch.

    A data set of at most :data:`GATHER_EPOCH_BYTES` is copied in the epoch's order
    once, at the start of the epoch, and its minibatches are views of that copy: one
    gather per epoch instead of one per step, which is a noticeable part of a small
    model's step (a 100-row gather costs about as much as a 100x64x64 product). The
    minibatches are the same either way.
    """

    def __init__(self, data: torch.Tensor, batch_size: int):
        self.data = data
        self.n = data.shape[0]
        self.batch_size = min(batch_size, self.n)
        self.perm: torch.Tensor | None = None
        self.pos = 0
        self._gather_epoch = data.numel() * data.element_size() <= GATHER_EPOCH_BYTES
        self._shuffled: torch.Tensor | None = None

    @property
    def per_epoch(self) -> int:
        """Steps per epoch."""
        return math.ceil(self.n / self.batch_size)

    def next(self, generator: torch.Generator | None) -> torch.Tensor:
        """The next minibatch (the whole data set, uncopied, when it fits in one batch)."""
        if self.batch_size == self.n:
            return self.data
        if self.perm is None or self.pos >= self.n:
            self.perm = randperm(self.n, self.data.device, generator)
            self.pos = 0
            self._shuffled = None
        start = self.pos
        self.pos += self.batch_size
        if self._gather_epoch:
            if self._shuffled is None:
                self._shuffled = torch.index_select(self.data, 0, self.perm)
            return self._shuffled[start:self.pos]
        return torch.index_select(self.data, 0, self.perm[start:self.pos])

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
        self._shuffled = None
