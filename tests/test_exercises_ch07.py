"""Chapter 7's graded exercises catch the typical mistakes, each with a message that says why.

The generic proofs (stub 0, reference solution full marks, the wrong solution of
``tests/wrong_solutions/ch07.py`` loses points) are in ``tests/test_autograder.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ebmlab.exercises import grade_function

BRUTE_FORCE = "matches the brute-force sum over every hidden configuration"
AS_RBM = "matches ebmlab.RBM's free energy (the module's forward)"
OVERFLOW = "stays finite and exact for weights so large that exp overflows (float32)"
GRADIENT = "is differentiable: its gradient in W is -Σ_b v_b σ(b + v_b W)ᵀ"
SHAPES = ("returns shape (B,) with v's dtype (float32 and float64, batch of one), "
          "leaving the inputs untouched")

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
SIDE_EFFECTS = ("returns detached samples, leaves the inputs and the energy's parameters "
                "untouched, works under torch.no_grad()")


def _failed(exercise_id: str, fn) -> dict[str, str]:
    report = grade_function(exercise_id, fn)
    assert report.points < report.max_points, report.to_text()
    return {r.name: r.message for r in report.results if not r.passed}


def _free_energy(v, weight, visible_bias, hidden_bias):
    return -(v @ visible_bias) - F.softplus(v @ weight + hidden_bias).sum(-1)


def test_free_energy_checks_explain_the_sign_the_graph_and_the_batch_axis():
    def flipped(v, weight, visible_bias, hidden_bias):
        return -_free_energy(v, weight, visible_bias, hidden_bias)

    def detached(v, weight, visible_bias, hidden_bias):
        return _free_energy(v, weight.detach(), visible_bias.detach(), hidden_bias.detach())

    def squeezed(v, weight, visible_bias, hidden_bias):
        return _free_energy(v, weight, visible_bias, hidden_bias).squeeze()

    failed = _failed("7.1", flipped)
    assert "opposite sign" in failed[BRUTE_FORCE] and "opposite sign" in failed[AS_RBM]
    failed = _failed("7.1", detached)
    assert set(failed) == {GRADIENT}, failed
    assert "no .detach()" in failed[GRADIENT]
    failed = _failed("7.1", squeezed)
    assert set(failed) == {SHAPES}, failed
    assert "no .squeeze()" in failed[SHAPES]


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
