"""Chapter 4's graded exercises: the references inside the checks are right, other correct
implementations score full marks, and typical mistakes lose points with a message saying why.

The generic proofs (stub 0, reference solution full marks, the wrong solution of
``tests/wrong_solutions/ch04.py`` loses points) are in ``tests/test_autograder.py``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

import ebmlab as el
from ebmlab.exercises import grade_function
from ebmlab.exercises.bank import ch04 as bank

from .conftest import ROOT

SAME_NUMBERS_1 = ("CD-1 with a seeded generator matches a reference implementation "
                  "(same random numbers)")
SIDE_EFFECTS = "leaves v and the RBM untouched (values, requires_grad, no .grad)"
CLOSED_FORM = "matches the closed form log f_beta(v) - log f_beta'(v)"


def _solution(name: str, folder: str = "solutions"):
    path = Path(ROOT) / folder / "ch04.py"
    spec = importlib.util.spec_from_file_location(f"_ch04_{folder.replace('/', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def _failed(exercise_id: str, fn) -> dict[str, str]:
    report = grade_function(exercise_id, fn)
    assert report.points < report.max_points, report.to_text()
    return {r.name: r.message for r in report.results if not r.passed}


# --- the references the checks rely on ------------------------------------------------------
def test_reference_trainer_takes_exact_mle_and_cd1_steps():
    """One step of the 4.2 trainer (lr 1) adds the exact gradient (autograd through ebmlab's
    enumerated log Z) for "mle", and the CD-1 estimate of the 4.1 solution, drawing the same
    random numbers, for "cd1"."""
    data = (torch.rand(12, 6, generator=torch.Generator().manual_seed(0)) < 0.4).double()
    g = torch.Generator().manual_seed(5)
    w0 = 0.1 * torch.randn(6, 3, dtype=torch.float64, generator=g)
    rbm = el.RBM(6, 3).double()
    with torch.no_grad():
        rbm.weight.copy_(w0)
        rbm.visible_bias.zero_()
        rbm.hidden_bias.zero_()
    params = [rbm.weight, rbm.visible_bias, rbm.hidden_bias]
    exact = torch.autograd.grad(-el.exact_nll(rbm, data), params)
    stepped = bank.train_rbm(data, 3, "mle", seed=5, steps=1, lr=1.0)
    for after, p, grad in zip(stepped, params, exact, strict=True):
        torch.testing.assert_close(after, p.detach() + grad, atol=1e-12, rtol=0)

    cd_k_gradient = _solution("cd_k_gradient")
    g = torch.Generator().manual_seed(5)
    torch.randn(6, 3, dtype=torch.float64, generator=g)     # the trainer's initial draw
    estimate = cd_k_gradient(rbm, data, 1, generator=g)
    stepped = bank.train_rbm(data, 3, "cd1", seed=5, steps=1, lr=1.0)
    for after, p, grad in zip(stepped, params, estimate, strict=True):
        torch.testing.assert_close(after, p.detach() + grad, atol=1e-12, rtol=0)


def test_expected_cd_is_the_mean_of_many_chains():
    """The exact expectation and standard error of 4.1's statistical checks agree with a
    brute-force Monte-Carlo average of the reference CD-1 (independent chains)."""
    rbm = bank._rbm(4, 3, torch.Generator().manual_seed(7))
    v = bank._data_batch(4, torch.Generator().manual_seed(8), 500)  # 3000 chains per estimate
    expected, stderr = bank._expected_cd(rbm, v, 1)
    draws = torch.stack([bank._flat(bank._reference_cd(rbm, v, 1, torch.Generator()
                                                       .manual_seed(s))) for s in range(40)])
    z = (draws.mean(0) - expected) / (stderr / 40 ** 0.5)
    assert float(z.abs().max()) < 4.5, z
    ratio = draws.std(0) / stderr
    assert float(ratio.min()) > 0.6 and float(ratio.max()) < 1.5, ratio


def test_failure_threshold_separates_separated_clusters_from_ordinary_data():
    """The reference data beat the 1-nat threshold with a wide margin; random bits and
    bars-and-stripes (ordinary data, no separated clusters) stay far below it."""
    cd1_failure_data = _solution("cd1_failure_data")
    clusters = cd1_failure_data(16, 4, torch.Generator().manual_seed(2))
    mle, cd1 = bank.log_likelihood_gap(clusters, 4, seed=3)
    assert mle - cd1 > 3 * bank.GAP_THRESHOLD
    for ordinary in ((torch.rand(200, 16, generator=torch.Generator().manual_seed(0)) < 0.5)
                     .double(), el.bars_and_stripes(4, dtype=torch.float64)):
        mle, cd1 = bank.log_likelihood_gap(ordinary, 4, seed=3)
        assert mle - cd1 < 0.3 * bank.GAP_THRESHOLD


# --- other correct implementations ----------------------------------------------------------
def test_cd_k_gradient_by_ebmlab_autograd_and_by_bernoulli_scores_full_marks():
    def via_autograd(rbm, v, k, generator=None):
        negatives = rbm.gibbs(v, k, generator=generator)
        params = [rbm.weight, rbm.visible_bias, rbm.hidden_bias]
        grads = torch.autograd.grad(el.contrastive_loss(rbm, v, negatives), params)
        return tuple(-g for g in grads)

    def via_bernoulli(rbm, v, k, generator=None):
        with torch.no_grad():
            w, a, b = rbm.weight, rbm.visible_bias, rbm.hidden_bias
            x = v
            for _ in range(k):
                h = torch.bernoulli(torch.sigmoid(x @ w + b), generator=generator)
                x = torch.bernoulli(torch.sigmoid(h @ w.T + a), generator=generator)
            p0, pk = torch.sigmoid(v @ w + b), torch.sigmoid(x @ w + b)
            return (v.T @ p0 - x.T @ pk) / len(v), (v - x).mean(0), (p0 - pk).mean(0)

    for fn in (via_autograd, via_bernoulli):
        report = grade_function("4.1", fn)
        assert report.points == report.max_points, report.to_text()


# --- typical mistakes -----------------------------------------------------------------------
def test_cd_k_gradient_explains_the_sign_and_backward():
    reference = _solution("cd_k_gradient")

    def descent(rbm, v, k, generator=None):
        return tuple(-g for g in reference(rbm, v, k, generator))

    failed = _failed("4.1", descent)
    assert "exactly the opposite" in failed[SAME_NUMBERS_1]
    assert sum("opposite" in m for m in failed.values()) >= 3

    def via_backward(rbm, v, k, generator=None):
        negatives = rbm.gibbs(v, k, generator=generator)
        (-el.contrastive_loss(rbm, v, negatives)).backward()
        return tuple(p.grad.clone() for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias))

    failed = _failed("4.1", via_backward)
    assert set(failed) == {SIDE_EFFECTS}, failed
    assert "torch.autograd.grad" in failed[SIDE_EFFECTS]


def test_cd_k_gradient_with_sampled_hidden_statistics_fails_the_exact_replay():
    def sampled_hidden(rbm, v, k, generator=None):
        with torch.no_grad():
            w, b = rbm.weight, rbm.hidden_bias
            h0 = rbm.sample_h(v, generator=generator)
            x = rbm.sample_v(h0, generator=generator)
            for _ in range(k - 1):
                x = rbm.gibbs_step(x, generator=generator)
            hk = torch.sigmoid(x @ w + b)
            return (v.T @ h0 - x.T @ hk) / len(v), (v - x).mean(0), (h0 - hk).mean(0)

    failed = _failed("4.1", sampled_hidden)
    assert SAME_NUMBERS_1 in failed and "probabilities" in failed[SAME_NUMBERS_1]


def test_failure_data_rejects_invalid_data_with_messages():
    def integers(n_visible, n_hidden, generator=None):
        return torch.zeros(50, n_visible, dtype=torch.long)

    def too_few(n_visible, n_hidden, generator=None):
        return torch.zeros(5, n_visible)

    def grey(n_visible, n_hidden, generator=None):
        return torch.full((50, n_visible), 0.5)

    for fn, phrase in ((integers, "floating-point"), (too_few, "between 20 and 2000 rows"),
                       (grey, "binary values")):
        failed = _failed("4.2", fn)
        assert all(phrase in message for message in failed.values()), failed


def test_ais_step_explains_a_sign_error():
    reference = _solution("ais_log_weight_step")

    def reversed_sign(rbm, v, beta_prev, beta, a0):
        return -reference(rbm, v, beta_prev, beta, a0)

    failed = _failed("4.3", reversed_sign)
    assert "wrong sign" in failed[CLOSED_FORM]


# --- 4.4: persistent CD ---------------------------------------------------------------------
PCD_UPDATE = ("moves the parameters by lr × (data statistics - statistics of the chains it "
              "returns)")
PCD_PERSISTS = "the chains persist: each step continues the chains it is given, not the data"


def test_pcd_checks_name_cd1_stale_chains_and_descent():
    reference = _solution("pcd_step")
    wrong = _solution("pcd_step", "tests/wrong_solutions")

    failed = _failed("4.4", wrong)
    assert PCD_PERSISTS in failed and "that is CD-1" in failed[PCD_PERSISTS]

    def stale(params, data, chains, lr, generator=None):
        _, new_chains = reference(params, data, chains, 0.0, generator)
        w, a, b = params
        p_data, p_old = torch.sigmoid(data @ w + b), torch.sigmoid(chains @ w + b)
        w = w + lr * (data.T @ p_data / len(data) - chains.T @ p_old / len(chains))
        a = a + lr * (data.mean(0) - chains.mean(0))
        b = b + lr * (p_data.mean(0) - p_old.mean(0))
        return (w, a, b), new_chains

    def descent(params, data, chains, lr, generator=None):
        return reference(params, data, chains, -lr, generator)

    failed = _failed("4.4", stale)
    assert "before this step's sweep" in failed[PCD_UPDATE]
    failed = _failed("4.4", descent)
    assert "wrong way" in failed[PCD_UPDATE]
    band = [name for name in failed if "bars and stripes" in name]
    assert band and all("learning curve" in failed[name] for name in band)
