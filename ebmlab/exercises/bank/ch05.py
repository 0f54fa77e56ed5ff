r"""Graded exercises of chapter 5: score matching.

Exercise 5.1: Hyvärinen's (2005) score-matching loss with the exact Hessian trace,
:math:`J_\mathrm{SM} = \frac1B\sum_b [\operatorname{tr}\nabla_x s(x_b) + \tfrac12\|s(x_b)\|^2]` with
:math:`s = -\nabla_x E`. The checks compare it with the closed form on Gaussian energies
(correlated, so that summing the whole Hessian instead of its diagonal shows), with the
closed form :math:`\Delta\tfrac14\|x\|^4 = (d+2)\|x\|^2`, with
:func:`ebmlab.objectives.score_matching_loss` on a neural energy, and test that the loss is
differentiable with respect to the parameters (its gradient against autograd of the closed
form).

Exercise 5.2: denoising score matching (Vincent 2011) with the noise given: the target
:math:`-(\tilde x - x)/\sigma^2 = -\epsilon/\sigma` and the loss
:math:`\frac1B\sum_b \tfrac12\|s(\tilde x_b) + \epsilon_b/\sigma\|^2`. The checks compare it with
the closed form for linear scores, with :func:`ebmlab.objectives.denoising_score_matching_loss`
fed the same noise, test the gradient in the parameters, and a seeded statistical test that
the loss of the exact smoothed score is Vincent's constant :math:`d/(2\sigma^2(1+\sigma^2))` for
standard normal data. The statement gives the noising kernel, not the target: deriving it is
the exercise.

Exercise 5.3 (a checkable derivation): score matching in closed form for a one-dimensional
exponential family :math:`E_\theta(x) = \sum_k \theta_k x^{p_k}`. After the integration by
parts the objective is a quadratic in :math:`\theta`, minimised by :math:`\hat\theta = G^{-1}b`.
The checks compare with the Gaussian case (score matching = maximum likelihood, in closed
form) and test that the returned :math:`\hat\theta` is a stationary point of
:func:`ebmlab.score_matching_loss` (autograd in :math:`\theta`) on non-Gaussian data, where
only the right derivation is.

Exercise 5.4 (training): sliced score matching, the whole training loop. The check trains a
seeded MLP energy on a two-dimensional Gaussian mixture for 400 updates and grades the grid
KL divergence of the learned density in two bands (0.3 and 0.05; the reference reaches
0.003-0.012, an untrained energy 1.8), showing the learning curve it saw.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ...energies import GaussianMixture, MLPEnergy
from ...metrics import kl_divergence_grid
from ...objectives import denoising_score_matching_loss, score_matching_loss
from ...utils import randn_like, single_threaded
from .._registry import register
from .._student import CheckContext, ProbeError, Student
from ..expect import expect_close, expect_tensor, fail
from ._common import Plain, parameter_gradients
from ._training import curve_summary, expect_losses, expect_training_contract

Energy = Callable[[torch.Tensor], torch.Tensor]

sm_ex = register("5.1", "Score matching with the exact Hessian trace",
                 function="score_matching",
                 forbidden=("ebmlab.score_matching_loss", "ebmlab.sliced_score_matching_loss"))
dsm_ex = register("5.2", "Denoising score matching: target and loss",
                  function="denoising_score_matching",
                  forbidden=("ebmlab.denoising_score_matching_loss",
                             "ebmlab.multiscale_dsm_loss"))
closed_form_ex = register("5.3", "Score matching in closed form", function="score_matching_fit",
                          forbidden=("ebmlab.score_matching_loss",))
sliced_ex = register("5.4", "Train an energy by sliced score matching",
                     function="train_sliced_score_matching",
                     forbidden=("ebmlab.score_matching_loss", "ebmlab.sliced_score_matching_loss",
                                "ebmlab.fit"))


def _scalar(got: object, *, what: str, hint: str) -> torch.Tensor:
    """The result must be a 0-d tensor (a mean over the batch, not one value per example)."""
    t = expect_tensor(got, what=what, hint=hint)
    if t.dim() != 0:
        fail(what, expected="a 0-d tensor (the mean over the batch)",
             got=f"a tensor of shape {tuple(t.shape)}",
             hint="average the per-example terms over the batch: (...).mean().")
    return t


# ----------------------------------------------------------------------------- 5.1


class _GaussianEnergy(nn.Module):
    r""":math:`E(x) = \tfrac12 (x-\mu)^\top \Lambda (x-\mu)`, :math:`\Lambda = RR^\top + 0.3 I`."""

    def __init__(self, mean: torch.Tensor, root: torch.Tensor) -> None:
        super().__init__()
        self.mean = nn.Parameter(mean.clone())
        self.root = nn.Parameter(root.clone())

    def precision(self) -> torch.Tensor:
        eye = torch.eye(self.root.shape[0], dtype=self.root.dtype, device=self.root.device)
        return self.root @ self.root.T + 0.3 * eye

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x - self.mean
        return 0.5 * ((y @ self.precision()) * y).sum(-1)

    def closed_form_sm(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\frac1B\sum_b [-\operatorname{tr}\Lambda + \tfrac12\|\Lambda(x_b-\mu)\|^2]`."""
        lam = self.precision()
        s = (x - self.mean) @ lam
        return (-torch.diagonal(lam).sum() + 0.5 * s.square().sum(-1)).mean()


