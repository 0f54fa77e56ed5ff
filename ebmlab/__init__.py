"""ebmlab: energy-based models in PyTorch, the companion package of the EBM Lab course.

The names a chapter or a user reaches for are re-exported here; the rest lives in the
submodules: :mod:`ebmlab.energies`, :mod:`ebmlab.partition`, :mod:`ebmlab.samplers`,
:mod:`ebmlab.objectives`, :mod:`ebmlab.training`, :mod:`ebmlab.data`,
:mod:`ebmlab.metrics`, :mod:`ebmlab.plotting`, :mod:`ebmlab.utils` (and
:mod:`ebmlab.widgets`, :mod:`ebmlab.exercises`, imported on demand).
"""

from . import data, energies, metrics, objectives, partition, plotting, samplers, training, utils
from ._version import __version__
from .data import (
    bars_and_stripes,
    binarized_digits,
    checkerboard,
    digits,
    eight_gaussians,
    rings,
    two_gaussians,
    two_moons,
)
from .energies import (
    RBM,
    Banana,
    BoltzmannMachine,
    ConvEnergy,
    DoubleWell,
    Energy,
    Gaussian,
    GaussianMixture,
    Ising,
    MLPEnergy,
    NoiseConditionalEnergy,
    NoiseConditionalScoreNet,
    Ring,
    Wells,
    score_of,
)
from .metrics import fisher_divergence, kl_divergence_grid, log_likelihood, mmd, mode_weights
from .objectives import (
    contrastive_loss,
    denoising_score_matching_loss,
    exact_nll,
    multiscale_dsm_loss,
    score_matching_loss,
    sliced_score_matching_loss,
)
from .partition import (
    ais,
    exact_log_partition,
    grid_log_partition,
    importance_log_partition,
    ising_log_partition,
    onsager_free_energy,
)
from .samplers import (
    ReplayBuffer,
    SamplerDivergedError,
    SamplerResult,
    annealed_langevin,
    gibbs,
    langevin,
    mala,
)
from .training import fit
from .utils import make_generator, seed_everything

__all__ = [
    "RBM",
    "Banana",
    "BoltzmannMachine",
    "ConvEnergy",
    "DoubleWell",
    "Energy",
    "Gaussian",
    "GaussianMixture",
    "Ising",
    "MLPEnergy",
    "NoiseConditionalEnergy",
    "NoiseConditionalScoreNet",
    "ReplayBuffer",
    "Ring",
    "SamplerDivergedError",
    "SamplerResult",
    "Wells",
    "__version__",
    "ais",
    "annealed_langevin",
    "bars_and_stripes",
    "binarized_digits",
    "checkerboard",
    "contrastive_loss",
    "data",
    "denoising_score_matching_loss",
    "digits",
    "eight_gaussians",
    "energies",
    "exact_log_partition",
    "exact_nll",
    "fisher_divergence",
    "fit",
    "gibbs",
    "grid_log_partition",
    "importance_log_partition",
    "ising_log_partition",
    "kl_divergence_grid",
    "langevin",
    "log_likelihood",
    "make_generator",
    "mala",
    "metrics",
    "mmd",
    "mode_weights",
    "multiscale_dsm_loss",
    "objectives",
    "onsager_free_energy",
    "partition",
    "plotting",
    "rings",
    "samplers",
    "score_matching_loss",
    "score_of",
    "seed_everything",
    "sliced_score_matching_loss",
    "training",
    "two_gaussians",
    "two_moons",
    "utils",
]
