"""Deliberately wrong solutions of chapter 1: each must lose points with a clear message.

* ``log_partition`` (1.1) sums ``exp(-E)`` without the max shift: right on moderate
  energies, ``inf`` or ``-inf`` once the energies are shifted by thousands.
* ``importance_log_z`` (1.2) forgets the :math:`\\sqrt n` of the standard error, which is
  then far too large (its estimate of :math:`\\log Z` is right).
* ``rbm_free_energy`` (1.3) writes softplus as ``log(1 + exp(u))``, which overflows for
  large weights.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch


def log_partition(energy: Callable[[torch.Tensor], torch.Tensor], n_units: int,
                  support: Sequence[float] = (-1.0, 1.0)) -> torch.Tensor:
    """Wrong on purpose: no max shift, so exp(-E) overflows or underflows."""
    states = torch.tensor(list(itertools.product(support, repeat=n_units)),
                          dtype=torch.float64)
    return torch.log(torch.exp(-energy(states)).sum())


def importance_log_z(energy: Callable[[torch.Tensor], torch.Tensor], proposal: object,
                     n_samples: int, *, generator: torch.Generator | None = None,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Wrong on purpose: the standard error lacks its 1/sqrt(n)."""
    with torch.no_grad():
        x = proposal.sample(n_samples, generator=generator)
        log_w = (-energy(x) - proposal.log_prob(x)).to(torch.float64)
        log_z = torch.logsumexp(log_w, dim=0) - torch.log(torch.tensor(float(n_samples)))
        stderr = torch.exp(log_w - log_z).std()
    return log_z, stderr


def rbm_free_energy(v: torch.Tensor, weight: torch.Tensor, visible_bias: torch.Tensor,
                    hidden_bias: torch.Tensor) -> torch.Tensor:
    """Wrong on purpose: log(1 + exp(u)) overflows for large pre-activations."""
    pre = v @ weight.to(v.dtype) + hidden_bias.to(v.dtype)
    return -(v @ visible_bias.to(v.dtype)) - torch.log(1 + torch.exp(pre)).sum(dim=-1)
