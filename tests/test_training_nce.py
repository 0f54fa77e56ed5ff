"""``fit(..., "nce")``: noise-contrastive estimation as a training method.

Checked against the closed form (a Gaussian model recovers the data's mean, precision and
log Z, the last through its learnable log-normaliser), against :func:`nce_loss` called by
hand on the same noise draws, and for its bad inputs.
"""

from __future__ import annotations

import math

import pytest
import torch

import ebmlab as el
from ebmlab.objectives import nce_loss
from ebmlab.training import NCE, fit, make_method

from .test_nce import CholeskyGaussian, _true_theta

DT = torch.float64


def _gaussian_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mean = torch.tensor([1.0, -0.5], dtype=DT)
    cov = torch.tensor([[1.5, 0.6], [0.6, 0.8]], dtype=DT)
    g = torch.Generator().manual_seed(seed)
    x = mean + torch.randn(n, 2, dtype=DT, generator=g) @ torch.linalg.cholesky(cov).T
    return x, mean, cov


def test_fit_nce_recovers_the_gaussian_and_its_log_z():
    """Trained by ``fit`` with fresh noise at every step, a Gaussian with a free
    log-normaliser reaches the parameters of the sample's own Gaussian (its mean and
    covariance, the maximum-likelihood fit) and c = log Z of it."""
    x, _, _ = _gaussian_data(4000, seed=3)
    sample_theta = _true_theta(x.mean(0), torch.cov(x.T, correction=0))
    noise = el.Gaussian(x.mean(0) + 0.3, 3.0 * torch.eye(2, dtype=DT))
    model = CholeskyGaussian(2)
    history = fit(model, x, "nce", noise=noise, noise_ratio=4.0, steps=600, batch_size=1000,
                  lr=0.03, optimizer="adam", seed=0, progress=False)
    assert history.method == "nce"
    error = (model.flat() - sample_theta).abs()
    # NCE is not maximum likelihood: at 4000 data points (x4 noise) its estimate differs from
    # the sample's moments by its own sampling error (about 0.01 here; the tolerance is 4x).
    assert float(error.max()) < 0.04, error.tolist()
    log_z = 0.5 * 2 * math.log(2 * math.pi) + 0.5 * float(torch.logdet(torch.cov(x.T)))
    assert abs(model.c.item() - log_z) < 0.04


def test_the_method_loss_is_nce_loss_on_fresh_noise():
    x, _, _ = _gaussian_data(64, seed=1)
    noise = el.Gaussian(torch.zeros(2, dtype=DT), 4.0 * torch.eye(2, dtype=DT))
    model = CholeskyGaussian(2)
    method = make_method("nce", noise=noise, noise_ratio=2.5)
    assert isinstance(method, NCE) and method.options()["noise_ratio"] == 2.5
    got = method.loss(model, x, torch.Generator().manual_seed(5))
    y = noise.sample(160, generator=torch.Generator().manual_seed(5))   # ceil(2.5 * 64)
    assert torch.equal(got, nce_loss(model, x, y, noise.log_prob))


class _NoLogProb:
    def sample(self, n, *, generator=None):
        return torch.zeros(n, 2)


class _Narrow:
    """A noise with zero density outside [0, 1]^2 (log_prob -inf there)."""

    def sample(self, n, *, generator=None):
        return torch.rand(n, 2, generator=generator, dtype=DT)

    def log_prob(self, x):
        inside = ((x >= 0) & (x <= 1)).all(-1)
        return torch.where(inside, 0.0, -math.inf)


@pytest.mark.parametrize(("options", "error", "words"), [
    ({"noise": _NoLogProb()}, TypeError, "log_prob"),
    ({"noise": "gaussian"}, TypeError, "got str"),
    ({"noise": el.Gaussian(torch.zeros(2), torch.eye(2)), "noise_ratio": 0.0}, ValueError,
     "noise_ratio"),
    ({}, TypeError, "noise"),
])
def test_bad_options(options, error, words):
    with pytest.raises(error, match=words):
        make_method("nce", **options)


def test_a_noise_that_does_not_fit_the_data_is_refused_before_training():
    x, _, _ = _gaussian_data(50, seed=2)
    model = CholeskyGaussian(2)
    with pytest.raises(ValueError, match="not finite at the data"):
        fit(model, x, "nce", noise=_Narrow(), steps=2, progress=False)
    wrong_shape = el.Gaussian(torch.zeros(3, dtype=DT), torch.eye(3, dtype=DT))
    with pytest.raises(ValueError, match="event shape"):
        fit(model, x, "nce", noise=wrong_shape, steps=2, progress=False)
