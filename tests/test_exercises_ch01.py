"""Chapter 1's graded exercises catch the typical mistakes, each with a message that says why.

The generic proofs (stub 0, reference solution full marks, the wrong solution of
``tests/wrong_solutions/ch01.py`` loses points) are in ``tests/test_autograder.py``.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F

import ebmlab as el
from ebmlab.exercises import grade_function
from ebmlab.exercises.bank import ch01 as bank


def _failed(exercise_id: str, fn) -> dict[str, str]:
    report = grade_function(exercise_id, fn)
    assert report.points < report.max_points, report.to_text()
    return {r.name: r.message for r in report.results if not r.passed}


def _states(support, n, dtype=torch.float64):
    return torch.tensor(list(itertools.product(support, repeat=n)), dtype=dtype)


def test_log_partition_checks_catch_float32_and_one_state_per_call():
    def in_float32(energy, n_units, support=(-1.0, 1.0)):
        return torch.logsumexp(-energy(_states(support, n_units, torch.float32)), dim=0)

    def state_by_state(energy, n_units, support=(-1.0, 1.0)):
        a = torch.stack([-energy(torch.tensor([s], dtype=torch.float64))[0]
                         for s in itertools.product(support, repeat=n_units)])
        m = a.max()
        return m + torch.log(torch.exp(a - m).sum())

    failed = _failed("1.1", in_float32)
    assert "only about 6 digits" in failed["matches el.exact_log_partition on Boltzmann machines"]
    assert "dtype torch.float32" in failed["returns a 0-d float64 tensor"]
    failed = _failed("1.1", state_by_state)
    assert list(failed) == ["evaluates every state exactly once, in batches"]
    assert "1024 calls" in failed["evaluates every state exactly once, in batches"]


def test_importance_checks_catch_averaged_log_weights_and_a_missing_proposal():
    def averages_log_weights(energy, proposal, n, *, generator=None):
        x = proposal.sample(n, generator=generator)
        log_w = -energy(x) - proposal.log_prob(x)
        return log_w.mean(), log_w.std() / math.sqrt(n)

    def forgets_q(energy, proposal, n, *, generator=None):
        x = proposal.sample(n, generator=generator)
        log_w = (-energy(x)).double()
        log_z = torch.logsumexp(log_w, 0) - math.log(n)
        return log_z, torch.exp(log_w - log_z).std() / math.sqrt(n)

    failed = _failed("1.2", averages_log_weights)
    assert "Jensen" in failed["Ẑ = exp(log_z) is unbiased (300 seeds)"]
    assert "the estimate is biased" in failed[
        "within 4 standard errors of a Gaussian's closed-form log Z"]
    failed = _failed("1.2", forgets_q)
    assert "division by q(x)" in failed[
        "within 4 standard errors of a Gaussian's closed-form log Z"]


BRUTE = "matches the definition -log Σ_h exp(-E(v, h)) (brute force over the hidden states)"
GRADIENT = "is differentiable: its gradients in W, a and b are those of the free energy"
MANY_HIDDEN = ("the derived closed form: 60 hidden units, 2^60 hidden states that no "
               "enumeration can visit")


def test_brute_force_free_energy_is_the_definition():
    """The one brute-force reference of the course agrees with ebmlab's RBM and with the
    unit-by-unit factorisation the 60-hidden-unit check uses."""
    g = torch.Generator().manual_seed(0)
    rbm = el.RBM(5, 6).double()
    with torch.no_grad():
        for p in rbm.parameters():
            p.copy_(torch.randn(p.shape, dtype=torch.float64, generator=g))
        v = _states((0.0, 1.0), 5)
        reference = rbm(v)
    got = bank.brute_free_energy(v, rbm.weight, rbm.visible_bias, rbm.hidden_bias)
    torch.testing.assert_close(got, reference, atol=1e-10, rtol=1e-10)


def test_free_energy_checks_catch_the_sign_a_detached_result_and_enumeration():
    def flipped(v, w, a, b):
        return (v @ a) + F.softplus(v @ w + b).sum(-1)

    def detached(v, w, a, b):
        return (-(v @ a) - F.softplus(v @ w + b).sum(-1)).detach()

    def enumerates(v, w, a, b):  # the definition, not the derivation
        h = _states((0.0, 1.0), w.shape[1], v.dtype).to(v.device)
        return -torch.logsumexp((v @ a)[:, None] + (h @ b)[None] + (v @ w) @ h.T, dim=1)

    failed = _failed("1.3", flipped)
    assert "opposite sign" in failed[BRUTE]
    failed = _failed("1.3", detached)
    assert list(failed) == [GRADIENT]
    assert "autograd graph" in failed[GRADIENT]
    failed = _failed("1.3", enumerates)
    assert list(failed) == [MANY_HIDDEN], failed
    assert "timed out" in failed[MANY_HIDDEN]
