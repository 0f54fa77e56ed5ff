"""Chapter 5's graded exercises 5.1 and 5.2 catch the typical mistakes, each with a message
that says why.

The generic proofs (stub 0, reference solution full marks, the wrong solution of
``tests/wrong_solutions/ch05.py`` loses points) are in ``tests/test_autograder.py``.
"""

from __future__ import annotations

import torch

from ebmlab.exercises import grade_function

_GAUSSIAN = "matches the closed form on a correlated Gaussian energy"
_QUARTIC = "matches the closed form ΔE = (d+2)‖x‖² of E(x) = ¼‖x‖⁴"
_NEURAL = "matches ebmlab.score_matching_loss on a neural energy"
_GRADIENT = "is differentiable in the parameters (gradient of the closed form)"
_CONTRACT = "a 0-d tensor of x's dtype for a batch of one; x left untouched"

_LINEAR = "matches the formula for linear scores"
_ZERO = "a zero score: the loss is half the mean squared norm of the target"
_LIBRARY = "matches ebmlab.denoising_score_matching_loss fed the same noise"
_DSM_GRADIENT = "is differentiable in the score's parameters"
_VINCENT = "the exact smoothed score attains Vincent's constant (statistical test)"


def _report(exercise_id: str, fn) -> tuple[dict[str, str], set[str]]:
    report = grade_function(exercise_id, fn)
    assert report.points < report.max_points, report.to_text()
    failed = {r.name: r.message for r in report.results if not r.passed}
    passed = {r.name for r in report.results if r.passed}
    return failed, passed


def _score_and_rows(energy, x, *, create_graph=True):
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(x).sum(), x, create_graph=True)
    s = -grad
    rows = [torch.autograd.grad(s[:, i].sum(), x, create_graph=create_graph,
                                retain_graph=True)[0][:, i]
            for i in range(x.shape[1])]
    return s, torch.stack(rows, 1).sum(1)


def test_score_matching_checks_name_the_sign_of_the_trace():
    def plus_laplacian(energy, x):
        with torch.enable_grad():
            s, trace = _score_and_rows(energy, x)
            return (-trace + 0.5 * s.square().sum(1)).mean()

    failed, _ = _report("5.1", plus_laplacian)
    assert "wrong sign" in failed[_GAUSSIAN]
    assert {_QUARTIC, _NEURAL, _CONTRACT} <= set(failed)


def test_score_matching_checks_ask_for_the_graph_of_the_trace():
    def detached_trace(energy, x):  # right value, but the trace carries no gradient
        with torch.enable_grad():
            s, trace = _score_and_rows(energy, x, create_graph=False)
            return (trace + 0.5 * s.square().sum(1)).mean()

    failed, passed = _report("5.1", detached_trace)
    assert set(failed) == {_GRADIENT}
    assert "create_graph=True" in failed[_GRADIENT]
    assert {_GAUSSIAN, _QUARTIC, _NEURAL, _CONTRACT} <= passed


def test_score_matching_checks_want_the_batch_mean():
    def per_example(energy, x):
        with torch.enable_grad():
            s, trace = _score_and_rows(energy, x)
            return trace + 0.5 * s.square().sum(1)

    failed, _ = _report("5.1", per_example)
    assert "0-d tensor" in failed[_GAUSSIAN] and ".mean()" in failed[_GAUSSIAN]


def test_denoising_checks_recognise_the_usual_slips():
    def flipped(score, x, eps, sigma):
        x_t = x + sigma * eps
        return 0.5 * (score(x_t) - (x_t - x) / sigma**2).square().sum(1).mean()

    def no_half(score, x, eps, sigma):
        x_t = x + sigma * eps
        return (score(x_t) + (x_t - x) / sigma**2).square().sum(1).mean()

    def clean_point(score, x, eps, sigma):
        x_t = x + sigma * eps
        return 0.5 * (score(x) + (x_t - x) / sigma**2).square().sum(1).mean()

    def one_sigma(score, x, eps, sigma):
        x_t = x + sigma * eps
        return 0.5 * (score(x_t) + (x_t - x) / sigma).square().sum(1).mean()

    expected = {flipped: "minus sign", no_half: "factor ½", clean_point: "noisy point x̃",
                one_sigma: "power of σ"}
    for fn, phrase in expected.items():
        failed, _ = _report("5.2", fn)
        assert phrase in failed[_LINEAR], (fn.__name__, failed[_LINEAR])
        assert _LIBRARY in failed and _VINCENT in failed, fn.__name__
    failed, passed = _report("5.2", clean_point)
    assert _ZERO in passed  # a zero score does not care where it is evaluated


