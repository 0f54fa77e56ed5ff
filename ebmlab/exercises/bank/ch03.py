r"""Graded exercises of chapter 3: maximum likelihood and its gradient.

* 3.1 ``mle_gradient(energy, x_data, x_model, weights=None)`` (exercise 2 of the notes):
  the estimate of the log-likelihood gradient
  :math:`-\frac1N\sum_n \nabla_\theta E_\theta(x_n) + \sum_m w_m \nabla_\theta E_\theta(x^-_m)`
  from a data batch and model samples (uniform weights :math:`w_m = 1/M` by default).
  Checked against the exact gradient of a Boltzmann machine (autograd through
  :func:`ebmlab.exact_log_partition`, the model term from all states with their exact
  probabilities), against central finite differences of the exact log-likelihood of an RBM,
  against the closed-form moment differences of a Boltzmann machine (the sign
  convention), with samples that carry a graph to the parameters (they must be treated as
  constants), and for its contract (no side effects, detached results, ``no_grad``).
* 3.2 ``model_expectation(energy, states)``: the exact model expectation
  :math:`\mathbb E_{p_\theta}[\nabla_\theta E_\theta] = \sum_s p_\theta(s)\nabla_\theta
  E_\theta(s)` by enumeration, with the probabilities from a stable log-sum-exp. Checked
  against :math:`-\nabla_\theta \log Z` by autograd through
  :func:`ebmlab.exact_log_partition` (a Boltzmann machine; an RBM, whose :math:`\log Z` is
  enumerated over the *hidden* layer), against the closed form :math:`-\sigma(b)` of
  independent units, on energies shifted by :math:`\pm 800` (where :math:`e^{-E}`
  overflows or underflows) and for its contract.
* 3.3 ``bm_mle_step(weight, bias, x, lr)`` (a training exercise): one step of exact
  maximum likelihood for a fully visible Boltzmann machine
  :math:`E(x) = -\tfrac12 x^\top W x - b^\top x`. Checked for the exact step (data minus
  model moments, :math:`W` symmetric with a zero diagonal), for stability with large
  parameters, and by training on minibatches of data drawn from a teacher machine: the
  exact log-likelihood must end within the bands :data:`BM_BANDS` of the maximum
  likelihood, found by Newton's method; a failure shows the learning curve.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ...energies import RBM, BoltzmannMachine
from ...partition import exact_log_partition
from .._registry import register
from .._sandbox import InSandbox
from .._student import CheckContext, Student
from ..expect import (
    call_student,
    expect_close,
    expect_detached,
    expect_grad_mode,
    expect_tensor,
    fail,
)
from ._common import all_binary_states

_F64 = torch.float64

MLEGradient = Callable[..., object]
ModelExpectation = Callable[..., object]


def _random_bits(n: int, d: int, g: torch.Generator, p: float = 0.5) -> torch.Tensor:
    return (torch.rand(n, d, dtype=_F64, generator=g) < p).to(_F64)


def _boltzmann_machine(d: int, g: torch.Generator, scale: float = 0.8) -> BoltzmannMachine:
    w = scale * torch.randn(d, d, dtype=_F64, generator=g)
    w = 0.5 * (w + w.T)
    w.fill_diagonal_(0.0)
    b = 0.5 * torch.randn(d, dtype=_F64, generator=g)
    return BoltzmannMachine(w, b)


def _rbm(n_visible: int, n_hidden: int, g: torch.Generator) -> RBM:
    rbm = RBM(n_visible, n_hidden).double()
    with torch.no_grad():
        rbm.weight.copy_(0.8 * torch.randn(n_visible, n_hidden, dtype=_F64, generator=g))
        rbm.visible_bias.copy_(0.5 * torch.randn(n_visible, dtype=_F64, generator=g))
        rbm.hidden_bias.copy_(0.5 * torch.randn(n_hidden, dtype=_F64, generator=g))
    return rbm


def _exact_probabilities(energy: nn.Module, states: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(-energy(states), dim=0)


def _names(module: nn.Module) -> list[str]:
    return [name for name, _ in module.named_parameters()]


def _result_list(got: object, module: nn.Module, *, what: str, hint: str) -> list[torch.Tensor]:
    """The student's result as a list of tensors, one per parameter, with the right shapes."""
    params = list(module.parameters())
    names = _names(module)
    if isinstance(got, dict):
        fail(what, expected=f"a list of {len(params)} tensors, one per parameter in the order "
                            f"of energy.parameters() ({', '.join(names)})",
             got=f"a dict with keys {list(got)[:5]}",
             hint="return [gradient for each p in energy.parameters()], not a dict.")
    if isinstance(got, torch.Tensor) or not isinstance(got, Sequence):
        fail(what, expected=f"a list of {len(params)} tensors, one per parameter "
                            f"({', '.join(names)})",
             got=f"a {type(got).__name__}", hint=hint)
    got = list(got)
    if len(got) != len(params):
        fail(what, expected=f"{len(params)} tensors, one per parameter ({', '.join(names)})",
             got=f"{len(got)} item(s)", hint=hint)
    for name, p, t in zip(names, params, got, strict=True):
        expect_tensor(t, what=f"{what}, entry for parameter '{name}'", shape=p.shape,
                      hint="each entry has the shape of its parameter: "
                           "torch.autograd.grad(loss, params) returns exactly that.")
    return got