def _gaussian_energy(g: torch.Generator, dim: int = 3) -> _GaussianEnergy:
    mean = torch.randn(dim, dtype=torch.float64, generator=g)
    root = 0.8 * torch.randn(dim, dim, dtype=torch.float64, generator=g)
    return _GaussianEnergy(mean, root)


class Quartic:
    r""":math:`E(x) = \tfrac14\|x\|^4`, with :math:`\Delta E = (d + 2)\|x\|^2`."""

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        return 0.25 * y.square().sum(-1).square()


class Coupled:
    r""":math:`E(x) = \tfrac12\|x\|^2 + x_1 x_2` in two dimensions (:math:`\Delta E = 2`)."""

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * (y * y).sum(-1) + (y[:, 0] * y[:, 1])


class Shrink:
    r"""The linear score :math:`s(y) = -y / (1 + \sigma^2)` of :math:`\mathcal N(0, (1 +
    \sigma^2) I)`."""

    def __init__(self, sigma: float) -> None:
        self.sigma = sigma

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        return -y / (1 + self.sigma**2)


class Zero:
    """The zero score."""

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(y)


_SM_HOW = ("s = -∇_x E by torch.autograd.grad(E(x).sum(), x, create_graph=True); then for each "
           "coordinate i, the i-th entry of ∇_x s_i (one more autograd.grad of s[:, i].sum(), "
           "keeping the graph) gives the diagonal of the Jacobian; J = mean(trace + ½‖s‖²).")
_SM_SCALAR = "return (trace + 0.5 * (s ** 2).sum(1)).mean(), a 0-d tensor."


def _check_sm_value(score_matching: Callable[..., object], energy: Energy, x: torch.Tensor,
                    reference: torch.Tensor, *, what: str, hint: str = _SM_HOW, atol: float = 1e-9,
                    rtol: float = 1e-7) -> torch.Tensor:
    got = _scalar(score_matching(energy, x), what=what, hint=_SM_SCALAR)
    return expect_close(got, reference, atol=atol, rtol=rtol, what=what, hint=hint)


