"""Tests of ebmlab.samplers against independent references.

References: closed forms (ULA's stationary covariance from the discrete Lyapunov
equation, deterministic recursions), exact enumeration of discrete models,
textbook re-implementations of the update rules, and Monte-Carlo comparisons
whose tolerances are stated in standard errors (SE).
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from ebmlab.energies import RBM, BoltzmannMachine, Gaussian, GaussianMixture, Ising
from ebmlab.samplers import (
    ReplayBuffer,
    SamplerDivergedError,
    SamplerResult,
    annealed_langevin,
    gibbs,
    langevin,
    mala,
)
from ebmlab.samplers.driver import CHECK_EVERY, DivergenceMonitor


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Small tensors: threads only add contention on a shared machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


Z = 4.5  # tolerance in standard errors: a false alarm has probability < 1e-5 per comparison

MU = torch.tensor([1.0, -2.0], dtype=torch.float64)
SIGMA = torch.tensor([[2.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
PRECISION = torch.linalg.inv(SIGMA)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def quadratic_energy(x: torch.Tensor) -> torch.Tensor:
    """The Gaussian N(MU, SIGMA) as a plain callable (forces the autograd path)."""
    d = x - MU.to(x.dtype)
    return 0.5 * ((d @ PRECISION.to(x.dtype)) * d).sum(dim=1)


def unit_quadratic(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x.reshape(x.shape[0], -1).square().sum(dim=1)


def ula_stationary_cov(precision: torch.Tensor, eps: float) -> torch.Tensor:
    """Stationary covariance of x' = x - eps P (x - mu) + sqrt(2 eps) xi.

    It solves the discrete Lyapunov equation C = A C A^T + 2 eps I with
    A = I - eps P, by vectorisation: vec C = (I - A kron A)^{-1} vec(2 eps I).
    """
    d = precision.shape[0]
    a = torch.eye(d, dtype=precision.dtype) - eps * precision
    rhs = (2 * eps * torch.eye(d, dtype=precision.dtype)).reshape(-1)
    vec = torch.linalg.solve(torch.eye(d * d, dtype=precision.dtype) - torch.kron(a, a), rhs)
    return vec.reshape(d, d)


def assert_gaussian_moments(x: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> None:
    """Sample mean and covariance of iid rows of ``x`` match a Gaussian's within Z SE."""
    n = x.shape[0]
    se_mean = (cov.diagonal() / n).sqrt()
    assert torch.all((x.mean(0) - mean).abs() < Z * se_mean), (x.mean(0), mean)
    d = x - mean
    emp = d.T @ d / n
    # Var[(x_i - m_i)(x_j - m_j)] = C_ii C_jj + C_ij^2 for a Gaussian
    se_cov = ((cov.diagonal()[:, None] * cov.diagonal()[None, :] + cov**2) / n).sqrt()
    assert torch.all((emp - cov).abs() < Z * se_cov), (emp, cov)


# ----------------------------------------------------------------------------- langevin


@pytest.mark.parametrize("closed_form", [True, False], ids=["closed-form", "autograd"])
def test_ula_stationary_covariance_matches_lyapunov_solution(closed_form: bool) -> None:
    eps = 0.3
    target = Gaussian(MU, SIGMA)
    energy = target if closed_form else quadratic_energy
    x0 = target.sample(20000, generator=gen(1))
    out = langevin(energy, x0, step_size=eps, n_steps=200, generator=gen(2))
    cov = ula_stationary_cov(PRECISION, eps)
    assert_gaussian_moments(out.samples, MU, cov)
    # ... and that bias is real: the covariance is NOT SIGMA at this step size (the SE of
    # the largest variance estimate is about sqrt(2 * 2.2^2 / n) = 0.022)
    assert (cov - SIGMA).abs().max() > 5 * 0.022


def test_ula_small_step_reproduces_gaussian_from_far_away() -> None:
    x0 = torch.zeros(10000, 2, dtype=torch.float64)
    out = langevin(Gaussian(MU, SIGMA), x0, step_size=0.05, n_steps=500, generator=gen(3))
    # the initial offset decays like (1 - eps / 2.44)^500 < 1e-4; the step-size bias of the
    # variances (about eps / 2 = 0.025) is well below Z * SE (0.13 for the largest variance)
    assert_gaussian_moments(out.samples, MU, SIGMA)