def _matches(got: list[torch.Tensor], candidate: Sequence[torch.Tensor], atol: float,
             rtol: float) -> bool:
    return all(torch.allclose(g.detach().to("cpu", _F64), c.detach().to("cpu", _F64),
                              atol=atol, rtol=rtol)
               for g, c in zip(got, candidate, strict=True))


def _compare(got: list[torch.Tensor], reference: Sequence[torch.Tensor], module: nn.Module, *,
             what: str, hint: str, atol: float, rtol: float,
             opposite_hint: str | None = None,
             mistakes: Sequence[tuple[Sequence[torch.Tensor], str]] = ()) -> None:
    """Compare entry by entry. When the result is exactly the opposite of the reference, or
    equals the result of a known mistake, the failure message says so."""
    candidates = list(mistakes)
    if opposite_hint is not None:
        candidates.append(([-r for r in reference], opposite_hint))
    if not _matches(got, reference, atol, rtol):
        for candidate, candidate_hint in candidates:
            differs = any(float((c - r).detach().abs().max()) > 10 * atol
                          for c, r in zip(candidate, reference, strict=True))
            if differs and _matches(got, candidate, atol, rtol):
                hint = candidate_hint
                break
    for name, g, r in zip(_names(module), got, reference, strict=True):
        expect_close(g, r, atol=atol, rtol=rtol, what=f"{what}, parameter '{name}'", hint=hint)


def _ascent_reference(module: nn.Module, x_data: torch.Tensor) -> list[torch.Tensor]:
    r""":math:`\nabla_\theta[-\bar E_\theta(\text{data}) - \log Z(\theta)]` by autograd through
    the exact (enumerated, differentiable) :math:`\log Z`."""
    params = list(module.parameters())
    with torch.enable_grad():
        log_lik = -module(x_data).mean() - exact_log_partition(module)
        return list(torch.autograd.grad(log_lik, params))


# =========================================================================================
# 3.1 — the MLE gradient estimator
# =========================================================================================

mle_ex = register("3.1", "The maximum-likelihood gradient from data and model samples",
                  function="mle_gradient",
                  forbidden=("ebmlab.contrastive_loss", "ebmlab.exact_nll",
                             "ebmlab.exact_log_partition"))

_HOW_31 = ("the gradient of the log-likelihood is -mean_n ∇E(x_n) + Σ_m w_m ∇E(x⁻_m): "
           "differentiate Σ_m w_m E(x⁻_m) - mean_n E(x_n) with torch.autograd.grad with "
           "respect to list(energy.parameters()).")
_SIGN_31 = ("your result is exactly the opposite: that is the gradient of the NEGATIVE "
            "log-likelihood (the loss). The log-likelihood's gradient pushes the energy of "
            "the data down: -mean ∇E(data) + mean ∇E(samples).")
_SHAPE_31 = ("return a list with one tensor per parameter, in the order of "
             "energy.parameters(), each of its parameter's shape.")


@mle_ex.check("equals the exact log-likelihood gradient of a Boltzmann machine "
              "(all states as samples, exact weights)", points=2)
def _exact_bm(mle_gradient: Student, ctx: CheckContext) -> None:
    bm = _boltzmann_machine(5, ctx.generator(0))
    x_data = _random_bits(40, 5, ctx.generator(1), p=0.4)
    states = all_binary_states(5)
    weights = _exact_probabilities(bm, states)
    got = _result_list(mle_gradient(bm, x_data, states, weights), bm,
                       what="mle_gradient(bm, data, states, weights)", hint=_SHAPE_31)
    _compare(got, _ascent_reference(bm, x_data), bm,
             what="mle_gradient(bm, data, all states, exact probabilities)",
             hint=_HOW_31 + " With weights given, the model term is the weighted sum "
                            "Σ_m w_m ∇E(x⁻_m) (the weights already sum to one).",
             atol=1e-9, rtol=1e-7, opposite_hint=_SIGN_31)


@mle_ex.check("matches central finite differences of the exact log-likelihood of an RBM",
              points=3)
