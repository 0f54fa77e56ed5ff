r"""Partition functions :math:`Z = \int e^{-E(x)}\,dx`: exact, by quadrature, and estimated.

* :func:`exact_log_partition` — enumeration of discrete models (RBMs over their smaller layer).
* :func:`ising_log_partition`, :func:`onsager_free_energy` — the 2D Ising model in closed form.
* :func:`grid_log_partition` — quadrature for 1–3 dimensional continuous energies.
* :func:`importance_log_partition`, :func:`ais` — importance sampling and (reverse) annealed
  importance sampling, returning a :class:`LogPartitionEstimate` with a standard error.
"""

from .ais import ais, annealing_schedule
from .estimate import LogPartitionEstimate, effective_sample_size, log_mean_exp
from .exact import exact_log_partition, resolve_log_partition
from .ising import ISING_CRITICAL_COUPLING, ising_log_partition, onsager_free_energy
from .quadrature import grid_log_partition, importance_log_partition

__all__ = [
    "ISING_CRITICAL_COUPLING",
    "LogPartitionEstimate",
    "ais",
    "annealing_schedule",
    "effective_sample_size",
    "exact_log_partition",
    "grid_log_partition",
    "importance_log_partition",
    "ising_log_partition",
    "log_mean_exp",
    "onsager_free_energy",
    "resolve_log_partition",
]