@sm_ex.check("matches the closed form on a correlated Gaussian energy", points=2)
def _gaussian(score_matching: Student, ctx: CheckContext) -> None:
    model = _gaussian_energy(ctx.generator(0))
    x = torch.randn(16, 3, dtype=torch.float64, generator=ctx.generator(1))
    with torch.no_grad():
        reference = model.closed_form_sm(x)
        lam = model.precision()
        s = (x - model.mean) @ lam
        all_entries = (-lam.sum() + 0.5 * s.square().sum(-1)).mean()
        flipped = (torch.diagonal(lam).sum() + 0.5 * s.square().sum(-1)).mean()
    got = _scalar(score_matching(Plain(model), x), what="score_matching(E, x) for a Gaussian "
                  "energy ½(x-μ)ᵀΛ(x-μ)", hint=_SM_SCALAR)
    hint = _SM_HOW
    g = float(got.detach())
    if math.isclose(g, float(all_entries), rel_tol=1e-7, abs_tol=1e-9):
        hint = ("you summed every entry of the Jacobian ∇_x s (grad of s.sum()), not only its "
                "diagonal: the trace needs ∂s_i/∂x_i, one coordinate at a time.")
    elif math.isclose(g, float(flipped), rel_tol=1e-7, abs_tol=1e-9):
        hint = ("the trace term has the wrong sign: tr ∇_x s = -ΔE (s = -∇E), which is -tr Λ "
                "for this energy.")
    expect_close(got, reference, atol=1e-9, rtol=1e-7, what="score_matching(E, x) for a "
                 "Gaussian energy ½(x-μ)ᵀΛ(x-μ) (closed form: mean(-tr Λ + ½‖Λ(x-μ)‖²))",
                 hint=hint)


@sm_ex.check("matches the closed form ΔE = (d+2)‖x‖² of E(x) = ¼‖x‖⁴", points=1)
def _quartic(score_matching: Student, ctx: CheckContext) -> None:
    x = torch.randn(10, 4, dtype=torch.float64, generator=ctx.generator(2))
    r2 = x.square().sum(1)
    # ∇E = ‖x‖² x, so ½‖s‖² = ½‖x‖⁶ and tr ∇s = -ΔE = -(d + 2)‖x‖².
    reference = (-(4 + 2) * r2 + 0.5 * r2**3).mean()
    _check_sm_value(score_matching, Quartic(), x, reference,
                    what="score_matching(E, x) for E(x) = ¼‖x‖⁴ in 4 dimensions")


@sm_ex.check("matches ebmlab.score_matching_loss on a neural energy", points=2)
def _neural(score_matching: Student, ctx: CheckContext) -> None:
    torch.manual_seed(ctx.generator(3).initial_seed())
    net = MLPEnergy(5, hidden=(16, 16), activation="tanh").double()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)  # a less flat energy than at initialisation
    x = torch.randn(12, 5, dtype=torch.float64, generator=ctx.generator(3))
    reference = score_matching_loss(net, x).detach()
    _check_sm_value(score_matching, Plain(net), x, reference,
                    what="score_matching(E, x) for an MLP energy on R^5")


@sm_ex.check("is differentiable in the parameters (gradient of the closed form)", points=2)
def _gradient(score_matching: Student, ctx: CheckContext) -> None:
    model = _gaussian_energy(ctx.generator(4))
    x = torch.randn(20, 3, dtype=torch.float64, generator=ctx.generator(4))
    ref_grads = torch.autograd.grad(model.closed_form_sm(x), [model.mean, model.root])
    got, grads = score_matching.with_probe(parameter_gradients)(Plain(model), x)
    loss = _scalar(got, what="score_matching(E, x)", hint=_SM_SCALAR)
    hint = ("keep the graph: create_graph=True in every torch.autograd.grad call, so the loss "
            "can be differentiated with respect to the energy's parameters (as training does); "
            "do not .detach() the score or the trace.")
    if not loss.requires_grad:
        fail("score_matching(E, x).requires_grad", expected="True (a loss to train with)",
             got="False: the result is not connected to the energy's parameters", hint=hint)
    with torch.no_grad():
        reference = model.closed_form_sm(x)
    if not math.isclose(float(loss.detach()), float(reference), rel_tol=1e-7, abs_tol=1e-9):
        fail("the gradient of score_matching(E, x) in the parameters",
             expected="the gradient of the closed form", got="a loss whose value is already off "
             f"({float(loss.detach()):.6g} instead of {float(reference):.6g})",
             hint="fix the value first (see the closed-form checks); the gradient follows.")
    if grads is None or isinstance(grads, ProbeError):
        fail("score_matching(E, x).requires_grad", expected="a loss connected to the energy's "
             "parameters", got="autograd could not differentiate it", hint=hint)
    for name, got_grad, ref in zip(("μ", "R (Λ = RRᵀ + 0.3 I)"), grads, ref_grads, strict=True):
        if got_grad is None:
            fail(f"the gradient of the loss with respect to {name}", expected="a tensor",
                 got="None (the loss does not depend on it)", hint=hint)
        expect_close(got_grad, ref, atol=1e-8, rtol=1e-6,
                     what=f"the gradient of the loss with respect to {name}", hint=hint)