def _finite_differences(mle_gradient: Student, ctx: CheckContext) -> None:
    rbm = _rbm(6, 3, ctx.generator(2))
    x_data = _random_bits(30, 6, ctx.generator(3), p=0.6)
    states = all_binary_states(6)
    weights = _exact_probabilities(rbm, states)
    got = _result_list(mle_gradient(rbm, x_data, states, weights), rbm,
                       what="mle_gradient(rbm, data, states, weights)", hint=_SHAPE_31)
    params = list(rbm.parameters())
    snapshot = [p.detach().clone() for p in params]

    def log_likelihood() -> float:
        with torch.no_grad():
            return float(-rbm(x_data).mean() - exact_log_partition(rbm))

    h = 1e-5
    g = ctx.generator(4)
    for k in range(3):
        direction = [torch.randn(p.shape, dtype=_F64, generator=g) for p in params]
        with torch.no_grad():
            for p, p0, u in zip(params, snapshot, direction, strict=True):
                p.copy_(p0 + h * u)
            up = log_likelihood()
            for p, p0, u in zip(params, snapshot, direction, strict=True):
                p.copy_(p0 - h * u)
            down = log_likelihood()
            for p, p0 in zip(params, snapshot, strict=True):
                p.copy_(p0)
        numeric = (up - down) / (2 * h)
        analytic = sum(float((t.detach().to("cpu", _F64) * u).sum())
                       for t, u in zip(got, direction, strict=True))
        hint = _HOW_31
        if abs(analytic + numeric) < 1e-5 * max(1.0, abs(numeric)) and abs(numeric) > 1e-3:
            hint = _SIGN_31
        expect_close(torch.tensor(analytic, dtype=_F64), torch.tensor(numeric, dtype=_F64),
                     atol=1e-6, rtol=1e-5,
                     what=f"directional derivative along random direction {k + 1}: "
                          "Σ_i ⟨gradient_i, u_i⟩ against (L(θ+hu) - L(θ-hu)) / 2h",
                     hint=hint)


@mle_ex.check("with equal weights, returns the data moments minus the sample moments "
              "(Boltzmann machine, closed form; the sign convention)", points=2)
def _moments(mle_gradient: Student, ctx: CheckContext) -> None:
    bm = _boltzmann_machine(4, ctx.generator(5))
    x_data = _random_bits(30, 4, ctx.generator(6), p=0.7)
    x_model = _random_bits(50, 4, ctx.generator(7), p=0.3)
    got = _result_list(mle_gradient(bm, x_data, x_model), bm,
                       what="mle_gradient(bm, data, samples)", hint=_SHAPE_31)
    # E(x) = -1/2 x^T C x - b^T x with C the symmetric, zero-diagonal part of `weight`:
    # dE/dW_kl = -x_k x_l / 2 (k != l, 0 on the diagonal) and dE/db = -x.
    second = 0.5 * (x_data.T @ x_data / len(x_data) - x_model.T @ x_model / len(x_model))
    second.fill_diagonal_(0.0)
    first = x_data.mean(0) - x_model.mean(0)
    reference = {"weight": second, "bias": first}
    _compare(got, [reference[n] for n in _names(bm)], bm,
             what="mle_gradient(bm, data, samples) without weights",
             hint=_HOW_31 + " Without weights every sample counts 1/M (a plain mean), and the "
                            "data and the samples may have different batch sizes.",
             atol=1e-10, rtol=1e-8, opposite_hint=_SIGN_31)


