r"""Training: one loop, :func:`fit`, and the methods of the course.

* ``loop`` -- :func:`fit`: minibatches, one optimiser step per minibatch, progress bar,
  history, metric callbacks, checkpoints with exact resume, divergence guard, seeds.
* ``methods`` -- the methods by name (:data:`METHODS`) or as objects: :class:`ExactMLE`,
  :class:`ContrastiveDivergence`, :class:`PersistentCD`, :class:`MCMCReplay`,
  :class:`ScoreMatching`, :class:`SlicedScoreMatching`, :class:`DenoisingScoreMatching`,
  :class:`NCSN`, :class:`NCE`, or your own :class:`Method`.
* ``callbacks`` and ``history`` -- metrics evaluated every few steps
  (:class:`ExactLogLikelihood`, :class:`GridKL`, :class:`AISLogLikelihood`, or any
  ``cb(model) -> float``) and the :class:`History` that records them.
* ``checkpoint`` -- checksummed, atomic checkpoint files; ``guard`` -- the divergence
  guard and :class:`TrainingDivergedError`.
"""

from .callbacks import AISLogLikelihood, ExactLogLikelihood, GridKL
from .distributed import DistributedTimeoutError
from .guard import TrainingDivergedError
from .history import History
from .loop import fit
from .methods import (
    METHODS,
    NCE,
    NCSN,
    ContrastiveDivergence,
    DenoisingScoreMatching,
    ExactMLE,
    MCMCReplay,
    Method,
    PersistentCD,
    ScoreMatching,
    SlicedScoreMatching,
    make_method,
)
from .optimizer import PlainSGD

__all__ = [
    "METHODS",
    "NCE",
    "NCSN",
    "AISLogLikelihood",
    "ContrastiveDivergence",
    "DenoisingScoreMatching",
    "DistributedTimeoutError",
    "ExactLogLikelihood",
    "ExactMLE",
    "GridKL",
    "History",
    "MCMCReplay",
    "Method",
    "PersistentCD",
    "PlainSGD",
    "ScoreMatching",
    "SlicedScoreMatching",
    "TrainingDivergedError",
    "fit",
    "make_method",
]