@pytest.mark.parametrize("eps", [0.2, 0.5, 1.0])
def test_ula_variance_on_unit_gaussian_is_one_over_one_minus_half_step(eps: float) -> None:
    # x' = (1 - eps) x + sqrt(2 eps) xi  =>  v = (1 - eps)^2 v + 2 eps  =>  v = 1 / (1 - eps/2)
    n = 40000
    x0 = torch.randn(n, 1, generator=gen(4), dtype=torch.float64)
    out = langevin(unit_quadratic, x0, step_size=eps, n_steps=60, generator=gen(5))
    v = 1.0 / (1.0 - eps / 2)
    se = v * math.sqrt(2.0 / n)
    assert abs(float(out.samples.square().mean()) - v) < Z * se


def test_closed_form_and_autograd_paths_give_the_same_chain() -> None:
    x0 = torch.zeros(50, 2, dtype=torch.float64)
    a = langevin(Gaussian(MU, SIGMA), x0, step_size=0.05, n_steps=30, generator=gen(6))
    b = langevin(quadratic_energy, x0, step_size=0.05, n_steps=30, generator=gen(6))
    torch.testing.assert_close(a.samples, b.samples, rtol=1e-10, atol=1e-10)


def test_langevin_step_matches_hand_written_update() -> None:
    x0 = torch.randn(7, 3, generator=gen(7), dtype=torch.float64)
    out = langevin(unit_quadratic, x0, step_size=0.1, n_steps=3, generator=gen(8))
    g, x = gen(8), x0.clone()
    for _ in range(3):
        x = x - 0.1 * x + math.sqrt(0.2) * torch.randn(x.shape, generator=g, dtype=x.dtype)
    torch.testing.assert_close(out.samples, x)


def test_noise_scale_grad_clip_and_bounds() -> None:
    x0 = torch.linspace(-2, 2, 9, dtype=torch.float64).reshape(9, 1)

    def steep(x: torch.Tensor) -> torch.Tensor:
        return 50.0 * x.square().sum(dim=1)  # gradient 100 x

    # noise_scale=0: plain gradient descent with an elementwise-clipped gradient
    out = langevin(steep, x0, step_size=0.01, n_steps=1, noise_scale=0.0, grad_clip=0.5)
    torch.testing.assert_close(out.samples, x0 - 0.01 * (100 * x0).clamp(-0.5, 0.5))
    # decoupled noise: with zero gradient the std of one step is noise_scale
    flat = lambda x: 0.0 * x.sum(dim=1)  # noqa: E731
    out = langevin(flat, torch.zeros(20000, 1), step_size=0.3, n_steps=1, noise_scale=0.05,
                   generator=gen(9))
    assert abs(float(out.samples.std()) - 0.05) < Z * 0.05 / math.sqrt(2 * 20000)
    # bounds: x0 outside is projected, every state stays in the box
    out = langevin(unit_quadratic, x0, step_size=0.5, n_steps=20, bounds=(-0.5, 1.0),
                   record_every=1, generator=gen(10))
    assert out.trajectory is not None
    assert out.trajectory.min() >= -0.5 and out.trajectory.max() <= 1.0
    assert torch.equal(out.trajectory[0], x0.clamp(-0.5, 1.0))
    # per-coordinate tensor bounds
    box = (torch.tensor([-1.0, 0.0]), torch.tensor([0.0, 0.3]))
    out = langevin(unit_quadratic, torch.randn(500, 2, generator=gen(42)) * 3, step_size=0.5,
                   n_steps=5, bounds=box, generator=gen(43))
    assert torch.all(out.samples >= box[0]) and torch.all(out.samples <= box[1])