@sm_ex.check("a 0-d tensor of x's dtype for a batch of one; x left untouched", points=1)
def _contract(score_matching: Student, ctx: CheckContext) -> None:
    for dtype in (torch.float64, torch.float32):
        x = torch.tensor([[0.3, -1.2]], dtype=dtype)
        snapshot = x.clone()
        got = _scalar(score_matching(Coupled(), x),
                      what=f"score_matching(E, x) for one example of dtype {dtype}",
                      hint=_SM_SCALAR)
        expect_tensor(got, what=f"score_matching(E, x) for x of dtype {dtype}", dtype=dtype)
        # E = ½‖x‖² + x₁x₂: ∇E = (x₁ + x₂, x₂ + x₁), ΔE = 2.
        a = float(snapshot[0, 0] + snapshot[0, 1])
        expect_close(got, torch.tensor(-2.0 + a * a, dtype=torch.float64), atol=1e-5,
                     rtol=1e-5, what="score_matching(E, x) for E = ½‖x‖² + x₁x₂ at one point",
                     hint=_SM_HOW)
        if not torch.equal(x, snapshot) or x.requires_grad:
            fail("x after the call", expected="x unchanged (values and requires_grad)",
                 got="x was modified", hint="work on a copy: x = x.detach().requires_grad_(True).")


# ----------------------------------------------------------------------------- 5.2

_DSM_HOW = ("with x̃ = x + σ ε the target is ∇ log q(x̃|x) = -(x̃ - x)/σ² = -ε/σ; the loss is "
            "the batch mean of ½‖score(x̃) - target‖².")
_DSM_SCALAR = "return the mean over the batch of ½‖score(x̃) - target‖², a 0-d tensor."


class _LinearScore(nn.Module):
    """A linear score s(y) = y Aᵀ + c (the exact score of any Gaussian is of this form)."""

    def __init__(self, a: torch.Tensor, c: torch.Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a.clone())
        self.c = nn.Parameter(c.clone())

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y @ self.a.T + self.c


def _linear_score(g: torch.Generator, dim: int) -> _LinearScore:
    return _LinearScore(torch.randn(dim, dim, dtype=torch.float64, generator=g),
                        torch.randn(dim, dtype=torch.float64, generator=g))


def _dsm_reference(score: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                   eps: torch.Tensor, sigma: float) -> torch.Tensor:
    return 0.5 * (score(x + sigma * eps) + eps / sigma).square().sum(1).mean()


def _dsm_hint(got: torch.Tensor, score: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
              eps: torch.Tensor, sigma: float) -> str:
    """Recognise the usual slips: σ instead of σ², a flipped target, no ½."""
    g = float(got.detach())
    x_t = x + sigma * eps
    with torch.no_grad():
        s = score(x_t)
        variants = {
            "check the power of σ: the target is -(x̃ - x)/σ² = -ε/σ (x̃ - x = σ ε).":
                [0.5 * (s + eps).square().sum(1).mean(),
                 0.5 * (s + eps / sigma**2).square().sum(1).mean()],
            "the target points from the noisy point back to the clean one: -(x̃ - x)/σ², "
            "with a minus sign.": [0.5 * (s - eps / sigma).square().sum(1).mean()],
            "the loss has a factor ½: ½‖score(x̃) - target‖².":
                [(s + eps / sigma).square().sum(1).mean()],
            "evaluate the score at the noisy point x̃ = x + σ ε, not at the clean x.":
                [0.5 * (score(x) + eps / sigma).square().sum(1).mean()],
        }
    for hint, values in variants.items():
        if any(math.isclose(g, float(v), rel_tol=1e-7, abs_tol=1e-10) for v in values):
            return hint
    return _DSM_HOW


