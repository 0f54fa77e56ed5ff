"""Chapter 6's graded exercises 6.1 and 6.2 catch the typical mistakes, each with a message
that says why.

The generic proofs (stub 0, reference solution full marks, the wrong solution of
``tests/wrong_solutions/ch06.py`` loses points) are in ``tests/test_autograder.py``.
"""

from __future__ import annotations

import math

import torch

from ebmlab.exercises import grade_function

_FORMULA = "matches the derived schedule on geometric and irregular ladders"
_SHAPE = "decreases with the noise level, ends at ε, with ratios set by the levels"
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


WEIGHTS = "the samples recover the mixture weights 0.6 / 0.3 / 0.1 (within 0.05)"
SPREAD = "each mode's samples have the component's spread (within 15 %)"
BUDGET = "a valid schedule within the budget of 1500 steps"
ON_DATA = ("annealed samples of the trained network sit on the data (80 % near a mode, "
           "both modes reached)")
NCSN_WEIGHTS = "the annealed samples recover the weights 0.8 / 0.2 (within 0.15)"


def _ladder(top, bottom, levels=12):
    return torch.logspace(math.log10(top), math.log10(bottom), levels, dtype=torch.float64)


def test_schedule_design_accepts_other_designs_and_names_what_fails():
    def coarse(means, stds, weights):  # another working design: 10 levels of 150 steps
        top = 1.2 * float(torch.cdist(means, means).max())
        return _ladder(top, 0.2 * float(stds.min()), 10), 0.15 * (0.2 * float(stds.min()))**2, 150

    report = grade_function("6.3", coarse)
    assert report.points == report.max_points, report.to_text()

    def too_small_top(means, stds, weights):  # anneals, but never connects the modes
        return _ladder(1.0, 0.3 * float(stds.min())), 0.1 * (0.3 * float(stds.min()))**2, 125

    failed, passed = _report("6.3", too_small_top)
    assert WEIGHTS in failed and "largest noise level" in failed[WEIGHTS]
    assert BUDGET in passed

    def too_hot(means, stds, weights):  # the last level is wider than the components
        return _ladder(15.0, 2.0), 0.4, 125

    failed, _ = _report("6.3", too_hot)
    assert SPREAD in failed and "standard deviation" in failed[SPREAD]

    def over_budget(means, stds, weights):
        return _ladder(15.0, 0.2), 0.004, 200

    failed, _ = _report("6.3", over_budget)
    assert set(failed) == {WEIGHTS, SPREAD, BUDGET} and "at most 1500" in failed[BUDGET]


def test_ncsn_check_catches_the_unweighted_sign_flip_and_shows_the_curve():
    def flipped(model, data, sigmas, *, n_steps, generator):  # the target with a + sign
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        losses = []
        for _ in range(n_steps):
            x = data[torch.randint(data.shape[0], (256,), generator=generator)]
            sigma = sigmas[torch.randint(len(sigmas), (x.shape[0],), generator=generator)]
            eps = torch.randn(x.shape, dtype=x.dtype, generator=generator)
            loss = 0.5 * (sigma[:, None] * model(x + sigma[:, None] * eps, sigma)
                          - eps).square().sum(1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss))
        return losses

    failed, _ = _report("6.4", flipped)
    assert {ON_DATA, NCSN_WEIGHTS} <= set(failed)
    assert "your learning curve: step 0:" in failed[ON_DATA]
