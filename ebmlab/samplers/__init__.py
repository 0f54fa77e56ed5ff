r"""MCMC samplers for energy-based models, batched over chains and GPU-ready.

All samplers take an energy :math:`E` (any callable ``(B, *shape) -> (B,)``), or a
score, or a discrete model with ``gibbs_step``, run many chains in one tensor,
keep the device and dtype of ``x0``, accept a ``generator=`` and return a
:class:`SamplerResult`.

* :func:`langevin` — unadjusted Langevin dynamics (ULA), with the decoupled
  step/noise, gradient clipping and box bounds of deep-EBM training.
* :func:`mala` — Metropolis-adjusted Langevin (exact for every step size).
* :func:`annealed_langevin` — NCSN's annealed Langevin over a noise ladder.
* :func:`gibbs` — Gibbs sweeps of RBMs, Boltzmann machines and Ising models.
* :class:`ReplayBuffer` — persistent chains for training deep EBMs.
"""

from ._annealed import annealed_langevin
from ._base import SamplerDivergedError, SamplerResult
from ._gibbs import gibbs
from ._langevin import langevin, mala
from ._replay import ReplayBuffer

__all__ = [
    "ReplayBuffer",
    "SamplerDivergedError",
    "SamplerResult",
    "annealed_langevin",
    "gibbs",
    "langevin",
    "mala",
]