def test_record_every_shapes_and_content() -> None:
    x0 = torch.randn(5, 2, 3, generator=gen(11))
    out = langevin(unit_quadratic, x0, step_size=0.1, n_steps=10, record_every=3,
                   generator=gen(12))
    assert out.trajectory is not None and out.trajectory.shape == (4, 5, 2, 3)
    assert torch.equal(out.trajectory[0], x0)
    # trajectory[k] is the state after 3k steps: rerun 6 steps with the same seed
    six = langevin(unit_quadratic, x0, step_size=0.1, n_steps=6, generator=gen(12))
    torch.testing.assert_close(out.trajectory[2], six.samples)
    assert langevin(unit_quadratic, x0, step_size=0.1, n_steps=10).trajectory is None
    zero = langevin(unit_quadratic, x0, step_size=0.1, n_steps=0, record_every=1)
    assert torch.equal(zero.samples, x0) and zero.trajectory.shape == (1, 5, 2, 3)


def test_generator_reproducibility_and_independence_of_global_rng() -> None:
    x0 = torch.zeros(64, 2)
    torch.manual_seed(0)
    a = langevin(quadratic_energy, x0, step_size=0.1, n_steps=20, generator=gen(13))
    b_mala = mala(quadratic_energy, x0, step_size=0.1, n_steps=20, generator=gen(13))
    torch.manual_seed(99)
    torch.randn(1000)
    b = langevin(quadratic_energy, x0, step_size=0.1, n_steps=20, generator=gen(13))
    a_mala = mala(quadratic_energy, x0, step_size=0.1, n_steps=20, generator=gen(13))
    assert torch.equal(a.samples, b.samples)
    assert torch.equal(a_mala.samples, b_mala.samples)
    c = langevin(quadratic_energy, x0, step_size=0.1, n_steps=20, generator=gen(14))
    assert not torch.equal(a.samples, c.samples)


def test_dtype_kept_and_no_gradient_reaches_parameters() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 16), nn.SiLU(), nn.Linear(16, 1)).double()
    energy = lambda x: net(x).squeeze(-1)  # noqa: E731
    x0 = torch.randn(10, 2, dtype=torch.float64, requires_grad=True)
    for sampler in (langevin, mala):
        out = sampler(energy, x0, step_size=0.01, n_steps=5, generator=gen(15))
        assert out.samples.dtype == torch.float64 and out.samples.device == x0.device
        assert not out.samples.requires_grad
    assert all(p.grad is None for p in net.parameters())
    assert x0.grad is None


class SquaredNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x.square().sum(dim=1)


def test_module_parameters_frozen_while_sampling_and_restored() -> None:
    module = SquaredNorm()
    seen = []
    original = module.forward
    module.forward = lambda x: (seen.append(module.scale.requires_grad), original(x))[1]
    langevin(module, torch.zeros(3, 2), step_size=0.1, n_steps=3)
    assert seen and not any(seen) and module.scale.requires_grad
    with pytest.raises(SamplerDivergedError):
        langevin(module, torch.ones(3, 2), step_size=5.0, n_steps=500, noise_scale=0.0)
    assert module.scale.requires_grad and module.scale.grad is None


