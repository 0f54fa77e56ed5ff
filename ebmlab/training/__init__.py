r"""Training: one loop, :func:`fit`, and the methods of the course as objective objects.

* :func:`fit` -- minibatches, optimiser, progress bar, history, metric callbacks,
  atomic checkpoints with exact resume, divergence guard, seeds.
* Objectives, by name in :data:`METHODS` or as objects: :class:`MLEObjective`,
  :class:`ContrastiveDivergence`, :class:`PersistentCD` (``ebmlab.training.contrastive``);
  :class:`MCMCReplay` (``ebmlab.training.replay``); :class:`ScoreMatching`,
  :class:`SlicedScoreMatching`, :class:`DenoisingScoreMatching`, :class:`NCSNObjective`
  (``ebmlab.training.score``); or your own :class:`Objective`.
* Metrics (``ebmlab.training.callbacks``): :class:`ExactLogLikelihood`,
  :class:`GridKL`, :class:`AISLogLikelihood`, or any ``cb(model) -> float``.
"""

from .callbacks import AISLogLikelihood, ExactLogLikelihood, GridKL
from .contrastive import ContrastiveDivergence, MLEObjective, PersistentCD
from .guard import TrainingDivergedError
from .history import History
from .loop import fit
from .methods import METHODS, make_objective
from .objective import Objective
from .replay import MCMCReplay
from .score import DenoisingScoreMatching, NCSNObjective, ScoreMatching, SlicedScoreMatching

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
