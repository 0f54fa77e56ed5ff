r"""Graded exercises of chapter 9: joint energy models (a classifier read as an EBM).

A classifier with logits :math:`f(x) \in \mathbb R^K` defines the joint energy
:math:`E(x, y) = -f(x)[y]`, the marginal energy :math:`E(x) = -\log\sum_y e^{f(x)[y]}` and the
conditional :math:`p(y\mid x) = \operatorname{softmax} f(x)` (Grathwohl et al. 2020).

Exercise 9.1: the three readings of a batch of logits, checked against their definitions,
against the identity :math:`\log p(y\mid x) = E(x) - E(x, y)`, for logits of size
:math:`10^3` in float32 (a stable log-sum-exp), and for their gradient (:math:`\partial
E(x)/\partial f = -p(\cdot\mid x)`).

Exercise 9.2 (a checkable derivation): Langevin sampling of :math:`p(x\mid y)`, whose
energy the student derives (:math:`-f(x)[y]` up to a constant, not :math:`-\log p(y\mid
x)`). The noise is an argument, so the steps are compared exactly; a seeded statistical
test checks that the chains of each class sample that class's Gaussian when the logits are
:math:`f_y(x) = -\tfrac12\|x-\mu_y\|^2`.

Exercise 9.3 (a design task): the logits of a classifier fix :math:`p(y\mid x)` only up to a
shift per input, and JEM's density is that shift. The student changes the logits on a grid
so that the predictions stay the same while the density :math:`p(x)` becomes a given target;
the check accepts any logits that do it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._registry import register
from .._student import CheckContext, ProbeError, Student
from ..expect import (
    call_student,
    expect_close,
    expect_detached,
    expect_finite,
    expect_grad_mode,
    expect_no_parameter_grads,
    expect_tensor,
    expect_unchanged,
    fail,
)

readings_ex = register("9.1", "A classifier's three readings: E(x, y), E(x), p(y | x)",
                       function="jem_energies")
conditional_ex = register("9.2", "Sampling x given its class",
                          function="class_conditional_langevin", forbidden=("ebmlab.langevin",))
reshape_ex = register("9.3", "Same predictions, another density", function="reshape_density")


# ====================================================================== exercise 9.1

_R_HOW = ("E(x, y) is minus the logit of class y; E(x) = -log Σ_y exp(f(x)[y]) "
          "(torch.logsumexp over the class axis); p(y | x) = exp(E(x) - E(x, y)).")
_R_SHAPE = "return a tuple (E_xy, E_x) of shapes (B, K) and (B,)."


def _pair(got: object, logits: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        fail(what, expected="a tuple (E_xy, E_x)", got=type(got).__name__, hint=_R_SHAPE)
    b, k = logits.shape
    e_xy = expect_tensor(got[0], what=f"E_xy of {what}", shape=(b, k), hint=_R_SHAPE)
    e_x = expect_tensor(got[1], what=f"E_x of {what}", shape=(b,), hint=_R_SHAPE)
    return e_xy, e_x


def _readings_hint(e_x: torch.Tensor, logits: torch.Tensor) -> str:
    g = e_x.detach().double()
    lg = logits.double()
    variants = {
        "E(x) has a minus sign: E(x) = -log Σ_y exp(f_y), so a confident input has LOW "
        "energy.": torch.logsumexp(lg, 1),
        "E(x) sums over the classes inside the log (log-sum-exp), not the largest logit "
        "alone.": -lg.max(1).values,
        "E(x) is -log Σ_y exp(f_y), not minus the mean (or the sum) of the logits.":
            -lg.mean(1),
    }
    for hint, value in variants.items():
        if g.shape == value.shape and torch.allclose(g, value, rtol=1e-6, atol=1e-8):
            return hint
    return _R_HOW


@readings_ex.check("E(x, y) and E(x) match their definitions", points=4)
def _definitions(jem_energies: Student, ctx: CheckContext) -> None:
    logits = 3.0 * torch.randn(12, 5, dtype=torch.float64, generator=ctx.generator(0))
    what = "jem_energies(logits) for 12 inputs and 5 classes"
    e_xy, e_x = _pair(jem_energies(logits), logits, what)
    expect_close(e_xy, -logits, atol=1e-12, rtol=1e-12, what=f"E_xy of {what}",
                 hint="E(x, y) = -f(x)[y]: minus the logits, class by class.")
    expect_close(e_x, -torch.logsumexp(logits, 1), atol=1e-10, rtol=1e-10,
                 what=f"E_x of {what}", hint=_readings_hint(e_x, logits))


@readings_ex.check("exp(E(x) - E(x, y)) is the classifier's softmax p(y | x)", points=1)
def _softmax(jem_energies: Student, ctx: CheckContext) -> None:
    logits = torch.randn(9, 3, dtype=torch.float64, generator=ctx.generator(1)) - 2.0
    what = "exp(E_x[:, None] - E_xy) for jem_energies(logits)"
    e_xy, e_x = _pair(jem_energies(logits), logits, what)
    expect_close((e_x[:, None] - e_xy).exp(), torch.softmax(logits, 1), atol=1e-10,
                 rtol=1e-10, what=what, hint=_readings_hint(e_x, logits))


@readings_ex.check("finite and exact for logits of size 1000 (float32)", points=2)
def _stable(jem_energies: Student, ctx: CheckContext) -> None:
    logits = (1000.0 * torch.randn(6, 4, dtype=torch.float64, generator=ctx.generator(2)))
    what = "E_x of jem_energies(logits) with logits of size ~1000, float32"
    _, e_x = _pair(jem_energies(logits.float()), logits, what)
    expect_finite(e_x, what=what, hint="exp(1000) overflows: use torch.logsumexp, which "
                  "subtracts the largest logit first.")
    expect_close(e_x, -torch.logsumexp(logits, 1), atol=1e-2, rtol=1e-5, what=what,
                 hint=_readings_hint(e_x.double(), logits))


def _logit_gradients(result: object, args: tuple[object, ...],
                     kwargs: dict[str, object]) -> object:
    """Probe: the gradient of ``sum(E_x)`` with respect to the logits, or None."""
    logits = args[0]
    if not (isinstance(result, (tuple, list)) and len(result) == 2
            and isinstance(result[1], torch.Tensor) and result[1].requires_grad
            and isinstance(logits, torch.Tensor) and logits.requires_grad):
        return None
    (grad,) = torch.autograd.grad(result[1].sum(), logits, allow_unused=True)
    return grad


@readings_ex.check("differentiable: ∂E(x)/∂f(x) = -p(· | x)", points=1)
def _gradient(jem_energies: Student, ctx: CheckContext) -> None:
    logits = torch.randn(7, 4, dtype=torch.float64,
                         generator=ctx.generator(3)).requires_grad_(True)
    got, grad = jem_energies.with_probe(_logit_gradients)(logits)
    _pair(got, logits.detach(), "jem_energies(logits)")
    if grad is None or isinstance(grad, ProbeError):
        fail("the gradient of Σ E(x) with respect to the logits",
             expected="-softmax(logits)", got="no gradient (the result has no graph)",
             hint="build E(x) from torch operations on the logits (no .detach(), "
                  ".item(), no torch.no_grad()): JEM trains through it.")
    expect_close(grad, -torch.softmax(logits.detach(), 1), atol=1e-10, rtol=1e-10,
                 what="the gradient of Σ E(x) with respect to the logits", hint=_R_HOW)


@readings_ex.check("keeps the dtype, works for one input, leaves the logits untouched",
                   points=1)
def _readings_contract(jem_energies: Student, ctx: CheckContext) -> None:
    logits = torch.tensor([[0.3, -1.0, 2.0]], dtype=torch.float32)
    snapshot = logits.clone()
    what = "jem_energies(logits) for one float32 input"
    e_xy, e_x = _pair(jem_energies(logits), logits, what)
    for name, t in (("E_xy", e_xy), ("E_x", e_x)):
        expect_tensor(t, what=f"{name} of {what}", dtype=torch.float32,
                      hint="keep the logits' dtype.")
    expect_unchanged(logits, snapshot, what="logits")
    expect_close(e_x, -torch.logsumexp(snapshot.double(), 1), atol=1e-5, rtol=1e-5,
                 what=f"E_x of {what}", hint=_R_HOW)


# ====================================================================== exercise 9.2

_C_HOW = ("p(x | y) = p(x, y) / p(y) ∝ exp(f(x)[y]): its energy is -f(x)[y] (the logit of "
          "the chain's own class, not log p(y | x)); one step is "
          "x ← x + step_size · ∇_x f(x)[y] + sqrt(2 · step_size) · noise[t].")


class GaussianClassifier(nn.Module):
    r"""Logits :math:`f_y(x) = -\tfrac12\|x - \mu_y\|^2 + c_y`: class ``y`` alone is
    :math:`\mathcal N(\mu_y, I)`."""

    def __init__(self, means: torch.Tensor, offsets: torch.Tensor) -> None:
        super().__init__()
        self.means = nn.Parameter(means.clone())
        self.offsets = nn.Parameter(offsets.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -0.5 * (x[:, None, :] - self.means[None]).square().sum(-1) + self.offsets


class MLPClassifier(nn.Module):
    """A small seeded float64 classifier ``(B, d) -> (B, K)``."""

    def __init__(self, dim: int, classes: int, g: torch.Generator) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 16), nn.Tanh(), nn.Linear(16, classes)).double()
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, dtype=p.dtype, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _reference_conditional(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor,
                           noise: torch.Tensor, step_size: float, *,
                           mode: str = "logit") -> torch.Tensor:
    """Independent reference: ULA on -f(x)[y] (mode "logit"), or on the wrong energies
    -log p(y|x) ("softmax") and -logsumexp f(x) ("marginal"), for the hints."""
    x = x.detach().clone()
    for xi in noise:
        with torch.enable_grad():
            xr = x.requires_grad_(True)
            logits = classifier(xr)
            if mode == "softmax":
                logits = torch.log_softmax(logits, 1)
            if mode == "marginal":
                target = torch.logsumexp(logits, 1).sum()
            else:
                target = logits.gather(1, y[:, None]).sum()
            (grad,) = torch.autograd.grad(target, xr)
        x = (x.detach() + step_size * grad + math.sqrt(2 * step_size) * xi).detach()
    return x


def _conditional_hint(got: torch.Tensor, classifier: nn.Module, x: torch.Tensor,
                      y: torch.Tensor, noise: torch.Tensor, step_size: float) -> str:
    g = got.detach()
    if g.shape != x.shape:
        return _C_HOW
    wrong = {
        "you sampled with the energy -log p(y | x): p(x | y) ∝ p(y | x) p(x), and p(x) is not "
        "uniform. Bayes' rule with p(x, y) ∝ exp(f(x)[y]) gives the energy -f(x)[y].":
            "softmax",
        "you sampled the marginal p(x) (-logsumexp of all the logits): each chain must "
        "follow the logit of its own class y[i].": "marginal",
    }
    for hint, mode in wrong.items():
        ref = _reference_conditional(classifier, x, y, noise, step_size, mode=mode)
        if torch.allclose(g, ref, atol=1e-8, rtol=1e-8):
            return hint
    if noise.shape[0] == 1:
        drift = _reference_conditional(classifier, x, y, 0 * noise, step_size) - x
        if torch.allclose(g, x - drift + math.sqrt(2 * step_size) * noise[0], atol=1e-8,
                          rtol=1e-8):
            return ("you step UP the energy -f(x)[y]: Langevin moves x along +∇_x f(x)[y] "
                    "(downhill in energy).")
    return _C_HOW


def _labels(n: int, k: int, g: torch.Generator) -> torch.Tensor:
    return torch.randint(k, (n,), generator=g)


@conditional_ex.check("K steps match Langevin on -f(x)[y] fed the same noise (MLP "
                      "classifier, mixed labels)", points=5)
def _exact_steps(class_conditional_langevin: Student, ctx: CheckContext) -> None:
    clf = MLPClassifier(2, 3, ctx.generator(10))
    for k, eps in ((1, 0.05), (12, 0.02)):
        g = ctx.generator(11 + k)
        x = torch.randn(10, 2, dtype=torch.float64, generator=g)
        y = _labels(10, 3, g)
        noise = torch.randn(k, 10, 2, dtype=torch.float64, generator=g)
        what = (f"class_conditional_langevin(classifier, x, y, noise, step_size={eps}) "
                f"with K = {k}")
        got = expect_tensor(class_conditional_langevin(clf, x, y, noise, step_size=eps),
                            what=what, shape=x.shape,
                            hint="return the chains after the K steps, shape of x.")
        expect_close(got, _reference_conditional(clf, x, y, noise, eps), atol=1e-9,
                     rtol=1e-9, what=what,
                     hint=_conditional_hint(got, clf, x, y, noise, eps))


@conditional_ex.check("samples each class's Gaussian when f_y(x) = -½‖x - μ_y‖² + c_y "
                      "(seeded test, 5 SE)", points=3, timeout=30)
def _stationary(class_conditional_langevin: Student, ctx: CheckContext) -> None:
    # p(x | y) = N(μ_y, I); the offsets c_y change p(y) and p(y | x), not p(x | y). ULA on a
    # Gaussian has the exact mean μ_y (its bias is in the variance only).
    g = ctx.generator(20)
    means = torch.tensor([[-2.0, 0.0], [2.0, 1.0]], dtype=torch.float64)
    clf = GaussianClassifier(means, torch.tensor([1.5, -1.5], dtype=torch.float64))
    n, k, eps = 400, 150, 0.2
    y = torch.arange(n) % 2
    x = torch.randn(n, 2, dtype=torch.float64, generator=g)
    noise = torch.randn(k, n, 2, dtype=torch.float64, generator=g)
    what = "the mean of the chains of each class after 150 steps of step_size 0.2"
    got = expect_tensor(class_conditional_langevin(clf, x, y, noise, step_size=eps),
                        what=what, shape=x.shape, hint="return the chains, shape of x.")
    expect_finite(got, what=what, hint=_C_HOW)
    sd = 1.0 / math.sqrt(1 - eps / 2)  # ULA's stationary standard deviation on N(μ, I)
    for label in (0, 1):
        rows = got[y == label]
        tol = 5 * sd / math.sqrt(rows.shape[0])
        if not torch.allclose(rows.mean(0), means[label], atol=tol, rtol=0):
            expect_close(rows.mean(0), means[label], atol=tol, rtol=0,
                         what=f"{what}, class {label} (μ = {means[label].tolist()})",
                         hint=_conditional_hint(got, clf, x, y, noise, eps))


@conditional_ex.check("returns detached chains; leaves x, the noise and the classifier's "
                      "parameters untouched; works under torch.no_grad()", points=2)
def _conditional_contract(class_conditional_langevin: Student, ctx: CheckContext) -> None:
    clf = MLPClassifier(3, 2, ctx.generator(30))
    g = ctx.generator(31)
    x = torch.randn(5, 3, dtype=torch.float64, generator=g)
    y = _labels(5, 2, g)
    noise = torch.randn(3, 5, 3, dtype=torch.float64, generator=g)
    copies = [t.clone() for t in (x, y, noise)]
    what = "class_conditional_langevin(classifier, x, y, noise, step_size=0.05)"
    got = expect_tensor(class_conditional_langevin(clf, x, y, noise, step_size=0.05),
                        what=what, shape=x.shape, hint="return the chains, shape of x.")
    expect_detached(got, what=what, hint="return x.detach(): samples carry no graph.")
    for name, t, c in zip(("x", "y", "noise"), (x, y, noise), copies, strict=True):
        expect_unchanged(t, c, what=name)
    expect_no_parameter_grads(clf, hint="use torch.autograd.grad(..., x), not .backward(), "
                                        "which fills the classifier's .grad.")
    reference = _reference_conditional(clf, x, y, noise, 0.05)
    expect_close(got, reference, atol=1e-9, rtol=1e-9, what=what, hint=_C_HOW)
    with torch.no_grad():
        again = call_student(class_conditional_langevin, clf, x, y, noise, step_size=0.05,
                             what=f"{what} inside torch.no_grad()", expected="the chains",
                             hint="compute the gradient inside `with torch.enable_grad():`.")
        expect_grad_mode(False, what="the call inside torch.no_grad()",
                         hint="use `with torch.enable_grad():`, which restores the mode.")
    expect_close(again, reference, atol=1e-9, rtol=1e-9,
                 what=f"{what} inside torch.no_grad()",
                 hint="the result must not depend on the grad mode.")


# ====================================================================== exercise 9.3

_D_HOW = ("the predictions are softmax(logits): they do not change when the same number "
          "c(x) is added to every logit of x. JEM's density is p(x) ∝ exp(logsumexp f(x)), "
          "so pick c(x) to make logsumexp of the new logits equal log target(x) "
          "(up to one constant).")


def _grid(n: int = 21) -> torch.Tensor:
    t = torch.linspace(-3.0, 3.0, n, dtype=torch.float64)
    return torch.cartesian_prod(t, t)


def _target(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A random two-bump density on the grid points (normalised over the grid)."""
    centres = 4.0 * torch.rand(2, 2, dtype=torch.float64, generator=g) - 2.0
    w = torch.tensor([0.7, 0.3], dtype=torch.float64)
    logp = torch.logsumexp(w.log() - 0.5 * (x[:, None] - centres[None]).square().sum(-1)
                           / 0.36, 1)
    return torch.softmax(logp, 0)


