"""The result object of every partition-function estimator, and weight diagnostics."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["LogPartitionEstimate", "effective_sample_size", "log_mean_exp"]


@dataclass(repr=False)
class LogPartitionEstimate:
    r"""An estimate of :math:`\log Z` with its standard error and importance weights.

    Attributes
    ----------
    log_z : torch.Tensor
        The estimate :math:`\log \hat Z`, a 0-d tensor.
    stderr : torch.Tensor
        Delta-method standard error of :math:`\log \frac1n \sum_i w_i`,
        :math:`\operatorname{sd}(w) / (\sqrt n\, \bar w)`, a 0-d tensor.
    log_weights : torch.Tensor
        The log importance weights :math:`\log w_i`, shape ``(n,)``. For reverse AIS
        these are the weights of the reverse chains, whose mean estimates
        :math:`Z_0 / Z_1`.
    ess : torch.Tensor
        Effective sample size :math:`(\sum_i w_i)^2 / \sum_i w_i^2`, a 0-d tensor in
        :math:`[1, n]`.
    acceptance_rate : torch.Tensor or None
        Mean Metropolis acceptance rate of the transitions (MALA-based AIS only).

    Notes
    -----
    ``float(estimate)`` gives :math:`\log \hat Z` as a Python float.
    """

    log_z: torch.Tensor
    stderr: torch.Tensor
    log_weights: torch.Tensor
    ess: torch.Tensor
    acceptance_rate: torch.Tensor | None = None

    def __float__(self) -> float:
        return float(self.log_z)

    def __repr__(self) -> str:
        n = self.log_weights.numel()
        return (f"log Z = {float(self.log_z):.2f} ± {float(self.stderr):.2f} "
                f"(ESS {float(self.ess):.0f}/{n})")


def log_mean_exp(log_w: torch.Tensor) -> torch.Tensor:
    r""":math:`\log \frac1n \sum_i e^{\log w_i}`, computed stably with ``logsumexp``."""
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def effective_sample_size(log_weights: torch.Tensor) -> torch.Tensor:
    r"""Kish's effective sample size of importance weights given in log space.

    .. math:: \mathrm{ESS} = \frac{\left(\sum_i w_i\right)^2}{\sum_i w_i^2}
              = \exp\!\Big(2\,\mathrm{LSE}(\log w) - \mathrm{LSE}(2 \log w)\Big)

    Parameters
    ----------
    log_weights : torch.Tensor
        Log-weights, shape ``(n,)``.

    Returns
    -------
    torch.Tensor
        A 0-d tensor between 1 (one weight dominates) and ``n`` (equal weights).

    Raises
    ------
    TypeError
        If ``log_weights`` is not a floating tensor.
    ValueError
        If ``log_weights`` is not a non-empty 1-d tensor, or holds NaN or :math:`+\infty`.

    Examples
    --------
    >>> import torch
    >>> float(effective_sample_size(torch.zeros(10)))
    10.0
    """
    _check_log_weights(log_weights)
    lw = log_weights.double()
    return torch.exp(2 * torch.logsumexp(lw, 0) - torch.logsumexp(2 * lw, 0)).to(log_weights.dtype)


def _check_log_weights(log_weights: object) -> None:
    if not isinstance(log_weights, torch.Tensor):
        raise TypeError(f"log_weights must be a torch.Tensor of shape (n,), "
                        f"got {type(log_weights).__name__}.")
    if log_weights.dim() != 1 or log_weights.numel() == 0:
        raise ValueError(f"log_weights must be a non-empty 1-d tensor (n,), "
                         f"got shape {tuple(log_weights.shape)}.")
    if not log_weights.is_floating_point():
        raise TypeError(f"log_weights must be a floating-point tensor, got {log_weights.dtype}.")
    n_bad = int((torch.isnan(log_weights) | (log_weights == math.inf)).sum())
    if n_bad:
        raise ValueError(f"log_weights must not hold NaN or +inf (a zero weight, -inf, is "
                         f"fine), got {n_bad} such value(s).")


def estimate_from_log_weights(log_w: torch.Tensor, log_z0: torch.Tensor | float = 0.0, *,
                              sign: int = 1,
                              acceptance_rate: torch.Tensor | None = None,
                              ) -> LogPartitionEstimate:
    r"""Turn log importance weights into a :class:`LogPartitionEstimate`.

    The estimate is :math:`\log Z_0 + s \log \frac1n\sum_i w_i` with ``sign`` :math:`s = \pm 1`
    (:math:`-1` for reverse AIS, whose weights estimate :math:`Z_0/Z_1`). The standard error is
    the delta-method one, :math:`\operatorname{sd}(w) / (\sqrt n\, \bar w)`, computed from the
    normalised weights :math:`w_i / \bar w` so it never overflows.
    """
    lw = log_w.detach().double()
    n = lw.shape[0]
    lme = log_mean_exp(lw)
    if n > 1:
        normalised = torch.exp(lw - lme)  # mean exactly 1
        stderr = normalised.std(unbiased=True) / math.sqrt(n)
    else:
        stderr = torch.full((), float("inf"), dtype=lw.dtype, device=lw.device)
    log_z = torch.as_tensor(log_z0, dtype=lw.dtype, device=lw.device) + sign * lme
    return LogPartitionEstimate(
        log_z=log_z,
        stderr=stderr,
        log_weights=log_w.detach(),
        ess=effective_sample_size(lw),
        acceptance_rate=acceptance_rate,
    )
