"""Chapter 7's graded exercises catch the typical mistakes, each with a message that says why.

The generic proofs (stub 0, reference solution full marks, the wrong solution of
``tests/wrong_solutions/ch07.py`` loses points) are in ``tests/test_autograder.py``.
"""

from __future__ import annotations

import math

import torch

from ebmlab.exercises import grade_function

DRAW = "with K = 0 steps and no restart, returns the drawn buffer rows"
RESTARTS = "restarts from `fresh` exactly the chains with u < reinit_prob"
FRACTION = "restarts a fraction reinit_prob of 4000 chains (binomial test, 5 SE)"
LANGEVIN = "K Langevin steps match ebmlab.langevin fed the same noise"
CLIPPING = "clips every element of ∇_x E to [-grad_clip, grad_clip]"
SIDE_EFFECTS = ("returns detached samples, leaves the inputs and the energy's parameters "
                "untouched, works under torch.no_grad()")
DEVICE = "follows the input's device"
IMAGES = ("works for image-shaped states and keeps their dtype "
          "(float32 and float64, batch of one)")
MMD = "the trained energy's samples reach the data: MMD < 0.04"
ON_DATA = "the samples sit on the data: 80 % near a mode, each mode with at least 25 % of them"
TRAIN_CONTRACT = "returns the learning curve, trains the parameters, leaves the data untouched"
QUADRATURE_1D = "matches grid quadrature of exp(-F(v)) in one dimension (6 hidden units)"
QUADRATURE_2D = "matches grid quadrature in two dimensions (4 hidden units)"
MONTE_CARLO = "matches a Monte Carlo estimate in five dimensions (5 SE)"
LARGE = "finite and exact for weights so large that exp overflows"


def _failed(exercise_id: str, fn) -> dict[str, str]:
    report = grade_function(exercise_id, fn)
    assert report.points < report.max_points, report.to_text()
    return {r.name: r.message for r in report.results if not r.passed}


def _negatives(energy, buffer, idx, u, fresh, noise, *, reinit_prob, step_size, noise_scale,
               grad_clip, sign=1.0, backward=False):
    mask = (u < reinit_prob).view((-1,) + (1,) * (fresh.dim() - 1))
    x = torch.where(mask, fresh, buffer[idx]).detach()
    for xi in noise:
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            if backward:
                energy(xr).sum().backward()
                grad = xr.grad
            else:
                (grad,) = torch.autograd.grad(energy(xr).sum(), xr)
        if grad_clip is not None:
            grad = grad.clamp(-grad_clip, grad_clip)
        x = x - sign * step_size * grad + noise_scale * xi
    return x.detach()


def test_negatives_checks_explain_ascent_and_backward():
    def ascent(*args, **kwargs):
        return _negatives(*args, sign=-1.0, **kwargs)

    def via_backward(*args, **kwargs):
        return _negatives(*args, backward=True, **kwargs)

    failed = _failed("7.2", ascent)
    assert {DRAW, RESTARTS, FRACTION}.isdisjoint(failed), failed
    assert "you step UP the energy" in failed[LANGEVIN]
    failed = _failed("7.2", via_backward)
    assert set(failed) == {SIDE_EFFECTS}, failed
    assert "torch.autograd.grad" in failed[SIDE_EFFECTS]


def test_negatives_checks_explain_a_reversed_mask_and_norm_clipping():
    def reversed_mask(energy, buffer, idx, u, fresh, noise, *, reinit_prob, **kwargs):
        return _negatives(energy, buffer, idx, 1.0 - u, fresh, noise,
                          reinit_prob=1.0 - reinit_prob, **kwargs)

    def norm_clipped(energy, buffer, idx, u, fresh, noise, *, grad_clip, step_size,
                     noise_scale, reinit_prob):
        mask = (u < reinit_prob).view((-1,) + (1,) * (fresh.dim() - 1))
        x = torch.where(mask, fresh, buffer[idx])
        for xi in noise:
            with torch.enable_grad():
                xr = x.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(energy(xr).sum(), xr)
            if grad_clip is not None:
                norm = grad.flatten(1).norm(dim=1).clamp_min(grad_clip)
                grad = grad * (grad_clip / norm).view((-1,) + (1,) * (grad.dim() - 1))
            x = x - step_size * grad + noise_scale * xi
        return x.detach()

    failed = _failed("7.2", reversed_mask)
    assert "reversed" in failed[RESTARTS], failed[RESTARTS]
    assert "restarted every chain" in failed[DRAW], failed[DRAW]
    assert "0.95" in failed[FRACTION]
    failed = _failed("7.2", norm_clipped)
    assert set(failed) - {CLIPPING, IMAGES} <= {SIDE_EFFECTS, DEVICE}, failed
    assert "elementwise" in failed[CLIPPING] and "clamp(∇_x E(x)" in failed[IMAGES]


def test_training_check_shows_the_learning_curve_of_a_loop_that_does_not_learn():
    def frozen(energy, data, *, n_steps, generator):  # never updates the parameters
        return [0.0] * n_steps

    failed = _failed("7.3", frozen)
    assert set(failed) == {MMD, ON_DATA, TRAIN_CONTRACT}, failed
    assert "your learning curve: step 0: 0" in failed[MMD]
    assert "parameters did not change" in failed[TRAIN_CONTRACT]


def _gb_log_z(weight, visible_bias, hidden_bias, *, half=0.5, stable=True):
    n_v, n_h = weight.shape
    codes = torch.arange(2**n_h)
    hs = ((codes[:, None] >> torch.arange(n_h)) & 1).to(weight.dtype)
    wh = hs @ weight.T
    exponent = hs @ hidden_bias + wh @ visible_bias + half * wh.square().sum(1)
    if not stable:
        return exponent.exp().sum().log() + 0.5 * n_v * math.log(2 * math.pi)
    return torch.logsumexp(exponent, 0) + 0.5 * n_v * math.log(2 * math.pi)


def test_partition_checks_name_each_slip_in_completing_the_square():
    failed = _failed("7.4", lambda w, a, b: _gb_log_z(w, a, b, half=-0.5))
    assert "the sign of ½‖Wh‖²" in failed[QUADRATURE_1D], failed[QUADRATURE_1D]

    def no_two_pi(w, a, b):
        return _gb_log_z(w, a, b) - 0.5 * w.shape[0] * math.log(2 * math.pi)

    failed = _failed("7.4", no_two_pi)
    assert "(2π)^{d/2}" in failed[QUADRATURE_2D] and MONTE_CARLO in failed
    failed = _failed("7.4", lambda w, a, b: _gb_log_z(w, a, b, stable=False))
    assert set(failed) == {LARGE} and "logsumexp" in failed[LARGE]