def test_one_energy_evaluation_per_step() -> None:
    calls = []

    def counted(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return unit_quadratic(x)

    langevin(counted, torch.zeros(4, 2), step_size=0.1, n_steps=25)
    assert len(calls) == 25  # the validation call provides step 1's gradient
    calls.clear()
    mala(counted, torch.zeros(4, 2), step_size=0.1, n_steps=25)
    assert len(calls) == 26  # once at x0, then once per proposal (cached state)


# ----------------------------------------------------------------------------- divergence


def test_divergence_raises_and_names_the_step() -> None:
    # noise-free recursion x_t = (1 - 3) x_{t-1} = (-2)^t: float32 overflows at t = 128
    x0 = torch.ones(4, 1)
    with pytest.raises(SamplerDivergedError, match=r"between step \d+ and step \d+.*step_size"
                       ) as info:
        langevin(unit_quadratic, x0, step_size=3.0, n_steps=1000, noise_scale=0.0)
    assert info.value.first_step <= 128 <= info.value.last_step
    assert info.value.last_step - info.value.first_step == CHECK_EVERY - 1
    out = langevin(unit_quadratic, x0, step_size=3.0, n_steps=300, noise_scale=0.0,
                   check_divergence=False)
    assert not torch.isfinite(out.samples).any()


def test_deferred_divergence_check_reports_first_bad_interval() -> None:
    # the accelerator path: flags stay on the device, read once at the end
    x = torch.zeros(3, 2)
    monitor = DivergenceMonitor(x, 50, sampler="test", advice="try a smaller step_size")
    monitor.eager = False
    for t in range(1, 51):
        monitor.check(t, x if t < 25 else x + float("nan"))
    with pytest.raises(SamplerDivergedError, match="between step 21 and step 30 of 50"):
        monitor.finish()


# ----------------------------------------------------------------------------- mala


def test_mala_reproduces_gaussian_mean_and_covariance() -> None:
    out = mala(quadratic_energy, torch.zeros(10000, 2, dtype=torch.float64), step_size=0.5,
               n_steps=300, generator=gen(16))
    assert_gaussian_moments(out.samples, MU, SIGMA)
    assert out.chain_acceptance_rate is not None and out.chain_acceptance_rate.shape == (10000,)
    torch.testing.assert_close(out.acceptance_rate, out.chain_acceptance_rate.mean())


def test_mala_is_unbiased_where_ula_is_not() -> None:
    eps, n = 0.8, 20000
    x0 = torch.randn(n, 1, generator=gen(17), dtype=torch.float64)
    se = math.sqrt(2.0 / n)  # SE of the variance estimate of a unit Gaussian
    exact = mala(unit_quadratic, x0, step_size=eps, n_steps=100, generator=gen(18)).samples
    assert abs(float(exact.square().mean()) - 1.0) < Z * se
    biased = langevin(unit_quadratic, x0, step_size=eps, n_steps=100, generator=gen(18)).samples
    assert abs(float(biased.square().mean()) - 1.0) > 10 * se  # ULA: 1 / (1 - eps/2) = 1.67


def test_mala_acceptance_tends_to_one_as_step_shrinks() -> None:
    x0 = Gaussian(MU, SIGMA).sample(2000, generator=gen(19))
    rates = [float(mala(quadratic_energy, x0, step_size=eps, n_steps=30,
                        generator=gen(20)).acceptance_rate)
             for eps in (3.0, 1.0, 0.3, 0.1, 0.01)]
    assert all(a < b for a, b in itertools.pairwise(rates)), rates
    assert rates[-1] > 0.99 and rates[0] < 0.6, rates


def test_mala_zero_steps() -> None:
    out = mala(unit_quadratic, torch.ones(3, 2), step_size=0.1, n_steps=0)
    assert torch.equal(out.samples, torch.ones(3, 2))
    assert math.isnan(float(out.acceptance_rate))
    assert "SamplerResult" in repr(out)


# ----------------------------------------------------------------------------- annealed


def test_annealed_langevin_recovers_mixture_weights_where_langevin_does_not() -> None:
    # Song & Ermon (2019), Sec. 3.2: p = 0.8 N((-5,-5), I) + 0.2 N((5,5), I)
    mixture = GaussianMixture([[-5.0, -5.0], [5.0, 5.0]], 1.0, [0.8, 0.2])
    n = 2000
    x0 = torch.rand(n, 2, generator=gen(21)) * 16 - 8
    sigmas = torch.logspace(math.log10(20.0), 0.0, 10).tolist()  # 20 -> 1, geometric
    annealed = annealed_langevin(lambda x, s: mixture.smoothed(s).score(x), x0, sigmas,
                                 step_size=0.1, n_steps_per_level=100, generator=gen(22))
    plain = langevin(mixture, x0, step_size=0.05, n_steps=1000, generator=gen(22))
    w_annealed = float((annealed.samples.sum(1) < 0).double().mean())
    w_plain = float((plain.samples.sum(1) < 0).double().mean())
    se = math.sqrt(0.8 * 0.2 / n)
    # annealing freezes the weights at a finite noise level: a small bias (about 0.02
    # measured with 10^4 chains) plus Monte-Carlo error
    assert abs(w_annealed - 0.8) < 0.02 + Z * se, w_annealed
    # plain Langevin keeps the chains in the half-plane where they started (~0.5)
    assert abs(w_plain - 0.8) > 0.2, w_plain


def test_annealed_update_matches_ncsn_algorithm() -> None:
    def smoothed_score(x: torch.Tensor, sigma: float) -> torch.Tensor:
        return -x / (1.0 + sigma**2)  # exact score of N(0, I) * N(0, sigma^2 I)

    x0 = torch.randn(6, 2, generator=gen(23), dtype=torch.float64)
    sigmas, eps, steps = [3.0, 1.5, 0.5], 0.01, 4
    for denoise in (False, True):
        out = annealed_langevin(smoothed_score, x0, sigmas, step_size=eps,
                                n_steps_per_level=steps, denoise=denoise, generator=gen(24))
        # Song & Ermon (2019), Algorithm 1, written out
        g, x = gen(24), x0.clone()
        for sigma in sigmas:
            alpha = eps * sigma**2 / sigmas[-1] ** 2
            for _ in range(steps):
                z = torch.randn(x.shape, generator=g, dtype=x.dtype)
                x = x + alpha / 2 * smoothed_score(x, sigma) + math.sqrt(alpha) * z
        if denoise:
            x = x + sigmas[-1] ** 2 * smoothed_score(x, sigmas[-1])
        torch.testing.assert_close(out.samples, x)


def test_annealed_single_level_is_langevin_with_half_step() -> None:
    target = Gaussian(torch.zeros(2, dtype=torch.float64), 2.0 * torch.eye(2, dtype=torch.float64))
    x0 = torch.zeros(8, 2, dtype=torch.float64)
    out = annealed_langevin(lambda x, s: target.score(x), x0, [0.7], step_size=0.2,
                            n_steps_per_level=10, record_every=5, generator=gen(25))
    ref = langevin(target, x0, step_size=0.1, n_steps=10, generator=gen(25))
    torch.testing.assert_close(out.samples, ref.samples)
    assert out.trajectory is not None and out.trajectory.shape == (3, 8, 2)


def test_annealed_bad_inputs() -> None:
    score = lambda x, s: -x  # noqa: E731
    x0 = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="non-increasing"):
        annealed_langevin(score, x0, [0.1, 1.0], step_size=0.1, n_steps_per_level=2)
    with pytest.raises(ValueError, match="> 0"):
        annealed_langevin(score, x0, [1.0, -0.1], step_size=0.1, n_steps_per_level=2)
    with pytest.raises(ValueError, match="at least one"):
        annealed_langevin(score, x0, [], step_size=0.1, n_steps_per_level=2)
    with pytest.raises(ValueError, match="one-dimensional"):
        annealed_langevin(score, x0, torch.ones(2, 2), step_size=0.1, n_steps_per_level=2)
    with pytest.raises(ValueError, match="shape of x"):
        annealed_langevin(lambda x, s: x.sum(1), x0, [1.0], step_size=0.1, n_steps_per_level=2)
    with pytest.raises(TypeError, match="score must be callable"):
        annealed_langevin(None, x0, [1.0], step_size=0.1, n_steps_per_level=2)
    with pytest.raises(ValueError, match="n_steps_per_level"):
        annealed_langevin(score, x0, [1.0], step_size=0.1, n_steps_per_level=-1)


