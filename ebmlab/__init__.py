"""ebmlab: energy-based models in PyTorch, the companion package of the EBM Lab course.

The public API is re-exported here; see the submodules for details:
:mod:`ebmlab.energies`, :mod:`ebmlab.partition`, :mod:`ebmlab.samplers`,
:mod:`ebmlab.objectives`, :mod:`ebmlab.training`, :mod:`ebmlab.data`,
:mod:`ebmlab.metrics`, :mod:`ebmlab.plotting`, :mod:`ebmlab.exercises`.
"""

from ._version import __version__
from .energies import Energy, EnergyFunction, score_of
from .utils import make_generator, seed_everything

__all__ = [
    "Energy",
    "EnergyFunction",
    "__version__",
    "make_generator",
    "score_of",
    "seed_everything",
]
