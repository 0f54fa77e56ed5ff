"""Chapter 2's graded exercises 2.2, 2.3 and 2.4 catch the typical mistakes, each with a message
that says why.

The generic proofs (stub 0, reference solution full marks, the wrong solution of
``tests/wrong_solutions/ch02.py`` loses points) are in ``tests/test_autograder.py``;
exercise 2.1's own mistakes are tested there too.
"""

from __future__ import annotations

import math

import torch

from ebmlab.exercises import grade_function

_FORMULA = "matches the update with autograd's gradient on a Gaussian mixture and a " \
           "neural-network energy"
_STATIONARY = "iterated on E(x) = x²/(2σ²), the chains reach ULA's stationary variance " \
              "σ²/(1 - ε/(2σ²))"
_MALA_GAUSSIAN = "matches an independent computation on a Gaussian energy (closed-form " \
                 "gradient, normalised proposal densities)"
_BALANCE = "satisfies detailed balance: p(x) q(y|x) α(x, y) = p(y) q(x|y) α(y, x)"
_BOUNDED = "α is a probability: log α ≤ 0 and finite, also for moves far uphill; " \
           "α(x, y) or α(y, x) is 1"


def _failed(exercise_id: str, fn) -> dict[str, str]:
    report = grade_function(exercise_id, fn)
    assert report.points < report.max_points, report.to_text()
    return {r.name: r.message for r in report.results if not r.passed}


def _grad(energy, x):
    with torch.enable_grad():
        leaf = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(leaf).sum(), leaf)
    return grad


def test_langevin_step_checks_name_the_sign_and_the_missing_noise():
    def uphill(energy, x, step_size, noise):
        return x + step_size * _grad(energy, x) + math.sqrt(2 * step_size) * noise

    def no_noise(energy, x, step_size, noise):
        return x - step_size * _grad(energy, x)

    failed = _failed("2.2", uphill)
    assert "wrong sign" in failed[_FORMULA]
    assert _STATIONARY in failed  # the chains diverge or settle elsewhere
    failed = _failed("2.2", no_noise)
    assert "noise term is missing" in failed[_FORMULA]
    assert "expected 2.2222" in failed[_STATIONARY]


def test_langevin_step_checks_catch_in_place_updates_graphs_and_backward():
    def in_place(energy, x, step_size, noise):
        grad = _grad(energy, x)
        return x.sub_(step_size * grad).add_(math.sqrt(2 * step_size) * noise)

    def keeps_graph(energy, x, step_size, noise):
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(x).sum(), x)
        return x - step_size * grad + math.sqrt(2 * step_size) * noise

    def via_backward(energy, x, step_size, noise):
        leaf = x.detach().requires_grad_(True)
        with torch.enable_grad():
            energy(leaf).sum().backward()
        return x - step_size * leaf.grad + math.sqrt(2 * step_size) * noise

    failed = _failed("2.2", in_place)
    assert "do not update x in place" in failed[
        "leaves x, the noise and the energy's parameters untouched"]
    failed = _failed("2.2", keeps_graph)
    assert "without a graph" in failed["returns x's shape and dtype without an autograd graph "
                                       "(float32 and float64, batch of one)"]
    assert "torch.enable_grad()" in failed[
        "works under torch.no_grad() and leaves the grad mode as it was"]
    failed = _failed("2.2", via_backward)
    assert "gradients accumulated" in failed[
        "leaves x, the noise and the energy's parameters untouched"]


def _mala(energy, x, y, eps, *, cap=True, denominator=4.0, sign=1.0, swap=False, exp=False):
    """A MALA log-acceptance with one configurable mistake."""
    gx, gy = _grad(energy, x), _grad(energy, y)
    forward = (y - x + eps * gx).square().sum(-1)
    backward = (x - y + eps * gy).square().sum(-1)
    if swap:
        forward, backward = backward, forward
    with torch.no_grad():
        log_ratio = sign * (energy(x) - energy(y)) - (backward - forward) / (denominator * eps)
    if exp:
        return torch.log(torch.clamp(torch.exp(log_ratio), max=1.0))
    return torch.clamp(log_ratio, max=0.0) if cap else log_ratio


def test_mala_checks_name_each_typical_mistake():
    cases = {
        "not capped at 0": dict(cap=False),
        "divide by 4ε, not 2ε": dict(denominator=2.0),
        "wrong sign": dict(sign=-1.0),
        "proposal densities are swapped": dict(swap=True),
    }
    for words, mistake in cases.items():
        failed = _failed("2.3", lambda e, x, y, s, m=mistake: _mala(e, x, y, s, **m))
        assert words in failed[_MALA_GAUSSIAN], (words, failed)
    failed = _failed("2.3", lambda e, x, y, s: _mala(e, x, y, s, cap=False))
    assert "cap the log-ratio at 0" in failed[_BOUNDED]
    assert "not capped at 0" in failed[_BALANCE]


def test_mala_checks_require_log_space():
    failed = _failed("2.3", lambda e, x, y, s: _mala(e, x, y, s, exp=True))
    assert list(failed) == [_BOUNDED]
    assert "work in log space" in failed[_BOUNDED]


# --- 2.4: ULA's stationary covariance -------------------------------------------------------
_CORRELATED = ("a correlated Gaussian in 3 and 5 dimensions: the fixed point of "
               "S = M S Mᵀ + 2ε I")


def test_fixed_point_reference_is_stationary_for_simulated_chains():
    """The check's reference (the iterated covariance recursion) is what ULA chains reach:
    200 000 chains run for 400 steps on a correlated 2-d Gaussian, 5 standard errors."""
    from ebmlab.exercises.bank import ch02 as bank

    g = torch.Generator().manual_seed(0)
    precision = torch.tensor([[2.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
    eps = 0.5
    reference = bank._lyapunov_fixed_point(precision, eps)
    x = torch.zeros(200_000, 2, dtype=torch.float64)
    for _ in range(400):
        x = x - eps * x @ precision + math.sqrt(2 * eps) * torch.randn(x.shape, generator=g,
                                                                      dtype=torch.float64)
    empirical = x.T @ x / len(x)
    stderr = (reference.diagonal()[:, None] * reference.diagonal()[None, :]
              + reference ** 2).sqrt() / math.sqrt(len(x))
    assert bool(((empirical - reference).abs() < 5 * stderr).all()), (empirical, reference)


def test_covariance_checks_name_the_target_covariance():
    def target(precision, step_size):
        return torch.linalg.inv(precision)

    failed = _failed("2.4", target)
    assert "A⁻¹, the covariance of the target" in failed[_CORRELATED]
