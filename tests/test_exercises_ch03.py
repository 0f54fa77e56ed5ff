"""Chapter 3's graded exercises catch the typical mistakes, each with a message that says why.

The generic proofs (stub 0, reference solution full marks, the wrong solution of
``tests/wrong_solutions/ch03.py`` loses points) are in ``tests/test_autograder.py``.
"""

from __future__ import annotations

import torch

from ebmlab.exercises import grade_function

EXACT_BM = ("equals the exact log-likelihood gradient of a Boltzmann machine "
            "(all states as samples, exact weights)")
FINITE_DIFFERENCES = "matches central finite differences of the exact log-likelihood of an RBM"
MOMENTS = ("with equal weights, returns the data moments minus the sample moments "
           "(Boltzmann machine, closed form; the sign convention)")
DETACHED = "treats the model samples as constants (no gradient through the sampler)"
SIDE_EFFECTS = ("leaves the parameters, their .grad, the data, the samples and the weights "
                "untouched")
BM_EXPECTATION = "equals -∇ log Z of a Boltzmann machine (autograd through exact enumeration)"
STABLE = "is stable when exp(-E) overflows or underflows (energies shifted by ±800)"


def _failed(exercise_id: str, fn) -> dict[str, str]:
    report = grade_function(exercise_id, fn)
    assert report.points < report.max_points, report.to_text()
    return {r.name: r.message for r in report.results if not r.passed}


def _autograd_gradient(energy, x_data, x_model, weights=None, *, sign=1.0, detach=True):
    params = list(energy.parameters())
    with torch.enable_grad():
        xm = x_model.detach() if detach else x_model
        e_model = energy(xm)
        model_term = e_model.mean() if weights is None else (weights * e_model).sum()
        grads = torch.autograd.grad(sign * (model_term - energy(x_data).mean()), params)
    return list(grads)


def test_mle_gradient_explains_the_sign_of_a_loss():
    def loss_gradient(energy, x_data, x_model, weights=None):   # descent direction
        return _autograd_gradient(energy, x_data, x_model, weights, sign=-1.0)

    failed = _failed("3.1", loss_gradient)
    for name in (EXACT_BM, FINITE_DIFFERENCES, MOMENTS):
        assert "gradient of the NEGATIVE log-likelihood" in failed[name], failed[name]


def test_mle_gradient_catches_gradients_through_the_samples_only():
    def through_samples(energy, x_data, x_model, weights=None):
        return _autograd_gradient(energy, x_data, x_model, weights, detach=False)

    failed = _failed("3.1", through_samples)
    assert set(failed) == {DETACHED}, failed
    assert "x_model.detach()" in failed[DETACHED]


def test_mle_gradient_catches_backward_and_ignored_weights():
    def via_backward(energy, x_data, x_model, weights=None):
        params = list(energy.parameters())
        with torch.enable_grad():
            e_model = energy(x_model.detach())
            model_term = e_model.mean() if weights is None else (weights * e_model).sum()
            (model_term - energy(x_data).mean()).backward()
        return [p.grad.clone() for p in params]

    def ignores_weights(energy, x_data, x_model, weights=None):
        return _autograd_gradient(energy, x_data, x_model, None)

    failed = _failed("3.1", via_backward)
    assert "torch.autograd.grad(loss, params) returns the gradients" in failed[SIDE_EFFECTS]
    failed = _failed("3.1", ignores_weights)
    assert EXACT_BM in failed and FINITE_DIFFERENCES in failed and MOMENTS not in failed
    assert "weighted sum" in failed[EXACT_BM]


def test_mle_gradient_rejects_a_dict_with_a_message():
    def as_dict(energy, x_data, x_model, weights=None):
        grads = _autograd_gradient(energy, x_data, x_model, weights)
        return {name: g for (name, _), g in zip(energy.named_parameters(), grads, strict=True)}

    failed = _failed("3.1", as_dict)
    assert "not a dict" in failed[EXACT_BM]


