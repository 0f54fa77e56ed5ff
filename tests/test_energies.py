"""Tests of ebmlab.energies against independent references.

References: torch.distributions (Gaussians), explicit mixture sums, Monte-Carlo
convolution, autograd (closed-form scores), brute-force enumeration (RBM, Ising,
Boltzmann machine), naive loops (Ising energy), grid quadrature (2D landscapes).
Every Monte-Carlo comparison uses a tolerance of 5 standard errors.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import MultivariateNormal, Normal

import ebmlab
from ebmlab.energies import (
    RBM,
    Banana,
    BoltzmannMachine,
    ConvEnergy,
    DoubleWell,
    Energy,
    EnergyFunction,
    Gaussian,
    GaussianMixture,
    Ising,
    MLPEnergy,
    NoiseConditionalEnergy,
    NoiseConditionalScoreNet,
    Ring,
    Wells,
    contrastive_divergence_gradient,
    score_of,
)

F64 = torch.float64
Z_TOL = 5.0  # Monte-Carlo tolerance in standard errors


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """The tensors here are tiny: intra-op threads only add contention on a shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_spd(d: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=gen(seed), dtype=F64)
    return a @ a.T + 0.5 * torch.eye(d, dtype=F64)


def autograd_score(energy, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(energy(x).sum(), x)
    return -g


def grid_log_integral(energy, bounds, n: int) -> torch.Tensor:
    """log of the midpoint-rule integral of exp(-E) over a 2D box, in float64."""
    (x0, x1), (y0, y1) = bounds
    hx, hy = (x1 - x0) / n, (y1 - y0) / n
    xs = x0 + hx * (torch.arange(n, dtype=F64) + 0.5)
    ys = y0 + hy * (torch.arange(n, dtype=F64) + 0.5)
    gx, gy = torch.meshgrid(xs, ys, indexing="ij")
    pts = torch.stack((gx.reshape(-1), gy.reshape(-1)), dim=-1)
    return torch.logsumexp(-energy(pts), dim=0) + math.log(hx * hy)


def bits(n_units: int, dtype=F64) -> torch.Tensor:
    """All 2**n binary configurations, (2**n, n_units)."""
    idx = torch.arange(2**n_units).unsqueeze(-1)
    return ((idx >> torch.arange(n_units)) & 1).to(dtype)


def assert_within_se(estimate, se, exact, label=""):
    err = (estimate - exact).abs()
    bad = err > Z_TOL * se + 1e-12
    assert not bool(bad.any()), (
        f"{label}: {int(bad.sum())} value(s) off by more than {Z_TOL} standard errors, "
        f"worst |err| = {float(err[bad].max()):.4g} with se = {float(se[bad].max()):.4g}"
    )


# ----------------------------------------------------------------------------- Gaussian


def test_gaussian_matches_torch_multivariate_normal():
    cov = random_spd(3, 0)
    mean = torch.tensor([0.5, -1.0, 2.0], dtype=F64)
    g = Gaussian(mean, cov)
    x = torch.randn(50, 3, generator=gen(1), dtype=F64)
    ref = MultivariateNormal(mean, covariance_matrix=cov).log_prob(x)
    torch.testing.assert_close(g(x) + g.log_partition(), -ref)
    torch.testing.assert_close(g.log_prob(x), ref)
    torch.testing.assert_close(g.precision @ cov, torch.eye(3, dtype=F64))


def test_gaussian_diagonal_and_scalar_covariances():
    mean = torch.zeros(2, dtype=F64)
    x = torch.randn(10, 2, generator=gen(2), dtype=F64)
    full = Gaussian(mean, torch.diag(torch.tensor([2.0, 3.0], dtype=F64)))
    torch.testing.assert_close(Gaussian(mean, torch.tensor([2.0, 3.0], dtype=F64))(x), full(x))
    torch.testing.assert_close(Gaussian(mean, 2.0)(x), Gaussian(mean, 2.0 * torch.eye(2))(x))


def test_gaussian_samples_match_parameters():
    cov = random_spd(3, 3)
    mean = torch.tensor([1.0, 0.0, -2.0], dtype=F64)
    n = 20000
    x = Gaussian(mean, cov).sample(n, generator=gen(4))
    assert x.shape == (n, 3) and x.dtype == F64
    assert_within_se(x.mean(0), (cov.diagonal() / n).sqrt(), mean, "mean")
    var = cov.diagonal()
    se_cov = ((var.unsqueeze(0) * var.unsqueeze(1) + cov**2) / n).sqrt()
    assert_within_se(torch.cov(x.T), se_cov, cov, "covariance")


def test_gaussian_sampling_is_reproducible_with_generator():
    g = Gaussian(torch.zeros(2), torch.eye(2))
    torch.testing.assert_close(g.sample(5, generator=gen(7)), g.sample(5, generator=gen(7)))


def test_gaussian_follows_to_dtype():
    g = Gaussian(torch.zeros(2), torch.eye(2)).to(F64)
    assert g.mean.dtype == g.precision.dtype == F64
    assert g(torch.zeros(3, 2, dtype=F64)).dtype == F64
    assert g.sample(3).dtype == F64


def test_gaussian_rejects_bad_arguments():
    with pytest.raises(ValueError, match="symmetric"):
        Gaussian(torch.zeros(2), torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="positive definite"):
        Gaussian(torch.zeros(2), torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match=r"covariance must have shape \(3, 3\)"):
        Gaussian(torch.zeros(3), torch.eye(2))
    with pytest.raises(ValueError, match=r"mean must have shape \(d,\)"):
        Gaussian(torch.zeros(2, 2), torch.eye(2))
    with pytest.raises(ValueError, match="finite"):
        Gaussian(torch.tensor([0.0, float("nan")]), torch.eye(2))
    g = Gaussian(torch.zeros(3), torch.eye(3))
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        g(torch.zeros(4, 2))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        g([[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="n must be"):
        g.sample(0)


# ----------------------------------------------------------------------- Gaussian mixture


def make_mixture(dtype=F64) -> GaussianMixture:
    means = torch.tensor([[-2.0, 0.0], [1.5, 1.0], [0.0, -2.5]], dtype=dtype)
    return GaussianMixture(means, torch.tensor([0.6, 1.0, 0.4], dtype=dtype),
                           torch.tensor([0.5, 0.3, 0.2], dtype=dtype))


def explicit_mixture_log_prob(gm: GaussianMixture, x: torch.Tensor) -> torch.Tensor:
    dens = torch.zeros(x.shape[0], dtype=F64)
    for mu, sd, w in zip(gm.means, gm.stds, gm.weights, strict=True):
        comp = MultivariateNormal(mu, covariance_matrix=sd**2 * torch.eye(mu.numel(), dtype=F64))
        dens = dens + w * comp.log_prob(x).exp()
    return dens.log()


def test_mixture_log_prob_matches_explicit_sum():
    gm = make_mixture()
    x = 2.0 * torch.randn(40, 2, generator=gen(5), dtype=F64)
    torch.testing.assert_close(gm.log_prob(x), explicit_mixture_log_prob(gm, x))
    torch.testing.assert_close(gm(x), -gm.log_prob(x))
    assert float(gm.log_partition()) == 0.0
    assert float(grid_log_integral(gm, gm.bounds, 300).exp()) == pytest.approx(1.0, abs=1e-4)


def test_mixture_weights_are_normalised_and_default_uniform():
    gm = GaussianMixture([[0.0], [1.0]], 1.0, [2.0, 6.0])
    torch.testing.assert_close(gm.weights, torch.tensor([0.25, 0.75]))
    torch.testing.assert_close(GaussianMixture([[0.0], [1.0], [2.0]]).weights,
                               torch.full((3,), 1 / 3))


def test_mixture_smoothed_matches_monte_carlo_convolution():
    gm = make_mixture()
    sigma = 0.7
    smooth = gm.smoothed(sigma)
    torch.testing.assert_close(smooth.stds, (gm.stds**2 + sigma**2).sqrt())
    x = torch.tensor([[0.0, 0.0], [-2.0, 0.5], [1.0, 1.0], [3.0, -3.0]], dtype=F64)
    eps = torch.randn(100000, 2, generator=gen(6), dtype=F64)
    # q_sigma(x) = E_eps[p(x - sigma eps)]
    for xi, exact in zip(x, smooth.log_prob(x).exp(), strict=True):
        dens = gm.log_prob(xi - sigma * eps).exp()
        se = dens.std() / math.sqrt(dens.numel())
        assert_within_se(dens.mean(), se, exact, "smoothed density")
    torch.testing.assert_close(gm.smoothed(0.0).log_prob(x), gm.log_prob(x))


def test_mixture_samples_match_moments_and_weights():
    gm = make_mixture()
    n = 20000
    x, k = gm.sample(n, generator=gen(8), return_components=True)
    w = gm.weights
    freq = torch.bincount(k, minlength=3).to(F64) / n
    assert_within_se(freq, (w * (1 - w) / n).sqrt(), w, "component frequencies")
    mean = w @ gm.means
    second = sum(wk * (sk**2 * torch.eye(2, dtype=F64) + torch.outer(mk, mk))
                 for wk, sk, mk in zip(w, gm.stds, gm.means, strict=True))
    cov = second - torch.outer(mean, mean)
    assert_within_se(x.mean(0), (cov.diagonal() / n).sqrt(), mean, "mixture mean")
    # standard error of a sample variance: sqrt((mu_4 - var^2) / n), moments from the sample
    var = cov.diagonal()
    mu4 = ((x - x.mean(0)) ** 4).mean(0)
    assert_within_se(x.var(0), ((mu4 - x.var(0) ** 2) / n).sqrt(), var, "mixture variance")


def test_mixture_rejects_bad_arguments():
    with pytest.raises(ValueError, match="weights must all be > 0"):
        GaussianMixture([[0.0], [1.0]], 1.0, [1.0, -0.5])
    with pytest.raises(ValueError, match=r"weights must have shape \(2,\)"):
        GaussianMixture([[0.0], [1.0]], 1.0, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="stds must all be > 0"):
        GaussianMixture([[0.0], [1.0]], [1.0, 0.0])
    with pytest.raises(ValueError, match=r"means must have shape \(K, d\)"):
        GaussianMixture([0.0, 1.0])
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        make_mixture().smoothed(-1.0)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        make_mixture()(torch.zeros(3, 3, dtype=F64))


# ------------------------------------------------------------------------ 2D landscapes

LANDSCAPES = {
    "double_well": lambda: DoubleWell(barrier=3.0, center=1.2, width=0.8),
    "banana": lambda: Banana(scale=1.2, curvature=0.6, width=0.4),
    "ring": lambda: Ring(radius=2.0, width=0.3),
    "wells": lambda: Wells().double(),
}


@pytest.mark.parametrize("name", sorted(LANDSCAPES))
def test_landscape_bounds_hold_essentially_all_mass(name):
    energy = LANDSCAPES[name]()
    (x0, x1), (y0, y1) = energy.bounds
    inner = grid_log_integral(energy, energy.bounds, 300)
    wx, wy = x1 - x0, y1 - y0
    outer = grid_log_integral(energy, ((x0 - wx / 2, x1 + wx / 2), (y0 - wy / 2, y1 + wy / 2)), 600)
    assert float(outer - inner) < 1e-4


@pytest.mark.parametrize("name", ["banana", "ring", "wells"])
def test_landscape_closed_form_log_partition_matches_quadrature(name):
    energy = LANDSCAPES[name]()
    assert float(energy.log_partition()) == pytest.approx(
        float(grid_log_integral(energy, energy.bounds, 400)), abs=2e-4)


def test_banana_samples_match_moments():
    a, b, s = 1.2, 0.6, 0.4
    x = Banana(a, b, s).sample(20000, generator=gen(9), dtype=F64)
    n = x.shape[0]
    var = torch.tensor([a**2, 2 * b**2 * a**4 + s**2], dtype=F64)
    assert_within_se(x.mean(0), (var / n).sqrt(), torch.zeros(2, dtype=F64), "banana mean")


def test_wells_deep_narrow_well_holds_less_mass():
    w = Wells().double()
    masses = w.well_masses()
    energies_at_bottom = w(w.centers)
    assert float(energies_at_bottom[0]) < float(energies_at_bottom[1]) - 1.5  # deeper
    assert float(masses[0]) < 0.5 < float(masses[1])                         # yet lighter
    # independent check of the masses: quadrature of the half plane x < 0
    (x0, _), (y0, y1) = w.bounds
    left = grid_log_integral(w, ((x0, 0.0), (y0, y1)), 400) - w.log_partition()
    normal = Normal(torch.tensor(0.0, dtype=F64), torch.tensor(1.0, dtype=F64))
    expected = (masses * normal.cdf(-w.centers[:, 0] / w.widths)).sum()
    assert float(left.exp()) == pytest.approx(float(expected), abs=1e-4)
    x = w.sample(20000, generator=gen(10))
    frac = (x[:, 0] < 0).to(F64).mean()
    assert_within_se(frac, (expected * (1 - expected) / 20000).sqrt(), expected, "left mass")


def test_landscapes_reject_bad_arguments():
    with pytest.raises(ValueError, match="barrier"):
        DoubleWell(barrier=-1.0)
    with pytest.raises(TypeError, match="width"):
        Ring(width="wide")
    with pytest.raises(ValueError, match="widths must all be > 0"):
        Wells(widths=(0.2, -1.0))
    with pytest.raises(ValueError, match=r"depths must have shape \(2,\)"):
        Wells(depths=(1.0,))
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        Banana()(torch.zeros(5, 3))


# ---------------------------------------------------------------- closed-form scores

CLOSED_FORM = {
    "gaussian": lambda: Gaussian(torch.tensor([0.3, -0.2], dtype=F64), random_spd(2, 11)),
    "mixture": make_mixture,
    "smoothed_mixture": lambda: make_mixture().smoothed(0.5),
    **LANDSCAPES,
}


@pytest.mark.parametrize("name", sorted(CLOSED_FORM))
def test_closed_form_score_matches_autograd_and_uses_no_autograd(name, monkeypatch):
    energy = CLOSED_FORM[name]()
    x = 1.5 * torch.randn(64, 2, generator=gen(12), dtype=F64)
    expected = autograd_score(energy, x)
    torch.testing.assert_close(score_of(energy, x, create_graph=True).detach(), expected)

    def no_autograd(*args, **kwargs):
        raise AssertionError("closed-form score called autograd")

    monkeypatch.setattr(torch.autograd, "grad", no_autograd)
    torch.testing.assert_close(energy.score(x), expected)
    torch.testing.assert_close(score_of(energy, x), expected)


points = st.lists(st.tuples(st.floats(-3, 3), st.floats(-3, 3)), min_size=1, max_size=6)


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(sorted(CLOSED_FORM)), xs=points, c=st.floats(-100, 100))
def test_score_is_unchanged_by_a_constant_energy_offset(name, xs, c):
    energy = CLOSED_FORM[name]()
    x = torch.tensor(xs, dtype=F64)
    shifted = EnergyFunction(lambda y: energy(y) + c)
    torch.testing.assert_close(score_of(shifted, x), energy.score(x), atol=1e-9, rtol=1e-9)


def _batched_models():
    torch.manual_seed(0)
    return {
        "ring": (Ring(), lambda g: torch.randn(5, 2, generator=g, dtype=F64)),
        "mixture": (make_mixture(), lambda g: torch.randn(5, 2, generator=g, dtype=F64)),
        "ising": (Ising(4, 0.3, 0.1, periodic=False),
                  lambda g: torch.randint(0, 2, (5, 4, 4), generator=g).to(F64) * 2 - 1),
        "rbm": (RBM(5, 3, weight_std=1.0, generator=gen(0)).double(),
                lambda g: torch.randint(0, 2, (5, 5), generator=g).to(F64)),
        "mlp": (MLPEnergy(3, hidden=(16, 16)).double(),
                lambda g: torch.randn(5, 3, generator=g, dtype=F64)),
        "conv": (ConvEnergy(8, features=4).double(),
                 lambda g: torch.rand(5, 1, 8, 8, generator=g, dtype=F64)),
    }


BATCHED = _batched_models()


@settings(max_examples=15, deadline=None)
@given(name=st.sampled_from(sorted(BATCHED)), seed=st.integers(0, 2**31 - 1))
def test_batched_evaluation_equals_one_by_one(name, seed):
    model, draw = BATCHED[name]
    x = draw(gen(seed))
    one_by_one = torch.cat([model(x[i:i + 1]) for i in range(x.shape[0])])
    torch.testing.assert_close(model(x), one_by_one, atol=1e-10, rtol=1e-10)


# ------------------------------------------------------------------------------- RBM


def small_rbm(n_v: int = 4, n_h: int = 3, seed: int = 0) -> RBM:
    rbm = RBM(n_v, n_h, weight_std=1.0, generator=gen(seed)).double()
    with torch.no_grad():
        rbm.visible_bias.copy_(torch.randn(n_v, generator=gen(seed + 1), dtype=F64))
        rbm.hidden_bias.copy_(torch.randn(n_h, generator=gen(seed + 2), dtype=F64))
    return rbm


def rbm_joint_table(rbm: RBM) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All visible and hidden states and -E(v, h) on the product, (2^nv, 2^nh)."""
    vs, hs = bits(rbm.n_visible), bits(rbm.n_hidden)
    nv, nh = vs.shape[0], hs.shape[0]
    v_rep = vs.repeat_interleave(nh, dim=0)
    h_rep = hs.repeat(nv, 1)
    with torch.no_grad():
        neg_e = -rbm.joint_energy(v_rep, h_rep).reshape(nv, nh)
    return vs, hs, neg_e


def test_rbm_free_energies_match_brute_force_sums():
    rbm = small_rbm()
    vs, hs, neg_e = rbm_joint_table(rbm)
    with torch.no_grad():
        torch.testing.assert_close(rbm(vs), -torch.logsumexp(neg_e, dim=1))
        torch.testing.assert_close(rbm.hidden_free_energy(hs), -torch.logsumexp(neg_e, dim=0))
        log_z_v = torch.logsumexp(-rbm(vs), 0)
        torch.testing.assert_close(log_z_v, torch.logsumexp(-rbm.hidden_free_energy(hs), 0))
        torch.testing.assert_close(rbm.free_energy(vs), rbm(vs))


def test_rbm_conditionals_match_ratios_of_joint_probabilities():
    rbm = small_rbm()
    vs, hs, neg_e = rbm_joint_table(rbm)
    p_h_given_v = torch.softmax(neg_e, dim=1)           # (nv_states, nh_states)
    p_v_given_h = torch.softmax(neg_e, dim=0)
    with torch.no_grad():
        torch.testing.assert_close(rbm.prob_h(vs), p_h_given_v @ hs)
        torch.testing.assert_close(rbm.prob_v(hs), p_v_given_h.T @ vs)


def test_rbm_gibbs_reproduces_exact_visible_distribution():
    rbm = small_rbm()
    vs = bits(rbm.n_visible)
    with torch.no_grad():
        p = torch.softmax(-rbm(vs), dim=0)
    n = 20000
    g = gen(13)
    v = rbm.gibbs(rbm.random_state(n, generator=g), k=40, generator=g)
    assert v.shape == (n, 4) and v.dtype == F64
    index = (v * 2 ** torch.arange(4, dtype=F64)).sum(-1).long()
    freq = torch.bincount(index, minlength=16).to(F64) / n
    assert_within_se(freq, (p * (1 - p) / n).sqrt(), p, "RBM state frequencies")


def test_rbm_sampling_helpers_and_init():
    rbm = RBM(300, 200, weight_std=0.01, generator=gen(14))
    assert rbm.n_visible == 300 and rbm.n_hidden == 200 and rbm.event_shape == (300,)
    assert rbm.support == (0.0, 1.0)
    assert float(rbm.weight.detach().std()) == pytest.approx(0.01, rel=0.02)
    assert float(rbm.visible_bias.detach().abs().sum() + rbm.hidden_bias.detach().abs().sum()) == 0
    same_seed = [RBM(3, 2, generator=gen(1)).weight for _ in range(2)]
    torch.testing.assert_close(*same_seed)
    v = torch.ones(4, 300)
    h = rbm.sample_h(v, generator=gen(0))
    assert h.shape == (4, 200) and set(h.unique().tolist()) <= {0.0, 1.0}
    assert rbm.sample_v(h).shape == (4, 300)
    assert rbm.gibbs_step(v.to(torch.int64)).dtype == torch.int64
    assert not rbm.gibbs(v, k=2).requires_grad


def test_rbm_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_visible must be an int >= 1"):
        RBM(0, 3)
    with pytest.raises(TypeError, match="n_hidden"):
        RBM(3, 2.5)
    with pytest.raises(ValueError, match="weight_std"):
        RBM(3, 2, weight_std=-0.1)
    rbm = RBM(3, 2)
    with pytest.raises(ValueError, match=r"v must have shape \(B, 3\)"):
        rbm(torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"h must have shape \(B, 2\)"):
        rbm.prob_v(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="same batch size"):
        rbm.joint_energy(torch.zeros(4, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="k must be"):
        rbm.gibbs(torch.zeros(4, 3), k=0)


def test_contrastive_divergence_gradient_matches_finite_differences_of_brute_force_free_energies():
    # Reference: F(v) = -log sum_h exp(-E(v, h)) by enumerating h with the joint energy, the
    # loss mean F(v+) - mean F(v-) differentiated by central differences in each parameter
    # entry (float64).
    rbm = small_rbm(4, 3, seed=5)
    v_data = bits(4)[torch.tensor([0, 3, 5, 9, 14])]
    v_model = bits(4)[torch.tensor([15, 6, 6])]
    hs = bits(3)

    def free_energies(v: torch.Tensor) -> torch.Tensor:
        e = rbm.joint_energy(v.repeat_interleave(8, 0), hs.repeat(len(v), 1)).reshape(-1, 8)
        return -torch.logsumexp(-e, dim=1)

    def loss() -> float:
        with torch.no_grad():
            return float(free_energies(v_data).mean() - free_energies(v_model).mean())

    out = contrastive_divergence_gradient(rbm, v_data, v_model)
    assert out.loss == pytest.approx(loss(), abs=1e-12)
    torch.testing.assert_close(out.hidden_model, rbm.prob_h(v_model).detach())
    assert set(out.grads) == {"weight", "visible_bias", "hidden_bias"}
    eps = 1e-6
    for name, param in rbm.named_parameters():
        fd = torch.empty_like(param)
        flat, target = param.data.view(-1), fd.view(-1)
        for i in range(flat.numel()):
            old = float(flat[i])
            flat[i] = old + eps
            up = loss()
            flat[i] = old - eps
            down = loss()
            flat[i] = old
            target[i] = (up - down) / (2 * eps)
        assert out.grads[name].shape == param.shape and out.grads[name].dtype == param.dtype
        torch.testing.assert_close(out.grads[name], fd, rtol=1e-6, atol=1e-8)


def test_contrastive_divergence_gradient_checks_its_inputs():
    rbm = RBM(6, 5, weight_std=0.5, generator=gen(8))  # float32 parameters
    v = (torch.rand(9, 6, generator=gen(9)) < 0.5).float()
    with pytest.raises(TypeError, match=r"v_data has dtype torch\.float64 but the parameters"):
        contrastive_divergence_gradient(rbm, v.double(), v)
    with pytest.raises(ValueError, match=r"v_model must have shape \(B, 6\)"):
        contrastive_divergence_gradient(rbm, v, v[:, :5])


def test_rbm_gibbs_step_equals_sample_h_then_sample_v():
    # gibbs_step is a fused sweep: same uniforms, same arithmetic as the two documented halves.
    rbm = RBM(30, 20, weight_std=0.5, generator=gen(11))
    v = (torch.rand(50, 30, generator=gen(12)) < 0.5).float()
    for seed in range(3):
        fused = rbm.gibbs_step(v, generator=gen(seed))
        g = gen(seed)
        halves = rbm.sample_v(rbm.sample_h(v, generator=g), generator=g)
        assert torch.equal(fused, halves)
        v = fused


def _contrastive_reference(rbm: RBM, v_data: torch.Tensor, negatives: torch.Tensor):
    """mean F(v+) - mean F(v-) and its parameter gradients, by autograd on the forward."""
    rbm.zero_grad()
    loss = rbm(v_data).mean() - rbm(negatives).mean()
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in rbm.named_parameters()}


@pytest.mark.parametrize("n_model", [9, 4])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_contrastive_divergence_gradient_is_the_autograd_gradient(n_model, dtype):
    # CD from the data: the chains of RBM.gibbs, then the loss and gradient of
    # mean F(v+) - mean F(v-) by autograd, and p(h | v-) by RBM.prob_h; a chain count other
    # than the batch size weighs each side by its own mean.
    rbm = RBM(12, 7, weight_std=0.5, generator=gen(20)).to(dtype)
    with torch.no_grad():
        rbm.visible_bias.normal_(generator=gen(28))
        rbm.hidden_bias.normal_(generator=gen(29))
    v = (torch.rand(9, 12, generator=gen(21)) < 0.4).to(dtype)
    negatives = rbm.gibbs(v[:n_model], 3, generator=gen(22))
    loss, grads, hidden = contrastive_divergence_gradient(rbm, v, negatives)
    ref_loss, ref_grads = _contrastive_reference(rbm, v, negatives)
    torch.testing.assert_close(loss, ref_loss)
    for name, param in rbm.named_parameters():
        assert grads[name].dtype == dtype and grads[name].shape == param.shape
        torch.testing.assert_close(grads[name], ref_grads[name])
    torch.testing.assert_close(hidden, rbm.prob_h(negatives).detach())
    assert not (loss.requires_grad or hidden.requires_grad)


# ------------------------------------------------------------------------------ Ising


def naive_ising_energy(s: torch.Tensor, coupling: float, field: float, periodic: bool) -> float:
    rows, cols = s.shape
    total = 0.0
    for r in range(rows):
        for c in range(cols):
            for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                rr, cc = r + dr, c + dc
                if periodic:
                    rr, cc = rr % rows, cc % cols
                elif not (0 <= rr < rows and 0 <= cc < cols):
                    continue
                total += float(s[r, c] * s[rr, cc])
    return -coupling * total / 2 - field * float(s.sum())


@pytest.mark.parametrize("size", [3, 4, (3, 5)])
@pytest.mark.parametrize("periodic", [True, False])
def test_ising_energy_matches_naive_loop(size, periodic):
    model = Ising(size, coupling=0.7, field=-0.3, periodic=periodic)
    s = torch.randint(0, 2, (6, *model.event_shape), generator=gen(15)).to(F64) * 2 - 1
    expected = torch.tensor([naive_ising_energy(si, 0.7, -0.3, periodic) for si in s], dtype=F64)
    torch.testing.assert_close(model(s), expected)
    # the neighbour sum is the energy change of flipping a spin: E(flip_i) - E = 2 s_i (J n_i + h)
    i, j = 1, 2
    flipped = s.clone()
    flipped[:, i, j] *= -1
    local = 0.7 * model.neighbour_sum(s)[:, i, j] - 0.3
    torch.testing.assert_close(model(flipped) - model(s), 2 * s[:, i, j] * local)


def test_ising_side_two_torus_counts_both_bonds():
    # documented convention (as in Kaufman 1949): 2 L^2 bond terms on the torus, even for L = 2
    assert float(Ising(2, coupling=1.0)(torch.ones(1, 2, 2))) == -8.0
    assert float(Ising(2, coupling=1.0, periodic=False)(torch.ones(1, 2, 2))) == -4.0


@pytest.mark.parametrize("size,periodic", [(4, True), (5, True), ((3, 4), True), (5, False)])
def test_ising_colour_classes_are_a_proper_colouring(size, periodic):
    model = Ising(size, periodic=periodic)
    colours = model.colours
    assert bool((colours.sum(0) == 1).all())  # a partition of the sites
    for mask in colours.to(torch.float64):
        # no two sites of one class are neighbours
        assert float((mask * model.neighbour_sum(mask[None])[0]).sum()) == 0
    if not periodic or size == 4:
        assert colours.shape[0] == 2


def exact_moments(states: torch.Tensor, energies: torch.Tensor):
    p = torch.softmax(-energies, dim=0)
    flat = states.reshape(states.shape[0], -1)
    return p @ flat, torch.einsum("s,si,sj->ij", p, flat, flat)


def gibbs_moments(model, x, n_burn: int, n_keep: int, generator):
    """Per-chain time averages of x_i and x_i x_j; returns means and standard errors."""
    for _ in range(n_burn):
        x = model.gibbs_step(x, generator=generator)
    first = torch.zeros(x.shape[0], x[0].numel(), dtype=F64)
    second = torch.zeros(x.shape[0], x[0].numel(), x[0].numel(), dtype=F64)
    for _ in range(n_keep):
        x = model.gibbs_step(x, generator=generator)
        flat = x.reshape(x.shape[0], -1)
        first += flat / n_keep
        second += flat.unsqueeze(2) * flat.unsqueeze(1) / n_keep
    n = x.shape[0]
    return (first.mean(0), first.std(0) / math.sqrt(n),
            second.mean(0), second.std(0) / math.sqrt(n))


@pytest.mark.parametrize("periodic", [True, False])
def test_ising_gibbs_reproduces_exact_moments(periodic):
    model = Ising(3, coupling=0.4, field=0.15, periodic=periodic)
    states = bits(9).reshape(-1, 3, 3) * 2 - 1
    m_exact, c_exact = exact_moments(states, model(states))
    g = gen(16)
    x0 = model.random_state(3000, generator=g, dtype=F64)
    m, m_se, c, c_se = gibbs_moments(model, x0, 15, 25, g)
    assert_within_se(m, m_se, m_exact, "Ising magnetisations")
    assert_within_se(c, c_se, c_exact, "Ising correlations")


def test_ising_gibbs_step_keeps_dtype_device_and_support():
    model = Ising(5, coupling=0.5)
    s = model.random_state(4, generator=gen(17))
    assert s.dtype == torch.get_default_dtype() and s.shape == (4, 5, 5)
    out = model.gibbs_step(s, generator=gen(18))
    assert out.shape == s.shape and out.dtype == s.dtype
    assert set(out.unique().tolist()) <= {-1.0, 1.0}
    assert model.gibbs_step(s.to(torch.int64)).dtype == torch.int64
    torch.testing.assert_close(model.magnetization(torch.ones(2, 5, 5)), torch.ones(2))
    assert model.support == (-1.0, 1.0) and model.event_shape == (5, 5)


def test_ising_rejects_bad_arguments():
    with pytest.raises(ValueError, match="size must be an int >= 2"):
        Ising(1)
    with pytest.raises(TypeError, match="coupling must be a number"):
        Ising(3, coupling="strong")
    with pytest.raises(TypeError, match="periodic must be a bool"):
        Ising(3, periodic=1)
    with pytest.raises(ValueError, match=r"s must have shape \(B, 3, 3\)"):
        Ising(3)(torch.ones(2, 9))


# ------------------------------------------------------------------ Boltzmann machine


def small_bm(d: int = 4, seed: int = 19) -> BoltzmannMachine:
    a = torch.randn(d, d, generator=gen(seed), dtype=F64)
    w = (a + a.T) * (1 - torch.eye(d, dtype=F64))
    return BoltzmannMachine(w, torch.randn(d, generator=gen(seed + 1), dtype=F64) * 0.5)


def test_boltzmann_machine_energy_matches_pairwise_sum():
    bm = small_bm()
    x = bits(4)
    w, b = bm.weight.detach(), bm.bias.detach()
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    expected = torch.tensor([-sum(float(w[i, j] * xs[i] * xs[j]) for i, j in pairs)
                             - float(b @ xs) for xs in x], dtype=F64)
    torch.testing.assert_close(bm(x), expected)


def test_boltzmann_machine_gibbs_reproduces_exact_moments():
    bm = small_bm()
    x = bits(4)
    with torch.no_grad():
        m_exact, c_exact = exact_moments(x, bm(x))
    g = gen(21)
    m, m_se, c, c_se = gibbs_moments(bm, bm.random_state(3000, generator=g, dtype=F64), 15, 25, g)
    assert_within_se(m, m_se, m_exact, "BM marginals")
    assert_within_se(c, c_se, c_exact, "BM pair moments")


def test_boltzmann_machine_energy_uses_only_the_symmetric_zero_diagonal_part():
    bm = small_bm()
    x = bits(4)
    before = bm(x).detach()
    with torch.no_grad():
        bm.weight.add_(torch.diag(torch.ones(4, dtype=F64)))
    torch.testing.assert_close(bm(x).detach(), before)
    bm(x).sum().backward()
    grad = bm.weight.grad
    torch.testing.assert_close(grad.diagonal(), torch.zeros(4, dtype=F64))


def test_boltzmann_machine_rejects_bad_arguments():
    with pytest.raises(ValueError, match="symmetric"):
        BoltzmannMachine(torch.tensor([[0.0, 1.0], [0.0, 0.0]]), torch.zeros(2))
    with pytest.raises(ValueError, match="zero diagonal"):
        BoltzmannMachine(torch.eye(2), torch.zeros(2))
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\)"):
        BoltzmannMachine(torch.zeros(2, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="square"):
        BoltzmannMachine(torch.zeros(2, 3), torch.zeros(2))
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        BoltzmannMachine(torch.zeros(2, 2), torch.zeros(2))(torch.zeros(3, 3))


# ---------------------------------------------------------------------- neural energies


def test_mlp_energy_shapes_gradients_and_no_batch_norm():
    torch.manual_seed(0)
    energy = MLPEnergy(3, hidden=(16, 8), activation="softplus")
    x = torch.randn(7, 3)
    e = energy(x)
    assert e.shape == (7,)
    e.sum().backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in energy.parameters())
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in energy.modules())
    assert score_of(energy, x).shape == (7, 3)


def test_mlp_energy_spectral_norm_bounds_every_layer():
    torch.manual_seed(1)
    energy = MLPEnergy(3, hidden=(16, 16), spectral_norm=True)
    x = torch.randn(4, 3)
    for _ in range(100):  # power iterations run in training mode
        energy(x)
    energy.eval()
    linears = [m for m in energy.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 3
    for layer in linears:
        assert torch.nn.utils.parametrize.is_parametrized(layer, "weight")
        sigma_max = float(torch.linalg.matrix_norm(layer.weight.detach(), ord=2))
        assert sigma_max == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("image_size,features", [(8, 8), (28, 4)])
def test_conv_energy_shapes_and_gradients(image_size, features):
    torch.manual_seed(2)
    energy = ConvEnergy(image_size=image_size, channels=1, features=features)
    x = torch.rand(3, 1, image_size, image_size)
    e = energy(x)
    assert e.shape == (3,)
    e.sum().backward()
    assert all(p.grad is not None for p in energy.parameters())
    assert score_of(energy, x).shape == x.shape
    sn = ConvEnergy(image_size=image_size, features=features, spectral_norm=True)
    assert sn(x).shape == (3,)
    with pytest.raises(ValueError, match=rf"\(B, 1, {image_size}, {image_size}\)"):
        energy(x.reshape(3, -1))


def test_neural_energies_reject_bad_arguments():
    with pytest.raises(ValueError, match="activation must be one of"):
        MLPEnergy(2, activation="relu")
    with pytest.raises(ValueError, match="dim must be an int >= 1"):
        MLPEnergy(0)
    with pytest.raises(ValueError, match="hidden"):
        MLPEnergy(2, hidden=())
    with pytest.raises(TypeError, match="spectral_norm must be a bool"):
        MLPEnergy(2, spectral_norm="yes")
    with pytest.raises(ValueError, match="image_size must be an int >= 4"):
        ConvEnergy(image_size=2)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2\)"):
        MLPEnergy(2)(torch.zeros(3, 5))


def test_noise_conditional_score_net_accepts_float_and_batched_sigma():
    torch.manual_seed(3)
    net = NoiseConditionalScoreNet(2, hidden=(16, 16))
    x = torch.randn(4, 2)
    out = net(x, 0.5)
    assert out.shape == (4, 2)
    torch.testing.assert_close(net(x, torch.full((4,), 0.5)), out)
    torch.testing.assert_close(net(x, torch.tensor(0.5)), out)
    assert not torch.allclose(net(x, 2.0), out)  # the output depends on the noise level
    sigmas = torch.tensor([0.1, 0.5, 1.0, 2.0])
    rows = torch.cat([net(x[i:i + 1], float(sigmas[i])) for i in range(4)])
    torch.testing.assert_close(net(x, sigmas), rows)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        net(x, torch.ones(3))
    with pytest.raises(ValueError, match="sigma must be > 0"):
        net(x, -1.0)


def test_noise_conditional_energy_score_and_fixed_level():
    torch.manual_seed(4)
    model = NoiseConditionalEnergy(2, hidden=(16, 16)).double()
    x = torch.randn(5, 2, dtype=F64)
    sigmas = torch.tensor([0.1, 0.3, 0.5, 1.0, 2.0], dtype=F64)
    e = model(x, sigmas)
    assert e.shape == (5,)
    assert not torch.allclose(model(x, 0.3), model(x, 0.6))
    expected = autograd_score(lambda y: model(y, sigmas), x)
    torch.testing.assert_close(model.score(x, sigmas), expected)
    s = model.score(x, 0.3, create_graph=True)
    (s**2).sum().backward()  # differentiable w.r.t. the parameters (denoising score matching)
    assert all(p.grad is not None for p in model.parameters())
    fixed = model.at(0.3)
    assert isinstance(fixed, Energy)
    torch.testing.assert_close(fixed(x), model(x, 0.3))
    torch.testing.assert_close(score_of(fixed, x), model.score(x, 0.3))
    with pytest.raises(TypeError, match="sigma must be a number"):
        model(x, "big")


def test_public_names_are_exported_from_the_top_level():
    for name in ("Gaussian", "GaussianMixture", "DoubleWell", "Banana", "Ring", "Wells", "Ising",
                 "BoltzmannMachine", "RBM", "MLPEnergy", "ConvEnergy", "NoiseConditionalScoreNet",
                 "NoiseConditionalEnergy"):
        assert getattr(ebmlab, name) is getattr(ebmlab.energies, name)
        assert name in ebmlab.__all__


def test_python_float_arguments_keep_float64_precision():
    """A Python float given with float64 means is not rounded through float32."""
    means = torch.zeros(1, 2, dtype=torch.float64)
    mixture = ebmlab.GaussianMixture(means, 0.6)
    assert mixture.stds.dtype == torch.float64
    assert float(mixture.stds[0]) == 0.6