def _density(logits: torch.Tensor) -> torch.Tensor:
    """JEM's p(x) on the grid: exp(logsumexp f(x)), normalised over the grid points."""
    return torch.softmax(torch.logsumexp(logits.double(), 1), 0)


def _classifier_logits(x: torch.Tensor, g: torch.Generator, scale: float) -> torch.Tensor:
    w = torch.randn(2, 3, dtype=torch.float64, generator=g)
    return scale * (x @ w + torch.randn(3, dtype=torch.float64, generator=g))


def _reshaped(reshape_density: Student, x: torch.Tensor, logits: torch.Tensor,
              target: torch.Tensor, what: str) -> torch.Tensor:
    got = expect_tensor(reshape_density(x, logits, target), what=what, shape=logits.shape,
                        hint="return new logits, one row per grid point, shape of logits.")
    expect_finite(got, what=what, hint="work with log-probabilities (log target, "
                  "logsumexp), never divide exponentials.")
    return got


def _expect_target(got: torch.Tensor, logits: torch.Tensor, target: torch.Tensor, what: str,
                   hint: str) -> None:
    """The new logits keep the softmax and give JEM's density within TV 0.01 of target."""
    same = torch.allclose(torch.softmax(got.double(), 1), torch.softmax(logits.double(), 1),
                          atol=1e-6, rtol=1e-6)
    tv = 0.5 * float((_density(got) - target.double()).abs().sum())
    if not same or tv >= 0.01:
        fail(what, expected="total variation < 0.01 from the target, with the same "
             "predictions", got=f"total variation {tv:.4f}"
             + ("" if same else ", and the predictions changed"), hint=hint)


