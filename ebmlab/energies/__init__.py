"""Energy functions: :math:`p(x) \\propto \\exp(-E(x))`, batch ``(B, *shape) -> (B,)``."""

from .analytic import Banana, DoubleWell, Gaussian, GaussianMixture, Ring, Wells
from .base import Energy, EnergyFunction, score_of
from .lattice import BoltzmannMachine, Ising
from .neural import (
    ConvClassifierEnergy,
    ConvEnergy,
    MLPEnergy,
    NoiseConditionalEnergy,
    NoiseConditionalScoreNet,
)
from .rbm import RBM, contrastive_divergence_grad

__all__ = [
    "RBM",
    "Banana",
    "BoltzmannMachine",
    "ConvClassifierEnergy",
    "ConvEnergy",
    "DoubleWell",
    "Energy",
    "EnergyFunction",
    "Gaussian",
    "GaussianMixture",
    "Ising",
    "MLPEnergy",
    "NoiseConditionalEnergy",
    "NoiseConditionalScoreNet",
    "Ring",
    "Wells",
    "contrastive_divergence_grad",
    "score_of",
]
