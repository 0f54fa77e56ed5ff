r"""Deliberately wrong solutions of chapter 4: each must lose points with a clear message.

* ``cd_k_gradient`` (4.1) always makes one Gibbs sweep, whatever ``k``: it is a correct
  CD-1 and keeps the points of the CD-1 and contract checks, and loses those that need
  ``k`` sweeps.
* ``cd1_failure_data`` (4.2) returns uniformly random bits, a data set without separated
  modes: valid, but CD-1 does about as well as maximum likelihood on it.
* ``ais_log_weight_step`` (4.3) forgets the visible-bias term
  :math:`(\beta - \beta')(a - a_0)^\top v`.
* ``pcd_step`` (4.4) restarts the chains at the data at every step: it is CD-1, and
  returns one chain per data row.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cd_k_gradient(rbm, v: torch.Tensor, k: int,
                  generator: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Wrong on purpose: a single sweep, ``k`` is ignored."""
    with torch.no_grad():
        w, a, b = (p.detach() for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias))
        p_h = torch.sigmoid(v @ w + b)
        h = (torch.rand(p_h.shape, generator=generator, dtype=v.dtype,
                        device=v.device) < p_h).to(v.dtype)
        p_v = torch.sigmoid(h @ w.T + a)
        x = (torch.rand(p_v.shape, generator=generator, dtype=v.dtype,
                        device=v.device) < p_v).to(v.dtype)
        p0, p1 = torch.sigmoid(v @ w + b), torch.sigmoid(x @ w + b)
        return (v.T @ p0 - x.T @ p1) / len(v), (v - x).mean(0), (p0 - p1).mean(0)


def cd1_failure_data(n_visible: int, n_hidden: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Wrong on purpose: random bits, on which CD-1 does not fail."""
    return (torch.rand(200, n_visible, generator=generator) < 0.5).to(torch.float64)


def ais_log_weight_step(rbm, v: torch.Tensor, beta_prev: float, beta: float,
                        base_visible_bias: torch.Tensor) -> torch.Tensor:
    """Wrong on purpose: the visible-bias part of the path is left out."""
    with torch.no_grad():
        z = v @ rbm.weight.detach() + rbm.hidden_bias.detach()
        return (F.softplus(beta * z) - F.softplus(beta_prev * z)).sum(-1)


def pcd_step(params, data, chains, lr, generator=None):
    """Wrong on purpose: the chains restart at the data at every step (this is CD-1)."""
    w, a, b = params
    with torch.no_grad():
        h = torch.bernoulli(torch.sigmoid(data @ w + b), generator=generator)
        chains = torch.bernoulli(torch.sigmoid(h @ w.T + a), generator=generator)
        p_data, p_chains = torch.sigmoid(data @ w + b), torch.sigmoid(chains @ w + b)
        w = w + lr * (data.T @ p_data / len(data) - chains.T @ p_chains / len(chains))
        a = a + lr * (data.mean(0) - chains.mean(0))
        b = b + lr * (p_data.mean(0) - p_chains.mean(0))
    return (w, a, b), chains