@dsm_ex.check("matches the formula for linear scores", points=2)
def _dsm_linear(denoising_score_matching: Student, ctx: CheckContext) -> None:
    for seed, sigma in ((10, 0.5), (11, 2.0)):
        score = _linear_score(ctx.generator(seed), 3)
        g = ctx.generator(seed + 100)
        x = torch.randn(25, 3, dtype=torch.float64, generator=g)
        eps = torch.randn(25, 3, dtype=torch.float64, generator=g)
        with torch.no_grad():
            reference = _dsm_reference(score, x, eps, sigma)
        what = f"denoising_score_matching(score, x, eps, sigma={sigma}) for a linear score"
        got = _scalar(denoising_score_matching(score, x, eps, sigma), what=what,
                      hint=_DSM_SCALAR)
        expect_close(got, reference, atol=1e-10, rtol=1e-8, what=what,
                     hint=_dsm_hint(got, score, x, eps, sigma))


@dsm_ex.check("a zero score: the loss is half the mean squared norm of the target", points=1)
def _dsm_zero(denoising_score_matching: Student, ctx: CheckContext) -> None:
    g = ctx.generator(12)
    x = torch.randn(30, 2, dtype=torch.float64, generator=g)
    eps = torch.randn(30, 2, dtype=torch.float64, generator=g)
    sigma = 0.3
    what = "denoising_score_matching(score ≡ 0, x, eps, sigma=0.3)"
    got = _scalar(denoising_score_matching(Zero(), x, eps, sigma), what=what,
                  hint=_DSM_SCALAR)
    expect_close(got, 0.5 * eps.square().sum(1).mean() / sigma**2, atol=1e-10, rtol=1e-8,
                 what=what, hint=_dsm_hint(got, Zero(), x, eps, sigma))


@dsm_ex.check("matches ebmlab.denoising_score_matching_loss fed the same noise", points=2)
def _dsm_library(denoising_score_matching: Student, ctx: CheckContext) -> None:
    torch.manual_seed(ctx.generator(113).initial_seed())
    net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)).double()
    x = torch.randn(40, 2, dtype=torch.float64, generator=ctx.generator(13))
    sigma = 0.4
    eps = randn_like(x, ctx.generator(14))  # the noise the library function draws
    reference = denoising_score_matching_loss(net, x, sigma, generator=ctx.generator(14),
                                              model_type="score").detach()
    what = "denoising_score_matching(net, x, eps, sigma=0.4) for a small score network"
    got = _scalar(denoising_score_matching(net, x, eps, sigma), what=what, hint=_DSM_SCALAR)
    expect_close(got, reference, atol=1e-10, rtol=1e-8, what=what,
                 hint=_dsm_hint(got, net, x, eps, sigma))


