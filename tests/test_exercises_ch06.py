"""Chapter 6's graded exercises 6.1 and 6.2 catch the typical mistakes, each with a message
that says why.

The generic proofs (stub 0, reference solution full marks, the wrong solution of
``tests/wrong_solutions/ch06.py`` loses points) are in ``tests/test_autograder.py``.
"""

from __future__ import annotations

import math

import torch

from ebmlab.exercises import grade_function

_FORMULA = "matches α_i = ε σ_i²/σ_L² on geometric and irregular ladders"
_SHAPE = "decreases with the noise level and ends at ε; ratios are (σ_i/σ_j)²"
_LIBRARY = "the steps ebmlab.annealed_langevin takes"
_CONTRACT_61 = "follows the dtype and device of sigmas; leaves sigmas untouched"

_AUTOGRAD = "matches autograd of the smoothed log-density"
_SMOOTHED = "matches GaussianMixture.smoothed(σ).score of ebmlab"
_ZERO = "sigma = 0 gives the score of the mixture itself"
_STABLE = "finite and correct far from every component (no 0/0)"


def _report(exercise_id: str, fn) -> tuple[dict[str, str], set[str]]:
    report = grade_function(exercise_id, fn)
    assert report.points < report.max_points, report.to_text()
    failed = {r.name: r.message for r in report.results if not r.passed}
    passed = {r.name for r in report.results if r.passed}
    return failed, passed


def test_step_schedule_checks_name_each_mistake():
    cases = {
        "SMALLEST": lambda sigmas, eps: eps * sigmas**2 / sigmas[0] ** 2,
        "square the noise levels": lambda sigmas, eps: eps * sigmas / sigmas[-1],
        "large noise levels take large steps": lambda sigmas, eps: eps * sigmas[-1] ** 2
        / sigmas**2,
    }
    for phrase, fn in cases.items():
        failed, _ = _report("6.1", fn)
        assert phrase in failed[_FORMULA], failed[_FORMULA]
        assert _LIBRARY in failed
        assert phrase in failed[_CONTRACT_61]  # the contract holds only for right values


def test_step_schedule_checks_want_a_tensor_and_keep_the_input():
    def as_list(sigmas, eps):
        return [eps * float(s) ** 2 / float(sigmas[-1]) ** 2 for s in sigmas]

    def in_place(sigmas, eps):
        last = float(sigmas[-1])
        return sigmas.pow_(2).mul_(eps / last**2)

    failed, _ = _report("6.1", as_list)
    assert "torch.Tensor" in failed[_FORMULA]
    failed, _ = _report("6.1", in_place)
    assert "modified in place" in failed[_CONTRACT_61]


def _score(x, means, stds, weights, sigma, *, var_fn, stable=True):
    var = var_fn(stds, sigma)
    diff = means[None] - x[:, None]
    log_comp = (weights.log() - 0.5 * x.shape[1] * torch.log(2 * math.pi * var)
                - 0.5 * diff.square().sum(-1) / var)
    if stable:
        resp = torch.softmax(log_comp, dim=1)
    else:
        dens = log_comp.exp()
        resp = dens / dens.sum(1, keepdim=True)
    return (resp[..., None] * diff / var[None, :, None]).sum(1)


def test_smoothed_score_checks_name_the_variance_mistakes():
    cases = {
        "not σ: the noise has standard deviation σ": lambda s, sig: s**2 + sig,
        "not (s_k + σ)²": lambda s, sig: (s + sig) ** 2,
        "only when σ = 0": lambda s, sig: s**2,
    }
    for phrase, var_fn in cases.items():
        def fn(x, means, stds, weights, sigma, var_fn=var_fn):
            return _score(x, means, stds, weights, sigma, var_fn=var_fn)

        failed, passed = _report("6.2", fn)
        assert phrase in failed[_AUTOGRAD], failed[_AUTOGRAD]
        assert _SMOOTHED in failed
        assert _ZERO in passed  # every variant is right at sigma = 0


def test_smoothed_score_checks_catch_underflow():
    def naive(x, means, stds, weights, sigma):
        return _score(x, means, stds, weights, sigma, var_fn=lambda s, sig: s**2 + sig**2,
                      stable=False)

    failed, passed = _report("6.2", naive)
    assert set(failed) == {_STABLE}
    assert "softmax" in failed[_STABLE] and "non-finite" in failed[_STABLE]
    assert {_AUTOGRAD, _SMOOTHED, _ZERO} <= passed