def test_model_expectation_catches_overflow_and_undetached_weights():
    def naive(energy, states):           # weights held constant, but exp(-E) normalised directly
        params = list(energy.parameters())
        with torch.enable_grad():
            e = energy(states)
            w = torch.exp(-e.detach())
            grads = torch.autograd.grad(((w / w.sum()) * e).sum(), params)
        return [g.detach() for g in grads]

    def undetached(energy, states):      # stable, but differentiates through the weights
        params = list(energy.parameters())
        with torch.enable_grad():
            e = energy(states)
            grads = torch.autograd.grad((torch.softmax(-e, dim=0) * e).sum(), params)
        return [g.detach() for g in grads]

    def log_z_gradient(energy, states):  # the opposite sign: grad log Z
        params = list(energy.parameters())
        with torch.enable_grad():
            grads = torch.autograd.grad(torch.logsumexp(-energy(states), dim=0), params)
        return [g.detach() for g in grads]

    failed = _failed("3.2", naive)
    assert set(failed) == {STABLE}, failed
    assert "overflows to inf" in failed[STABLE]
    failed = _failed("3.2", undetached)
    assert "NOT held constant" in failed[BM_EXPECTATION] and "NOT held constant" in failed[STABLE]
    failed = _failed("3.2", log_z_gradient)
    assert "that is ∇ log Z" in failed[BM_EXPECTATION]


# --- 3.3: training a Boltzmann machine ------------------------------------------------------
ONE_STEP = ("one step adds lr × (data statistics - exact model statistics); W stays "
            "symmetric with a zero diagonal")


def _bm_step(weight, bias, x, lr):
    from ebmlab.exercises.bank import ch03 as bank

    states = bank.all_binary_states(x.shape[1])
    p = torch.softmax(-bank.bm_energy(weight, bias, states), dim=0)
    grad_w = x.T @ x / len(x) - (states * p[:, None]).T @ states
    return grad_w, x.mean(0) - p @ states


def test_maximum_likelihood_by_newton_is_the_fixed_point_of_gradient_ascent():
    """The band checks' reference: at Newton's maximum, the exact gradient vanishes (the
    model matches the data's moments), and gradient ascent from zero does not exceed it."""
    from ebmlab.exercises.bank import ch03 as bank

    states = bank.all_binary_states(5)
    data = states[torch.randint(32, (200,), generator=torch.Generator().manual_seed(0))]
    best = bank.bm_maximum_likelihood(data, states)
    weight, bias = torch.zeros(5, 5, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    for _ in range(2000):
        grad_w, grad_b = _bm_step(weight, bias, data, 1.0)
        weight = weight + grad_w - torch.diag(torch.diagonal(grad_w))
        bias = bias + grad_b
    reached = bank._bm_log_likelihood(weight, bias, data, states)
    assert reached <= best + 1e-9 and best - reached < 1e-6


def test_bm_step_checks_name_half_steps_signs_and_the_diagonal():
    def half_weight(weight, bias, x, lr):
        grad_w, grad_b = _bm_step(weight, bias, x, lr)
        grad_w.fill_diagonal_(0.0)
        return weight + 0.5 * lr * grad_w, bias + lr * grad_b

    def descent(weight, bias, x, lr):
        grad_w, grad_b = _bm_step(weight, bias, x, lr)
        grad_w.fill_diagonal_(0.0)
        return weight - lr * grad_w, bias - lr * grad_b

    def diagonal(weight, bias, x, lr):
        grad_w, grad_b = _bm_step(weight, bias, x, lr)
        return weight + lr * grad_w, bias + lr * grad_b

    assert "ONE parameter" in _failed("3.3", half_weight)[ONE_STEP]
    failed = _failed("3.3", descent)
    assert "wrong way" in failed[ONE_STEP]
    assert all("learning curve" in failed[name] for name in failed if "nats" in name)
    assert len(failed) == 4
    assert "diagonal" in _failed("3.3", diagonal)[ONE_STEP]
