r"""Graded exercises of chapter 6: from score matching to diffusion models.

Exercise 6.1: the step schedule of annealed Langevin dynamics (Song & Ermon 2019),
:math:`\alpha_i = \epsilon\,\sigma_i^2/\sigma_L^2` for a ladder :math:`\sigma_1 > \dots > \sigma_L`.
The checks compare it with the formula, test that the steps shrink with the noise level and
end at :math:`\epsilon`, that their ratios are the squared ratios of the noise levels, that
dtype and device follow the input, and recover the steps that
:func:`ebmlab.samplers.annealed_langevin` actually takes (a zero score and one step per
level: each increment is :math:`\sqrt{\alpha_i}\,z` with :math:`z` regenerated from the same
seed).

Exercise 6.2: the exact score of an isotropic Gaussian mixture convolved with
:math:`\mathcal N(0, \sigma^2 I)`, whose components are
:math:`\mathcal N(\mu_k, (\sigma_k^2+\sigma^2) I)` with the same weights. The checks compare
it with autograd of the smoothed log-density (written here with ``logsumexp``) and with
:meth:`ebmlab.GaussianMixture.smoothed`, and test :math:`\sigma = 0`, the
large-:math:`\sigma` limit, numerical stability far from every component, and the contract
(shape, dtype, batch of one, no mutation).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ...energies import GaussianMixture
from ...samplers import annealed_langevin
from ...utils import make_generator, randn_like
from .._registry import register
from .._student import CheckContext, Student
from ..expect import expect_close, expect_finite, expect_tensor, fail

steps_ex = register("6.1", "Annealed Langevin's step schedule", function="annealed_step_sizes")
smooth_ex = register("6.2", "The score of a smoothed Gaussian mixture",
                     function="smoothed_mixture_score",
                     forbidden=("ebmlab.GaussianMixture.smoothed", "ebmlab.GaussianMixture.score",
                                "ebmlab.score_of", "ebmlab.Energy.score"))


# ----------------------------------------------------------------------------- 6.1

_STEPS_HOW = ("α_i = step_size * σ_i² / σ_L², with σ_L = sigmas[-1] the smallest (last) level: "
              "the steps shrink with the noise and the last one is step_size.")
_STEPS_SHAPE = "return one step per noise level: a tensor of the shape of sigmas, (L,)."


def _steps_hint(got: torch.Tensor, sigmas: torch.Tensor, eps: float) -> str:
    g = got.detach().to("cpu", torch.float64)
    s = sigmas.detach().to("cpu", torch.float64)
    variants = {
        "divide by the SMALLEST level σ_L = sigmas[-1], not by the largest σ_1 = sigmas[0].":
            eps * s**2 / s[0] ** 2,
        "square the noise levels: α_i ∝ σ_i², not σ_i.": eps * s / s[-1],
        "the ratio is σ_i²/σ_L², not σ_L²/σ_i²: large noise levels take large steps.":
            eps * s[-1] ** 2 / s**2,
    }
    rtol = 1e-9 if got.dtype == torch.float64 else 1e-5
    if g.shape == s.shape:
        for hint, value in variants.items():
            if torch.allclose(g, value, rtol=rtol, atol=1e-12):
                return hint
    return _STEPS_HOW


def _steps(annealed_step_sizes: Callable[..., object], sigmas: torch.Tensor, eps: float,
           what: str) -> torch.Tensor:
    got = expect_tensor(annealed_step_sizes(sigmas, eps), what=what, shape=sigmas.shape,
                        hint=_STEPS_SHAPE)
    return got


@steps_ex.check("matches α_i = ε σ_i²/σ_L² on geometric and irregular ladders", points=2)
def _formula(annealed_step_sizes: Student, ctx: CheckContext) -> None:
    g = ctx.generator(0)
    irregular = torch.sort(0.05 + 3.0 * torch.rand(5, dtype=torch.float64, generator=g),
                           descending=True).values
    ladders = [torch.logspace(0.0, -2.0, 10, dtype=torch.float64), irregular]
    steps = (2e-5 * (1 + float(torch.rand((), generator=g))), 0.1)
    for sigmas, eps in zip(ladders, steps, strict=True):
        what = f"annealed_step_sizes(sigmas, {eps:.4g}) for sigmas = {sigmas.numpy().round(4)}"
        got = _steps(annealed_step_sizes, sigmas.clone(), eps, what)
        expect_close(got, eps * sigmas**2 / sigmas[-1] ** 2, atol=0, rtol=1e-10, what=what,
                     hint=_steps_hint(got, sigmas, eps))


@steps_ex.check("decreases with the noise level and ends at ε; ratios are (σ_i/σ_j)²",
                points=1)
def _shape_of_schedule(annealed_step_sizes: Student, ctx: CheckContext) -> None:
    sigmas = torch.tensor([20.0, 7.0, 3.0, 1.0, 0.5], dtype=torch.float64)
    eps = 0.05
    what = "annealed_step_sizes(sigmas, 0.05) for sigmas = [20, 7, 3, 1, 0.5]"
    got = _steps(annealed_step_sizes, sigmas.clone(), eps, what).detach().to("cpu",
                                                                             torch.float64)
    hint = _steps_hint(got, sigmas, eps)
    if not bool((got[1:] < got[:-1]).all()):
        fail(what, expected="strictly decreasing steps (largest noise first)",
             got=f"{got.numpy().round(6)}", hint=hint)
    expect_close(got[-1], torch.tensor(eps, dtype=torch.float64), atol=0, rtol=1e-10,
                 what="the last step α_L", hint=hint)
    expect_close(got[0] / got[2], (sigmas[0] / sigmas[2]) ** 2, atol=0, rtol=1e-10,
                 what="the ratio α_1/α_3", hint=hint)


@steps_ex.check("the steps ebmlab.annealed_langevin takes", points=2)
def _library(annealed_step_sizes: Student, ctx: CheckContext) -> None:
    # With a zero score and one step per level, level i moves x by sqrt(α_i) z_i, where
    # z_i is the i-th draw of the generator: regenerate the z's and read the α's off.
    sigmas = torch.tensor([5.0, 2.0, 0.8, 0.3], dtype=torch.float64)
    eps, n = 0.02, 64
    x0 = torch.zeros(n, 2, dtype=torch.float64)
    traj = annealed_langevin(lambda x, s: torch.zeros_like(x), x0, sigmas, step_size=eps,
                             n_steps_per_level=1, record_every=1,
                             generator=make_generator(21)).trajectory
    assert traj is not None
    increments = traj[1:] - traj[:-1]  # (L, n, 2)
    gen = make_generator(21)
    z = torch.stack([randn_like(x0, gen) for _ in range(len(sigmas))])
    alpha = ((increments * z).sum((1, 2)) / z.square().sum((1, 2))) ** 2
    what = "annealed_step_sizes(sigmas, 0.02) vs the steps of ebmlab.annealed_langevin"
    got = _steps(annealed_step_sizes, sigmas.clone(), eps, what)
    expect_close(got, alpha, atol=1e-12, rtol=1e-8, what=what,
                 hint=_steps_hint(got, sigmas, eps))


@steps_ex.check("follows the dtype and device of sigmas; leaves sigmas untouched", points=1)
def _contract(annealed_step_sizes: Student, ctx: CheckContext) -> None:
    for dtype in (torch.float32, torch.float64):
        sigmas = torch.tensor([1.0, 0.5, 0.1], dtype=dtype)
        snapshot = sigmas.clone()
        what = f"annealed_step_sizes(sigmas, 0.1) for sigmas of dtype {dtype}"
        got = _steps(annealed_step_sizes, sigmas, 0.1, what)
        expect_tensor(got, what=what, dtype=dtype, device=sigmas.device,
                      hint="build the result from sigmas (e.g. step_size * sigmas**2 / ...), "
                           "so it keeps its dtype and device.")
        if not torch.equal(sigmas, snapshot):
            fail("sigmas after the call", expected="unchanged", got="modified in place",
                 hint="do not write into sigmas (no sigmas **= 2 or .pow_()).")
        expect_close(got, 0.1 * snapshot**2 / snapshot[-1] ** 2, atol=0, rtol=1e-6, what=what,
                     hint=_steps_hint(got, snapshot.double(), 0.1))


# ----------------------------------------------------------------------------- 6.2

_SMOOTH_HOW = ("convolving N(μ_k, s_k² I) with N(0, σ² I) gives N(μ_k, (s_k² + σ²) I): add σ² "
               "to each component's VARIANCE, keep the weights; then the score is "
               "Σ_k r_k(x) (μ_k - x)/(s_k² + σ²) with responsibilities r_k from a softmax "
               "of log π_k + log N(x; μ_k, (s_k² + σ²) I).")


def _problem(dtype: torch.dtype = torch.float64
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    means = torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]], dtype=dtype)
    stds = torch.tensor([0.5, 1.0, 0.7], dtype=dtype)
    weights = torch.tensor([0.5, 0.3, 0.2], dtype=dtype)
    return means, stds, weights


def _log_density(x: torch.Tensor, means: torch.Tensor, stds: torch.Tensor,
                 weights: torch.Tensor, sigma: float) -> torch.Tensor:
    """log of Σ_k π_k N(x; μ_k, (s_k² + σ²) I), written independently with logsumexp."""
    var = stds**2 + sigma**2
    d = x.shape[1]
    sq = (x[:, None, :] - means[None]).square().sum(-1)
    log_comp = weights.log() - 0.5 * d * (2 * math.pi * var).log() - 0.5 * sq / var
    return torch.logsumexp(log_comp, dim=1)


def _autograd_score(x: torch.Tensor, means: torch.Tensor, stds: torch.Tensor,
                    weights: torch.Tensor, *, sigma: float) -> torch.Tensor:
    x_ = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_log_density(x_, means, stds, weights, sigma).sum(), x_)
    return grad


def _smooth_hint(got: torch.Tensor, x: torch.Tensor, means: torch.Tensor, stds: torch.Tensor,
                 weights: torch.Tensor,
                 sigma: float) -> str:
    if got.shape != x.shape or sigma == 0:
        return _SMOOTH_HOW
    g = got.detach().to("cpu", torch.float64)
    variants = {
        "add σ² to the variances (s_k² + σ²), not σ: the noise has standard deviation σ.":
            math.sqrt(sigma),
        "the noise adds to the variance: use s_k² + σ², not (s_k + σ)².":
            None,
        "the score is unchanged by smoothing only when σ = 0: replace each s_k² by s_k² + σ².":
            0.0,
    }
    for hint, smoothing in variants.items():
        if smoothing is None:
            ref_stds, ref_sigma = stds + sigma, 0.0
        else:
            ref_stds, ref_sigma = stds, smoothing
        ref = _autograd_score(x, means, ref_stds, weights, sigma=ref_sigma)
        if torch.allclose(g, ref.to(torch.float64), rtol=1e-6, atol=1e-9):
            return hint
    return _SMOOTH_HOW


def _call(smoothed_mixture_score: Callable[..., object], x: torch.Tensor, means: torch.Tensor,
          stds: torch.Tensor, weights: torch.Tensor, sigma: float, *,
          what: str) -> torch.Tensor:
    return expect_tensor(smoothed_mixture_score(x, means, stds, weights, sigma), what=what,
                         shape=x.shape,
                         hint="the score has one component per coordinate: shape (B, d).")


@smooth_ex.check("matches autograd of the smoothed log-density", points=2)
def _vs_autograd(smoothed_mixture_score: Student, ctx: CheckContext) -> None:
    means, stds, weights = _problem()
    x = 2.0 * torch.randn(12, 2, dtype=torch.float64, generator=ctx.generator(30))
    for sigma in (0.3, 1.7):
        what = f"smoothed_mixture_score(x, means, stds, weights, sigma={sigma})"
        got = _call(smoothed_mixture_score, x, means, stds, weights, sigma, what=what)
        ref = _autograd_score(x, means, stds, weights, sigma=sigma)
        expect_close(got, ref, atol=1e-10, rtol=1e-8, what=what,
                     hint=_smooth_hint(got, x, means, stds, weights, sigma))


@smooth_ex.check("matches GaussianMixture.smoothed(σ).score of ebmlab", points=2)
def _vs_library(smoothed_mixture_score: Student, ctx: CheckContext) -> None:
    g = ctx.generator(31)
    means = 3.0 * torch.randn(5, 3, dtype=torch.float64, generator=g)
    stds = 0.3 + torch.rand(5, dtype=torch.float64, generator=g)
    weights = torch.rand(5, dtype=torch.float64, generator=g) + 0.1
    weights = weights / weights.sum()
    x = 3.0 * torch.randn(9, 3, dtype=torch.float64, generator=g)
    sigma = 0.8
    reference = GaussianMixture(means, stds, weights).smoothed(sigma).score(x)
    what = "smoothed_mixture_score(x, ...) for 5 components in 3 dimensions, sigma = 0.8"
    got = _call(smoothed_mixture_score, x, means, stds, weights, sigma, what=what)
    expect_close(got, reference, atol=1e-10, rtol=1e-8, what=what,
                 hint=_smooth_hint(got, x, means, stds, weights, sigma))


@smooth_ex.check("sigma = 0 gives the score of the mixture itself", points=1)
def _sigma_zero(smoothed_mixture_score: Student, ctx: CheckContext) -> None:
    means, stds, weights = _problem()
    x = torch.randn(7, 2, dtype=torch.float64, generator=ctx.generator(32))
    what = "smoothed_mixture_score(x, means, stds, weights, sigma=0.0)"
    got = _call(smoothed_mixture_score, x, means, stds, weights, 0.0, what=what)
    expect_close(got, GaussianMixture(means, stds, weights).score(x), atol=1e-10, rtol=1e-8,
                 what=what, hint=_SMOOTH_HOW)


@smooth_ex.check("large sigma: the score tends to -(x - mean of the mixture)/sigma²", points=1)
def _large_sigma(smoothed_mixture_score: Student, ctx: CheckContext) -> None:
    means, stds, weights = _problem()
    x = torch.randn(6, 2, dtype=torch.float64, generator=ctx.generator(33))
    sigma = 1e3
    centre = (weights[:, None] * means).sum(0)
    what = "sigma² × smoothed_mixture_score(x, ..., sigma=1000)"
    got = _call(smoothed_mixture_score, x, means, stds, weights, sigma, what=what)
    expect_close(got * sigma**2, -(x - centre), atol=1e-2, rtol=1e-2, what=what,
                 hint="at a huge noise level every component is N(μ_k, ≈σ² I) and the score "
                      "is ≈ -(x - Σ_k π_k μ_k)/σ². " + _SMOOTH_HOW)


@smooth_ex.check("finite and correct far from every component (no 0/0)", points=1)
def _stable(smoothed_mixture_score: Student, ctx: CheckContext) -> None:
    means, stds, weights = _problem()
    x = torch.tensor([[60.0, -45.0], [-80.0, 3.0], [0.5, 90.0]], dtype=torch.float64)
    sigma = 0.2
    what = "smoothed_mixture_score(x, ...) at points 50 to 90 units from the components"
    got = _call(smoothed_mixture_score, x, means, stds, weights, sigma, what=what)
    expect_finite(got, what=what,
                  hint="the component densities underflow to 0 far away and 0/0 gives NaN: "
                       "compute the responsibilities with torch.softmax (or logsumexp) of the "
                       "log-densities, never by dividing exponentials.")
    expect_close(got, _autograd_score(x, means, stds, weights, sigma=sigma), atol=1e-8,
                 rtol=1e-8, what=what, hint=_SMOOTH_HOW)


@smooth_ex.check("shape and dtype of x (float32, batch of one); inputs untouched", points=1)
def _smooth_contract(smoothed_mixture_score: Student, ctx: CheckContext) -> None:
    means, stds, weights = _problem(torch.float32)
    x = torch.tensor([[0.4, -0.3]], dtype=torch.float32)
    inputs = [t.clone() for t in (x, means, stds, weights)]
    what = "smoothed_mixture_score(x, ...) for one float32 point"
    got = _call(smoothed_mixture_score, x, means, stds, weights, 0.5, what=what)
    expect_tensor(got, what=what, dtype=torch.float32,
                  hint="keep the input's dtype: no .double(), new tensors with dtype=x.dtype.")
    ref = _autograd_score(x.double(), means.double(), stds.double(), weights.double(),
                          sigma=0.5)
    expect_close(got, ref, atol=1e-5, rtol=1e-4, what=what, hint=_SMOOTH_HOW)
    for name, before, after in zip(("x", "means", "stds", "weights"), inputs,
                                   (x, means, stds, weights), strict=True):
        if not torch.equal(before, after):
            fail(f"{name} after the call", expected="unchanged", got="modified in place",
                 hint="build new tensors (stds**2 + sigma**2), never write into the inputs.")
