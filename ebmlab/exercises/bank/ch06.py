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

Exercise 6.3 (a design task): an annealing schedule. Given a Gaussian mixture whose modes
are far apart, the student returns a noise ladder, a base step size and a number of steps
per level within a budget of 1500 steps; the check runs :func:`ebmlab.annealed_langevin`
with the exact smoothed scores from uniform noise and accepts any schedule whose samples
recover the mixture weights (within 0.05) and the spread of each component (within 15 %).

Exercise 6.4 (training): a noise-conditional score network trained by the student's
multi-level denoising loop on Song & Ermon's 0.8/0.2 two-Gaussian problem; the check samples
it with its own annealed Langevin schedule and grades where the samples sit and the mode
weights they recover (within 0.15), showing the learning curve.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ...energies import GaussianMixture, NoiseConditionalScoreNet
from ...samplers import annealed_langevin
from ...utils import make_generator, randn_like, single_threaded
from .._registry import register
from .._student import CheckContext, Student
from ..expect import expect_close, expect_finite, expect_tensor, fail
from ._training import curve_summary, expect_losses, expect_training_contract

steps_ex = register("6.1", "Annealed Langevin's step schedule", function="annealed_step_sizes")
schedule_ex = register("6.3", "Design an annealing schedule", function="design_schedule")
ncsn_ex = register("6.4", "Train a noise-conditional score network", function="train_ncsn",
                   forbidden=("ebmlab.multiscale_dsm_loss", "ebmlab.denoising_score_matching_loss",
                              "ebmlab.fit"))
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


@steps_ex.check("matches the derived schedule on geometric and irregular ladders", points=2)
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


