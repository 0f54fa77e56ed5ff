r"""Training: one loop, :func:`fit`, and the methods of the course as objective objects.

* :func:`fit` -- minibatches, optimiser, progress bar, history, metric callbacks,
  atomic checkpoints with exact resume, divergence guard, seeds.
* Objectives (:mod:`~ebmlab.training.methods`): :class:`MLEObjective`,
  :class:`ContrastiveDivergence`, :class:`PersistentCD`, :class:`ScoreMatching`,
  :class:`SlicedScoreMatching`, :class:`DenoisingScoreMatching`,
  :class:`NCSNObjective`, :class:`MCMCReplay`, or your own :class:`Objective`.
* Metrics (:mod:`~ebmlab.training.callbacks`): :class:`ExactLogLikelihood`,
  :class:`GridKL`, :class:`AISLogLikelihood`, or any ``cb(model) -> float``.
"""

from .callbacks import AISLogLikelihood, ExactLogLikelihood, GridKL
from .history import History
from .loop import TrainingDivergedError, fit
from .methods import (
    METHODS,
    ContrastiveDivergence,
    DenoisingScoreMatching,
    MCMCReplay,
    MLEObjective,
    NCSNObjective,
    Objective,
    PersistentCD,
    ScoreMatching,
    SlicedScoreMatching,
    make_objective,
)

__all__ = [
    "METHODS",
    "AISLogLikelihood",
    "ContrastiveDivergence",
    "DenoisingScoreMatching",
    "ExactLogLikelihood",
    "GridKL",
    "History",
    "MCMCReplay",
    "MLEObjective",
    "NCSNObjective",
    "Objective",
    "PersistentCD",
    "ScoreMatching",
    "SlicedScoreMatching",
    "TrainingDivergedError",
    "fit",
    "make_objective",
]
