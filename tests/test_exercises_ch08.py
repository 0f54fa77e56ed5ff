"""Chapter 8's graded exercises catch the typical mistakes, each with a message that says why.

The generic proofs (stub 0, reference solution full marks, the wrong solution of
``tests/wrong_solutions/ch08.py`` loses points) are in ``tests/test_autograder.py``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ebmlab.exercises import grade_function

BAYES = "matches Bayes' rule for ν = 1, 4 and 0.3"
EXTREME = "exact 0 and 1 (no NaN) for log-densities 1000 nats apart (float32)"
CLOSED = "matches the closed form for ν = 1 and ν = 3 (B_n ≠ B_d)"
FAR = "finite and right when the classes are 800 nats apart (float32)"
DATA_A = "NCE with your noise recovers log Z and the density (data set A)"
DATA_B = "NCE with your noise recovers log Z and the density (data set B)"
CONTRACT = "returns (mean, std): finite tensors of shape (d,), std > 0"


def _failed(exercise_id: str, fn) -> tuple[dict[str, str], set[str]]:
    report = grade_function(exercise_id, fn)
    assert report.points < report.max_points, report.to_text()
    return ({r.name: r.message for r in report.results if not r.passed},
            {r.name for r in report.results if r.passed})


def test_posterior_names_each_slip():
    cases = {
        "subtract log ν": lambda lm, ln, nu: torch.sigmoid(lm - ln + math.log(nu)),
        "not ν itself": lambda lm, ln, nu: torch.sigmoid(lm - ln - nu),
        "P(noise | u)": lambda lm, ln, nu: torch.sigmoid(ln - lm + math.log(nu)),
    }
    for phrase, fn in cases.items():
        failed, _ = _failed("8.1", fn)
        assert phrase in failed[BAYES], failed[BAYES]

    def divided(lm, ln, nu):
        return lm.exp() / (lm.exp() + nu * ln.exp())

    failed, _ = _failed("8.1", divided)
    assert set(failed) == {EXTREME} and "torch.sigmoid" in failed[EXTREME]


def _loss(energy, x, y, log_pn, *, sign=1.0, stable=True):
    log_nu = math.log(y.shape[0] / x.shape[0])
    gx = -sign * energy(x) - log_pn(x) - log_nu
    gy = -sign * energy(y) - log_pn(y) - log_nu
    if stable:
        return -(F.logsigmoid(gx).sum() + F.logsigmoid(-gy).sum()) / x.shape[0]
    return -(torch.sigmoid(gx).log().sum() + torch.sigmoid(-gy).log().sum()) / x.shape[0]


def test_loss_names_the_energy_sign_and_wants_logsigmoid():
    failed, _ = _failed("8.2", lambda *a: _loss(*a, sign=-1.0))
    assert "with a minus on the energy" in failed[CLOSED], failed[CLOSED]
    failed, _ = _failed("8.2", lambda *a: _loss(*a, stable=False))
    assert set(failed) == {FAR} and "F.logsigmoid" in failed[FAR]


def test_noise_design_accepts_other_constructions_and_rejects_narrow_noise():
    def isotropic(data):  # a different construction that also works
        return data.mean(0), data.std(0).max() * torch.ones(data.shape[1], dtype=data.dtype)

    report = grade_function("8.3", isotropic)
    assert report.points == report.max_points, report.to_text()

    def narrow(data):  # on the data but far too narrow: the classifier wins easily
        return data.mean(0), 0.1 * data.std(0)

    failed, passed = _failed("8.3", narrow)
    assert {DATA_A, DATA_B} <= set(failed) and CONTRACT in passed
    assert "|c - log Z|" in failed[DATA_A]
