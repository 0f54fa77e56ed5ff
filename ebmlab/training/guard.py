"""Divergence guard of :func:`ebmlab.training.fit`: parameter snapshots and the error it raises."""

from __future__ import annotations

import torch
from torch import nn

from .history import History

__all__ = ["ParameterGuard", "TrainingDivergedError"]


class TrainingDivergedError(RuntimeError):
    """Training produced a non-finite loss, parameters or samples and was stopped.

    The model's parameters have been restored to the last values known to be
    good (see :func:`fit`), so the model never holds NaNs.

    Attributes
    ----------
    step : int
        The step at which the divergence was detected (first non-finite loss).
    restored_step : int
        The step whose parameters were restored into the model.
    history : History
        The history up to the divergence (its last loss may be non-finite).
    """

    def __init__(self, message: str, *, step: int, restored_step: int, history: History):
        super().__init__(message)
        self.step = step
        self.restored_step = restored_step
        self.history = history


class ParameterGuard:
    """Snapshots of the parameters, so a divergence restores the last good ones.

    The loss of step :math:`t` is evaluated at the parameters :math:`\\theta_{t-1}`.
    At each synchronisation ``c`` with all losses finite since the previous one ``b``,
    :math:`\\theta_b` is known good (its loss was finite): it becomes ``verified`` and
    :math:`\\theta_c` becomes ``pending``. After a divergence first seen at step ``j``,
    ``pending`` (:math:`\\theta_b`) is restored unless ``j = b + 1`` (then :math:`\\theta_b`
    itself produced the bad loss and ``verified`` is restored).
    """

    def __init__(self, model: nn.Module, step: int):
        named = [(n, t.detach()) for n, t in model.state_dict(keep_vars=True).items()
                 if isinstance(t, torch.Tensor) and t.is_floating_point()]
        self.names = [n for n, _ in named]
        self.tensors = [t for _, t in named]
        self.verified = [t.clone() for t in self.tensors]
        self.pending = [t.clone() for t in self.tensors]
        self.verified_step = self.pending_step = step

    def nonfinite(self) -> list[str]:
        if not self.tensors:
            return []
        flags = torch.stack([torch.isfinite(t).all() for t in self.tensors]).tolist()
        return [n for n, ok in zip(self.names, flags, strict=True) if not ok]

    def commit(self, step: int) -> None:
        self.verified, self.pending = self.pending, self.verified
        self.verified_step = self.pending_step
        with torch.no_grad():
            for dst, src in zip(self.pending, self.tensors, strict=True):
                dst.copy_(src)
        self.pending_step = step

    def restore(self, first_bad: int | None) -> int:
        use_verified = first_bad is not None and first_bad <= self.pending_step + 1
        source = self.verified if use_verified else self.pending
        with torch.no_grad():
            for dst, src in zip(self.tensors, source, strict=True):
                dst.copy_(src)
        return self.verified_step if use_verified else self.pending_step
