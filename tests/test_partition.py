"""Tests of ebmlab.partition against independent references.

References: closed forms (Gaussian log Z, independent units), brute-force enumeration
written out here with itertools, enumeration vs Kaufman's formula, Onsager's closed form
at the critical point, and Monte-Carlo tolerances derived from the reported standard error.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import ebmlab as el
from ebmlab.partition import (
    ISING_CRITICAL_COUPLING,
    LogPartitionEstimate,
    ais,
    annealing_schedule,
    effective_sample_size,
    exact_log_partition,
    grid_log_partition,
    importance_log_partition,
    ising_log_partition,
    log_mean_exp,
    onsager_free_energy,
)

CATALAN = 0.915965594177219015054603514932384110774


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_rbm(seed: int, n_visible: int = 20, n_hidden: int = 10, std: float = 1.0) -> el.RBM:
    """A float64 RBM with N(0, std^2) weights and N(0, 0.25) biases."""
    g = gen(seed)
    rbm = el.RBM(n_visible, n_hidden, weight_std=std, generator=g).double()
    with torch.no_grad():
        rbm.visible_bias.normal_(0.0, 0.5, generator=g)
        rbm.hidden_bias.normal_(0.0, 0.5, generator=g)
    return rbm


def binary_states(d: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)), dtype=torch.float64)


def brute_force_rbm_log_z(rbm: el.RBM) -> float:
    """log sum_{v,h} exp(a.v + b.h + v W h), every joint state written out."""
    w = rbm.weight.detach().double()
    a = rbm.visible_bias.detach().double()
    b = rbm.hidden_bias.detach().double()
    v = binary_states(rbm.n_visible)
    h = binary_states(rbm.n_hidden)
    neg_energy = (v @ a)[:, None] + (h @ b)[None, :] + v @ w @ h.T  # (2^nv, 2^nh)
    return float(torch.logsumexp(neg_energy.flatten(), 0))


def exact_rbm_samples(rbm: el.RBM, n: int, g: torch.Generator) -> torch.Tensor:
    """Exact visible samples: h from its enumerated marginal, then v ~ p(v | h)."""
    h = binary_states(rbm.n_hidden)
    with torch.no_grad():
        w = rbm.weight.double()
        a = rbm.visible_bias.double()
        b = rbm.hidden_bias.double()
        log_p = h @ b + torch.nn.functional.softplus(h @ w.T + a).sum(1)
        idx = torch.multinomial(torch.softmax(log_p, 0), n, replacement=True, generator=g)
        p_v = torch.sigmoid(h[idx] @ w.T + a)
    return (torch.rand(p_v.shape, generator=g, dtype=torch.float64) < p_v).double()


def periodic_ising_energy(coupling: float):
    """E(s) = -K sum over the torus bonds (torch.roll), written independently of ebmlab."""
    def energy(s: torch.Tensor) -> torch.Tensor:
        bonds = (s * s.roll(1, dims=1)).sum((1, 2)) + (s * s.roll(1, dims=2)).sum((1, 2))
        return -coupling * bonds
    return energy


# ------------------------------------------------------------------------ the estimate


def test_effective_sample_size_extremes_and_formula():
    assert float(effective_sample_size(torch.zeros(10))) == pytest.approx(10.0)
    one_dominates = torch.tensor([0.0, -50.0, -50.0, -50.0])
    assert float(effective_sample_size(one_dominates)) == pytest.approx(1.0, abs=1e-6)
    lw = torch.randn(50, generator=gen(0), dtype=torch.float64)
    w = lw.exp()
    assert float(effective_sample_size(lw)) == pytest.approx(float(w.sum() ** 2 / (w**2).sum()))
    # shift invariance: scaling all weights leaves the ESS unchanged
    assert float(effective_sample_size(lw + 700.0)) == pytest.approx(float(w.sum() ** 2 /
                                                                         (w**2).sum()))


def test_effective_sample_size_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty 1-d"):
        effective_sample_size(torch.zeros(2, 3))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        effective_sample_size([0.0, 1.0])


def test_importance_estimate_fields_repr_and_float():
    # Target: standard normal in 2D, log Z = log 2 pi; proposal N(0, 2 I).
    q = el.Gaussian(torch.zeros(2, dtype=torch.float64), 2.0 * torch.eye(2, dtype=torch.float64))
    est = importance_log_partition(lambda x: 0.5 * (x**2).sum(1), q, 400, generator=gen(1))
    assert isinstance(est, LogPartitionEstimate)
    assert est.log_z.shape == () and est.stderr.shape == () and est.ess.shape == ()
    assert est.log_weights.shape == (400,)
    # delta-method standard error, recomputed from the weights with plain float math
    w = [math.exp(v) for v in est.log_weights.tolist()]
    mean = sum(w) / len(w)
    sd = math.sqrt(sum((x - mean) ** 2 for x in w) / (len(w) - 1))
    assert float(est.stderr) == pytest.approx(sd / (math.sqrt(len(w)) * mean), rel=1e-9)
    assert float(est.log_z) == pytest.approx(math.log(mean), rel=1e-12)
    assert float(est) == float(est.log_z)
    text = repr(est)
    assert text.startswith(f"log Z = {float(est.log_z):.2f} ± {float(est.stderr):.2f} (ESS ")
    assert text.endswith("/400)")


def test_log_mean_exp_is_stable():
    lw = torch.tensor([1000.0, 1000.0], dtype=torch.float64)
    assert float(log_mean_exp(lw)) == pytest.approx(1000.0)


# ------------------------------------------------------------------- exact enumeration


def test_exact_independent_units_closed_form():
    c = torch.tensor([0.3, -1.2, 2.0, 0.0, 0.7], dtype=torch.float64)

    def energy(x):
        return -(x * c).sum(1)

    expected01 = float(torch.nn.functional.softplus(c).sum())  # sum log(1 + e^c)
    got = exact_log_partition(energy, support=(0.0, 1.0), event_shape=(5,))
    assert got.dtype == torch.float64 and got.shape == ()
    assert float(got) == pytest.approx(expected01, abs=1e-12)
    expected_pm = float(torch.log(2 * torch.cosh(c)).sum())  # spins +-1
    got_pm = exact_log_partition(energy, support=(-1.0, 1.0), event_shape=(5,), chunk_size=3)
    assert float(got_pm) == pytest.approx(expected_pm, abs=1e-12)


def test_exact_boltzmann_machine_matches_naive_loop():
    g = gen(3)
    d = 7
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    weight = (a + a.T) / 2
    weight.fill_diagonal_(0.0)
    bias = torch.randn(d, generator=g, dtype=torch.float64)
    bm = el.BoltzmannMachine(weight, bias)
    terms = []
    for bits in itertools.product([0.0, 1.0], repeat=d):
        e = 0.0
        for i in range(d):
            e -= bias[i].item() * bits[i]
            for j in range(d):
                e -= 0.5 * weight[i, j].item() * bits[i] * bits[j]
        terms.append(-e)
    top = max(terms)
    naive = top + math.log(sum(math.exp(t - top) for t in terms))
    got = exact_log_partition(bm, chunk_size=10).detach()
    assert float(got) == pytest.approx(naive, abs=1e-10)


def test_exact_is_differentiable_gradient_gives_marginals():
    # d log Z / d b_i = E_p[x_i], with the marginals computed by explicit enumeration.
    g = gen(4)
    d = 6
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    bm = el.BoltzmannMachine((a + a.T) / 2 * (1 - torch.eye(d, dtype=torch.float64)),
                             torch.randn(d, generator=g, dtype=torch.float64))
    log_z = exact_log_partition(bm)
    (grad,) = torch.autograd.grad(log_z, bm.bias)
    x = binary_states(d)
    with torch.no_grad():
        p = torch.softmax(-bm(x), 0)
    assert torch.allclose(grad, p @ x, atol=1e-10)


def test_exact_float32_model_is_enumerated_in_float64():
    rbm = random_rbm(5, 6, 4).float()
    got = exact_log_partition(rbm).detach()
    assert got.dtype == torch.float64
    ref = brute_force_rbm_log_z(rbm)
    assert float(got) == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize(("n_visible", "n_hidden"), [(5, 4), (3, 8), (9, 2)])
def test_exact_rbm_matches_joint_enumeration(n_visible, n_hidden):
    rbm = random_rbm(n_visible * 10 + n_hidden, n_visible, n_hidden, std=1.5)
    ref = brute_force_rbm_log_z(rbm)
    for layer in ("auto", "visible", "hidden"):
        got = exact_log_partition(rbm, layer=layer, chunk_size=5).detach()
        assert float(got) == pytest.approx(ref, abs=1e-9), layer


def test_exact_rbm_wide_visible_layer_enumerates_hidden():
    # 300 x 14: 2^300 visible states, exact through the 2^14 hidden states in small chunks.
    rbm = random_rbm(6, 300, 14, std=0.1)
    with torch.no_grad():
        got = exact_log_partition(rbm, chunk_size=1000)
    # cross-check with a transposed RBM (visible <-> hidden swapped): same Z
    t = el.RBM(14, 300).double()
    with torch.no_grad():
        t.weight.copy_(rbm.weight.T)
        t.visible_bias.copy_(rbm.hidden_bias)
        t.hidden_bias.copy_(rbm.visible_bias)
    with torch.no_grad():
        transposed = exact_log_partition(t, layer="visible")
    assert float(got) == pytest.approx(float(transposed), abs=1e-8)
    with pytest.raises(ValueError, match=r"2\*\*300"):
        exact_log_partition(rbm, layer="visible")


def test_exact_errors():
    with pytest.raises(ValueError, match=r"2\*\*36 = 68,719,476,736 states.*ais.*"
                                         r"ising_log_partition"):
        exact_log_partition(el.Ising(6))
    with pytest.raises(ValueError, match=r"smaller layer.*30 units.*ais"):
        exact_log_partition(el.RBM(40, 30))
    with pytest.raises(ValueError, match="max_states=1,000"):
        exact_log_partition(lambda x: x.sum(1), support=(0, 1), event_shape=(10,),
                            max_states=1000)
    with pytest.raises(TypeError, match="support="):
        exact_log_partition(lambda x: x.sum(1))
    with pytest.raises(TypeError, match="event_shape="):
        exact_log_partition(lambda x: x.sum(1), support=(0.0, 1.0))
    with pytest.raises(ValueError, match="two distinct"):
        exact_log_partition(lambda x: x.sum(1), support=(1.0, 1.0), event_shape=(3,))
    with pytest.raises(ValueError, match="event_shape must hold positive"):
        exact_log_partition(lambda x: x.sum(1), support=(0.0, 1.0), event_shape=(0,))
    with pytest.raises(ValueError, match="chunk_size"):
        exact_log_partition(el.Ising(2), chunk_size=0)
    with pytest.raises(ValueError, match="RBMs only"):
        exact_log_partition(el.Ising(2), layer="hidden")
    with pytest.raises(ValueError, match="energies of shape"):
        exact_log_partition(lambda x: x, support=(0.0, 1.0), event_shape=(3,))


# ------------------------------------------------------------------------------- Ising


@pytest.mark.parametrize(("rows", "cols"), [(2, 2), (3, 3), (4, 4), (2, 3), (3, 4), (3, 5)])
@pytest.mark.parametrize("coupling", [0.1, 0.35, ISING_CRITICAL_COUPLING, 0.45, 1.3])
def test_kaufman_matches_enumeration(rows, cols, coupling):
    expected = exact_log_partition(periodic_ising_energy(coupling), support=(-1.0, 1.0),
                                   event_shape=(rows, cols))
    assert ising_log_partition(rows, cols, coupling) == pytest.approx(float(expected), abs=1e-9)


@pytest.mark.parametrize(("rows", "cols"), [(2, 2), (2, 4), (4, 4)])
@pytest.mark.parametrize("coupling", [-0.2, -ISING_CRITICAL_COUPLING, -1.0])
def test_kaufman_antiferromagnet_on_bipartite_torus(rows, cols, coupling):
    expected = exact_log_partition(periodic_ising_energy(coupling), support=(-1.0, 1.0),
                                   event_shape=(rows, cols))
    assert ising_log_partition(rows, cols, coupling) == pytest.approx(float(expected), abs=1e-9)


def test_kaufman_matches_enumeration_of_the_ising_class():
    model = el.Ising((3, 4), coupling=0.6)
    assert ising_log_partition(3, 4, 0.6) == pytest.approx(float(exact_log_partition(model)),
                                                           abs=1e-9)


def test_kaufman_64x64_at_critical_point_matches_onsager():
    n = 64
    per_site = ising_log_partition(n, n, ISING_CRITICAL_COUPLING) / n**2
    onsager_closed_form = math.log(2) / 2 + 2 * CATALAN / math.pi
    assert abs(per_site - onsager_closed_form) < 1e-3


def test_kaufman_large_lattice_off_critical_matches_onsager():
    # Away from criticality finite-size corrections vanish exponentially, except for the
    # two-fold degeneracy of the ordered phase (K > K_c), which adds exactly log 2 to log Z.
    n = 200
    assert ising_log_partition(n, n, 0.2) / n**2 == pytest.approx(onsager_free_energy(0.2),
                                                                  abs=1e-12)
    ordered = (ising_log_partition(n, n, 0.7) - math.log(2)) / n**2
    assert ordered == pytest.approx(onsager_free_energy(0.7), abs=1e-12)


def test_kaufman_limits():
    assert ising_log_partition(3, 5, 0.0) == pytest.approx(15 * math.log(2))
    # strong coupling: two ground states with energy -2 K N dominate
    k = 50.0
    assert ising_log_partition(4, 6, k) == pytest.approx(2 * k * 24 + math.log(2), rel=1e-12)


def test_onsager_closed_form_at_critical_point():
    expected = math.log(2) / 2 + 2 * CATALAN / math.pi
    assert onsager_free_energy(ISING_CRITICAL_COUPLING) == pytest.approx(expected, abs=1e-12)
    assert onsager_free_energy(-0.3) == pytest.approx(onsager_free_energy(0.3), abs=1e-14)
    # high temperature: ln 2 + ln cosh^2 K + O(tanh^4 K) (bond expansion)
    k = 0.01
    assert onsager_free_energy(k) == pytest.approx(math.log(2) + 2 * math.log(math.cosh(k)),
                                                   abs=1e-7)


def test_ising_errors():
    with pytest.raises(ValueError, match="zero field"):
        ising_log_partition(4, 4, 0.3, field=0.1)
    with pytest.raises(ValueError, match=r"even number.*3 x 4"):
        ising_log_partition(3, 4, -0.3)
    with pytest.raises(ValueError, match="rows must be a positive int"):
        ising_log_partition(0, 4, 0.3)
    with pytest.raises(ValueError, match="cols must be a positive int"):
        ising_log_partition(4, 2.5, 0.3)
    with pytest.raises(ValueError, match="finite"):
        ising_log_partition(4, 4, float("nan"))
    with pytest.raises(TypeError, match="coupling must be a real number"):
        onsager_free_energy("hot")


# ------------------------------------------------------------------------- quadrature


@pytest.mark.parametrize("rule", ["midpoint", "trapezoid"])
def test_grid_matches_gaussian_closed_form_1d_2d_3d(rule):
    covs = {
        1: torch.tensor([[0.7]]),
        2: torch.tensor([[1.0, 0.6], [0.6, 2.0]]),
        3: torch.tensor([[1.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 0.8]]),
    }
    resolution = {1: 2001, 2: 301, 3: 61}
    for d, cov in covs.items():
        gauss = el.Gaussian(torch.linspace(-0.5, 0.5, d).double(), cov.double())
        half = 8.0 * float(cov.diagonal().max().sqrt())
        bounds = [(float(m) - half, float(m) + half) for m in gauss.mean]
        got = grid_log_partition(gauss, bounds, resolution[d], rule=rule, chunk_size=5000)
        assert got.dtype == torch.float64
        assert float(got) == pytest.approx(float(gauss.log_partition()), abs=1e-6), d


def test_grid_uses_energy_bounds_and_defaults():
    mixture = el.GaussianMixture(torch.tensor([[-1.0, 0.0], [1.5, 1.0]]), 0.6,
                                 torch.tensor([0.4, 0.6]))
    assert float(grid_log_partition(mixture)) == pytest.approx(0.0, abs=1e-4)
    # a plain callable and a single (low, high) pair in 1-D
    got = grid_log_partition(lambda x: x[:, 0] ** 4, (-4.0, 4.0), 4001)
    assert float(got) == pytest.approx(math.log(2 * math.gamma(1.25)), abs=1e-6)


def test_grid_errors():
    f = lambda x: (x**2).sum(1)  # noqa: E731
    with pytest.raises(ValueError, match="1 to 3 dimensions"):
        grid_log_partition(f, [(-1, 1)] * 4, 4)
    with pytest.raises(ValueError, match="min < max"):
        grid_log_partition(f, [(1, -1)], 4)
    with pytest.raises(ValueError, match="resolution"):
        grid_log_partition(f, [(-1, 1), (-1, 1)], (4, 4, 4))
    with pytest.raises(ValueError, match="rule"):
        grid_log_partition(f, [(-1, 1)], 4, rule="simpson")
    with pytest.raises(ValueError, match="bounds must be given"):
        grid_log_partition(f)
    with pytest.raises(ValueError, match="energies of shape"):
        grid_log_partition(lambda x: x, [(-1, 1), (-1, 1)], 4)
    with pytest.raises(ValueError, match="NaN"):
        grid_log_partition(lambda x: x[:, 0] * float("nan"), [(-1, 1)], 4)


def test_importance_sampling_matches_closed_form_within_stderr():
    target = el.Gaussian(torch.tensor([0.5, -1.0]).double(),
                         torch.tensor([[1.0, 0.4], [0.4, 0.6]]).double())
    proposal = el.Gaussian(torch.zeros(2).double(), 3.0 * torch.eye(2).double())
    est = importance_log_partition(target, proposal, 20_000, generator=gen(7))
    exact = float(target.log_partition())
    assert abs(float(est.log_z) - exact) < 4 * float(est.stderr)
    assert 1000 < float(est.ess) < 20_000
    again = importance_log_partition(target, proposal, 20_000, generator=gen(7))
    assert torch.equal(est.log_weights, again.log_weights)


def test_importance_stderr_is_calibrated():
    # The spread of independent estimates agrees with the reported standard error.
    target = el.Gaussian(torch.zeros(2).double(), torch.eye(2).double())
    proposal = el.Gaussian(torch.tensor([0.3, 0.0]).double(), 2.0 * torch.eye(2).double())
    g = gen(8)
    ests = [importance_log_partition(target, proposal, 2000, generator=g) for _ in range(30)]
    values = torch.tensor([float(e.log_z) for e in ests])
    mean_stderr = sum(float(e.stderr) for e in ests) / len(ests)
    assert 0.6 < float(values.std()) / mean_stderr < 1.5
    assert abs(float(values.mean()) - float(target.log_partition())) < 3 * mean_stderr / 5


def test_importance_with_torch_distribution_and_generator():
    from torch.distributions import Independent, MultivariateNormal, Normal

    q = MultivariateNormal(torch.zeros(2, dtype=torch.float64),
                           2.0 * torch.eye(2, dtype=torch.float64))
    energy = lambda x: 0.5 * (x**2).sum(1)  # noqa: E731
    a = importance_log_partition(energy, q, 5000, generator=gen(9))
    b = importance_log_partition(energy, q, 5000, generator=gen(9))
    assert torch.equal(a.log_weights, b.log_weights)
    assert abs(float(a.log_z) - math.log(2 * math.pi)) < 4 * float(a.stderr)
    factorised = Independent(Normal(torch.zeros(2, dtype=torch.float64), 1.5), 1)
    c = importance_log_partition(energy, factorised, 5000, generator=gen(10))
    assert abs(float(c.log_z) - math.log(2 * math.pi)) < 4 * float(c.stderr)
    with pytest.raises(ValueError, match="Independent"):
        importance_log_partition(energy, Normal(torch.zeros(2), 1.0), 10)


def test_importance_errors():
    with pytest.raises(TypeError, match="sample"):
        importance_log_partition(lambda x: x.sum(1), object(), 10)
    with pytest.raises(ValueError, match="n_samples"):
        importance_log_partition(lambda x: x.sum(1), el.Gaussian(torch.zeros(2), 1.0), 0)


# -------------------------------------------------------------------------------- AIS


def test_annealing_schedules():
    for kind in ("linear", "sigmoid", "geometric", "piecewise"):
        b = annealing_schedule(kind, 150)
        assert b.shape == (150,) and b.dtype == torch.float64
        assert float(b[0]) == 0.0 and float(b[-1]) == 1.0
        assert bool((b.diff() >= 0).all()), kind
    assert torch.allclose(annealing_schedule("linear", 5),
                          torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64))
    # Salakhutdinov & Murray's ladder: 1/15 of the betas below 0.5, 2/3 above 0.9
    p = annealing_schedule("piecewise", 15001)
    assert float((p < 0.5).double().mean()) == pytest.approx(1 / 15, abs=1e-3)
    assert float((p > 0.9).double().mean()) == pytest.approx(2 / 3, abs=1e-3)
    geo = annealing_schedule("geometric", 100)
    assert float(geo[1]) == pytest.approx(1e-3) and bool((geo[2:] / geo[1:-1] > 1).all())
    sig = annealing_schedule("sigmoid", 101)
    assert float(sig[1] - sig[0]) < float(sig[51] - sig[50])  # dense at the ends


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ais_rbm_within_005_nats_of_exact(seed):
    rbm = random_rbm(seed)  # 20 x 10, weights N(0, 1)
    exact = float(exact_log_partition(rbm).detach())
    est = ais(rbm, 1000, 100, generator=gen(100 + seed))
    assert abs(float(est.log_z) - exact) < 0.05
    assert abs(float(est.log_z) - exact) < 5 * float(est.stderr) + 0.01
    assert est.log_weights.shape == (100,) and est.acceptance_rate is None


@pytest.mark.parametrize("schedule", ["sigmoid", "geometric", "piecewise"])
def test_ais_rbm_other_schedules_and_base(schedule):
    rbm = random_rbm(3)
    exact = float(exact_log_partition(rbm).detach())
    # a base with the model's own visible log-odds (as one would use the data's)
    with torch.no_grad():
        v = binary_states(10)  # hidden states, enumerate marginals of v exactly
        w, a, b = rbm.weight, rbm.visible_bias, rbm.hidden_bias
        p_h = torch.softmax(v @ b + torch.nn.functional.softplus(v @ w.T + a).sum(1), 0)
        mean_v = p_h @ torch.sigmoid(v @ w.T + a)
    log_odds = torch.log(mean_v) - torch.log1p(-mean_v)
    est = ais(rbm, 800, 100, schedule=schedule, base_visible_bias=log_odds, generator=gen(11))
    assert abs(float(est.log_z) - exact) < 0.05


def test_ais_explicit_schedule_tensor_and_sweeps():
    rbm = random_rbm(4, 12, 6)
    exact = float(exact_log_partition(rbm).detach())
    betas = torch.linspace(0, 1, 300) ** 2
    est = ais(rbm, schedule=betas, n_runs=200, n_steps_per_temperature=2, generator=gen(12))
    assert abs(float(est.log_z) - exact) < 4 * float(est.stderr) + 0.02


def test_ais_forward_below_and_reverse_above_exact_on_average():
    # Few temperatures make the bias visible: E[log Z_fwd] <= log Z <= E[log Z_rev].
    for model_seed in (0, 1):
        rbm = random_rbm(model_seed)
        exact = float(exact_log_partition(rbm).detach())
        fwd, rev = [], []
        for s in range(48):
            g = gen(1000 * model_seed + s)
            fwd.append(float(ais(rbm, 10, 2, generator=g).log_z))
            init = exact_rbm_samples(rbm, 2, g)
            rev.append(float(ais(rbm, 10, reverse=True, init=init, generator=g).log_z))
        fwd_t, rev_t = torch.tensor(fwd), torch.tensor(rev)
        se_f = float(fwd_t.std()) / math.sqrt(len(fwd))
        se_r = float(rev_t.std()) / math.sqrt(len(rev))
        assert float(fwd_t.mean()) + 2 * se_f < exact < float(rev_t.mean()) - 2 * se_r


def test_ais_reverse_rbm_is_accurate_with_many_temperatures():
    rbm = random_rbm(5)
    exact = float(exact_log_partition(rbm).detach())
    g = gen(13)
    est = ais(rbm, 1000, reverse=True, init=exact_rbm_samples(rbm, 100, g), generator=g)
    assert abs(float(est.log_z) - exact) < 0.05


def test_ais_continuous_gaussian_mixture_mala():
    mixture = el.GaussianMixture(torch.tensor([[-1.5, 0.0], [1.5, 0.5]]).double(), 0.7,
                                 torch.tensor([0.4, 0.6]).double())  # normalised: log Z = 0
    base = el.Gaussian(torch.zeros(2).double(), 4.0 * torch.eye(2).double())
    est = ais(mixture, 100, 400, base=base, step_size=0.2, n_steps_per_temperature=2,
              generator=gen(14))
    assert abs(float(est.log_z)) < 4 * float(est.stderr)
    assert 0.5 < float(est.acceptance_rate) <= 1.0
    # reverse from exact mixture samples
    g = gen(15)
    rev = ais(mixture, 100, base=base, step_size=0.2, n_steps_per_temperature=2, reverse=True,
              init=mixture.sample(400, generator=g), generator=g)
    assert abs(float(rev.log_z)) < 4 * float(rev.stderr)


def test_ais_continuous_plain_callable_and_langevin():
    cov = torch.tensor([[1.0, 0.5], [0.5, 2.0]], dtype=torch.float64)
    gauss = el.Gaussian(torch.tensor([1.0, -1.0], dtype=torch.float64), cov)
    exact = float(gauss.log_partition())
    precision = torch.linalg.inv(cov)

    def energy(x):  # autograd path (no closed-form score)
        d = x - torch.tensor([1.0, -1.0], dtype=x.dtype)
        return 0.5 * ((d @ precision) * d).sum(1)

    from torch.distributions import MultivariateNormal

    base = MultivariateNormal(torch.zeros(2, dtype=torch.float64),
                              4.0 * torch.eye(2, dtype=torch.float64))
    est = ais(energy, 100, 400, base=base, step_size=0.2, generator=gen(16))
    assert abs(float(est.log_z) - exact) < 4 * float(est.stderr)
    ula = ais(energy, 100, 400, base=base, step_size=0.02, transition="langevin",
              n_steps_per_temperature=3, generator=gen(17))
    assert ula.acceptance_rate is None
    assert abs(float(ula.log_z) - exact) < 4 * float(ula.stderr) + 0.05


def test_ais_is_reproducible_and_shows_progress(capsys):
    rbm = random_rbm(6, 8, 4)
    a = ais(rbm, 20, 10, generator=gen(18), progress=True)
    b = ais(rbm, 20, 10, generator=gen(18))
    assert torch.equal(a.log_weights, b.log_weights)
    assert "AIS" in capsys.readouterr().err


def test_ais_diverging_langevin_raises():
    base = el.Gaussian(torch.zeros(2).double(), torch.eye(2).double())
    stiff = lambda x: 1e6 * (x**2).sum(1)  # noqa: E731
    with pytest.raises(el.SamplerDivergedError, match="smaller step_size"):
        ais(stiff, 30, 8, base=base, step_size=5.0, transition="langevin", generator=gen(19))


def test_ais_errors():
    rbm = random_rbm(7, 6, 3)
    base = el.Gaussian(torch.zeros(2), torch.eye(2))
    f = lambda x: (x**2).sum(1)  # noqa: E731
    with pytest.raises(ValueError, match="schedule must be one of"):
        ais(rbm, 10, 5, schedule="cosine")
    with pytest.raises(ValueError, match="increase from beta = 0 to beta = 1"):
        ais(rbm, schedule=torch.tensor([0.0, 0.6, 0.4, 1.0]))
    with pytest.raises(ValueError, match="increase from beta = 0 to beta = 1"):
        ais(rbm, schedule=torch.tensor([0.0, 0.5, 0.9]))
    with pytest.raises(ValueError, match="does not match the schedule"):
        ais(rbm, 7, 5, schedule=torch.linspace(0, 1, 5))
    with pytest.raises(ValueError, match="n_temperatures must be an int >= 2"):
        ais(rbm, 1, 5)
    with pytest.raises(ValueError, match="n_runs"):
        ais(rbm, 10, 0)
    with pytest.raises(ValueError, match="pass init="):
        ais(rbm, 10, 5, reverse=True)
    with pytest.raises(ValueError, match="reverse=True"):
        ais(rbm, 10, 5, init=torch.zeros(5, 6))
    with pytest.raises(ValueError, match="does not match init"):
        ais(rbm, 10, 4, reverse=True, init=torch.zeros(5, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"shape \(n_runs, 6\)"):
        ais(rbm, 10, reverse=True, init=torch.zeros(5, 7, dtype=torch.float64))
    with pytest.raises(ValueError, match="binary"):
        ais(rbm, 10, reverse=True, init=torch.full((5, 6), 0.5, dtype=torch.float64))
    with pytest.raises(ValueError, match="base_visible_bias="):
        ais(rbm, 10, 5, base=base)
    with pytest.raises(ValueError, match=r"base_visible_bias must be a tensor of shape \(6,\)"):
        ais(rbm, 10, 5, base_visible_bias=torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="block Gibbs"):
        ais(rbm, 10, 5, transition="mala")
    with pytest.raises(ValueError, match="needs a normalised base"):
        ais(f, 10, 5)
    with pytest.raises(TypeError, match="sample"):
        ais(f, 10, 5, base="gaussian")
    with pytest.raises(ValueError, match="'mala' or 'langevin'"):
        ais(f, 10, 5, base=base, transition="gibbs")
    with pytest.raises(ValueError, match="step_size"):
        ais(f, 10, 5, base=base, step_size=-0.1)
    with pytest.raises(ValueError, match="event_shape is"):
        ais(el.Gaussian(torch.zeros(3), torch.eye(3)), 10, 5, base=base)
    with pytest.raises(ValueError, match="discrete"):
        ais(el.Ising(4), 10, 5)
    with pytest.raises(ValueError, match="RBMs only"):
        ais(f, 10, 5, base=base, base_visible_bias=torch.zeros(2))
