r"""Out-of-distribution detection: how well a score separates two sets of inputs."""

from __future__ import annotations

import torch

from .._validation import check_finite

__all__ = ["auroc"]


def _scores(value: object, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a 1-D torch.Tensor of scores, got {type(value).__name__}.")
    if value.dim() != 1 or value.shape[0] < 1:
        raise ValueError(f"{name} must be a non-empty 1-D tensor of scores (one per input), got "
                         f"shape {tuple(value.shape)}.")
    if value.dtype == torch.bool or value.is_complex():
        raise TypeError(f"{name} must hold real scores, got dtype {value.dtype}.")
    scores = value.detach().to(torch.float64)
    check_finite(scores, name)
    return scores


def auroc(scores_in: torch.Tensor, scores_out: torch.Tensor) -> torch.Tensor:
    r"""Area under the ROC curve of a score that should be higher on ``scores_in``.

    The area equals the probability that the score of a random in-distribution input
    exceeds that of a random out-of-distribution one, ties counting one half (the
    Mann–Whitney statistic):

    .. math::

        \mathrm{AUROC} = \frac{1}{n_+ n_-} \sum_{i=1}^{n_+} \sum_{j=1}^{n_-}
        \Big(\mathbb 1[s^+_i > s^-_j] + \tfrac12\,\mathbb 1[s^+_i = s^-_j]\Big).

    1 means a threshold separates the two sets perfectly, 0.5 that the score does not
    tell them apart. It is computed from the ranks of the pooled scores (ties get
    their mean rank) in :math:`O(n \log n)`. For an energy-based model the natural score
    is the unnormalised log-density :math:`-E_\theta(x)` (Grathwohl et al. 2020).

    Parameters
    ----------
    scores_in : torch.Tensor
        Scores of the in-distribution inputs, shape ``(n_+,)``, finite.
    scores_out : torch.Tensor
        Scores of the out-of-distribution inputs, shape ``(n_-,)``, finite.

    Returns
    -------
    torch.Tensor
        float64 0-d tensor in ``[0, 1]``.

    Raises
    ------
    TypeError
        If a score set is not a real tensor.
    ValueError
        If a score set is empty, not 1-D or not finite.

    Examples
    --------
    >>> import torch
    >>> float(auroc(torch.tensor([3.0, 4.0]), torch.tensor([1.0, 2.0])))
    1.0
    >>> float(auroc(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 3.0])))
    0.375
    """
    pos = _scores(scores_in, "scores_in")
    neg = _scores(scores_out, "scores_out").to(pos.device)
    pooled = torch.cat([pos, neg])
    _, inverse, counts = torch.unique(pooled, sorted=True, return_inverse=True,
                                      return_counts=True)
    # The tied values at sorted position k occupy ranks start_k + 1, ..., start_k + counts_k.
    starts = torch.cumsum(counts, 0) - counts
    mean_rank = starts.to(torch.float64) + (counts.to(torch.float64) + 1) / 2
    n_pos, n_neg = pos.shape[0], neg.shape[0]
    rank_sum = mean_rank[inverse[:n_pos]].sum()
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