@dsm_ex.check("is differentiable in the score's parameters", points=1)
def _dsm_gradient(denoising_score_matching: Student, ctx: CheckContext) -> None:
    score = _linear_score(ctx.generator(15), 2)
    g = ctx.generator(15)
    x = torch.randn(20, 2, dtype=torch.float64, generator=g)
    eps = torch.randn(20, 2, dtype=torch.float64, generator=g)
    sigma = 0.7
    ref = torch.autograd.grad(_dsm_reference(score, x, eps, sigma), [score.a, score.c])
    got, grads = denoising_score_matching.with_probe(parameter_gradients)(score, x, eps, sigma)
    loss = _scalar(got, what="denoising_score_matching(score, x, eps, sigma)", hint=_DSM_SCALAR)
    hint = "do not detach the score's output: the loss must carry its graph to the parameters."
    if not loss.requires_grad:
        fail("denoising_score_matching(...).requires_grad", expected="True",
             got="False: the loss is not connected to the score's parameters", hint=hint)
    with torch.no_grad():
        value = _dsm_reference(score, x, eps, sigma)
    if not math.isclose(float(loss.detach()), float(value), rel_tol=1e-8, abs_tol=1e-10):
        fail("the gradient of denoising_score_matching(...) in the score's parameters",
             expected="the gradient of the formula", got="a loss whose value is already off "
             f"({float(loss.detach()):.6g} instead of {float(value):.6g})",
             hint=_dsm_hint(loss, score, x, eps, sigma))
    if grads is None or isinstance(grads, ProbeError):
        fail("denoising_score_matching(...).requires_grad", expected="a loss connected to the "
             "score's parameters", got="autograd could not differentiate it", hint=hint)
    for name, got_grad, r in zip(("A", "c"), grads, ref, strict=True):
        if got_grad is None:
            fail(f"the gradient with respect to {name}", expected="a tensor", got="None",
                 hint=hint)
        expect_close(got_grad, r, atol=1e-9, rtol=1e-7,
                     what=f"the gradient of the loss with respect to the score's {name}",
                     hint=_DSM_HOW)


@dsm_ex.check("the exact smoothed score attains Vincent's constant (statistical test)",
              points=1)
def _dsm_vincent(denoising_score_matching: Student, ctx: CheckContext) -> None:
    # Data N(0, I) in d = 2: q_σ = N(0, (1 + σ²) I), score -y/(1 + σ²);
    # E[loss] = d / (2σ²(1 + σ²)). Tolerance: 5 standard errors of the per-example terms.
    d, sigma, n = 2, 0.5, 20000
    g = ctx.generator(16)
    x = torch.randn(n, d, dtype=torch.float64, generator=g)
    eps = torch.randn(n, d, dtype=torch.float64, generator=g)

    exact = Shrink(sigma)
    per = 0.5 * (exact(x + sigma * eps) + eps / sigma).square().sum(1)
    tol = 5 * float(per.std()) / math.sqrt(n)
    expected = d / (2 * sigma**2 * (1 + sigma**2))
    what = "denoising_score_matching(exact smoothed score, x, eps, sigma=0.5), N(0, I) data"
    got = _scalar(denoising_score_matching(exact, x, eps, sigma), what=what, hint=_DSM_SCALAR)
    expect_close(got, torch.tensor(expected, dtype=torch.float64), atol=tol, rtol=0, what=what,
                 hint=_dsm_hint(got, exact, x, eps, sigma))


# ----------------------------------------------------------------------------- 5.3

_FIT_HOW = ("with s(x) = -Σ_k θ_k p_k x^(p_k - 1), the objective mean[s'(x) + ½ s(x)²] is "
            "-θᵀb + ½ θᵀGθ with b_k = mean[p_k(p_k - 1) x^(p_k - 2)] and G_kl = mean[p_k p_l "
            "x^(p_k + p_l - 2)]; set its gradient to zero: θ = G⁻¹ b (torch.linalg.solve).")


class PolynomialEnergy(nn.Module):
    r""":math:`E_\theta(x) = \sum_k \theta_k x^{p_k}` on :math:`\mathbb R` (inputs ``(B, 1)``)."""

    def __init__(self, theta: torch.Tensor, powers: tuple[int, ...]) -> None:
        super().__init__()
        self.theta = nn.Parameter(theta.clone())
        self.powers = powers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = torch.tensor(self.powers, dtype=x.dtype)
        return (self.theta * x ** p).sum(-1)


