"""Tests of :func:`ebmlab.metrics.auroc` against independent references.

References: an explicit double loop over all (in, out) pairs (the Mann–Whitney definition),
scikit-learn's :func:`sklearn.metrics.roc_auc_score` (the area under the ROC curve, computed
from thresholds), and the closed form Φ(δ/√2) for two unit Gaussians δ apart.
"""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.metrics import roc_auc_score

import ebmlab
from ebmlab.metrics import auroc


def _pairs(pos: torch.Tensor, neg: torch.Tensor) -> float:
    total = 0.0
    for a in pos.tolist():
        for b in neg.tolist():
            total += 1.0 if a > b else 0.5 if a == b else 0.0
    return total / (len(pos) * len(neg))


def test_matches_the_pairwise_definition_with_ties():
    g = torch.Generator().manual_seed(0)
    pos = torch.randint(0, 6, (37,), generator=g).double()     # many ties
    neg = torch.randint(-2, 4, (23,), generator=g).double()
    value = auroc(pos, neg)
    assert value.dtype == torch.float64 and value.shape == ()
    assert abs(float(value) - _pairs(pos, neg)) < 1e-12


def test_matches_scikit_learn():
    g = torch.Generator().manual_seed(1)
    pos = torch.randn(300, generator=g) + 0.7
    neg = torch.cat([torch.randn(200, generator=g), pos[:20]])   # exact ties across sets
    labels = [1] * len(pos) + [0] * len(neg)
    reference = roc_auc_score(labels, torch.cat([pos, neg]).numpy())
    assert abs(float(auroc(pos, neg)) - reference) < 1e-12


def test_gaussian_closed_form_and_symmetry():
    """For N(δ, 1) against N(0, 1) the area is Φ(δ/√2); swapping the sets gives 1 - AUROC."""
    g = torch.Generator().manual_seed(2)
    delta, n = 1.0, 20_000
    pos, neg = torch.randn(n, generator=g) + delta, torch.randn(n, generator=g)
    value = float(auroc(pos, neg))
    exact = 0.5 * (1 + math.erf(delta / 2))
    assert abs(value - exact) < 5 * 0.004       # the standard error is about 0.003
    assert abs(float(auroc(neg, pos)) - (1 - value)) < 1e-12
    # only the order of the scores matters
    assert float(auroc(pos.double().exp(), neg.double().exp())) == value


def test_extremes():
    assert float(auroc(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0]))) == 1.0
    assert float(auroc(torch.tensor([0.0, 1.0]), torch.tensor([2.0, 3.0]))) == 0.0
    assert float(auroc(torch.ones(4), torch.ones(7))) == 0.5


@pytest.mark.parametrize(("args", "error", "match"), [
    (([1.0, 2.0], torch.ones(2)), TypeError, "scores_in must be a 1-D torch.Tensor"),
    ((torch.ones(2, 1), torch.ones(2)), ValueError, r"scores_in must be a non-empty 1-D"),
    ((torch.ones(2), torch.ones(0)), ValueError, r"scores_out must be a non-empty 1-D"),
    ((torch.ones(2), torch.tensor([1.0, math.nan])), ValueError, "scores_out"),
    ((torch.ones(2, dtype=torch.bool), torch.ones(2)), TypeError, "real scores"),
])
def test_errors(args, error, match):
    with pytest.raises(error, match=match):
        auroc(*args)


def test_exported_from_the_top_level():
    assert ebmlab.auroc is auroc and "auroc" in ebmlab.__all__