class _GaussianEnergy(nn.Module):
    r""":math:`E(x) = \tfrac12 e^{s}\|x - \mu\|^2` with parameters :math:`\mu` and :math:`s`."""

    def __init__(self, mu: torch.Tensor, log_precision: float) -> None:
        super().__init__()
        self.mu = nn.Parameter(mu.clone())
        self.log_precision = nn.Parameter(torch.tensor(log_precision, dtype=mu.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.log_precision.exp() * (x - self.mu).square().sum(-1)


def reparametrised(energy: _GaussianEnergy, eps: torch.Tensor) -> torch.Tensor:
    """Samples ``mu + exp(-s/2) eps`` of the Gaussian energy, with their graph to ``mu, s``."""
    return energy.mu + torch.exp(-0.5 * energy.log_precision) * eps


@mle_ex.check("treats the model samples as constants (no gradient through the sampler)",
              points=1)
def _detached_samples(mle_gradient: Student, ctx: CheckContext) -> None:
    g = ctx.generator(8)
    energy = _GaussianEnergy(torch.tensor([0.5, -1.0], dtype=_F64), 0.3)
    x_data = torch.randn(25, 2, dtype=_F64, generator=g) + 1.0
    eps = torch.randn(40, 2, dtype=_F64, generator=g)
    # Reparametrised samples of p_theta: they carry a graph to mu and log_precision (built
    # in the sandbox too, since a graph does not travel).
    x_model = reparametrised(energy, eps)
    hint = ("the samples stand for draws from p_θ: the theorem differentiates E_θ at FIXED "
            "points, so use x_model.detach(). Differentiating through x_model adds the "
            "sampler's own dependence on θ (here it cancels the whole model term).")
    got = _result_list(
        call_student(mle_gradient, energy, x_data, InSandbox(reparametrised, (energy, eps)),
                     what="mle_gradient(energy, data, samples) with samples that require grad",
                     expected="a list of gradients", hint=hint),
        energy, what="mle_gradient(energy, data, samples)", hint=_SHAPE_31)
    with torch.no_grad():
        xs = x_model.detach()
        prec = energy.log_precision.exp()
        grad_mu = lambda x: -prec * (x - energy.mu)                        # noqa: E731
        grad_s = lambda x: 0.5 * prec * (x - energy.mu).square().sum(-1)   # noqa: E731
        reference = {
            "mu": -grad_mu(x_data).mean(0) + grad_mu(xs).mean(0),
            "log_precision": -grad_s(x_data).mean() + grad_s(xs).mean(),
        }
    _compare(got, [reference[n] for n in _names(energy)], energy,
             what="mle_gradient for a Gaussian energy with reparametrised samples",
             hint=hint, atol=1e-10, rtol=1e-8)


@mle_ex.check("leaves the parameters, their .grad, the data, the samples and the weights "
              "untouched", points=1)
def _no_side_effects(mle_gradient: Student, ctx: CheckContext) -> None:
    bm = _boltzmann_machine(4, ctx.generator(9))
    x_data = _random_bits(10, 4, ctx.generator(10))
    states = all_binary_states(4)
    weights = _exact_probabilities(bm, states)
    snapshots = {"x_data": x_data.clone(), "x_model": states.clone(),
                 "weights": weights.clone()}
    params = {n: p.detach().clone() for n, p in bm.named_parameters()}
    reference = _ascent_reference(bm, x_data)
    got = mle_gradient(bm, x_data, states, weights)
    for name, tensor in (("x_data", x_data), ("x_model", states), ("weights", weights)):
        if not torch.equal(tensor, snapshots[name]):
            fail(f"{name} after the call", expected="unchanged",
                 got="its values were modified in place",
                 hint="do not write into the inputs (no +=, [...] =, .add_() on them).")
        if tensor.requires_grad:
            fail(f"{name} after the call", expected="requires_grad False, as passed",
                 got="requires_grad True",
                 hint=f"{name}.requires_grad_() changes the caller's tensor; the gradient is "
                      "taken with respect to the parameters, not the inputs.")
    for name, p in bm.named_parameters():
        if not torch.equal(p.detach(), params[name]):
            fail(f"parameter '{name}' after the call", expected="unchanged",
                 got="modified", hint="compute the gradient; do not take an optimiser step.")
        if p.grad is not None:
            fail(f"parameter '{name}'.grad after the call", expected="None (no gradient "
                 "accumulated)", got="a gradient was accumulated into .grad",
                 hint="loss.backward() writes into p.grad and would corrupt the caller's "
                      "next optimiser step; torch.autograd.grad(loss, params) returns the "
                      "gradients instead.")
    _compare(_result_list(got, bm, what="mle_gradient(bm, data, states, weights)",
                          hint=_SHAPE_31), reference, bm,
             what="mle_gradient(bm, data, all states, exact probabilities)", hint=_HOW_31,
             atol=1e-9, rtol=1e-7, opposite_hint=_SIGN_31)


class _SmallNet(nn.Module):
    """A float32 network energy ``(B, 2) -> (B,)`` with seeded weights."""

    def __init__(self, g: torch.Generator) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(0.7 * torch.randn(p.shape, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


@mle_ex.check("returns detached tensors with the parameters' dtypes, also under "
              "torch.no_grad() and for a single sample", points=1)
def _contract(mle_gradient: Student, ctx: CheckContext) -> None:
    net = _SmallNet(ctx.generator(11))                                   # float32 parameters
    g = ctx.generator(12)
    x_data = torch.randn(16, 2, generator=g)
    x_model = torch.randn(1, 2, generator=g)              # a batch of one sample
    with torch.enable_grad():
        params = list(net.parameters())
        loss = net(x_model).mean() - net(x_data).mean()
        reference = torch.autograd.grad(loss, params)
    hint = ("samplers and training loops call this inside torch.no_grad(); compute the "
            "gradient inside `with torch.enable_grad():`.")
    with torch.no_grad():
        got = call_student(mle_gradient, net, x_data, x_model,
                           what="mle_gradient(...) called inside torch.no_grad()",
                           expected="a list of gradients", hint=hint)
        expect_grad_mode(False, what="mle_gradient(...) inside torch.no_grad()",
                         hint="use `with torch.enable_grad():` so the mode is restored on "
                              "exit.")
    got = _result_list(got, net, what="mle_gradient(net, data, one sample)", hint=_SHAPE_31)
    for name, p, t in zip(_names(net), params, got, strict=True):
        what = f"mle_gradient(...) entry for parameter '{name}'"
        expect_tensor(t, what=what, dtype=p.dtype,
                      hint="keep the parameters' dtype (no .double() on the result).")
        expect_detached(t, what=what, hint="return the gradients themselves (torch.autograd."
                                           "grad without create_graph), or .detach() them.")
    _compare(got, reference, net, what="mle_gradient(net, data, one sample)",
             hint=_HOW_31, atol=1e-6, rtol=1e-5, opposite_hint=_SIGN_31)


# =========================================================================================
# 3.2 — the exact model expectation by enumeration
# =========================================================================================

expect_ex = register("3.2", "The exact model expectation by enumeration",
                     function="model_expectation",
                     forbidden=("ebmlab.exact_log_partition", "ebmlab.exact_nll"))

_HOW_32 = ("weights p(s) = softmax(-E(states)) (a stable log-sum-exp), treated as constants; "
           "then the gradient of Σ_s p(s) E(s) with respect to the parameters is "
           "Σ_s p(s) ∇E(s).")
_SIGN_32 = ("your result is exactly the opposite: that is ∇ log Z = -E_p[∇E]. This function "
            "returns the expectation E_p[∇_θ E_θ] itself.")
_SHAPE_32 = ("return a list with one tensor per parameter, in the order of "
             "energy.parameters(), each of its parameter's shape.")


_UNDETACHED_32 = ("your result is what autograd gives when the probabilities p(s) are NOT "
                  "held constant: differentiating Σ_s p(s) E(s) through p(s) adds "
                  "Σ_s E(s) ∇p(s). Compute the weights from -E.detach() (or under "
                  "torch.no_grad()), so that only E(s) is differentiated.")


def _undetached_mistake(module: nn.Module, states: torch.Tensor) -> list[torch.Tensor]:
    """What a solution that differentiates through the softmax weights returns."""
    with torch.enable_grad():
        e = module(states)
        return list(torch.autograd.grad((torch.softmax(-e, dim=0) * e).sum(),
                                        list(module.parameters())))


def _expectation_reference(module: nn.Module) -> list[torch.Tensor]:
    r""":math:`\mathbb E_{p_\theta}[\nabla_\theta E_\theta] = -\nabla_\theta\log Z` by autograd
    through :func:`ebmlab.exact_log_partition`."""
    with torch.enable_grad():
        grads = torch.autograd.grad(exact_log_partition(module), list(module.parameters()))
    return [-g for g in grads]


@expect_ex.check("equals -∇ log Z of a Boltzmann machine (autograd through exact "
                 "enumeration)", points=2)
def _bm_expectation(model_expectation: Student, ctx: CheckContext) -> None:
    bm = _boltzmann_machine(6, ctx.generator(20))
    got = _result_list(model_expectation(bm, all_binary_states(6)), bm,
                       what="model_expectation(bm, states)", hint=_SHAPE_32)
    _compare(got, _expectation_reference(bm), bm, what="model_expectation(bm, all states)",
             hint=_HOW_32, atol=1e-10, rtol=1e-8, opposite_hint=_SIGN_32,
             mistakes=[(_undetached_mistake(bm, all_binary_states(6)), _UNDETACHED_32)])


@expect_ex.check("equals -∇ log Z of an RBM, its free energy summed over the visible "
                 "states", points=2)
def _rbm_expectation(model_expectation: Student, ctx: CheckContext) -> None:
    rbm = _rbm(5, 4, ctx.generator(21))      # exact_log_partition enumerates the 4 hidden
    got = _result_list(model_expectation(rbm, all_binary_states(5)), rbm,
                       what="model_expectation(rbm, visible states)", hint=_SHAPE_32)
    _compare(got, _expectation_reference(rbm), rbm,
             what="model_expectation(rbm, all visible states)",
             hint=_HOW_32 + " For an RBM the energy of a visible state is its free energy "
                            "F(v) (the module's forward).",
             atol=1e-10, rtol=1e-8, opposite_hint=_SIGN_32,
             mistakes=[(_undetached_mistake(rbm, all_binary_states(5)), _UNDETACHED_32)])


class _IndependentUnits(nn.Module):
    r""":math:`E(x) = -b^\top x`: independent units with :math:`p(x_i = 1) = \sigma(b_i)`."""

    def __init__(self, bias: torch.Tensor) -> None:
        super().__init__()
        self.bias = nn.Parameter(bias.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -(x @ self.bias)


@expect_ex.check("equals the closed form -σ(b) for independent units E(x) = -bᵀx "
                 "(uniform when b = 0)", points=1)
def _independent(model_expectation: Student, ctx: CheckContext) -> None:
    for bias in (torch.zeros(4, dtype=_F64), torch.tensor([1.5, -0.5, 0.0, 3.0], dtype=_F64)):
        energy = _IndependentUnits(bias)
        got = _result_list(model_expectation(energy, all_binary_states(4)), energy,
                           what="model_expectation(E = -bᵀx, states)", hint=_SHAPE_32)
        _compare(got, [-torch.sigmoid(bias)], energy,
                 what=f"model_expectation for independent units, b = {bias.tolist()}",
                 hint=_HOW_32 + " Here ∇_b E(x) = -x and p(x_i = 1) = σ(b_i), so the answer "
                                "is -σ(b) (-0.5 for b = 0: every state equally likely).",
                 atol=1e-10, rtol=1e-8, opposite_hint=_SIGN_32,
                 mistakes=[(_undetached_mistake(energy, all_binary_states(4)), _UNDETACHED_32)])


class _Shifted(nn.Module):
    """``base(x) + offset`` with a learnable offset: the same distribution for every offset."""

    def __init__(self, base: nn.Module, offset: float) -> None:
        super().__init__()
        self.base = base
        self.offset = nn.Parameter(torch.tensor(offset, dtype=_F64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.offset


@expect_ex.check("is stable when exp(-E) overflows or underflows (energies shifted by "
                 "±800)", points=2)
def _stable(model_expectation: Student, ctx: CheckContext) -> None:
    base = _boltzmann_machine(5, ctx.generator(22))
    reference = dict(zip((f"base.{n}" for n in _names(base)), _expectation_reference(base),
                         strict=True))
    reference["offset"] = torch.tensor(1.0, dtype=_F64)   # E_p[dE/d offset] = E_p[1] = 1
    for offset in (-800.0, 800.0):
        energy = _Shifted(base, offset)
        got = _result_list(model_expectation(energy, all_binary_states(5)), energy,
                           what=f"model_expectation(E + {offset:g}, states)", hint=_SHAPE_32)
        hint = ("adding a constant to the energy does not change p_θ, but exp(-E) then "
                "overflows to inf (offset -800) or underflows to 0 (offset +800) in float64. "
                "Normalise in log space: torch.softmax(-E, dim=0), or subtract "
                "torch.logsumexp(-E, dim=0) before exponentiating.")
        _compare(got, [reference[n] for n in _names(energy)], energy,
                 what=f"model_expectation for an energy shifted by {offset:g}", hint=hint,
                 atol=1e-9, rtol=1e-7,
                 mistakes=[(_undetached_mistake(energy, all_binary_states(5)), _UNDETACHED_32)])


@expect_ex.check("leaves the model and the states untouched and returns finite, detached "
                 "tensors of the parameters' dtypes, also under torch.no_grad()", points=1)
def _contract_32(model_expectation: Student, ctx: CheckContext) -> None:
    bm = _boltzmann_machine(4, ctx.generator(23))
    states = all_binary_states(4)
    snapshot = states.clone()
    params = {n: p.detach().clone() for n, p in bm.named_parameters()}
    hint = "compute the gradients inside `with torch.enable_grad():`."
    with torch.no_grad():
        got = call_student(model_expectation, bm, states,
                           what="model_expectation(...) called inside torch.no_grad()",
                           expected="a list of gradients", hint=hint)
    got = _result_list(got, bm, what="model_expectation(bm, states)", hint=_SHAPE_32)
    if not torch.equal(states, snapshot) or states.requires_grad:
        fail("states after the call", expected="unchanged (values and requires_grad)",
             got="modified", hint="do not modify the states in place or call "
                                  "states.requires_grad_(); differentiate w.r.t. parameters.")
    for name, p in bm.named_parameters():
        if not torch.equal(p.detach(), params[name]) or p.grad is not None:
            fail(f"parameter '{name}' after the call",
                 expected="unchanged, with .grad None",
                 got="modified" if not torch.equal(p.detach(), params[name])
                 else "a gradient accumulated into .grad",
                 hint="use torch.autograd.grad(..., params), not .backward(), which writes "
                      "into p.grad.")
    for name, p, t in zip(_names(bm), bm.parameters(), got, strict=True):
        what = f"model_expectation(...) entry for parameter '{name}'"
        expect_tensor(t, what=what, dtype=p.dtype,
                      hint="keep the parameters' dtype (no .float() on the result).")
        expect_detached(t, what=what, hint="return the gradients themselves, or .detach() them.")
        if not bool(torch.isfinite(t).all()):
            fail(what, expected="finite values", got="NaN or infinity", hint=_HOW_32)
    _compare(got, _expectation_reference(bm), bm, what="model_expectation(bm, all states)",
             hint=_HOW_32, atol=1e-10, rtol=1e-8, opposite_hint=_SIGN_32)


# =========================================================================================
# 3.3 — training a Boltzmann machine by maximum likelihood (a training exercise)
# =========================================================================================

train_ex = register("3.3", "Train a Boltzmann machine by exact maximum likelihood",
                    function="bm_mle_step",
                    forbidden=("ebmlab.exact_log_partition", "ebmlab.exact_nll",
                               "ebmlab.fit"))

#: Exercise 3.3: the training run of the band checks: a fully visible Boltzmann machine on
#: ``BM_UNITS`` units, ``BM_STEPS`` steps on minibatches of ``BM_BATCH`` rows of a data set
#: of ``BM_ROWS`` rows, the step size decaying linearly from ``BM_LR`` to 0.
BM_UNITS, BM_ROWS, BM_BATCH, BM_STEPS, BM_LR = 8, 500, 50, 300, 1.0
#: Exercise 3.3: the bands of the gap (nats per row) between the exact mean log-likelihood
#: of the trained model and the maximum likelihood (Newton's method, exact).
BM_BANDS = (0.05, 0.01)
_BM_EVERY = 50

_BM_HOW = ("one step of gradient ascent on the mean log-likelihood of the batch x: the "
           "gradient is the data statistics minus the model's (the theorem of the chapter), "
           "the model's from every one of the 2^d states with its exact probability, "
           "computed in log space.")


def bm_energy(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r""":math:`E(x) = -\tfrac12 x^\top W x - b^\top x`, one value per row of ``x``."""
    return -0.5 * ((x @ weight) * x).sum(-1) - x @ bias


def _bm_moments(weight: torch.Tensor, bias: torch.Tensor,
                states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact model moments ``E[x xᵀ]`` and ``E[x]`` by enumeration."""
    p = torch.softmax(-bm_energy(weight, bias, states), dim=0)
    return (states * p[:, None]).T @ states, p @ states


def _bm_sufficient(x: torch.Tensor) -> torch.Tensor:
    """The sufficient statistics (x_i x_j for i < j, then x_i) of every row."""
    i, j = torch.triu_indices(x.shape[1], x.shape[1], offset=1)
    return torch.cat([x[:, i] * x[:, j], x], dim=1)


def _bm_log_likelihood(weight: torch.Tensor, bias: torch.Tensor, data: torch.Tensor,
                       states: torch.Tensor) -> float:
    return float(-bm_energy(weight, bias, data).mean()
                 - torch.logsumexp(-bm_energy(weight, bias, states), dim=0))


def bm_maximum_likelihood(data: torch.Tensor, states: torch.Tensor) -> float:
    r"""The maximum of the exact mean log-likelihood of a fully visible Boltzmann machine.

    The log-likelihood of this exponential family, :math:`\theta^\top\bar T -
    \log\sum_s e^{\theta^\top T(s)}`, is concave; Newton's method with the exact covariance
    of the sufficient statistics (and step halving) reaches its maximum to machine
    precision in a few iterations.
    """
    t_all, t_data = _bm_sufficient(states), _bm_sufficient(data).mean(0)

    def objective(theta: torch.Tensor) -> float:
        return float(theta @ t_data - torch.logsumexp(t_all @ theta, dim=0))

    theta = torch.zeros(t_all.shape[1], dtype=_F64)
    best = objective(theta)
    for _ in range(100):
        p = torch.softmax(t_all @ theta, dim=0)
        mean = p @ t_all
        grad = t_data - mean
        if float(grad.abs().max()) < 1e-11:
            break
        cov = (t_all * p[:, None]).T @ t_all - torch.outer(mean, mean)
        step = torch.linalg.solve(cov + 1e-10 * torch.eye(len(mean), dtype=_F64), grad)
        for _ in range(30):
            value = objective(theta + step)
            if value >= best:
                theta, best = theta + step, value
                break
            step = step / 2
    return best


def _bm_result(got: object, weight: torch.Tensor, bias: torch.Tensor, *,
               what: str) -> tuple[torch.Tensor, torch.Tensor]:
    hint = "return (weight, bias): the new parameters, shapes (d, d) and (d,)."
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        fail(what, expected="a pair (weight, bias)", got=f"a {type(got).__name__}", hint=hint)
    w = expect_tensor(got[0], what=f"{what}, new weight", shape=weight.shape, hint=hint)
    b = expect_tensor(got[1], what=f"{what}, new bias", shape=bias.shape, hint=hint)
    return w.detach().to("cpu", _F64), b.detach().to("cpu", _F64)


def _symmetric(d: int, g: torch.Generator, scale: float) -> torch.Tensor:
    w = scale * torch.randn(d, d, dtype=_F64, generator=g)
    w = 0.5 * (w + w.T)
    return w.fill_diagonal_(0.0)


def _expect_bm_step(bm_mle_step: Callable[..., object], weight: torch.Tensor,
                    bias: torch.Tensor, x: torch.Tensor, lr: float, *, what: str,
                    hint: str = _BM_HOW) -> None:
    new_w, new_b = _bm_result(bm_mle_step(weight, bias, x, lr), weight, bias, what=what)
    model_w, model_b = _bm_moments(weight, bias, all_binary_states(x.shape[1]))
    grad_w = x.T @ x / len(x) - model_w
    grad_w.fill_diagonal_(0.0)
    grad_b = x.mean(0) - model_b
    expected_w, expected_b = weight + lr * grad_w, bias + lr * grad_b
    diagnosis = hint
    for candidate_w, message in (
            (weight + 0.5 * lr * grad_w,
             "your weight moves by half the step: W_ij and W_ji are ONE parameter (the "
             "matrix stays symmetric), and -∂E/∂W_ij = x_i x_j once the pair is counted "
             "once (the written exercise above)."),
            (weight - lr * grad_w,
             "your step goes the wrong way: ASCENT on the log-likelihood adds lr × (data "
             "statistics - model statistics)."),
            (weight + lr * (x.T @ x / len(x) - model_w),
             "the diagonal of W is not a parameter (x_i² = x_i is already the bias's job): "
             "keep it at zero.")):
        if torch.allclose(new_w, candidate_w, atol=1e-9) and not torch.allclose(
                candidate_w, expected_w, atol=1e-9):
            diagnosis = message
            break
    expect_close(new_w, expected_w, atol=1e-9, rtol=1e-8, what=f"{what}, new weight",
                 hint=diagnosis)
    expect_close(new_b, expected_b, atol=1e-9, rtol=1e-8, what=f"{what}, new bias",
                 hint=diagnosis)


@train_ex.check("one step adds lr × (data statistics - exact model statistics); W stays "
                "symmetric with a zero diagonal", points=4)
def _bm_one_step(bm_mle_step: Student, ctx: CheckContext) -> None:
    g = ctx.generator(40)
    weight, bias = _symmetric(6, g, 0.7), 0.5 * torch.randn(6, dtype=_F64, generator=g)
    x = _random_bits(25, 6, g, p=0.4)
    _expect_bm_step(bm_mle_step, weight, bias, x, 0.7,
                    what="bm_mle_step(W, b, x, 0.7) on 6 units")


@train_ex.check("stable for parameters of size 400 (energies of thousands)", points=2)
def _bm_stable(bm_mle_step: Student, ctx: CheckContext) -> None:
    g = ctx.generator(41)
    weight, bias = _symmetric(7, g, 400.0), 400.0 * torch.randn(7, dtype=_F64, generator=g)
    x = _random_bits(10, 7, g)
    _expect_bm_step(bm_mle_step, weight, bias, x, 0.01,
                    what="bm_mle_step(W, b, x, 0.01) with parameters of size 400",
                    hint="exp(-E) over- or underflows here: normalise the probabilities "
                         "in log space (torch.softmax(-E, dim=0), or subtract "
                         "torch.logsumexp). " + _BM_HOW)


def _bm_data(ctx: CheckContext) -> tuple[torch.Tensor, torch.Tensor]:
    """Data sampled exactly from a seeded teacher machine, and every state."""
    states = all_binary_states(BM_UNITS)
    g = _fixed_generator(42)
    teacher_w = _symmetric(BM_UNITS, g, 1.0)
    teacher_b = 0.5 * torch.randn(BM_UNITS, dtype=_F64, generator=g) - 0.5
    p = torch.softmax(-bm_energy(teacher_w, teacher_b, states), dim=0)
    rows = torch.multinomial(p, BM_ROWS, replacement=True, generator=ctx.generator(43))
    return states[rows], states


def _fixed_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _expect_bm_band(bm_mle_step: Callable[..., object], ctx: CheckContext, band: float
                    ) -> None:
    data, states = _bm_data(ctx)
    best = bm_maximum_likelihood(data, states)
    weight = torch.zeros(BM_UNITS, BM_UNITS, dtype=_F64)
    bias = torch.zeros(BM_UNITS, dtype=_F64)
    g = ctx.generator(44)
    curve = []
    for step in range(BM_STEPS):
        rows = torch.randint(BM_ROWS, (BM_BATCH,), generator=g)
        lr = BM_LR * (1 - step / BM_STEPS)
        weight, bias = _bm_result(bm_mle_step(weight, bias, data[rows], lr), weight, bias,
                                  what=f"bm_mle_step at training step {step + 1}")
        if (step + 1) % _BM_EVERY == 0:
            curve.append((step + 1, _bm_log_likelihood(weight, bias, data, states)))
            if not math.isfinite(curve[-1][1]):
                break
    gap = best - curve[-1][1]
    if not (math.isfinite(gap) and gap <= band):
        shown = ", ".join(f"{s}: {v:.4f}" for s, v in curve)
        fail(f"the gap between the maximum likelihood ({best:.4f} nats per row, Newton's "
             f"method) and the exact mean log-likelihood after {BM_STEPS} steps of your "
             f"training (minibatches of {BM_BATCH}, lr {BM_LR:g} decaying to 0)",
             expected=f"at most {band:g} nats",
             got=f"{gap:.4f}; learning curve (step: log-likelihood) {shown}",
             hint="a curve that falls points to the sign of the step, one that stalls to "
                  "its size or to the model statistics. " + _BM_HOW)


@train_ex.check(f"trained on minibatches, ends within {BM_BANDS[0]:g} nats of the maximum "
                "likelihood", points=3, timeout=60)
def _bm_band_low(bm_mle_step: Student, ctx: CheckContext) -> None:
    _expect_bm_band(bm_mle_step, ctx, BM_BANDS[0])


@train_ex.check(f"... and within {BM_BANDS[1]:g} nats", points=3, timeout=60)
def _bm_band_high(bm_mle_step: Student, ctx: CheckContext) -> None:
    _expect_bm_band(bm_mle_step, ctx, BM_BANDS[1])