@steps_ex.check("decreases with the noise level, ends at ε, with ratios set by the levels",
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


@steps_ex.check("the steps ebmlab.annealed_langevin takes", points=1)
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


# ----------------------------------------------------------------------------- 6.3

_D_HOW = ("the largest noise level must be comparable to the largest distance between the "
          "modes (so that the chains move between them), the smallest well below the "
          "components' width (so that the last level samples the data), with a geometric "
          "ladder in between; the base step ε is the step at the smallest level: small "
          "against the smallest component variance (ULA's bias), large enough that "
          "n_steps_per_level · ε/σ_L² covers a few relaxation times, and ε/(2σ_L²) < 1 so that "
          "the largest level's step α_1 = ε σ_1²/σ_L² is stable.")
_BUDGET = 1500


def _design_mixture(g: torch.Generator) -> GaussianMixture:
    """Three well-separated 2-d components with unequal weights and widths."""
    angle = 2 * math.pi * float(torch.rand((), generator=g))
    turns = torch.tensor([0.0, 2.1, 4.2], dtype=torch.float64) + angle
    radius = 6.0 + 2.0 * torch.rand(3, dtype=torch.float64, generator=g)
    means = torch.stack([radius * turns.cos(), radius * turns.sin()], 1)
    stds = torch.tensor([1.0, 0.6, 0.8], dtype=torch.float64)
    weights = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    return GaussianMixture(means, stds, weights)


class ExactSmoothedScore:
    """The exact score of the mixture smoothed at level sigma: ``score(x, sigma)``."""

    def __init__(self, mixture: GaussianMixture) -> None:
        self.mixture = mixture

    def __call__(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        return self.mixture.smoothed(float(sigma)).score(x)


def _schedule(design_schedule: Student, mixture: GaussianMixture
              ) -> tuple[torch.Tensor, float, int]:
    what = "design_schedule(means, stds, weights)"
    got = design_schedule(mixture.means.clone(), mixture.stds.clone(), mixture.weights.clone())
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        fail(what, expected="a tuple (sigmas, step_size, n_steps_per_level)",
             got=type(got).__name__, hint="return (sigmas, step_size, n_steps_per_level).")
    sigmas = expect_tensor(got[0], what=f"the sigmas of {what}",
                           hint="a 1-d tensor of noise levels, largest first.")
    step, n_steps = got[1], got[2]
    if sigmas.dim() != 1 or sigmas.numel() < 1 or not bool(
            (sigmas > 0).all() and (sigmas[1:] < sigmas[:-1]).all()):
        fail(f"the sigmas of {what}", expected="a 1-d tensor of positive, strictly "
             "decreasing noise levels", got=str(sigmas.tolist())[:120], hint=_D_HOW)
    if not isinstance(step, float) or not (step > 0 and math.isfinite(step)):
        fail(f"the step_size of {what}", expected="a positive float", got=repr(step),
             hint=_D_HOW)
    if not isinstance(n_steps, int) or isinstance(n_steps, bool) or n_steps < 1:
        fail(f"n_steps_per_level of {what}", expected="a positive int", got=repr(n_steps),
             hint=_D_HOW)
    if sigmas.numel() * n_steps > _BUDGET:
        fail(what, expected=f"at most {_BUDGET} Langevin steps in all",
             got=f"{sigmas.numel()} levels × {n_steps} steps = {sigmas.numel() * n_steps}",
             hint="fewer levels or fewer steps per level.")
    return sigmas.double(), step, n_steps


def _run_schedule(design_schedule: Student, ctx: CheckContext, stream: int
                  ) -> tuple[GaussianMixture, torch.Tensor, str]:
    mixture = _design_mixture(ctx.generator(stream))
    sigmas, step, n_steps = _schedule(design_schedule, mixture)
    g = ctx.generator(stream + 1)
    x0 = 24.0 * torch.rand(2000, 2, dtype=torch.float64, generator=g) - 12.0
    with single_threaded():
        samples = annealed_langevin(ExactSmoothedScore(mixture), x0, sigmas, step_size=step,
                                    n_steps_per_level=n_steps, generator=g,
                                    check_divergence=False).samples
    described = (f"your schedule ({sigmas.numel()} levels from {float(sigmas[0]):.3g} to "
                 f"{float(sigmas[-1]):.3g}, ε = {step:.3g}, {n_steps} steps per level)")
    return mixture, samples, described


def _assignments(samples: torch.Tensor, mixture: GaussianMixture) -> torch.Tensor:
    return torch.cdist(samples.nan_to_num(1e6), mixture.means).argmin(1)


@schedule_ex.check("the samples recover the mixture weights 0.6 / 0.3 / 0.1 (within 0.05)",
                   points=4, timeout=30)
def _design_weights(design_schedule: Student, ctx: CheckContext) -> None:
    mixture, samples, described = _run_schedule(design_schedule, ctx, 60)
    weights = torch.bincount(_assignments(samples, mixture), minlength=3).double() / 2000
    if not bool(torch.isfinite(samples).all()) or not bool(
            ((weights - mixture.weights).abs() < 0.05).all()):
        fail(f"the fraction of 2000 chains at each mode after {described}",
             expected="0.6, 0.3 and 0.1, each within 0.05",
             got=f"{weights.numpy().round(3)}" + ("" if bool(torch.isfinite(samples).all())
                                                  else " (some chains diverged)"),
             hint=_D_HOW)


@schedule_ex.check("each mode's samples have the component's spread (within 15 %)", points=3,
                   timeout=30)
def _design_spread(design_schedule: Student, ctx: CheckContext) -> None:
    mixture, samples, described = _run_schedule(design_schedule, ctx, 61)
    label = _assignments(samples, mixture)
    for k in range(3):
        rows = samples[label == k]
        spread = float(rows.std(0).mean()) if rows.shape[0] > 10 else math.nan
        target = float(mixture.stds[k])
        if not abs(spread - target) < 0.15 * target:
            fail(f"the standard deviation of the samples at mode {k} after {described}",
                 expected=f"{target:.3g} within 15 %", got=f"{spread:.3g}", hint=_D_HOW)


@schedule_ex.check("a valid schedule within the budget of 1500 steps", points=1)
def _design_contract(design_schedule: Student, ctx: CheckContext) -> None:
    _schedule(design_schedule, _design_mixture(ctx.generator(62)))


# ----------------------------------------------------------------------------- 6.4

_NCSN_HOW = ("per update: a minibatch x, one level per point drawn uniformly from sigmas, "
             "x̃ = x + σ ε, and the loss mean over the batch of λ(σ)·½‖s(x̃, σ) + ε/σ‖² with "
             "λ(σ) = σ², i.e. ½‖σ s(x̃, σ) + ε‖²: every level must be trained, the large ones "
             "carry the chains between the modes.")
_NCSN_STEPS = 1000
_NCSN_MEANS = ((2.5, 2.5), (-2.5, -2.5))


def _ncsn_problem(ctx: CheckContext, stream: int
                  ) -> tuple[torch.Tensor, torch.Tensor, NoiseConditionalScoreNet]:
    gm = GaussianMixture(torch.tensor(_NCSN_MEANS), torch.tensor([0.5, 0.5]),
                         torch.tensor([0.8, 0.2]))
    data = gm.sample(4000, generator=ctx.generator(stream))
    sigmas = torch.logspace(math.log10(5.0), math.log10(0.1), 10)
    torch.manual_seed(ctx.generator(stream + 1).initial_seed())
    return data, sigmas, NoiseConditionalScoreNet(2, hidden=(64, 64))


class _TrainedScore:
    def __init__(self, model: NoiseConditionalScoreNet) -> None:
        self.model = model

    def __call__(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        return self.model(x, sigma)


def _ncsn_samples(train_ncsn: Student, ctx: CheckContext, stream: int
                  ) -> tuple[torch.Tensor, list[float]]:
    data, sigmas, model = _ncsn_problem(ctx, stream)
    losses = train_ncsn(model, data.clone(), sigmas.clone(), n_steps=_NCSN_STEPS,
                        generator=ctx.generator(stream + 2))
    expect_losses(losses, _NCSN_STEPS,
                  f"train_ncsn(model, data, sigmas, n_steps={_NCSN_STEPS}, ...)")
    g = ctx.generator(stream + 3)
    x0 = 8.0 * torch.rand(1000, 2, generator=g) - 4.0
    with torch.no_grad(), single_threaded():
        samples = annealed_langevin(_TrainedScore(model), x0, sigmas, step_size=0.002,
                                    n_steps_per_level=100, generator=g,
                                    check_divergence=False).samples
    return samples, losses


def _ncsn_fail(what: str, expected: str, got: str, losses: list[float]) -> None:
    fail(what, expected=expected, got=f"{got}; your learning curve: {curve_summary(losses)}",
         hint=_NCSN_HOW)


@ncsn_ex.check("annealed samples of the trained network sit on the data (80 % near a mode, "
               "both modes reached)", points=4, timeout=60)
def _ncsn_on_data(train_ncsn: Student, ctx: CheckContext) -> None:
    samples, losses = _ncsn_samples(train_ncsn, ctx, 70)
    distance = torch.cdist(samples.nan_to_num(1e6), torch.tensor(_NCSN_MEANS))
    near = distance.min(1).values < 1.5
    counts = torch.bincount(distance[near].argmin(1), minlength=2)
    share = float(near.float().mean())
    if share < 0.8 or int(counts.min()) < 50:
        _ncsn_fail("1000 annealed Langevin samples of your trained network (10 levels from 5 "
                   "to 0.1, ε = 0.002, 100 steps each)",
                   "at least 80 % within 1.5 of a mode, and at least 50 at each mode",
                   f"{share:.1%} near a mode, {counts.tolist()} at the two modes", losses)


@ncsn_ex.check("the annealed samples recover the weights 0.8 / 0.2 (within 0.15)", points=5,
               timeout=60)
def _ncsn_weights(train_ncsn: Student, ctx: CheckContext) -> None:
    samples, losses = _ncsn_samples(train_ncsn, ctx, 80)
    label = torch.cdist(samples.nan_to_num(1e6), torch.tensor(_NCSN_MEANS)).argmin(1)
    weight = float((label == 0).float().mean())
    # A correct loop recovers 0.74-0.85 (12 seeds; 1000 samples alone give ±0.013); chains
    # that cannot cross between the modes keep the uniform start's 0.5.
    if not abs(weight - 0.8) < 0.15:
        _ncsn_fail("the fraction of 1000 annealed samples of your trained network nearest the "
                   "mode of weight 0.8", "0.8 within 0.15", f"{weight:.3f}", losses)


@ncsn_ex.check("returns the learning curve, trains in place, leaves the data untouched",
               points=1, timeout=60)
def _ncsn_contract(train_ncsn: Student, ctx: CheckContext) -> None:
    data, sigmas, model = _ncsn_problem(ctx, 90)

    def train(energy: torch.nn.Module, x: torch.Tensor, *, n_steps: int,
              generator: torch.Generator) -> object:
        return train_ncsn(energy, x, sigmas, n_steps=n_steps, generator=generator)

    expect_training_contract(train, model, data, ctx.generator(92), n_steps=3,
                             what="train_ncsn(model, data, sigmas, n_steps=3, ...)")
