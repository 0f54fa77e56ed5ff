"""Chapter 9's graded exercises catch the typical mistakes, each with a message that says why.

The generic proofs (stub 0, reference solution full marks, the wrong solution of
``tests/wrong_solutions/ch09.py`` loses points) are in ``tests/test_autograder.py``.
"""

from __future__ import annotations

import math

import torch

from ebmlab.exercises import grade_function

DEFINITIONS = "E(x, y) and E(x) match their definitions"
STABLE = "finite and exact for logits of size 1000 (float32)"
GRADIENT = "differentiable: ∂E(x)/∂f(x) = -p(· | x)"
EXACT = ("K steps match Langevin on -f(x)[y] fed the same noise (MLP classifier, "
         "mixed labels)")
STATIONARY = ("samples each class's Gaussian when f_y(x) = -½‖x - μ_y‖² + c_y "
              "(seeded test, 5 SE)")
SAME = "the predictions p(y | x) are unchanged at every grid point"
TARGET = "JEM's density of the new logits is the target (total variation < 0.01)"
EXTREME = ("works for confident classifiers (logits of size 500) and a target with "
           "near-zero mass")


def _failed(exercise_id: str, fn) -> tuple[dict[str, str], set[str]]:
    report = grade_function(exercise_id, fn)
    assert report.points < report.max_points, report.to_text()
    return ({r.name: r.message for r in report.results if not r.passed},
            {r.name for r in report.results if r.passed})


def test_energies_name_the_sign_the_max_and_the_graph():
    failed, _ = _failed("9.1", lambda f: (-f, torch.logsumexp(f, 1)))
    assert "minus sign" in failed[DEFINITIONS]
    failed, _ = _failed("9.1", lambda f: (-f, -f.max(1).values))
    assert "not the largest logit" in failed[DEFINITIONS]
    failed, _ = _failed("9.1", lambda f: (-f, -torch.logsumexp(f, 1).detach()))
    assert set(failed) == {GRADIENT} and "no .detach()" in failed[GRADIENT]


def _chains(classifier, x, y, noise, *, step_size, sign=1.0):
    x = x.detach().clone()
    for xi in noise:
        with torch.enable_grad():
            xr = x.requires_grad_(True)
            (grad,) = torch.autograd.grad(classifier(xr).gather(1, y[:, None]).sum(), xr)
        x = (x.detach() + sign * step_size * grad + math.sqrt(2 * step_size) * xi).detach()
    return x


def test_conditional_sampler_names_the_marginal_and_the_ascent():
    def marginal(classifier, x, y, noise, *, step_size):
        x = x.detach().clone()
        for xi in noise:
            with torch.enable_grad():
                xr = x.requires_grad_(True)
                (grad,) = torch.autograd.grad(torch.logsumexp(classifier(xr), 1).sum(), xr)
            x = (x.detach() + step_size * grad + math.sqrt(2 * step_size) * xi).detach()
        return x

    failed, _ = _failed("9.2", marginal)
    assert "marginal p(x)" in failed[EXACT] and STATIONARY in failed

    def ascent(*args, **kwargs):
        return _chains(*args, sign=-1.0, **kwargs)

    failed, _ = _failed("9.2", ascent)
    assert "step UP" in failed[EXACT]


def test_conditional_sampler_wants_the_noise_scale_of_langevin():
    def half_noise(classifier, x, y, noise, *, step_size):
        return _chains(classifier, x, y, noise / math.sqrt(2), step_size=step_size)

    failed, passed = _failed("9.2", half_noise)
    assert EXACT in failed and STATIONARY in passed  # the means do not see the variance


def test_reshaping_explains_what_to_keep_and_how_to_stay_finite():
    def naive(x, logits, target):  # divides exponentials: overflows for confident logits
        z = logits.exp().sum(1, keepdim=True)
        return logits + (target[:, None] / z).log()

    failed, passed = _failed("9.3", naive)
    assert set(failed) == {EXTREME} and "never divide exponentials" in failed[EXTREME]
    assert {SAME, TARGET} <= passed

    failed, passed = _failed("9.3", lambda x, logits, target: logits)
    assert SAME in passed and "total variation" in failed[TARGET]