@reshape_ex.check("the predictions p(y | x) are unchanged at every grid point", points=3)
def _same_predictions(reshape_density: Student, ctx: CheckContext) -> None:
    x = _grid()
    g = ctx.generator(40)
    logits = _classifier_logits(x, g, 1.0)
    target = _target(x, g)
    what = "softmax of reshape_density(x, logits, target)"
    got = _reshaped(reshape_density, x, logits, target, what)
    expect_close(torch.softmax(got.double(), 1), torch.softmax(logits, 1), atol=1e-8,
                 rtol=1e-6, what=what,
                 hint="the classifier's predictions must stay the same: " + _D_HOW)


@reshape_ex.check("JEM's density of the new logits is the target (total variation < 0.01)",
                  points=5)
def _density_is_target(reshape_density: Student, ctx: CheckContext) -> None:
    x = _grid()
    g = ctx.generator(41)
    logits = _classifier_logits(x, g, 1.5)
    target = _target(x, g)
    what = "JEM's density exp(logsumexp f'(x)) / Σ_grid of the new logits"
    got = _reshaped(reshape_density, x, logits, target, what)
    _expect_target(got, logits, target, what, _D_HOW)


@reshape_ex.check("works for confident classifiers (logits of size 500) and a target "
                  "with near-zero mass", points=2)
