"""Tests of ebmlab.objectives against independent references.

References: brute-force enumeration of every state in the test (MLE gradient),
central finite differences of the exact log-likelihood, per-sample autograd
(contrastive gradient), dense Hessians from ``torch.autograd.functional.hessian``
and closed forms for Gaussian energies (score matching), the known minimisers of
score matching (sample mean and inverse sample covariance) and of denoising score
matching (:math:`(\\Sigma + \\sigma^2 I)^{-1}`), Vincent's identity with the
closed-form smoothed score, and closed-form expectations of the NCSN loss. Monte-Carlo
comparisons use 5 standard errors, estimated from the samples.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from ebmlab import objectives as obj
from ebmlab.energies import RBM, BoltzmannMachine, Energy, Gaussian, Ising, MLPEnergy
from ebmlab.objectives import score_matching as obj_sm  # module of the Hessian-trace knobs

DT = torch.float64


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class LearnableGaussian(Energy):
    r"""E(x) = ½ (x-μ)ᵀ P (x-μ), P = L Lᵀ, with learnable μ and L (lower triangular)."""

    def __init__(self, d: int, mean: torch.Tensor | None = None,
                 factor: torch.Tensor | None = None):
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(d, dtype=DT) if mean is None else mean.clone())
        self.factor = nn.Parameter(torch.eye(d, dtype=DT) if factor is None else factor.clone())
        self.event_shape = (d,)

    def precision(self) -> torch.Tensor:
        lower = torch.tril(self.factor)
        return lower @ lower.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        diff = x - self.mu
        return 0.5 * ((diff @ self.precision()) * diff).sum(1)


def _random_gaussian(d: int, seed: int) -> LearnableGaussian:
    g = _g(seed)
    mean = torch.randn(d, generator=g, dtype=DT)
    factor = torch.eye(d, dtype=DT) + 0.3 * torch.randn(d, d, generator=g, dtype=DT).tril()
    return LearnableGaussian(d, mean, factor)


def _correlated_data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mean = torch.tensor([1.0, -2.0], dtype=DT)
    cov = torch.tensor([[1.5, 0.6], [0.6, 0.8]], dtype=DT)
    x = mean + torch.randn(n, 2, generator=_g(seed), dtype=DT) @ torch.linalg.cholesky(cov).T
    return x, mean, cov


def _fit(model: nn.Module, loss_fn, max_iter: int = 200) -> None:
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=max_iter,
                            tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    opt.step(closure)


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def _flat_grad(loss: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                      for g, p in zip(grads, params, strict=True)])


# ---------------------------------------------------------------------------- exact NLL


def _small_rbm() -> RBM:
    rbm = RBM(5, 3, weight_std=0.8, generator=_g(1)).double()
    with torch.no_grad():
        rbm.visible_bias.copy_(torch.randn(5, generator=_g(2), dtype=DT) * 0.5)
        rbm.hidden_bias.copy_(torch.randn(3, generator=_g(3), dtype=DT) * 0.5)
    return rbm


def _small_bm() -> BoltzmannMachine:
    w = torch.randn(5, 5, generator=_g(4), dtype=DT) * 0.7
    w = (w + w.T) / 2
    w.fill_diagonal_(0.0)
    return BoltzmannMachine(w, torch.randn(5, generator=_g(5), dtype=DT) * 0.5)


def _all_binary(d: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product((0.0, 1.0), repeat=d)), dtype=DT)


def _brute_log_likelihood(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    states = _all_binary(x.shape[1])
    return (-model(x)).mean() - torch.logsumexp(-model(states), 0)


@pytest.mark.parametrize("make", [_small_rbm, _small_bm], ids=["rbm", "boltzmann"])
def test_exact_nll_gradient_is_data_minus_model_expectation(make):
    model = make()
    params = _params(model)
    x = torch.bernoulli(torch.full((7, 5), 0.4, dtype=DT), generator=_g(6))
    grad = _flat_grad(obj.exact_nll(model, x), params)
    # reference: E_data[grad E] - E_p[grad E], every state's gradient by autograd
    states = _all_binary(5)
    with torch.no_grad():
        p = torch.softmax(-model(states), 0)
    per_state = torch.stack([_flat_grad(model(s[None]).sum(), params) for s in states])
    per_data = torch.stack([_flat_grad(model(v[None]).sum(), params) for v in x])
    ref = per_data.mean(0) - (p[:, None] * per_state).sum(0)
    torch.testing.assert_close(grad, ref, rtol=1e-9, atol=1e-11)


def test_exact_nll_matches_finite_differences_of_the_log_likelihood():
    model = _small_rbm()
    params = _params(model)
    x = torch.bernoulli(torch.full((9, 5), 0.5, dtype=DT), generator=_g(7))
    loss = obj.exact_nll(model, x)
    with torch.no_grad():
        torch.testing.assert_close(loss, -_brute_log_likelihood(model, x), rtol=1e-12, atol=1e-12)
    grad = _flat_grad(loss, params)
    h = 1e-6
    fd = []
    with torch.no_grad():
        for prm in params:
            flat = prm.view(-1)
            for i in range(flat.numel()):
                old = float(flat[i])
                flat[i] = old + h
                up = _brute_log_likelihood(model, x)
                flat[i] = old - h
                down = _brute_log_likelihood(model, x)
                flat[i] = old
                fd.append(-(up - down) / (2 * h))
    torch.testing.assert_close(grad, torch.stack(fd), rtol=1e-6, atol=1e-8)


def test_exact_nll_uses_closed_form_or_given_log_partition():
    mean = torch.tensor([0.5, -1.0], dtype=DT)
    cov = torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=DT)
    gauss = Gaussian(mean, cov)
    x = torch.randn(6, 2, generator=_g(), dtype=DT)
    ref = -torch.distributions.MultivariateNormal(mean, cov).log_prob(x).mean()
    torch.testing.assert_close(obj.exact_nll(gauss, x), ref)
    log_z = gauss.log_partition()
    energy = lambda y: gauss(y)  # a plain callable, no log_partition attribute  # noqa: E731
    torch.testing.assert_close(obj.exact_nll(energy, x, log_partition=log_z), ref)
    torch.testing.assert_close(obj.exact_nll(energy, x, log_partition=float(log_z)), ref)
    torch.testing.assert_close(obj.exact_nll(gauss, x, log_partition=lambda m: m.log_partition()),
                               ref)


def test_exact_nll_errors():
    rbm = _small_rbm()
    with pytest.raises(TypeError, match="floating-point"):
        obj.exact_nll(rbm, torch.ones(3, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match="expects"):
        obj.exact_nll(rbm, torch.ones(3, 4, dtype=DT))
    with pytest.raises(ValueError, match="only the values 0 and 1"):
        obj.exact_nll(rbm, torch.full((3, 5), 0.5, dtype=DT))
    with pytest.raises(ValueError, match="non-finite"):
        obj.exact_nll(rbm, torch.full((3, 5), float("nan"), dtype=DT))
    with pytest.raises(ValueError, match=r"log Z .* is unknown"):
        obj.exact_nll(MLPEnergy(2, hidden=(4,)), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="log_partition is not finite"):
        obj.exact_nll(lambda y: y.sum(1), torch.zeros(3, 2), log_partition=float("inf"))


# ---------------------------------------------------------------------------- contrastive


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_contrastive_gradient_is_difference_of_mean_parameter_gradients(alpha):
    torch.manual_seed(0)
    energy = MLPEnergy(2, hidden=(8,)).double()
    params = _params(energy)
    x_pos = torch.randn(6, 2, generator=_g(1), dtype=DT)
    x_neg = torch.randn(4, 2, generator=_g(2), dtype=DT).requires_grad_(True)
    loss = obj.contrastive_loss(energy, x_pos, x_neg, alpha=alpha)
    grad = _flat_grad(loss, [*params, x_neg])
    ref_pos = torch.stack([(1 + 2 * alpha * energy(v[None]).detach()) *
                           _flat_grad(energy(v[None]).sum(), params) for v in x_pos])
    ref_neg = torch.stack([(-1 + 2 * alpha * energy(v[None]).detach()) *
                           _flat_grad(energy(v[None]).sum(), params) for v in x_neg.detach()])
    n_params = ref_pos.shape[1]
    torch.testing.assert_close(grad[:n_params], ref_pos.mean(0) + ref_neg.mean(0))
    assert float(grad[n_params:].abs().max()) == 0.0  # no gradient through the samples
    with torch.no_grad():
        e_pos, e_neg = energy(x_pos), energy(x_neg)
        value = e_pos.mean() - e_neg.mean() + alpha * (e_pos.square().mean()
                                                       + e_neg.square().mean())
    torch.testing.assert_close(loss.detach(), value)


def test_contrastive_errors():
    e = MLPEnergy(2, hidden=(4,))
    with pytest.raises(ValueError, match="same event shape"):
        obj.contrastive_loss(lambda y: y.flatten(1).sum(1), torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        obj.contrastive_loss(e, torch.zeros(3, 2), torch.zeros(3, 2), alpha=-1.0)
    with pytest.raises(ValueError, match="x_model contains 1 non-finite"):
        obj.contrastive_loss(e, torch.zeros(3, 2), torch.tensor([[0.0, float("inf")]]))
    with pytest.raises(TypeError, match="x_data must be a floating-point"):
        obj.contrastive_loss(e, torch.zeros(3, 2, dtype=torch.int32), torch.zeros(3, 2))


def _rbm_free_energy_by_enumeration(rbm: RBM, v: torch.Tensor) -> torch.Tensor:
    """F(v) = -log sum_h exp(-E(v, h)), summing the joint energy over every h (differentiable)."""
    hs = _all_binary(rbm.n_hidden)
    e = rbm.joint_energy(v.repeat_interleave(len(hs), 0), hs.repeat(len(v), 1))
    return -torch.logsumexp(-e.reshape(len(v), len(hs)), dim=1)


def test_contrastive_loss_on_an_rbm_has_the_enumerated_gradient():
    rbm = _small_rbm()
    params = _params(rbm)
    x_pos = torch.bernoulli(torch.full((6, 5), 0.4, dtype=DT), generator=_g(7))
    x_neg = torch.bernoulli(torch.full((4, 5), 0.6, dtype=DT), generator=_g(8))

    def reference():
        return (_rbm_free_energy_by_enumeration(rbm, x_pos).mean()
                - _rbm_free_energy_by_enumeration(rbm, x_neg).mean())

    loss = obj.contrastive_loss(rbm, x_pos, x_neg)
    torch.testing.assert_close(loss.detach(), reference().detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(_flat_grad(loss, params), _flat_grad(reference(), params),
                               rtol=1e-10, atol=1e-12)
    # second derivatives (create_graph=True) match those of the reference
    (g,) = torch.autograd.grad(obj.contrastive_loss(rbm, x_pos, x_neg), [rbm.hidden_bias],
                               create_graph=True)
    (ref_g,) = torch.autograd.grad(reference(), [rbm.hidden_bias], create_graph=True)
    torch.testing.assert_close(g, ref_g)
    torch.testing.assert_close(torch.autograd.grad(g.square().sum(), rbm.weight)[0],
                               torch.autograd.grad(ref_g.square().sum(), rbm.weight)[0])


def test_contrastive_loss_on_an_rbm_composes_with_autograd():
    rbm = _small_rbm()
    params = _params(rbm)
    x_pos = torch.bernoulli(torch.full((6, 5), 0.4, dtype=DT), generator=_g(9))
    x_neg = torch.bernoulli(torch.full((4, 5), 0.6, dtype=DT), generator=_g(10))
    # alpha > 0: the regulariser's gradient by autograd
    e_pos = _rbm_free_energy_by_enumeration(rbm, x_pos)
    e_neg = _rbm_free_energy_by_enumeration(rbm, x_neg)
    ref = e_pos.mean() - e_neg.mean() + 0.2 * (e_pos.square().mean() + e_neg.square().mean())
    loss = obj.contrastive_loss(rbm, x_pos, x_neg, alpha=0.2)
    torch.testing.assert_close(_flat_grad(loss, params), _flat_grad(ref, params))
    # data that requires grad: the gradient in x flows as before
    x = x_pos.clone().requires_grad_(True)
    (gx,) = torch.autograd.grad(obj.contrastive_loss(rbm, x, x_neg), x)
    (ref_gx,) = torch.autograd.grad(_rbm_free_energy_by_enumeration(rbm, x).mean(), x)
    torch.testing.assert_close(gx, ref_gx)

    # a subclass that redefines forward is differentiated through its own forward
    class Tempered(RBM):
        def forward(self, v):
            return 2.0 * super().forward(v)

    hot = Tempered(5, 3, weight_std=0.8, generator=_g(1)).double()
    hot.load_state_dict(rbm.state_dict())
    loss = obj.contrastive_loss(hot, x_pos, x_neg)
    ref_cd = _flat_grad(_rbm_free_energy_by_enumeration(rbm, x_pos).mean()
                        - _rbm_free_energy_by_enumeration(rbm, x_neg).mean(), params)
    torch.testing.assert_close(_flat_grad(loss, _params(hot)), 2 * ref_cd)

    # torch.func transforms compose with the autograd route
    class Loss(nn.Module):
        def __init__(self):
            super().__init__()
            self.rbm = rbm

        def forward(self, x_pos, x_neg):
            return obj.contrastive_loss(self.rbm, x_pos, x_neg)

    names = [f"rbm.{name}" for name, _ in rbm.named_parameters()]
    grads = torch.func.grad(lambda p: torch.func.functional_call(Loss(), p, (x_pos, x_neg)))(
        {n: p.detach() for n, p in zip(names, params, strict=True)})
    torch.testing.assert_close(torch.cat([grads[n].reshape(-1) for n in names]), ref_cd)


def test_contrastive_validate_false_skips_the_checks_only():
    energy = MLPEnergy(2, hidden=(8,)).double()
    x_pos = torch.randn(6, 2, generator=_g(1), dtype=DT)
    x_neg = torch.randn(4, 2, generator=_g(2), dtype=DT)
    checked = obj.contrastive_loss(energy, x_pos, x_neg, alpha=0.1)
    unchecked = obj.contrastive_loss(energy, x_pos, x_neg, alpha=0.1, validate=False)
    torch.testing.assert_close(unchecked, checked)
    torch.testing.assert_close(_flat_grad(unchecked, _params(energy)),
                               _flat_grad(checked, _params(energy)))
    bad = x_neg.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="x_model contains 1 non-finite"):
        obj.contrastive_loss(energy, x_pos, bad)
    assert math.isnan(float(obj.contrastive_loss(energy, x_pos, bad, validate=False).detach()))


# ---------------------------------------------------------------------------- score matching


def _reference_sm(energy, x: torch.Tensor) -> torch.Tensor:
    """Mean of -tr(Hess E) + ½|grad E|², dense Hessians per sample (differentiable)."""
    terms = []
    for xi in x:
        f = lambda y: energy(y[None]).sum()  # noqa: E731
        hess = torch.autograd.functional.hessian(f, xi, create_graph=True)
        g = torch.autograd.functional.jacobian(f, xi, create_graph=True)
        terms.append(-torch.diagonal(hess).sum() + 0.5 * g.square().sum())
    return torch.stack(terms).mean()


def test_score_matching_closed_form_for_a_gaussian_energy():
    model = _random_gaussian(3, seed=1)
    x = torch.randn(50, 3, generator=_g(2), dtype=DT)
    with torch.no_grad():
        prec = model.precision()
        ref = -torch.trace(prec) + 0.5 * ((x - model.mu) @ prec).square().sum(1).mean()
    torch.testing.assert_close(obj.score_matching_loss(model, x).detach(), ref)


@pytest.mark.parametrize("batched", [False, True], ids=["loop", "batched"])
def test_score_matching_exact_trace_and_gradient_match_dense_hessians(monkeypatch, batched):
    monkeypatch.setattr(obj_sm, "_BATCHED_TRACE_ON_CPU", batched)
    torch.manual_seed(0)
    energy = MLPEnergy(3, hidden=(16, 16), activation="softplus").double()
    params = _params(energy)
    x = torch.randn(10, 3, generator=_g(3), dtype=DT)
    ref = _reference_sm(energy, x)
    ref_grad = _flat_grad(ref, params)
    original = torch.autograd.grad
    calls = {"batched": 0}

    def counting_grad(*args, **kwargs):
        calls["batched"] += bool(kwargs.get("is_grads_batched"))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counting_grad)
    loss = obj.score_matching_loss(energy, x)
    assert calls["batched"] == (1 if batched else 0)  # the knob picks the path; one block of 3
    torch.testing.assert_close(loss, ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(_flat_grad(loss, params), ref_grad, rtol=1e-9, atol=1e-11)
    # several Hessian-row blocks (one basis vector per block) give the same value
    monkeypatch.setattr(obj_sm, "_TRACE_BLOCK_ELEMENTS", 10 * 3)
    calls["batched"] = 0
    torch.testing.assert_close(obj.score_matching_loss(energy, x), ref, rtol=1e-10, atol=1e-12)
    assert calls["batched"] == (3 if batched else 0)


def test_score_matching_batched_trace_falls_back_to_the_loop(monkeypatch):
    torch.manual_seed(1)
    energy = MLPEnergy(3, hidden=(8,)).double()
    x = torch.randn(6, 3, generator=_g(4), dtype=DT)
    ref = obj.score_matching_loss(energy, x)
    original = torch.autograd.grad
    calls = {"batched": 0}

    def no_batched_grad(*args, **kwargs):
        if kwargs.get("is_grads_batched"):
            calls["batched"] += 1
            raise RuntimeError("no batching rule")
        return original(*args, **kwargs)

    monkeypatch.setattr(obj_sm, "_BATCHED_TRACE_ON_CPU", True)
    monkeypatch.setattr(torch.autograd, "grad", no_batched_grad)
    loss = obj.score_matching_loss(energy, x)
    assert calls["batched"] == 1
    torch.testing.assert_close(loss, ref, rtol=1e-12, atol=1e-12)


def test_score_matching_recovers_sample_mean_and_inverse_sample_covariance():
    x, _, _ = _correlated_data(500)
    model = LearnableGaussian(2)
    _fit(model, lambda: obj.score_matching_loss(model, x))
    xbar = x.mean(0)
    cov = (x - xbar).T @ (x - xbar) / x.shape[0]  # the MLE (1/n) covariance
    torch.testing.assert_close(model.mu.detach(), xbar, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(model.precision().detach(), torch.linalg.inv(cov),
                               rtol=1e-6, atol=1e-6)


def test_score_matching_handles_image_shaped_inputs():
    energy = lambda y: 0.5 * y.flatten(1).square().sum(1)  # noqa: E731
    x = torch.randn(4, 1, 2, 3, generator=_g(), dtype=DT)
    # -tr(I_6) + ½|x|²
    ref = -6.0 + 0.5 * x.flatten(1).square().sum(1).mean()
    torch.testing.assert_close(obj.score_matching_loss(energy, x), ref)


# ---------------------------------------------------------------------------- sliced SM


@pytest.mark.parametrize("distribution", ["gaussian", "rademacher"])
def test_sliced_score_matching_is_unbiased_and_vr_has_lower_variance(distribution):
    torch.manual_seed(2)
    mlp = MLPEnergy(3, hidden=(16,), activation="tanh").double()
    # a non-quadratic energy whose score is large away from the mode (as early in training),
    # the regime where replacing ½(vᵀs)² by its mean ½|s|² reduces the variance
    energy = lambda y: mlp(y) + 0.5 * y.square().sum(1)  # noqa: E731
    x = 2 * torch.randn(8, 3, generator=_g(5), dtype=DT)
    exact = float(obj.score_matching_loss(energy, x).detach())
    g = _g(6)
    variances = {}
    for vr in (True, False):
        vals = torch.stack([
            obj.sliced_score_matching_loss(energy, x, 1, vr, distribution=distribution,
                                           generator=g).detach()
            for _ in range(300)
        ])
        se = float(vals.std()) / math.sqrt(len(vals))
        assert abs(float(vals.mean()) - exact) < 5 * se, (vr, float(vals.mean()), exact, se)
        variances[vr] = float(vals.var())
        # many projections in one call average out to the exact objective
        many = obj.sliced_score_matching_loss(energy, x, 400, vr, distribution=distribution,
                                              generator=g).detach()
        assert abs(float(many) - exact) < 5 * float(vals.std()) / math.sqrt(400)
    assert variances[True] < 0.5 * variances[False], variances


def test_sliced_score_matching_gaussian_energy_closed_form_expectation():
    # for E = ½ (x-μ)ᵀP(x-μ): vᵀ∇s v = -vᵀPv, so SSM-VR over many projections → SM exactly
    model = _random_gaussian(4, seed=7)
    x = torch.randn(20, 4, generator=_g(8), dtype=DT)
    exact = obj.score_matching_loss(model, x).detach()
    vals = torch.stack([obj.sliced_score_matching_loss(model, x, 20, generator=_g(s)).detach()
                        for s in range(30)])
    se = vals.std() / math.sqrt(len(vals))
    assert abs(float(vals.mean() - exact)) < 5 * float(se)


def test_sliced_score_matching_errors():
    e = MLPEnergy(2, hidden=(4,))
    with pytest.raises(ValueError, match="n_projections must be an int >= 1"):
        obj.sliced_score_matching_loss(e, torch.zeros(3, 2), 0)
    with pytest.raises(ValueError, match="distribution must be"):
        obj.sliced_score_matching_loss(e, torch.zeros(3, 2), distribution="uniform")


# ---------------------------------------------------------------------------- denoising SM


def test_dsm_finds_the_precision_of_the_noised_data():
    x, _, _ = _correlated_data(10000, seed=1)
    sigma = 0.5
    model = LearnableGaussian(2)
    # the same noise at every evaluation: a deterministic objective for LBFGS
    _fit(model, lambda: obj.denoising_score_matching_loss(model, x, sigma, generator=_g(9)))
    xbar = x.mean(0)
    cov = (x - xbar).T @ (x - xbar) / x.shape[0]
    target = torch.linalg.inv(cov + sigma**2 * torch.eye(2, dtype=DT))
    prec = model.precision().detach()
    # sampling error of a 10000-point least-squares fit is ~1.5%; allow 5%
    assert float((prec - target).norm() / target.norm()) < 0.05, (prec, target)
    assert float((model.mu.detach() - xbar).norm()) < 0.05
    # and not the precision of the clean data
    assert float((prec - torch.linalg.inv(cov)).norm() / target.norm()) > 0.2


def test_dsm_minus_explicit_sm_on_the_noised_density_is_constant():
    """Vincent (2011): DSM(θ) = ESM_{q_σ}(θ) + C, with q_σ = N(m, Σ + σ²I) in closed form."""
    n, sigma = 100_000, 0.7
    x, mean, cov = _correlated_data(n, seed=2)
    prec_q = torch.linalg.inv(cov + sigma**2 * torch.eye(2, dtype=DT))
    eps = torch.randn(x.shape, generator=_g(10), dtype=DT)  # the draw DSM makes from _g(10)
    x_t = x + sigma * eps
    s_q = -(x_t - mean) @ prec_q
    models = [LearnableGaussian(2)] + [_random_gaussian(2, seed=s) for s in (11, 12, 13)]
    dsm, diffs, scores = [], [], []
    for m in models:
        with torch.no_grad():
            s = -(x_t - m.mu) @ m.precision()
        d = obj.denoising_score_matching_loss(m, x, sigma, generator=_g(10)).detach()
        dsm.append(d)
        torch.testing.assert_close(d, 0.5 * (s + eps / sigma).square().sum(1).mean())
        esm = 0.5 * (s - s_q).square().sum(1).mean()
        diffs.append(d - esm)
        scores.append(s)
    # diff(θ) - diff(θ0) = mean[(s_θ - s_θ0)·(ε/σ + s_q)], zero in expectation
    for s, d in zip(scores[1:], diffs[1:], strict=True):
        per = ((s - scores[0]) * (eps / sigma + s_q)).sum(1)
        se = float(per.std()) / math.sqrt(n)
        assert abs(float(d - diffs[0])) < 5 * se
        assert abs(float(per.mean()) - float(d - diffs[0])) < 1e-9
    # ... while the DSM values themselves move far more than that
    assert float(torch.stack(dsm).max() - torch.stack(dsm).min()) > 0.5
    # the constant is E[½|ε/σ|²] - E[½|s_q|²] = d/(2σ²) - ½ tr(Σ_q⁻¹)
    const = 2 / (2 * sigma**2) - 0.5 * float(torch.trace(prec_q))
    per0 = 0.5 * (eps / sigma).square().sum(1) - 0.5 * s_q.square().sum(1) \
        + (scores[0] * (eps / sigma + s_q)).sum(1)
    assert abs(float(diffs[0]) - const) < 5 * float(per0.std()) / math.sqrt(n)


def test_dsm_energy_and_score_network_agree_and_conditional_models_get_sigma():
    x = torch.randn(64, 3, generator=_g(), dtype=DT)
    energy = lambda y: 0.5 * y.square().sum(1)  # noqa: E731
    score = lambda y: -y  # noqa: E731
    a = obj.denoising_score_matching_loss(energy, x, 0.3, generator=_g(1))
    b = obj.denoising_score_matching_loss(score, x, 0.3, generator=_g(1))
    c = obj.denoising_score_matching_loss(score, x, torch.full((64,), 0.3, dtype=DT),
                                          generator=_g(1))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(b, c)
    seen = {}

    def cond_score(y, sigma):
        seen["sigma"] = sigma
        return -y / (1 + sigma[:, None] ** 2)

    d = obj.denoising_score_matching_loss(cond_score, x, 0.3, generator=_g(1))
    assert seen["sigma"].shape == (64,)
    assert torch.allclose(seen["sigma"], torch.tensor(0.3, dtype=DT))
    ref = obj.denoising_score_matching_loss(lambda y: -y / 1.09, x, 0.3, generator=_g(1))
    torch.testing.assert_close(d, ref)
    with pytest.raises(ValueError, match="score network"):
        obj.denoising_score_matching_loss(energy, x, 0.3, model_type="score")
    with pytest.raises(ValueError, match="an energy"):
        obj.denoising_score_matching_loss(score, x, 0.3, model_type="energy")
    with pytest.raises(ValueError, match="model_type must be"):
        obj.denoising_score_matching_loss(score, x, 0.3, model_type="density")
    with pytest.raises(ValueError, match="expected"):
        obj.denoising_score_matching_loss(lambda y: y[:, :2], x, 0.3)


def test_dsm_gradient_flows_to_energy_parameters():
    torch.manual_seed(0)
    energy = MLPEnergy(2, hidden=(8,))
    loss = obj.denoising_score_matching_loss(energy, torch.randn(16, 2), 0.1, generator=_g())
    loss.backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in energy.parameters()
               if p.dim() == 2)


# ---------------------------------------------------------------------------- multiscale DSM


def test_multiscale_dsm_weighting_matches_closed_form_expectation():
    r"""Data N(0, s0² I), score model = exact score of q_σ: E[loss] = mean_i ½ d s0²/(s0² + σ_i²).

    With λ(σ) = σ² each level contributes ½ d s0²/(s0²+σ²); other weightings would not.
    """
    s0, d = 1.5, 2
    sigmas = torch.tensor([5.0, 1.0, 0.2], dtype=DT)
    seen = []

    def exact_score(y, sigma):
        seen.append(sigma)
        return -y / (s0**2 + sigma[:, None] ** 2)

    g = _g(3)
    vals = []
    for _ in range(20):
        x = s0 * torch.randn(5000, d, generator=g, dtype=DT)
        vals.append(obj.multiscale_dsm_loss(exact_score, x, sigmas, generator=g).detach())
    vals_t = torch.stack(vals)
    expected = float((0.5 * d * s0**2 / (s0**2 + sigmas**2)).mean())
    se = float(vals_t.std()) / math.sqrt(len(vals))
    assert abs(float(vals_t.mean()) - expected) < 5 * se, (float(vals_t.mean()), expected, se)
    # unweighted DSM would average ½ d s0²/(σ²(s0²+σ²)): far off
    unweighted = float((0.5 * d * s0**2 / (sigmas**2 * (s0**2 + sigmas**2))).mean())
    assert abs(unweighted - expected) > 100 * se
    # each example gets one level from the ladder, chosen uniformly
    levels = torch.cat(seen)
    assert levels.shape == (20 * 5000,)
    for s in sigmas:
        frac = float((levels == s).double().mean())
        assert abs(frac - 1 / 3) < 5 * math.sqrt(2 / 9 / levels.numel())


def test_multiscale_dsm_trains_noise_conditional_energies_and_nets():
    from ebmlab.energies import NoiseConditionalEnergy, NoiseConditionalScoreNet

    torch.manual_seed(0)
    x = torch.randn(32, 2)
    for net in (NoiseConditionalScoreNet(2, hidden=(8,)), NoiseConditionalEnergy(2, hidden=(8,))):
        loss = obj.multiscale_dsm_loss(net, x, [1.0, 0.5, 0.1], generator=_g())
        assert loss.shape == () and bool(torch.isfinite(loss))
        loss.backward()
        assert sum(float(p.grad.abs().sum()) for p in net.parameters() if p.grad is not None) > 0


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize("model, x", [
    (RBM(4, 2), torch.zeros(3, 4)),
    (BoltzmannMachine(torch.zeros(3, 3), torch.zeros(3)), torch.zeros(3, 3)),
    (Ising(3), torch.ones(2, 3, 3)),
])
def test_score_matching_on_discrete_models_is_refused(model, x):
    msg = "needs continuous data.*contrastive divergence"
    with pytest.raises(ValueError, match=msg):
        obj.score_matching_loss(model, x)
    with pytest.raises(ValueError, match=msg):
        obj.sliced_score_matching_loss(model, x)
    with pytest.raises(ValueError, match=msg):
        obj.denoising_score_matching_loss(model, x, 0.1)
    with pytest.raises(ValueError, match=msg):
        obj.multiscale_dsm_loss(model, x, [1.0, 0.1])


def test_score_based_objectives_validate_data_and_noise_levels():
    e = MLPEnergy(2, hidden=(4,))
    x = torch.zeros(4, 2)
    for fn in (obj.score_matching_loss, obj.sliced_score_matching_loss):
        with pytest.raises(TypeError, match="floating-point"):
            fn(e, torch.zeros(4, 2, dtype=torch.int64))
        with pytest.raises(ValueError, match="non-finite"):
            fn(e, torch.tensor([[0.0, float("nan")]]))
        with pytest.raises(ValueError, match="expects"):
            fn(e, torch.zeros(4, 3))
        with pytest.raises(ValueError, match="event dimension"):
            fn(lambda y: y, torch.zeros(4))
        with pytest.raises(TypeError, match=r"torch\.Tensor"):
            fn(e, [[0.0, 0.0]])
    with pytest.raises(ValueError, match="sigma must be > 0"):
        obj.denoising_score_matching_loss(e, x, 0.0)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        obj.denoising_score_matching_loss(e, x, -1.0)
    with pytest.raises(ValueError, match="sigma must be finite and > 0"):
        obj.denoising_score_matching_loss(e, x, torch.tensor([0.1, 0.1, 0.0, 0.1]))
    with pytest.raises(ValueError, match="shape \\(4,\\)"):
        obj.denoising_score_matching_loss(e, x, torch.ones(3))
    with pytest.raises(ValueError, match="sigmas must all be finite and > 0"):
        obj.multiscale_dsm_loss(lambda y, s: -y, x, [1.0, 0.0])
    with pytest.raises(ValueError, match="non-empty 1-d"):
        obj.multiscale_dsm_loss(lambda y, s: -y, x, [])
