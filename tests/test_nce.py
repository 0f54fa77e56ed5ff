r"""Tests of :func:`ebmlab.objectives.nce_loss` against independent references.

References: the NCE objective written out with explicit sigmoids
:math:`h(u) = 1/(1 + \nu e^{-G(u)})` in float64 (Gutmann & Hyvärinen 2012, eq. 4-5);
the chance-level value :math:`(1+\nu)\log(1+\nu) - \nu\log\nu` when the model equals the
noise; the large-energy asymptote of the logistic loss; and, for the recovery of a
Gaussian, the true parameters with a tolerance of five asymptotic standard errors, the
standard errors taken from the covariance of Theorem 3 of Gutmann & Hyvärinen (2012),
evaluated by Monte Carlo with the true densities.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import ebmlab
from ebmlab.objectives import nce_loss

DT = torch.float64


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _normal_log_prob(mean: torch.Tensor, cov: torch.Tensor):
    dist = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)
    return dist.log_prob


class QuadraticEnergy(nn.Module):
    r""":math:`E(x) = \tfrac12 (x-\mu)^\top L L^\top (x-\mu) + b^\top x + c`, all free."""

    def __init__(self, d: int, seed: int):
        super().__init__()
        g = _g(seed)
        self.mu = nn.Parameter(torch.randn(d, generator=g, dtype=DT))
        self.factor = nn.Parameter(torch.eye(d, dtype=DT)
                                   + 0.3 * torch.randn(d, d, generator=g, dtype=DT))
        self.b = nn.Parameter(0.5 * torch.randn(d, generator=g, dtype=DT))
        self.c = nn.Parameter(torch.randn((), generator=g, dtype=DT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = (x - self.mu) @ self.factor
        return 0.5 * y.square().sum(1) + x @ self.b + self.c


def _hand_nce(energy, x, y, log_pn) -> torch.Tensor:
    """Gutmann & Hyvärinen (2012), eq. (4)-(5), with explicit sigmoids (no log-sum-exp)."""
    nu = y.shape[0] / x.shape[0]

    def h(u):
        log_ratio = -energy(u) - log_pn(u)          # G(u) = ln p_m(u) - ln p_n(u)
        return 1.0 / (1.0 + nu * torch.exp(-log_ratio))

    total = torch.log(h(x)).sum() + torch.log(1.0 - h(y)).sum()
    return -total / x.shape[0]


# ------------------------------------------------------------------ the loss itself


@pytest.mark.parametrize(("n_data", "n_noise"), [(6, 3), (5, 5), (4, 12), (3, 30)])
def test_matches_hand_computation_and_its_gradient(n_data, n_noise):
    d = 3
    model = QuadraticEnergy(d, seed=n_noise)
    noise_cov = 2.0 * torch.eye(d, dtype=DT)
    log_pn = _normal_log_prob(torch.zeros(d, dtype=DT), noise_cov)
    g = _g(n_data)
    x = torch.randn(n_data, d, generator=g, dtype=DT) + 0.5
    y = math.sqrt(2.0) * torch.randn(n_noise, d, generator=g, dtype=DT)

    loss = nce_loss(model, x, y, log_pn)
    expected = _hand_nce(model, x, y, log_pn)
    assert loss.shape == ()
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    params = list(model.parameters())
    grads = torch.autograd.grad(loss, params)
    grads_expected = torch.autograd.grad(expected, params)
    for a, b in zip(grads, grads_expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_validate_false_gives_the_same_value():
    model = QuadraticEnergy(2, seed=1)
    log_pn = _normal_log_prob(torch.zeros(2, dtype=DT), torch.eye(2, dtype=DT))
    x, y = torch.randn(7, 2, dtype=DT, generator=_g(1)), torch.randn(9, 2, dtype=DT,
                                                                      generator=_g(2))
    with torch.no_grad():
        assert float(nce_loss(model, x, y, log_pn)) == float(
            nce_loss(model, x, y, log_pn, validate=False))


@pytest.mark.parametrize("nu", [0.25, 1.0, 3.0, 10.0])
def test_chance_level_when_the_model_is_the_noise(nu):
    # G = 0 everywhere: loss = log(1+nu) + nu log(1 + 1/nu) = (1+nu)log(1+nu) - nu log nu.
    n_data = 40
    n_noise = int(nu * n_data)
    log_pn = _normal_log_prob(torch.tensor([1.0, -1.0], dtype=DT),
                              torch.tensor([[2.0, 0.3], [0.3, 1.0]], dtype=DT))
    x = torch.randn(n_data, 2, dtype=DT, generator=_g(3))
    y = torch.randn(n_noise, 2, dtype=DT, generator=_g(4))
    loss = nce_loss(lambda u: -log_pn(u), x, y, log_pn)
    expected = (1 + nu) * math.log1p(nu) - nu * math.log(nu)
    assert float(loss) == pytest.approx(expected, rel=1e-12)


def test_is_the_mean_binary_cross_entropy_per_data_point():
    model = QuadraticEnergy(2, seed=5)
    log_pn = _normal_log_prob(torch.zeros(2, dtype=DT), 3.0 * torch.eye(2, dtype=DT))
    x = torch.randn(10, 2, dtype=DT, generator=_g(5))
    y = torch.randn(25, 2, dtype=DT, generator=_g(6))
    u = torch.cat([x, y])
    logits = -model(u) - log_pn(u) - math.log(25 / 10)
    labels = torch.cat([torch.ones(10, dtype=DT), torch.zeros(25, dtype=DT)])
    bce = nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="sum")
    torch.testing.assert_close(nce_loss(model, x, y, log_pn), bce / 10, rtol=1e-12, atol=0)


@pytest.mark.parametrize("offset", [1e4, -1e4])
def test_stable_for_huge_energies(offset):
    # Explicit sigmoids overflow here; the logistic loss has a linear asymptote instead.
    log_pn = _normal_log_prob(torch.zeros(2, dtype=DT), torch.eye(2, dtype=DT))
    c = torch.tensor(offset, dtype=DT, requires_grad=True)
    x = torch.randn(8, 2, dtype=DT, generator=_g(7))
    y = torch.randn(16, 2, dtype=DT, generator=_g(8))
    loss = nce_loss(lambda u: 0.5 * u.square().sum(1) + c, x, y, log_pn)
    (grad,) = torch.autograd.grad(loss, c)
    nu = 2.0
    if offset > 0:   # every point called noise: the data pay E + log p_n + log nu each
        expected = (0.5 * x.square().sum(1) + offset + log_pn(x) + math.log(nu)).mean()
        expected_grad = 1.0
    else:            # every point called data: each noise sample pays its -logit
        logit = -(0.5 * y.square().sum(1) + offset) - log_pn(y) - math.log(nu)
        expected = logit.sum() / x.shape[0]
        expected_grad = -nu
    assert torch.isfinite(loss)
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-12)
    assert float(grad) == pytest.approx(expected_grad, rel=1e-9)


def test_differentiable_in_both_batches():
    # Gradients reach the noise samples too (a reparameterised, learned noise needs them).
    model = QuadraticEnergy(2, seed=9)
    log_pn = _normal_log_prob(torch.zeros(2, dtype=DT), 2.0 * torch.eye(2, dtype=DT))
    x = torch.randn(4, 2, dtype=DT, generator=_g(9), requires_grad=True)
    y = torch.randn(6, 2, dtype=DT, generator=_g(10), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: nce_loss(model, a, b, log_pn), (x, y))


def test_exported():
    assert ebmlab.nce_loss is nce_loss
    assert ebmlab.objectives.nce_loss is nce_loss


# ------------------------------------------------------------------ recovery of a Gaussian


class CholeskyGaussian(nn.Module):
    r""":math:`E_\theta(x) = \tfrac12 (x-\mu)^\top L L^\top (x-\mu) + c`: a Gaussian whose
    log-normaliser :math:`c` is a free parameter. :math:`L` is lower triangular with a
    positive diagonal ``exp(log_diag)``, so the parameters are identifiable."""

    def __init__(self, d: int):
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(d, dtype=DT))
        self.log_diag = nn.Parameter(torch.zeros(d, dtype=DT))
        self.off_diag = nn.Parameter(torch.zeros(d * (d - 1) // 2, dtype=DT))
        self.c = nn.Parameter(torch.zeros((), dtype=DT))

    def flat(self) -> torch.Tensor:
        return torch.cat([self.mu, self.log_diag, self.off_diag, self.c[None]]).detach()

    @staticmethod
    def log_density(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """:math:`-E_\\theta(x)` as a function of the flat parameter vector."""
        d = x.shape[1]
        mu, log_diag = theta[:d], theta[d:2 * d]
        off, c = theta[2 * d:-1], theta[-1]
        rows, cols = torch.tril_indices(d, d, offset=-1)
        lower = torch.diag(log_diag.exp()).index_put((rows, cols), off)
        y = (x - mu) @ lower
        return -0.5 * y.square().sum(1) - c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = torch.cat([self.mu, self.log_diag, self.off_diag, self.c[None]])
        return -self.log_density(theta, x)


def _true_theta(mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    d = mean.shape[0]
    lower = torch.linalg.cholesky(torch.linalg.inv(cov))   # Λ = L Lᵀ, L lower triangular
    rows, cols = torch.tril_indices(d, d, offset=-1)
    log_z = 0.5 * d * math.log(2 * math.pi) + 0.5 * torch.logdet(cov)
    return torch.cat([mean, lower.diagonal().log(), lower[rows, cols], log_z[None]])


def _nce_asymptotic_cov(theta, x_big, log_pd, log_pn, nu) -> torch.Tensor:
    r"""Theorem 3 of Gutmann & Hyvärinen (2012): :math:`\sqrt{T_d}(\hat\theta - \theta^*)
    \to \mathcal N(0, \Sigma)` with :math:`\Sigma = I_\nu^{-1} - (1 + 1/\nu)\, I_\nu^{-1}
    m m^\top I_\nu^{-1}`, :math:`m = \mathbb E_d[P_\nu g]`, :math:`I_\nu = \mathbb E_d[P_\nu g
    g^\top]`, :math:`P_\nu = \nu p_n/(p_d + \nu p_n)`, :math:`g = \nabla_\theta \log p_m`.
    The expectations are Monte-Carlo averages over a large sample of the data density."""
    def log_density_one(th: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return CholeskyGaussian.log_density(th, x[None])[0]

    per_sample_grad = torch.func.vmap(torch.func.grad(log_density_one), in_dims=(None, 0))
    scores = per_sample_grad(theta, x_big)                                      # (N, P)
    weight = torch.sigmoid(math.log(nu) + log_pn(x_big) - log_pd(x_big))       # P_ν
    m = (weight[:, None] * scores).mean(0)
    info = (weight[:, None, None] * scores[:, :, None] * scores[:, None, :]).mean(0)
    info_inv = torch.linalg.inv(info)
    return info_inv - (1 + 1 / nu) * info_inv @ torch.outer(m, m) @ info_inv


@pytest.mark.parametrize("nu", [1, 4])
def test_recovers_gaussian_parameters_and_log_z(nu):
    """NCE with a wider Gaussian noise recovers μ, Λ and c = log Z within 5 standard errors.

    The tolerance comes from the sample size: the asymptotic covariance of the NCE
    estimator divided by T_d = 20 000 data points (T_n = ν T_d noise samples).
    """
    mean = torch.tensor([1.0, -0.5], dtype=DT)
    cov = torch.tensor([[1.5, 0.6], [0.6, 0.8]], dtype=DT)
    noise_mean = torch.tensor([0.5, 0.0], dtype=DT)
    noise_cov = 4.0 * torch.eye(2, dtype=DT)
    log_pd, log_pn = _normal_log_prob(mean, cov), _normal_log_prob(noise_mean, noise_cov)
    data_dist = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)
    noise_dist = torch.distributions.MultivariateNormal(noise_mean, covariance_matrix=noise_cov)

    n_data = 20_000
    torch.manual_seed(11 + nu)
    x = data_dist.sample((n_data,))
    y = noise_dist.sample((nu * n_data,))

    model = CholeskyGaussian(2)
    with torch.no_grad():
        model.log_diag.fill_(-0.5)   # start away from the truth
        model.c.fill_(1.0)
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=500, tolerance_grad=1e-10,
                            tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nce_loss(model, x, y, log_pn)
        loss.backward()
        return loss

    opt.step(closure)
    grad_norm = torch.cat([p.grad.flatten() for p in model.parameters()]).abs().max()
    assert float(grad_norm) < 1e-7          # at the minimiser of the empirical loss

    truth = _true_theta(mean, cov)
    torch.manual_seed(99)
    x_big = data_dist.sample((400_000,))
    sigma = _nce_asymptotic_cov(truth, x_big, log_pd, log_pn, nu)
    stderr = (sigma.diagonal() / n_data).sqrt()
    assert float(stderr[-1]) < 0.03          # the tolerance on log Z is tight
    error = (model.flat() - truth).abs()
    assert bool((error < 5 * stderr).all()), (error / stderr).tolist()
    # The learned log-normaliser is log Z of the true density.
    true_log_z = math.log(2 * math.pi) + 0.5 * math.log(float(torch.det(cov)))
    assert abs(model.c.item() - true_log_z) < 5 * float(stderr[-1])


@pytest.mark.parametrize("nu", [0.25, 1.0, 4.0, 16.0])
def test_log_normaliser_alone_for_every_noise_ratio(nu):
    r"""With the shape known, NCE's c recovers log Z for ν below and above 1.

    For the single parameter c the covariance of Theorem 3 is
    :math:`1/\mathbb E_d[P_\nu] - 1 - 1/\nu` (here :math:`g = -1`), evaluated by quadrature;
    the tolerance is five of its standard errors. Dropping the :math:`\log\nu` of the
    log-odds would shift c by :math:`|\log\nu| \ge 1.39`, far outside it.
    """
    n_data = 20_000
    n_noise = int(nu * n_data)
    log_pn = _normal_log_prob(torch.zeros(1, dtype=DT), 4.0 * torch.ones(1, 1, dtype=DT))
    x = torch.randn(n_data, 1, dtype=DT, generator=_g(12))
    y = 2.0 * torch.randn(n_noise, 1, dtype=DT, generator=_g(13))
    c = torch.zeros((), dtype=DT, requires_grad=True)
    opt = torch.optim.LBFGS([c], max_iter=100, tolerance_grad=1e-12,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nce_loss(lambda u: 0.5 * u.square().sum(1) + c, x, y, log_pn)
        loss.backward()
        return loss

    opt.step(closure)
    log_z = 0.5 * math.log(2 * math.pi)
    grid = torch.linspace(-12.0, 12.0, 20_001, dtype=DT)
    p_data = torch.exp(-0.5 * grid.square() - log_z)
    weight = torch.sigmoid(math.log(nu) + log_pn(grid[:, None]) - torch.log(p_data))
    expected_weight = torch.trapezoid(weight * p_data, grid)
    stderr = math.sqrt((1 / float(expected_weight) - 1 - 1 / nu) / n_data)
    assert stderr < 0.02
    assert abs(c.item() - log_z) < 5 * stderr


# ------------------------------------------------------------------ errors


def _args():
    log_pn = _normal_log_prob(torch.zeros(2, dtype=DT), torch.eye(2, dtype=DT))
    energy = lambda u: 0.5 * u.square().sum(1)  # noqa: E731
    x = torch.randn(5, 2, dtype=DT, generator=_g(14))
    y = torch.randn(10, 2, dtype=DT, generator=_g(15))
    return energy, x, y, log_pn


@pytest.mark.parametrize(("change", "error", "match"), [
    ({"energy": "not a function"}, TypeError, "energy must be callable"),
    ({"noise_log_prob": 3.0}, TypeError, "noise_log_prob must be callable"),
    ({"x_data": [[0.0, 1.0]]}, TypeError, "x_data must be a torch.Tensor"),
    ({"x_noise": None}, TypeError, "x_noise must be a torch.Tensor"),
    ({"x_data": torch.ones(5, 2, dtype=torch.long)}, TypeError, "x_data must be a floating"),
    ({"x_noise": torch.zeros(0, 2, dtype=DT)}, ValueError, "x_noise must hold at least one"),
    ({"x_noise": torch.zeros(10, 3, dtype=DT)}, ValueError, "same event shape"),
    ({"x_data": torch.full((5, 2), float("nan"), dtype=DT)}, ValueError,
     "x_data contains 10 non-finite"),
    ({"x_data": torch.tensor(1.0, dtype=DT)}, ValueError, "leading batch axis"),
    ({"energy": lambda u: u}, ValueError, r"energy must map a batch of shape \(5, 2\)"),
    ({"noise_log_prob": lambda u: u.sum()}, ValueError,
     r"noise_log_prob must map x_data of shape \(5, 2\) to log densities of shape \(5,\)"),
    ({"noise_log_prob": lambda u: u.sum(1).tolist()}, TypeError,
     "noise_log_prob must return a torch.Tensor"),
    ({"noise_log_prob": lambda u: torch.where(u[:, 0] > 0, -math.inf, 0.0)}, ValueError,
     "noise_log_prob returned non-finite values at x_data"),
])
def test_errors(change, error, match):
    energy, x, y, log_pn = _args()
    kwargs = {"energy": energy, "x_data": x, "x_noise": y, "noise_log_prob": log_pn}
    kwargs.update(change)
    with pytest.raises(error, match=match):
        nce_loss(**kwargs)


def test_type_errors_without_validation():
    energy, x, y, log_pn = _args()
    with pytest.raises(TypeError, match=r"x_noise must be a torch\.Tensor"):
        nce_loss(energy, x, y.numpy(), log_pn, validate=False)
    with pytest.raises(ValueError, match="same event shape"):
        nce_loss(energy, x, y[:, :1], log_pn, validate=False)