def _extreme(reshape_density: Student, ctx: CheckContext) -> None:
    x = _grid()
    g = ctx.generator(42)
    logits = _classifier_logits(x, g, 500.0)
    target = _target(x, g)
    target = torch.softmax(target.log() * 8.0, 0)  # very peaked: tiny mass far away
    what = "reshape_density(x, logits, target) with logits of size ~500"
    got = _reshaped(reshape_density, x, logits, target, what)
    _expect_target(got, logits, target, what,
                   "exp of logits of size 500 overflows: subtract logsumexp(logits) rather "
                   "than dividing by a sum of exponentials. " + _D_HOW)


@reshape_ex.check("keeps the dtype and leaves its inputs untouched", points=1)
def _reshape_contract(reshape_density: Student, ctx: CheckContext) -> None:
    x = _grid(7).float()
    g = ctx.generator(43)
    logits = _classifier_logits(x.double(), g, 1.0).float()
    target = _target(x.double(), g).float()
    copies = [t.clone() for t in (x, logits, target)]
    what = "reshape_density(x, logits, target) in float32"
    got = _reshaped(reshape_density, x, logits, target, what)
    expect_tensor(got, what=what, dtype=torch.float32, hint="keep the logits' dtype.")
    for name, t, c in zip(("x", "logits", "target"), (x, logits, target), copies,
                          strict=True):
        expect_unchanged(t, c, what=name)
    _expect_target(got, logits, target, what, _D_HOW)