def _fit_variants(x: torch.Tensor, powers: tuple[int, ...]) -> dict[str, torch.Tensor]:
    p = torch.tensor(powers, dtype=torch.float64)
    xs = x[:, None]
    b = (p * (p - 1) * xs ** (p - 2).clamp_min(0)).mean(0)
    grad_t = p * xs ** (p - 1)
    gram = grad_t.T @ grad_t / x.shape[0]
    theta = torch.linalg.solve(gram, b)
    return {
        "the sign of the Laplacian term: tr ∇s = s'(x) = -E''(x), so the linear term is "
        "-θᵀb and the minimiser is +G⁻¹b.": -theta,
        "the ½ of ½ s² makes the quadratic term ½ θᵀGθ, whose gradient is Gθ: θ = G⁻¹b, "
        "not ½ G⁻¹b or 2 G⁻¹b.": theta / 2,
        "the ½ of ½ s²: θ = G⁻¹b (not 2 G⁻¹b).": 2 * theta,
    }


def _fit(score_matching_fit: Student, x: torch.Tensor, powers: tuple[int, ...],
         what: str) -> torch.Tensor:
    return expect_tensor(score_matching_fit(x, powers), what=what, shape=(len(powers),),
                         hint="return one coefficient per power: shape (K,).")


def _fit_hint(got: torch.Tensor, x: torch.Tensor, powers: tuple[int, ...]) -> str:
    for hint, value in _fit_variants(x, powers).items():
        if torch.allclose(got.detach().double(), value, rtol=1e-6, atol=1e-9):
            return hint
    return _FIT_HOW


@closed_form_ex.check("Gaussian family (powers 1, 2): the sample mean and variance, as "
                      "maximum likelihood", points=2)
def _fit_gaussian(score_matching_fit: Student, ctx: CheckContext) -> None:
    g = ctx.generator(20)
    x = 1.5 + 0.7 * torch.randn(300, dtype=torch.float64, generator=g)
    mean, var = x.mean(), x.var(unbiased=False)
    # E = θ₁x + θ₂x² = (x - m)²/(2S) + const: θ₂ = 1/(2S), θ₁ = -m/S.
    reference = torch.stack([-mean / var, 1 / (2 * var)])
    what = "score_matching_fit(x, (1, 2)) for Gaussian data"
    got = _fit(score_matching_fit, x, (1, 2), what)
    expect_close(got, reference, atol=1e-9, rtol=1e-8, what=what,
                 hint=_fit_hint(got, x, (1, 2)))


@closed_form_ex.check("a stationary point of ebmlab.score_matching_loss on non-Gaussian data "
                      "(powers 2, 4 and 1, 2, 3, 4)", points=4)
def _fit_stationary(score_matching_fit: Student, ctx: CheckContext) -> None:
    g = ctx.generator(21)
    mix = torch.where(torch.rand(400, generator=g) < 0.3, -1.2, 1.0).to(torch.float64)
    x = mix + 0.5 * torch.randn(400, dtype=torch.float64, generator=g)
    for powers in ((2, 4), (1, 2, 3, 4)):
        what = f"score_matching_fit(x, {powers}) for bimodal data"
        got = _fit(score_matching_fit, x, powers, what)
        model = PolynomialEnergy(got.detach().double(), powers)
        (grad,) = torch.autograd.grad(score_matching_loss(model, x[:, None]), model.theta)
        hint = _fit_hint(got, x, powers)
        expect_close(grad, torch.zeros_like(grad), atol=1e-8, rtol=0,
                     what=f"the gradient in θ of ebmlab.score_matching_loss at your θ for "
                          f"powers {powers} (θ = {got.detach().numpy().round(4)})", hint=hint)


@closed_form_ex.check("float64 result of shape (K,); x untouched", points=1)
def _fit_contract(score_matching_fit: Student, ctx: CheckContext) -> None:
    x = torch.randn(50, dtype=torch.float32, generator=ctx.generator(23))
    snapshot = x.clone()
    what = "score_matching_fit(x, (1, 2)) for float32 data"
    got = _fit(score_matching_fit, x, (1, 2), what)
    if not torch.equal(x, snapshot):
        fail("x after the call", expected="unchanged", got="modified in place",
             hint="never write into the data.")
    xd = snapshot.double()
    var = xd.var(unbiased=False)
    expect_close(got.double(), torch.stack([-xd.mean() / var, 1 / (2 * var)]), atol=1e-4,
                 rtol=1e-4, what=what, hint=_FIT_HOW)