def test_denoising_checks_ask_for_a_graph():
    def detached(score, x, eps, sigma):
        x_t = x + sigma * eps
        return 0.5 * (score(x_t).detach() + eps / sigma).square().sum(1).mean()

    failed, passed = _report("5.2", detached)
    assert set(failed) == {_DSM_GRADIENT}
    assert "requires_grad" in failed[_DSM_GRADIENT]
    assert {_LINEAR, _ZERO, _LIBRARY, _VINCENT} <= passed


GAUSSIAN_FIT = ("Gaussian family (powers 1, 2): the sample mean and variance, as maximum "
                "likelihood")
STATIONARY = ("a stationary point of ebmlab.score_matching_loss on non-Gaussian data "
              "(powers 2, 4 and 1, 2, 3, 4)")
SHAPE_BAND = "learns the shape: grid KL < 0.3 after 400 updates"
DENSITY_BAND = "learns the density: grid KL < 0.05 after 400 updates"
TRAIN_CONTRACT = "returns the learning curve, trains in place, leaves the data untouched"


def _fit(x, powers, *, scale=1.0):
    p = torch.tensor(powers, dtype=torch.float64)
    xs = x.double()[:, None]
    b = (p * (p - 1) * xs ** (p - 2).clamp_min(0)).mean(0)
    t = p * xs ** (p - 1)
    return scale * torch.linalg.solve(t.T @ t / xs.shape[0], b)


def test_closed_form_checks_name_the_factor_of_the_quadratic_term():
    failed, _ = _report("5.3", lambda x, powers: _fit(x, powers, scale=0.5))
    assert "½ θᵀGθ" in failed[GAUSSIAN_FIT] and STATIONARY in failed


def test_closed_form_checks_reject_moment_matching():
    def moment_matching(x, powers):  # the Gaussian MLE, right only for powers (1, 2)
        var = x.double().var(unbiased=False)
        theta = torch.zeros(len(powers), dtype=torch.float64)
        theta[list(powers).index(2)] = 1 / (2 * var)
        if 1 in powers:
            theta[list(powers).index(1)] = -x.double().mean() / var
        return theta

    failed, passed = _report("5.3", moment_matching)
    assert set(failed) == {STATIONARY} and GAUSSIAN_FIT in passed


def test_training_check_gives_partial_credit_by_bands_and_shows_the_curve():
    def untrained(energy, data, *, n_steps, generator):
        return [0.0] * n_steps

    failed, _ = _report("5.4", untrained)
    assert set(failed) == {SHAPE_BAND, DENSITY_BAND, TRAIN_CONTRACT}
    assert "your learning curve: step 0: 0" in failed[DENSITY_BAND]


def test_training_without_the_half_earns_the_shape_band_only():
    """Dropping the ½ of ½‖s‖² learns half the score, the flattened density p^(1/2): the
    right shape, the wrong density."""
    import importlib.util

    from .conftest import ROOT

    spec = importlib.util.spec_from_file_location(
        "_wrong_ch05", ROOT / "tests" / "wrong_solutions" / "ch05.py")
    wrong = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wrong)
    failed, passed = _report("5.4", wrong.train_sliced_score_matching)
    assert set(failed) == {DENSITY_BAND} and {SHAPE_BAND, TRAIN_CONTRACT} <= passed
    assert "your learning curve" in failed[DENSITY_BAND]
