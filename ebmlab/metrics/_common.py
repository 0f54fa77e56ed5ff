"""Helpers shared by the likelihood and divergence metrics: evaluating energies in float64."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .._validation import evaluate_energy
from ..objectives.likelihood import _float64_call

EnergyLike = Callable[[torch.Tensor], torch.Tensor]


def _module_device(fn: object, default: torch.device) -> torch.device:
    if isinstance(fn, nn.Module):
        for t in (*fn.parameters(), *fn.buffers()):
            return t.device
    return default


def _energy64(energy: EnergyLike, x: torch.Tensor, name: str) -> torch.Tensor:
    """Energies of ``x`` computed in float64 (parameters cast differentiably), shape ``(B,)``."""
    dev = _module_device(energy, x.device)
    fn = _float64_call(energy)
    e = evaluate_energy(fn, x.to(device=dev, dtype=torch.float64), name)
    return e.to(device=x.device, dtype=torch.float64)