# ----------------------------------------------------------------------------- gibbs


def enumerate_states(values: tuple[float, float], shape: tuple[int, ...]) -> torch.Tensor:
    n = math.prod(shape)
    bits = torch.tensor(list(itertools.product([0, 1], repeat=n)), dtype=torch.float64)
    return (values[0] + (values[1] - values[0]) * bits).reshape(-1, *shape)


def assert_matches_enumeration(model: nn.Module, samples: torch.Tensor,
                               stats: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Monte-Carlo averages of ``stats`` over iid samples vs the exact law by enumeration."""
    states = enumerate_states(model.support, tuple(model.event_shape))
    with torch.no_grad():
        p = torch.softmax(-model(states), dim=0)
    f = stats(states)
    mean = p @ f
    var = p @ (f - mean) ** 2
    se = (var / samples.shape[0]).sqrt()
    est = stats(samples).mean(0)
    assert torch.all((est - mean).abs() < Z * se + 1e-12), (est, mean, se)


def first_and_second_moments(x: torch.Tensor) -> torch.Tensor:
    x = x.reshape(x.shape[0], -1)
    i, j = torch.triu_indices(x.shape[1], x.shape[1], offset=1)
    return torch.cat([x, x[:, i] * x[:, j]], dim=1)


def test_gibbs_rbm_matches_exact_marginals() -> None:
    rbm = RBM(6, 4, weight_std=1.0, generator=gen(26)).double()
    with torch.no_grad():
        rbm.visible_bias.copy_(torch.randn(6, generator=gen(27), dtype=torch.float64) * 0.5)
        rbm.hidden_bias.copy_(torch.randn(4, generator=gen(28), dtype=torch.float64) * 0.5)
    x0 = torch.zeros(4000, 6, dtype=torch.float64)
    out = gibbs(rbm, x0, 60, generator=gen(29))
    assert_matches_enumeration(rbm, out.samples, first_and_second_moments)


def test_gibbs_boltzmann_machine_matches_exact_marginals() -> None:
    w = torch.randn(7, 7, generator=gen(30), dtype=torch.float64) * 0.8
    w = torch.triu(w, 1) + torch.triu(w, 1).T
    bm = BoltzmannMachine(w, torch.randn(7, generator=gen(31), dtype=torch.float64) * 0.5)
    out = gibbs(bm, torch.ones(4000, 7, dtype=torch.float64), 60, generator=gen(32))
    assert_matches_enumeration(bm, out.samples, first_and_second_moments)


def test_gibbs_ising_matches_exact_marginals() -> None:
    ising = Ising(4, coupling=0.3, field=0.1).double()

    def stats(s: torch.Tensor) -> torch.Tensor:
        nn_corr = (s * torch.roll(s, -1, dims=1) + s * torch.roll(s, -1, dims=2)).mean((1, 2))
        return torch.stack([s.mean((1, 2)), nn_corr, s[:, 0, 0], s[:, 1, 2]], dim=1)

    x0 = -torch.ones(4000, 4, 4, dtype=torch.float64)
    out = gibbs(ising, x0, 60, record_every=20, generator=gen(33))
    assert out.trajectory is not None and out.trajectory.shape == (4, 4000, 4, 4)
    assert_matches_enumeration(ising, out.samples, stats)


def test_gibbs_reproducible_and_bad_inputs() -> None:
    rbm = RBM(5, 3, weight_std=0.5, generator=gen(34))
    x0 = torch.zeros(10, 5)
    a = gibbs(rbm, x0, 5, generator=gen(35)).samples
    torch.manual_seed(3)
    assert torch.equal(a, gibbs(rbm, x0, 5, generator=gen(35)).samples)
    with pytest.raises(TypeError, match="gibbs_step"):
        gibbs(Gaussian(MU, SIGMA), torch.zeros(3, 2), 5)
    with pytest.raises(ValueError, match="values 0 and 1"):
        gibbs(rbm, torch.full((3, 5), 0.5), 5)
    with pytest.raises(ValueError, match=r"shape \(B, 5\)"):
        gibbs(rbm, torch.zeros(3, 4), 5)
    with pytest.raises(TypeError, match="floating-point"):
        gibbs(rbm, torch.zeros(3, 5, dtype=torch.long), 5)


# ----------------------------------------------------------------------------- validation


def test_bad_inputs_raise_clear_errors() -> None:
    x0 = torch.zeros(4, 2)
    with pytest.raises(TypeError, match=r"x0 must be a torch\.Tensor"):
        langevin(unit_quadratic, [[0.0, 0.0]], step_size=0.1, n_steps=2)
    with pytest.raises(ValueError, match="batch axis"):
        langevin(unit_quadratic, torch.tensor(0.0), step_size=0.1, n_steps=2)
    with pytest.raises(TypeError, match="floating-point"):
        langevin(unit_quadratic, torch.zeros(4, 2, dtype=torch.long), step_size=0.1, n_steps=2)
    with pytest.raises(ValueError, match="non-finite"):
        mala(unit_quadratic, torch.full((4, 2), float("nan")), step_size=0.1, n_steps=2)
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="step_size"):
            langevin(unit_quadratic, x0, step_size=bad, n_steps=2)
    with pytest.raises(ValueError, match="n_steps must be an int >= 0"):
        langevin(unit_quadratic, x0, step_size=0.1, n_steps=-1)
    with pytest.raises(TypeError, match="n_steps must be an int"):
        mala(unit_quadratic, x0, step_size=0.1, n_steps=2.5)
    with pytest.raises(ValueError, match="record_every"):
        langevin(unit_quadratic, x0, step_size=0.1, n_steps=2, record_every=0)
    with pytest.raises(ValueError, match=r"energies of shape \(4,\)"):
        langevin(lambda x: x, x0, step_size=0.1, n_steps=2)
    with pytest.raises(TypeError, match="differentiabl"):
        mala(lambda x: torch.zeros(x.shape[0]), x0, step_size=0.1, n_steps=2)
    with pytest.raises(TypeError, match="energy must be callable"):
        langevin("quadratic", x0, step_size=0.1, n_steps=2)
    with pytest.raises(ValueError, match="low < high"):
        langevin(unit_quadratic, x0, step_size=0.1, n_steps=2, bounds=(1.0, -1.0))
    with pytest.raises(ValueError, match="does not broadcast"):
        langevin(unit_quadratic, x0, step_size=0.1, n_steps=2, bounds=(-1.0, torch.ones(3)))
    with pytest.raises(ValueError, match="pair"):
        langevin(unit_quadratic, x0, step_size=0.1, n_steps=2, bounds=(1.0,))
    with pytest.raises(ValueError, match="noise_scale"):
        langevin(unit_quadratic, x0, step_size=0.1, n_steps=2, noise_scale=-0.1)
    with pytest.raises(ValueError, match="grad_clip"):
        langevin(unit_quadratic, x0, step_size=0.1, n_steps=2, grad_clip=0.0)
    if torch.device("meta").type == "meta":  # mismatched devices, without needing a GPU
        net = nn.Linear(2, 1).to("meta")
        with pytest.raises(ValueError, match="lives on meta but x0 is on cpu"):
            langevin(net, x0, step_size=0.1, n_steps=2)


# ----------------------------------------------------------------------------- replay buffer


def uniform_init(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.rand(n, 2, generator=generator) * 2 - 1


def test_replay_buffer_reinit_fraction_and_write_back() -> None:
    buf = ReplayBuffer(500, uniform_init, reinit_prob=0.2)
    assert len(buf) == 500 and buf.data.shape == (500, 2)
    buf.update(torch.arange(500), torch.full((500, 2), 7.0))  # mark every slot
    n = 20000
    x, idx = buf.sample(n, generator=gen(36))
    fresh = (x != 7.0).all(dim=1).double().mean()
    assert abs(float(fresh) - 0.2) < Z * math.sqrt(0.2 * 0.8 / n)
    assert idx.shape == (n,) and idx.min() >= 0 and idx.max() < 500
    assert torch.all(x[(x != 7.0).all(dim=1)].abs() <= 1.0)  # fresh states come from init
    x, idx = buf.sample(8, generator=gen(37))
    buf.update(idx, x + 100.0)
    assert torch.equal(buf.data[idx], x + 100.0)
    # the initial fill is reproducible from a generator
    a = ReplayBuffer(50, uniform_init, generator=gen(41)).data
    assert torch.equal(a, ReplayBuffer(50, uniform_init, generator=gen(41)).data)
    assert torch.equal(a, uniform_init(50, generator=gen(41)))


def test_replay_buffer_tensor_init_and_state_dict_round_trip() -> None:
    pool = torch.arange(300, dtype=torch.float64).reshape(100, 3)
    buf = ReplayBuffer(100, pool, reinit_prob=1.0)
    x, _ = buf.sample(50, generator=gen(38))
    assert all(any(torch.equal(row, p) for p in pool) for row in x)  # fresh = rows of init
    buf.reinit_prob = 0.3
    x, idx = buf.sample(20, generator=gen(39))
    buf.update(idx, -x)
    blob = io.BytesIO()
    torch.save(buf.state_dict(), blob)
    blob.seek(0)
    other = ReplayBuffer(100, torch.zeros(100, 3, dtype=torch.float64))
    other.load_state_dict(torch.load(blob))
    assert torch.equal(other.data, buf.data) and other.reinit_prob == 0.3
    a, ia = buf.sample(30, generator=gen(40))
    b, ib = other.sample(30, generator=gen(40))
    assert torch.equal(a, b) and torch.equal(ia, ib)


def test_replay_buffer_bad_inputs() -> None:
    with pytest.raises(ValueError, match="capacity must be an int >= 1"):
        ReplayBuffer(0, uniform_init)
    with pytest.raises(ValueError, match="reinit_prob"):
        ReplayBuffer(10, uniform_init, reinit_prob=1.5)
    with pytest.raises(ValueError, match=r"capacity=10 states"):
        ReplayBuffer(10, torch.zeros(5, 2))
    with pytest.raises(TypeError, match="init must be a callable"):
        ReplayBuffer(10, 3.0)
    with pytest.raises(ValueError, match=r"init\(n\) must return"):
        ReplayBuffer(10, lambda n: torch.zeros(n + 1, 2))
    buf = ReplayBuffer(10, uniform_init)
    with pytest.raises(ValueError, match="idx names"):
        buf.update(torch.arange(3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"shape \(B, 2\)"):
        buf.update(torch.arange(2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="states of shape"):
        buf.load_state_dict({"capacity": 10, "reinit_prob": 0.1, "data": torch.zeros(10, 3)})


def test_sampler_result_fields_progress_and_top_level_names() -> None:
    import ebmlab

    out = langevin(unit_quadratic, torch.zeros(2, 2), step_size=0.1, n_steps=1)
    assert isinstance(out, SamplerResult)
    assert out.acceptance_rate is None and out.trajectory is None
    with_bar = langevin(unit_quadratic, torch.zeros(2, 2), step_size=0.1, n_steps=3,
                        progress=True, generator=gen(44))
    without = langevin(unit_quadratic, torch.zeros(2, 2), step_size=0.1, n_steps=3,
                       generator=gen(44))
    assert torch.equal(with_bar.samples, without.samples)
    for name in ("langevin", "mala", "annealed_langevin", "gibbs", "ReplayBuffer",
                 "SamplerResult", "SamplerDivergedError"):
        assert getattr(ebmlab, name) is getattr(ebmlab.samplers, name)


# ----------------------------------------------------------------------------- kernels


def test_langevin_kernel_step_is_pure_and_is_the_langevin_update() -> None:
    from ebmlab.samplers import LangevinKernel, LangevinState

    x = torch.randn(5, 2, generator=gen(50))
    kernel = LangevinKernel(lambda y: -y, step_size=0.1, noise_scale=0.3, grad_clip=0.5,
                            bounds=(torch.tensor(-1.0), torch.tensor(1.0)))
    state = LangevinState(x.clone())
    new = kernel.step(state, gen(51))
    assert torch.equal(state.position, x)  # the old state is left alone
    noise = torch.randn(5, 2, generator=gen(51))
    expected = (x + 0.1 * (-x).clamp(-0.5, 0.5) + 0.3 * noise).clamp(-1.0, 1.0)
    torch.testing.assert_close(new.position, expected)


def test_mala_kernel_caches_energy_and_score_of_its_state() -> None:
    from ebmlab.samplers import MALAKernel

    kernel = MALAKernel(unit_quadratic, step_size=0.5)
    state = kernel.init(torch.randn(64, 2, generator=gen(52)))
    for _ in range(5):
        state = kernel.step(state, gen(53))
        torch.testing.assert_close(state.energy, unit_quadratic(state.position))
        torch.testing.assert_close(state.score, -state.position)
    assert 0 < int(state.n_accepted.sum()) < 5 * 64


def test_gibbs_kernel_is_the_models_sweep_and_run_chain_records_it() -> None:
    from ebmlab.samplers import GibbsKernel, run_chain

    rbm = RBM(5, 3, weight_std=1.0, generator=gen(54))
    kernel = GibbsKernel(rbm)
    x0 = rbm.random_state(4, generator=gen(55))
    run = run_chain(kernel.init(x0), [(kernel, 6)], generator=gen(56), record_every=2)
    g = gen(56)
    x = x0
    for t in range(1, 7):
        x = rbm.gibbs_step(x, generator=g)
        if t % 2 == 0:
            assert torch.equal(run.trajectory[t // 2], x)
    assert torch.equal(run.state.position, x) and torch.equal(run.trajectory[0], x0)
