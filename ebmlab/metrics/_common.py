"""Evaluating energies in float64 for the likelihood and divergence metrics."""

from __future__ import annotations

import torch

from .._validation import evaluate_energy
from ..energies.base import EnergyLike, float64_energy
from ..utils import tensor_device_of


def energies_float64(energy: EnergyLike, x: torch.Tensor, name: str) -> torch.Tensor:
    """Energies of ``x`` computed in float64 (parameters cast differentiably), shape ``(B,)``,
    on ``x``'s device."""
    device = tensor_device_of(energy, x.device)
    e = evaluate_energy(float64_energy(energy), x.to(device=device, dtype=torch.float64), name)
    return e.to(device=x.device, dtype=torch.float64)
