r"""MCMC samplers for energy-based models, batched over chains and GPU-ready.

Every sampler is a *kernel* -- a state record, ``init`` and a pure ``step`` for one
transition -- run by one driver, :func:`run_chain`, which owns recording, divergence
monitoring and progress (the design of BlackJAX). The public functions validate their
arguments, build the kernel, ``init`` the chains and call the driver; training
(:func:`ebmlab.training.fit`) runs the same kernels.

* :func:`langevin` (:class:`LangevinKernel`) — unadjusted Langevin dynamics (ULA), with
  the decoupled step/noise, gradient clipping and box bounds of deep-EBM training.
* :func:`mala` (:class:`MALAKernel`) — Metropolis-adjusted Langevin (exact for every step
  size).
* :func:`annealed_langevin` — NCSN's annealed Langevin over a noise ladder: a
  :class:`LangevinKernel` per level.
* :func:`gibbs` (:class:`GibbsKernel`) — Gibbs sweeps of RBMs, Boltzmann machines and
  Ising models.
* :class:`ReplayBuffer` — persistent chains for training deep EBMs.

All take an energy :math:`E` (any callable ``(B, *shape) -> (B,)``), or a score, or a
discrete model with ``gibbs_step``, keep the device and dtype of ``x0``, accept a
``generator=`` and return a :class:`SamplerResult`.
"""

from .annealed import annealed_langevin
from .driver import ChainRun, Kernel, run_chain
from .gibbs import GibbsKernel, GibbsState, gibbs
from .langevin import LangevinKernel, LangevinState, langevin
from .mala import MALAKernel, MALAState, mala
from .replay_buffer import ReplayBuffer
from .result import SamplerDivergedError, SamplerResult

__all__ = [
    "ChainRun",
    "GibbsKernel",
    "GibbsState",
    "Kernel",
    "LangevinKernel",
    "LangevinState",
    "MALAKernel",
    "MALAState",
    "ReplayBuffer",
    "SamplerDivergedError",
    "SamplerResult",
    "annealed_langevin",
    "gibbs",
    "langevin",
    "mala",
    "run_chain",
]
