"""Energy functions: :math:`p(x) \\propto \\exp(-E(x))`, batch ``(B, *shape) -> (B,)``."""

from .base import Energy, EnergyFunction, score_of

__all__ = ["Energy", "EnergyFunction", "score_of"]
