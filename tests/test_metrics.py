"""Tests of ebmlab.metrics against independent references.

References: brute-force enumeration in the test (log-likelihoods), torch.distributions
(Gaussian log-densities), closed-form KL and Fisher divergences between Gaussians, the
closed-form population MMD² of two Gaussians under a Gaussian kernel, explicit double
loops (MMD, nearest centers). Monte-Carlo comparisons use 5 standard errors.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import ebmlab.partition as partition
from ebmlab import metrics
from ebmlab.energies import RBM, BoltzmannMachine, Gaussian

DT = torch.float64


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _all_binary(d: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product((0.0, 1.0), repeat=d)), dtype=DT)


def _rbm(n_v: int = 6, n_h: int = 4, seed: int = 1) -> RBM:
    rbm = RBM(n_v, n_h, weight_std=1.0, generator=_g(seed))
    with torch.no_grad():
        rbm.visible_bias.copy_(torch.randn(n_v, generator=_g(seed + 1)) * 0.5)
        rbm.hidden_bias.copy_(torch.randn(n_h, generator=_g(seed + 2)) * 0.5)
    return rbm


def _brute_ll(model, x: torch.Tensor) -> torch.Tensor:
    """Per-example log p by enumerating every visible state with the model in float64."""
    m = model.double() if hasattr(model, "double") else model
    states = _all_binary(x.shape[1])
    with torch.no_grad():
        return -m(x.double()) - torch.logsumexp(-m(states), 0)


# ---------------------------------------------------------------------------- likelihoods


def test_log_likelihood_matches_enumeration_for_rbm_and_boltzmann_machine():
    rbm = _rbm()
    x = torch.bernoulli(torch.full((20, 6), 0.3), generator=_g(5))
    ll = metrics.log_likelihood(rbm, x)
    per = metrics.log_likelihood(rbm, x, reduction="none")
    assert ll.dtype == DT and ll.shape == () and per.shape == (20,)
    assert not ll.requires_grad
    ref = _brute_ll(_rbm(), x)  # a float64 copy of the same weights
    torch.testing.assert_close(per, ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ll, ref.mean(), rtol=1e-6, atol=1e-6)
    # integer binary data is accepted
    torch.testing.assert_close(metrics.log_likelihood(rbm, x.long()), ll)

    w = torch.randn(5, 5, generator=_g(6), dtype=DT)
    w = (w + w.T) / 2
    w.fill_diagonal_(0)
    bm = BoltzmannMachine(w, torch.randn(5, generator=_g(7), dtype=DT))
    xb = _all_binary(5)[::3]
    torch.testing.assert_close(metrics.log_likelihood(bm, xb), _brute_ll(bm, xb).mean())
    # probabilities of all states sum to one
    p = metrics.log_likelihood(bm, _all_binary(5), reduction="none").exp().sum()
    torch.testing.assert_close(p, torch.tensor(1.0, dtype=DT))


def test_log_likelihood_of_a_gaussian_and_with_explicit_log_partition():
    mean = torch.tensor([1.0, 0.0], dtype=DT)
    cov = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=DT)
    x = torch.randn(7, 2, generator=_g(), dtype=DT)
    ref = torch.distributions.MultivariateNormal(mean, cov).log_prob(x)
    gauss = Gaussian(mean, cov)
    torch.testing.assert_close(metrics.log_likelihood(gauss, x, reduction="none"), ref)
    plain = lambda y: gauss(y)  # noqa: E731
    torch.testing.assert_close(metrics.log_likelihood(plain, x, gauss.log_partition()),
                               ref.mean())


def test_log_likelihood_errors():
    rbm = _rbm()
    with pytest.raises(ValueError, match="only the values 0 and 1"):
        metrics.log_likelihood(rbm, torch.full((2, 6), 0.5))
    with pytest.raises(ValueError, match="reduction must be"):
        metrics.log_likelihood(rbm, torch.zeros(2, 6), reduction="sum")
    with pytest.raises(ValueError, match="log Z"):
        metrics.log_likelihood(lambda y: y.sum(1), torch.zeros(2, 6))


def test_ais_log_likelihood_agrees_with_exact_within_its_error():
    rbm = _rbm(8, 6, seed=3)
    x = torch.bernoulli(torch.full((30, 8), 0.4), generator=_g(8))
    exact = metrics.log_likelihood(rbm, x)
    est = metrics.ais_log_likelihood(rbm, x, n_temperatures=300, n_runs=200, generator=_g(9))
    mean, se = est
    assert mean.dtype == DT and float(se) > 0
    # forward AIS: log Ẑ is a stochastic lower bound, so the estimate is unbiased only up to a
    # small upward bias; allow 5 standard errors plus 0.05 nats
    assert abs(float(mean) - float(exact)) < 5 * float(se) + 0.05, (est, float(exact))
    assert float(est) == float(mean)
    assert "log-likelihood" in repr(est) and "AIS" in repr(est)
    torch.testing.assert_close(mean, (-rbm(x).double()).mean() - est.log_partition.log_z,
                               rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="reverse"):
        metrics.ais_log_likelihood(rbm, x, reverse=True)


# ---------------------------------------------------------------------------- divergences


def _kl_gauss(m0, s0, m1, s1) -> float:
    p1 = torch.linalg.inv(s1)
    dm = m1 - m0
    return float(0.5 * (torch.trace(p1 @ s0) + dm @ p1 @ dm - m0.numel()
                        + torch.logdet(s1) - torch.logdet(s0)))


def test_kl_divergence_grid_matches_closed_form_between_gaussians():
    m0, s0 = torch.tensor([0.0, 0.5], dtype=DT), torch.tensor([[1.0, 0.3], [0.3, 0.7]], dtype=DT)
    m1, s1 = torch.tensor([0.5, -0.2], dtype=DT), torch.tensor([[1.5, -0.2], [-0.2, 1.0]],
                                                                dtype=DT)
    p, q = Gaussian(m0, s0), Gaussian(m1, s1)
    bounds = ((-7.0, 7.0), (-7.0, 7.0))
    kl = metrics.kl_divergence_grid(p, q, bounds, 300)
    assert kl.dtype == DT
    assert abs(float(kl) - _kl_gauss(m0, s0, m1, s1)) < 1e-4
    rev = metrics.kl_divergence_grid(q, p, bounds, (300, 280))
    assert abs(float(rev) - _kl_gauss(m1, s1, m0, s0)) < 1e-4
    # energies need not be normalised; KL(p||p) = 0
    shifted = lambda y: p(y) + 123.0  # noqa: E731
    assert float(metrics.kl_divergence_grid(p, shifted, bounds, 50)) < 1e-12


def test_fisher_divergence_matches_closed_form():
    m0, s0 = torch.tensor([0.0, 1.0], dtype=DT), torch.tensor([[1.0, 0.4], [0.4, 0.8]], dtype=DT)
    m1, s1 = torch.tensor([1.0, -1.0], dtype=DT), torch.tensor([[2.0, 0.0], [0.0, 0.5]], dtype=DT)
    p, q = Gaussian(m0, s0), Gaussian(m1, s1)
    x = p.sample(20000, generator=_g(2))
    # s_p - s_q = A x + b with A = P1 - P0, b = P0 m0 - P1 m1
    p0, p1 = torch.linalg.inv(s0), torch.linalg.inv(s1)
    a, b = p1 - p0, p0 @ m0 - p1 @ m1
    ref = 0.5 * (torch.trace(a @ s0 @ a.T) + (a @ m0 + b).square().sum())
    value, se = metrics.fisher_divergence(p.score, q.score, x, return_stderr=True)
    assert abs(float(value - ref)) < 5 * float(se)
    # energies are accepted too (score by autograd)
    torch.testing.assert_close(metrics.fisher_divergence(p, q, x), value)
    assert float(metrics.fisher_divergence(p.score, p, x)) < 1e-20
    with pytest.raises(ValueError, match="expected a score"):
        metrics.fisher_divergence(lambda y: y[:, :1], q.score, x)


# ---------------------------------------------------------------------------- MMD


def _population_mmd2(shift: float, s: float, h: float, d: int) -> float:
    """MMD² of N(0, s²I) and N(shift·1/√d, s²I) under exp(-|a-b|²/2h²)."""
    c = (h**2 / (h**2 + 2 * s**2)) ** (d / 2)
    return 2 * c * (1 - math.exp(-(shift**2) / (2 * (h**2 + 2 * s**2))))


def test_mmd_is_unbiased_for_same_and_different_distributions():
    d, h, m, reps = 2, 1.0, 8, 400
    g = _g(3)
    for shift in (0.0, 1.0):
        vals, biased = [], []
        for _ in range(reps):
            x = torch.randn(m, d, generator=g, dtype=DT)
            y = torch.randn(m, d, generator=g, dtype=DT) + shift / math.sqrt(d)
            vals.append(metrics.mmd(x, y, bandwidth=h))
            k = lambda a, b: torch.exp(-torch.cdist(a, b).square() / (2 * h**2))  # noqa: E731
            biased.append(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
        v = torch.stack(vals)
        se = float(v.std()) / math.sqrt(reps)
        target = _population_mmd2(shift, 1.0, h, d)
        assert abs(float(v.mean()) - target) < 5 * se, (shift, float(v.mean()), target, se)
        # the V-statistic (diagonal included) is visibly biased at this sample size
        assert float(torch.stack(biased).mean()) - target > 5 * se
    assert float(v.mean()) > 0.1


def test_mmd_matches_a_double_loop_and_the_median_heuristic():
    x = torch.randn(6, 3, generator=_g(4), dtype=DT)
    y = torch.randn(5, 3, generator=_g(5), dtype=DT) + 0.5
    z = torch.cat([x, y])
    dists = [float((z[i] - z[j]).norm()) for i in range(len(z)) for j in range(i + 1, len(z))]
    h = sorted(dists)[len(dists) // 2]  # odd number of pairs (55): the median

    def k(a, b):
        return math.exp(-float((a - b).square().sum()) / (2 * h**2))

    kxx = sum(k(x[i], x[j]) for i in range(6) for j in range(6) if i != j) / 30
    kyy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
    kxy = sum(k(x[i], y[j]) for i in range(6) for j in range(5)) / 30
    ref = kxx + kyy - 2 * kxy
    assert abs(float(metrics.mmd(x, y)) - ref) < 1e-10
    assert abs(float(metrics.mmd(x, y, bandwidth=h)) - ref) < 1e-10
    # image-shaped samples are flattened
    assert abs(float(metrics.mmd(x.reshape(6, 3, 1), y.reshape(5, 3, 1))) - ref) < 1e-10


def test_mmd_errors():
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.mmd(torch.zeros(1, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="same event shape"):
        metrics.mmd(torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="bandwidth must be > 0"):
        metrics.mmd(torch.zeros(3, 2), torch.ones(3, 2), bandwidth=0.0)
    with pytest.raises(ValueError, match="non-finite"):
        metrics.mmd(torch.tensor([[0.0, float("nan")], [0.0, 0.0]]), torch.zeros(3, 2))


# ---------------------------------------------------------------------------- modes and ESS


def test_mode_weights_counts_nearest_centers_with_binomial_errors():
    centers = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    x = torch.randn(1000, 2, generator=_g(6)) * 0.3
    x[:700] += centers[1]
    x[700:900] += centers[2]
    w, se = metrics.mode_weights(x, centers)
    # explicit loop reference
    counts = [0, 0, 0]
    for row in x:
        counts[int(min(range(3), key=lambda k: float((row - centers[k]).norm())))] += 1
    assert w.tolist() == [c / 1000 for c in counts]
    torch.testing.assert_close(se, (w * (1 - w) / 1000).sqrt())
    assert w.dtype == DT and se.shape == (3,)
    far = torch.cat([x, torch.tensor([[50.0, 50.0]])])
    w2, _ = metrics.mode_weights(far, centers, max_distance=5.0)
    assert abs(float(w2.sum()) - 1000 / 1001) < 1e-12
    with pytest.raises(ValueError, match="centers must have shape"):
        metrics.mode_weights(x, torch.zeros(3, 3))


def test_mode_weights_recover_mixture_weights_from_data():
    from ebmlab.data import two_gaussians

    x = two_gaussians(4000, generator=_g(7))
    w, se = metrics.mode_weights(x, [[5.0, 5.0], [-5.0, -5.0]])
    assert bool(((w - torch.tensor([0.8, 0.2], dtype=DT)).abs() < 5 * se).all())


def test_effective_sample_size_is_partitions():
    assert metrics.effective_sample_size is partition.effective_sample_size
    assert abs(float(metrics.effective_sample_size(torch.zeros(50))) - 50) < 1e-9
    lw = torch.tensor([0.0, -100.0, -100.0])
    assert abs(float(metrics.effective_sample_size(lw)) - 1.0) < 1e-9
    lw = torch.log(torch.tensor([1.0, 2.0, 3.0], dtype=DT))
    assert abs(float(metrics.effective_sample_size(lw)) - 36 / 14) < 1e-12


def test_kl_grid_errors():
    e = lambda y: y.square().sum(1)  # noqa: E731
    with pytest.raises(ValueError, match="bounds must be"):
        metrics.kl_divergence_grid(e, e, ((0, 1),), 10)
    with pytest.raises(ValueError, match="min < max"):
        metrics.kl_divergence_grid(e, e, ((1, 0), (0, 1)), 10)
    with pytest.raises(ValueError, match="resolution must be an int >= 2"):
        metrics.kl_divergence_grid(e, e, ((0, 1), (0, 1)), 1)
