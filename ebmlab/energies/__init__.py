"""Energy functions: :math:`p(x) \\propto \\exp(-E(x))`, batch ``(B, *shape) -> (B,)``."""

from .analytic import Banana, DoubleWell, Gaussian, GaussianMixture, Ring, Wells
from .base import Energy, EnergyFunction, energy_and_score, float64_energy, score_of
from .lattice import BoltzmannMachine, Ising
from .neural import (
    ConvClassifierEnergy,
    ConvEnergy,
    MLPEnergy,
    NoiseConditionalEnergy,
    NoiseConditionalScoreNet,
)
from .rbm import RBM, ContrastiveGradient, contrastive_divergence_gradient

__all__ = [
    "RBM",
    "Banana",
    "BoltzmannMachine",
    "ContrastiveGradient",
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
    "contrastive_divergence_gradient",
    "energy_and_score",
    "float64_energy",
    "score_of",
]