# ----------------------------------------------------------------------------- 5.4

_SSM_HOW = ("per update: a minibatch x (requires_grad), s = -∇_x E by autograd with "
            "create_graph=True, a random direction v ~ N(0, I) per point, the Hessian-vector "
            "product ∇_x (s·v) (again create_graph=True), and the loss "
            "mean[vᵀ∇s v + ½‖s‖²]; an Adam step. If the curve does not fall below zero, "
            "check the sign of the projection term; if it diverges, lower the learning rate.")
_SSM_STEPS = 400
_SSM_BOUNDS = ((-3.5, 3.5), (-3.0, 3.0))


def _ssm_problem(ctx: CheckContext, stream: int) -> tuple[GaussianMixture, torch.Tensor,
                                                          MLPEnergy]:
    gm = GaussianMixture(torch.tensor([[-1.0, 0.0], [1.0, 0.3]]), torch.tensor([0.45, 0.45]),
                         torch.tensor([0.5, 0.5]))
    data = gm.sample(4000, generator=ctx.generator(stream))
    torch.manual_seed(ctx.generator(stream + 1).initial_seed())
    return gm, data, MLPEnergy(2, hidden=(64, 64))


def _ssm_kl(train_sliced_score_matching: Student, ctx: CheckContext, stream: int
            ) -> tuple[float, list[float]]:
    gm, data, energy = _ssm_problem(ctx, stream)
    losses = train_sliced_score_matching(energy, data.clone(), n_steps=_SSM_STEPS,
                                         generator=ctx.generator(stream + 2))
    expect_losses(losses, _SSM_STEPS,
                  f"train_sliced_score_matching(energy, data, n_steps={_SSM_STEPS}, ...)")
    with single_threaded():
        kl = float(kl_divergence_grid(gm, energy, bounds=_SSM_BOUNDS, resolution=120))
    return (kl if math.isfinite(kl) else math.inf), losses


def _expect_kl(train_sliced_score_matching: Student, ctx: CheckContext, stream: int,
               threshold: float) -> None:
    kl, losses = _ssm_kl(train_sliced_score_matching, ctx, stream)
    if not kl < threshold:
        fail("KL(data ‖ your trained model) on a 120 × 120 grid over [-3.5, 3.5] × [-3, 3]",
             expected=f"< {threshold} (the reference loop reaches 0.003-0.012; an untrained "
                      "energy 1.8)",
             got=f"{kl:.4f}; your learning curve: {curve_summary(losses)}", hint=_SSM_HOW)


@sliced_ex.check("learns the shape: grid KL < 0.3 after 400 updates", points=2, timeout=60)
def _ssm_shape(train_sliced_score_matching: Student, ctx: CheckContext) -> None:
    _expect_kl(train_sliced_score_matching, ctx, 30, 0.3)


@sliced_ex.check("learns the density: grid KL < 0.05 after 400 updates", points=5,
                 timeout=60)
def _ssm_density(train_sliced_score_matching: Student, ctx: CheckContext) -> None:
    _expect_kl(train_sliced_score_matching, ctx, 40, 0.05)


@sliced_ex.check("returns the learning curve, trains in place, leaves the data untouched",
                 points=1, timeout=60)
def _ssm_contract(train_sliced_score_matching: Student, ctx: CheckContext) -> None:
    _, data, energy = _ssm_problem(ctx, 50)
    expect_training_contract(train_sliced_score_matching, energy, data, ctx.generator(52),
                             n_steps=3,
                             what="train_sliced_score_matching(energy, data, n_steps=3, ...)")
