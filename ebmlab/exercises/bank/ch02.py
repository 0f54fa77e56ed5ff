r"""Graded exercises of chapter 2: the score function and Langevin sampling.

Exercise 2.1 (exercise 1 of the notes): the score :math:`s(x) = -\nabla_x E(x)` does not
depend on the partition function :math:`Z`. The student writes ``score(energy, x)`` for
any energy callable; the checks compare it with closed forms and with autograd, shift
the energy by constants (and by a learnable :math:`\log Z`), and test the contract a
sampler relies on (shape, dtype, device, no side effects, works under ``no_grad``).

Exercise 2.2: one step of the unadjusted Langevin algorithm,
``langevin_step(energy, x, step_size, noise)``
:math:`= x - \epsilon\nabla_x E(x) + \sqrt{2\epsilon}\,\xi` with the noise :math:`\xi`
passed in, so the checks are deterministic: compared with closed forms and with autograd,
iterated on a Gaussian until the chains reach ULA's stationary variance
:math:`\sigma^2/(1 - \epsilon/2\sigma^2)` (within 5 standard errors), and the contract
(no mutation, ``no_grad``, shape, dtype, device).

Exercise 2.3: MALA's acceptance probability in log space,
``mala_log_acceptance(energy, x, y, step_size)``
:math:`= \min\{0,\ E(x) - E(y) + \log q(x\mid y) - \log q(y\mid x)\}`: compared with
an independent computation (normalised proposal densities from
:class:`torch.distributions.Normal`), detailed balance with the student's own :math:`\alpha`
both ways, :math:`\alpha \le 1` and finite for extreme moves, :math:`\alpha \to 1` as
:math:`\epsilon \to 0`, and the contract. Typical mistakes (a flipped sign, the wrong noise
scale, a missing proposal correction or cap) are named in the hints.

Exercise 2.4 (a checkable derivation): ULA's stationary covariance on a correlated
Gaussian, ``ula_stationary_covariance(precision, step_size)``
:math:`= (A - \tfrac\epsilon2 A^2)^{-1}`, derived by the student (the stub gives only the
contract). Checked against the chapter's one-dimensional result, against the fixed point of
the covariance recursion :math:`S = MSM^\top + 2\epsilon I` found by iterating it (no
closed form in the check), close to the stability limit, and for the ``ValueError``
beyond it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ...energies import GaussianMixture
from .._registry import register
from .._student import CheckContext, Student, StudentRaised
from ..expect import (
    call_student,
    expect_close,
    expect_detached,
    expect_device,
    expect_finite,
    expect_grad_mode,
    expect_no_parameter_grads,
    expect_tensor,
    expect_unchanged,
    fail,
)
from ._common import Plain, Quadratic, ScaledQuadratic, Shifted

Score = Callable[[Callable[[torch.Tensor], torch.Tensor], torch.Tensor], torch.Tensor]

score_ex = register("2.1", "The score does not depend on Z", function="score",
                    forbidden=("ebmlab.score_of", "ebmlab.Energy.score",
                               "ebmlab.GaussianMixture.score"))

_HOW = "compute -∇_x E(x) with torch.autograd.grad(energy(x).sum(), x) and negate it."
_SHAPE_HINT = ("the score has one component per coordinate of x, so it has x's shape "
               "(B, d); keep the batch axis even when B = 1 (no .squeeze()).")


def _mixture() -> GaussianMixture:
    means = torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.0]], dtype=torch.float64)
    return GaussianMixture(means, torch.tensor([0.6, 1.0, 0.8], dtype=torch.float64),
                           torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))


def _expect_score(got: object, reference: torch.Tensor, x: torch.Tensor, *, what: str,
                  atol: float = 1e-10, rtol: float = 1e-8, hint: str = _HOW) -> torch.Tensor:
    """Compare with the reference score; say so when the sign is flipped."""
    got_t = expect_tensor(got, what=what, shape=x.shape, hint=_SHAPE_HINT)
    g = got_t.detach().to("cpu", torch.float64)
    r = reference.detach().to("cpu", torch.float64)
    if bool(r.abs().max() > atol) and torch.allclose(g, -r, atol=atol, rtol=rtol):
        hint = ("your result is exactly the opposite: the score is MINUS the gradient of the "
                "energy, s(x) = ∇_x log p(x) = -∇_x E(x).")
    return expect_close(got_t, reference, atol=atol, rtol=rtol, what=what, hint=hint)


class ImageQuadratic:
    r""":math:`E(x) = \tfrac12\sum_{c,i,j} s_{cij} x_{cij}^2` for images ``(B, C, H, W)``."""

    def __init__(self, scale: torch.Tensor) -> None:
        self.scale = scale

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.scale * x * x).flatten(1).sum(1)


class _ShiftedEnergy(nn.Module):
    """``E(x) + log_z`` with a learnable offset: the same distribution for every ``log_z``."""

    def __init__(self, base: nn.Module, log_z: float) -> None:
        super().__init__()
        self.base = base
        self.log_z = nn.Parameter(torch.tensor(log_z, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.log_z


def _mlp(g: torch.Generator, dim: int = 3) -> nn.Module:
    net = nn.Sequential(nn.Linear(dim, 16), nn.Tanh(), nn.Linear(16, 1)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.7 * torch.randn(p.shape, dtype=p.dtype, generator=g))
    return _Squeeze(net)


class _Squeeze(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


@score_ex.check("matches the closed form -x on the quadratic energy E(x) = ½‖x‖²", points=1)
def _quadratic(score: Student, ctx: CheckContext) -> None:
    x = torch.randn(6, 3, dtype=torch.float64, generator=ctx.generator(0))
    got = score(Quadratic(), x)
    _expect_score(got, -x, x, what="score(E, x) for E(x) = ½‖x‖²")


@score_ex.check("matches the closed-form score of a Gaussian mixture", points=1.5)
def _mixture_score(score: Student, ctx: CheckContext) -> None:
    gm = _mixture()
    x = 2.0 * torch.randn(8, 2, dtype=torch.float64, generator=ctx.generator(1))
    got = score(Plain(gm), x)
    _expect_score(got, gm.score(x), x, what="score(E, x) for a 3-component Gaussian mixture")


@score_ex.check("matches autograd on a small neural-network energy", points=1)
def _neural(score: Student, ctx: CheckContext) -> None:
    net = _mlp(ctx.generator(102))
    x = torch.randn(5, 3, dtype=torch.float64, generator=ctx.generator(2))
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(net(xr).sum(), xr)
    got = score(Plain(net), x)
    _expect_score(got, -grad, x, what="score(E, x) for an MLP energy")


@score_ex.check("adding a constant to the energy leaves the score unchanged", points=1)
def _constants(score: Student, ctx: CheckContext) -> None:
    gm = _mixture()
    x = 2.0 * torch.randn(7, 2, dtype=torch.float64, generator=ctx.generator(3))
    reference = gm.score(x)
    for c in (-7.5, 3.0e4, 1.0e20):
        got = score(Shifted(Plain(gm), c), x)
        _expect_score(got, reference, x, what=f"score(E + c, x) with c = {c:g}",
                      hint="a constant such as log Z has zero gradient, so E + c has the score "
                           "of E. Differentiate the energy itself, not exp(-E) (which underflows "
                           "to 0 for a large c).")


@score_ex.check("a learnable log Z offset leaves the score unchanged", points=1)
def _learnable_offset(score: Student, ctx: CheckContext) -> None:
    gm = _mixture()
    x = 2.0 * torch.randn(6, 2, dtype=torch.float64, generator=ctx.generator(4))
    reference = gm.score(x)
    for log_z in (0.0, 2.5, -40.0):
        got = score(_ShiftedEnergy(gm, log_z), x)
        _expect_score(got, reference, x,
                      what=f"score(E + log Z, x) with a learnable log Z = {log_z:g}",
                      hint="p(x) = exp(-E(x)) / Z: log Z is constant in x, so it cannot change "
                           "∇_x log p(x). Differentiate with respect to x only.")


@score_ex.check("works for any shape of x: images (B, C, H, W), one energy per image",
                points=1)
def _images(score: Student, ctx: CheckContext) -> None:
    scale = 0.5 + torch.rand(1, 4, 4, dtype=torch.float64, generator=ctx.generator(15))
    x = torch.randn(3, 1, 4, 4, dtype=torch.float64, generator=ctx.generator(16))
    got = score(ImageQuadratic(scale), x)
    _expect_score(got, -scale * x, x, what="score(E, x) for x of shape (3, 1, 4, 4) and "
                                           "E(x) = ½ Σ_pixels s x²",
                  hint="the score has x's shape whatever it is: differentiate the sum of "
                       "the energies with respect to x itself, without flattening it or "
                       "assuming two dimensions.")


@score_ex.check("works under torch.no_grad() and leaves the grad mode as it was", points=0.5)
def _no_grad(score: Student, ctx: CheckContext) -> None:
    gm = _mixture()
    x = torch.randn(4, 2, dtype=torch.float64, generator=ctx.generator(5))
    hint = ("samplers call the score inside torch.no_grad(); compute the gradient inside "
            "`with torch.enable_grad():` (on a copy x.detach().requires_grad_(True)).")
    with torch.no_grad():
        got = call_student(score, Plain(gm), x,
                           what="score(energy, x) called inside torch.no_grad()",
                           expected="the score", hint=hint)
        expect_grad_mode(False, what="score(energy, x) inside torch.no_grad()",
                         hint="use `with torch.enable_grad():` so the mode is restored on "
                              "exit; do not call torch.set_grad_enabled(True).")
    _expect_score(got, gm.score(x), x, what="score(E, x) called inside torch.no_grad()")
    score(Plain(gm), x)
    expect_grad_mode(True, what="score(energy, x)",
                     hint="restore the grad mode you changed (use a `with` block).")


@score_ex.check("leaves x and the energy's parameters untouched", points=0.5)
def _no_side_effects(score: Student, ctx: CheckContext) -> None:
    net = _mlp(ctx.generator(106))
    x = torch.randn(5, 3, dtype=torch.float64, generator=ctx.generator(6))
    snapshot = x.clone()
    xr = x.clone().requires_grad_(True)
    (reference,) = torch.autograd.grad(net(xr).sum(), xr)
    got = score(net, x)
    if not torch.equal(x, snapshot):
        fail("x after the call", expected="x unchanged", got="its values were modified in place",
             hint="do not write into x (no x += ..., x[...] = ..., x.add_(...)).")
    if x.requires_grad or x.grad is not None:
        fail("x after the call", expected="x.requires_grad == False and x.grad None, as passed",
             got=f"x.requires_grad == {x.requires_grad}, x.grad "
                 f"{'set' if x.grad is not None else 'None'}",
             hint="x.requires_grad_() changes the caller's tensor; work on a copy: "
                  "x = x.detach().requires_grad_(True).")
    leaf = torch.randn(5, 3, dtype=torch.float64, generator=ctx.generator(7)).requires_grad_(True)
    score(net, leaf)
    expect_no_parameter_grads(net)
    if leaf.grad is not None:
        fail("x.grad of an input that requires grad, after the call", expected="None",
             got="a gradient was accumulated into x.grad",
             hint="use torch.autograd.grad(energy(x).sum(), x) on a copy of x instead of "
                  ".backward(), which writes into the caller's x.grad.")
    _expect_score(got, -reference, snapshot, what="score(E, x) for an MLP energy module")


@score_ex.check("returns a tensor of x's shape and dtype, without a graph "
                "(float32 and float64, batch of one)", points=0.25)
def _shape_dtype(score: Student, ctx: CheckContext) -> None:
    for dtype in (torch.float32, torch.float64):
        scale = torch.tensor([1.0, 3.0], dtype=dtype)
        for batch in (1, 5):
            x = torch.randn(batch, 2, dtype=dtype, generator=ctx.generator(8 + batch))
            what = f"score(E, x) for x of shape ({batch}, 2) and dtype {dtype}"
            got = expect_tensor(score(ScaledQuadratic(scale), x),
                                what=what, shape=x.shape, hint=_SHAPE_HINT)
            expect_tensor(got, what=what, dtype=dtype,
                          hint="keep x's dtype: no .float()/.double(), and new tensors with "
                               "dtype=x.dtype.")
            expect_detached(got, what=what,
                            hint="return the gradient itself: torch.autograd.grad(...) "
                                 "without create_graph, or .detach() the result.")
            tol = 1e-5 if dtype == torch.float32 else 1e-10
            _expect_score(got, -scale * x, x, what=what, atol=tol, rtol=tol)




@score_ex.prepare
def _warm_up_meta() -> None:
    """The first operations on the meta device load PyTorch's meta kernels (seconds): do it
    once in the grading process, not in every forked check. (No CUDA call here: a parent
    that initialises CUDA leaves its forked children unable to use it.)"""
    with torch.enable_grad():
        x = torch.zeros(2, 2, dtype=torch.float64, device="meta").requires_grad_(True)
        e = 0.5 * (x ** 2).sum(-1) + 3.0 - (x * x.new_ones(())).mean(-1)
        (g,) = torch.autograd.grad(e.sum(), x)
        torch.zeros_like(g).neg().add(x.detach()).exp().log().clone()


@score_ex.check("follows the input's device", points=0.25)
def _follows_device(score: Student, ctx: CheckContext) -> None:
    device = ctx.device
    x = torch.randn(4, 2, dtype=torch.float64, generator=ctx.generator(12)).to(device)
    meta = device.type == "meta"
    hint = ("build every new tensor on x's device (device=x.device, torch.zeros_like(x)); "
            "never call .cpu() or .item()."
            + (" This check runs your function on a 'meta' tensor (shape and dtype, no data) "
               "to find tensors created on the wrong device." if meta else ""))
    if meta:  # the meta device has no values: check them on the CPU first
        cpu = torch.randn(4, 2, dtype=torch.float64, generator=ctx.generator(12))
        _expect_score(score(Shifted(Quadratic(), 3.0), cpu), -cpu, cpu,
                      what="score(E, x) for E(x) = ½‖x‖² + 3 on the CPU")
    got = call_student(score, Shifted(Quadratic(), 3.0), x,
                       what=f"score(E, x) for x on device {device}",
                       expected=f"a tensor on {device}", hint=hint,
                       errors=(RuntimeError, TypeError, ValueError))
    got = expect_tensor(got, what=f"score(E, x) for x on device {device}", shape=x.shape,
                        hint=_SHAPE_HINT)
    expect_device(got, device, what=f"score(E, x) for x on device {device}", hint=hint)
    if not meta:
        _expect_score(got, -x, x, what=f"score(E, x) for x on device {device}")


# =========================================================================================
# 2.2 — one step of the unadjusted Langevin algorithm (ULA)
# =========================================================================================

Energy = Callable[[torch.Tensor], torch.Tensor]
Step = Callable[[Energy, torch.Tensor, float, torch.Tensor], torch.Tensor]

langevin_ex = register("2.2", "One step of Langevin dynamics (ULA)", function="langevin_step",
                       forbidden=("ebmlab.langevin",))
langevin_ex.prepare(_warm_up_meta)

_ULA = "x - step_size * ∇_x E(x) + sqrt(2 * step_size) * noise"
_ULA_HINT = (f"return {_ULA}, with ∇_x E(x) from torch.autograd.grad(energy(x_).sum(), x_) on "
             "a copy x_ = x.detach().requires_grad_(True).")
_F64 = torch.float64


def _energy_grad(energy: Energy, x: torch.Tensor) -> torch.Tensor:
    """The reference gradient :math:`\\nabla_x E(x)` by autograd, on a detached copy."""
    with torch.enable_grad():
        leaf = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(leaf).sum(), leaf)
    return grad


_QUADRATIC = Quadratic()


def _ula_diagnosis(got: torch.Tensor, energy: Energy, x: torch.Tensor, eps: float,
                   noise: torch.Tensor) -> str:
    """A hint that names the mistake when ``got`` is a typical wrong update."""
    grad = _energy_grad(energy, x)
    g = got.detach().to("cpu", _F64)
    x, grad, noise = (t.to("cpu", _F64) for t in (x, grad, noise))
    root = math.sqrt(2 * eps)
    candidates = [
        (x + eps * grad + root * noise,
         "the drift has the wrong sign: Langevin dynamics moves DOWNHILL in energy, "
         "x - ε∇E(x), i.e. along the score s(x) = -∇E(x)."),
        (x - eps * grad + math.sqrt(eps) * noise,
         "the noise is scaled by sqrt(step_size); Langevin dynamics needs sqrt(2 * step_size). "
         "With sqrt(ε) the chain samples exp(-2E), the distribution at temperature 1/2."),
        (x - eps * grad + eps * noise,
         "the noise is scaled by step_size; it must be sqrt(2 * step_size): the noise's "
         "variance, not its standard deviation, grows like the step."),
        (x - eps * grad + 2 * eps * noise,
         "the noise is scaled by 2 * step_size; take the square root: sqrt(2 * step_size)."),
        (x - eps * grad,
         "the noise term is missing: without sqrt(2ε)·noise this is gradient descent, which "
         "ends in a mode instead of sampling the distribution."),
        (x - grad + root * noise,
         "the gradient is not multiplied by the step size: the drift is -step_size * ∇E(x)."),
    ]
    for candidate, hint in candidates:
        if candidate.shape == g.shape and torch.allclose(g, candidate, rtol=1e-7, atol=1e-9):
            return hint
    return _ULA_HINT


def _expect_step(got: object, energy: Energy, x: torch.Tensor, eps: float,
                 noise: torch.Tensor, *, what: str, reference: torch.Tensor | None = None,
                 atol: float = 1e-10, rtol: float = 1e-8) -> torch.Tensor:
    """Compare a step with the reference; name the mistake when it is a typical one."""
    got_t = expect_tensor(got, what=what, shape=x.shape,
                          hint="the new state has the shape of x, (B, d): one row per chain.")
    if reference is None:
        reference = x - eps * _energy_grad(energy, x) + math.sqrt(2 * eps) * noise
    g = got_t.detach().to("cpu", _F64)
    r = reference.detach().to("cpu", _F64)
    hint = _ULA_HINT
    if torch.isfinite(g).all() and not torch.allclose(g, r, atol=atol, rtol=rtol):
        hint = _ula_diagnosis(got_t, energy, x, eps, noise)
    return expect_close(got_t, reference, atol=atol, rtol=rtol, what=what, hint=hint)


@langevin_ex.check("matches (1 - ε) x + sqrt(2ε) ξ on the quadratic energy E(x) = ½‖x‖²",
                   points=1)
def _ula_quadratic(langevin_step: Student, ctx: CheckContext) -> None:
    g = ctx.generator(20)
    x = torch.randn(6, 3, dtype=_F64, generator=g)
    noise = torch.randn(6, 3, dtype=_F64, generator=g)
    eps = 0.1
    got = langevin_step(_QUADRATIC, x, eps, noise)
    closed_form = (1 - eps) * x + math.sqrt(2 * eps) * noise
    _expect_step(got, _QUADRATIC, x, eps, noise, reference=closed_form,
                 what="langevin_step(E, x, 0.1, noise) for E(x) = ½‖x‖²")


@langevin_ex.check("matches the update with autograd's gradient on a Gaussian mixture and a "
                   "neural-network energy", points=2.5)
def _ula_autograd(langevin_step: Student, ctx: CheckContext) -> None:
    g = ctx.generator(21)
    cases = [
        ("a 3-component Gaussian mixture", Plain(_mixture()),
         2.0 * torch.randn(8, 2, dtype=_F64, generator=g), 0.05),
        ("an MLP energy", Plain(_mlp(ctx.generator(22))),
         torch.randn(5, 3, dtype=_F64, generator=g), 0.3),
        ("a Gaussian mixture with a tiny step", Plain(_mixture()),
         torch.randn(4, 2, dtype=_F64, generator=g), 1e-4),
    ]
    for name, energy, x, eps in cases:
        noise = torch.randn(x.shape, dtype=_F64, generator=g)
        got = langevin_step(energy, x, eps, noise)
        _expect_step(got, energy, x, eps, noise,
                     what=f"langevin_step(E, x, {eps:g}, noise) for {name}")


@langevin_ex.check("iterated on E(x) = x²/(2σ²), the chains reach ULA's stationary variance "
                   "σ²/(1 - ε/(2σ²))", points=3, timeout=30.0)
def _ula_stationary(langevin_step: Student, ctx: CheckContext) -> None:
    sigma2, eps, n_steps = 2.0, 0.4, 150
    g = ctx.generator(23)
    energy = ScaledQuadratic(torch.full((2,), 1.0 / sigma2, dtype=_F64))

    x = torch.zeros(2000, 2, dtype=_F64)
    for t in range(n_steps):
        noise = torch.randn(x.shape, dtype=_F64, generator=g)
        x = langevin_step(energy, x, eps, noise)
        if t == 0:
            expect_tensor(x, what="langevin_step(E, x, ε, noise)", shape=(2000, 2))
        if not bool(torch.isfinite(x).all()):
            fail(f"the chains after {t + 1} steps of your langevin_step", expected="finite states",
                 got="NaN or infinite values",
                 hint="the chains diverge: check the sign of the drift (x - ε∇E(x)).")
    values = x.detach().to("cpu", _F64).reshape(-1)
    n = values.numel()
    expected = sigma2 / (1 - eps / (2 * sigma2))
    stderr = expected * math.sqrt(2 / (n - 1))
    variance = float(values.var())
    if abs(variance - expected) > 5 * stderr:
        hint = ("ULA's stationary variance is set by the balance of the drift and the noise; "
                f"{_ULA_HINT}")
        if abs(variance - expected / 2) < 5 * stderr / 2:
            hint = ("the variance is half of ULA's: the noise is too small by a factor sqrt(2); "
                    "scale it by sqrt(2 * step_size), not sqrt(step_size).")
        fail(f"the variance of 2000 chains × 2 coordinates after {n_steps} steps with σ² = 2, "
             f"ε = {eps} (from x = 0)",
             expected=f"{expected:.4f} ± {5 * stderr:.4f} (5 standard errors; the target's own "
                      f"variance is σ² = {sigma2:g}, ULA overshoots by the factor 1/(1 - ε/(2σ²)))",
             got=f"{variance:.4f}", hint=hint)


@langevin_ex.check("works under torch.no_grad() and leaves the grad mode as it was", points=0.5)
def _ula_no_grad(langevin_step: Student, ctx: CheckContext) -> None:
    gm = _mixture()
    g = ctx.generator(24)
    x = torch.randn(5, 2, dtype=_F64, generator=g)
    noise = torch.randn(5, 2, dtype=_F64, generator=g)
    what = "langevin_step(E, x, 0.1, noise) called inside torch.no_grad()"
    with torch.no_grad():
        got = call_student(langevin_step, Plain(gm), x, 0.1, noise, what=what,
                           expected="the next state",
                           hint="samplers run under torch.no_grad(); compute the gradient "
                                "inside `with torch.enable_grad():` on "
                                "x.detach().requires_grad_(True).")
        expect_grad_mode(False, what="langevin_step inside torch.no_grad()",
                         hint="use `with torch.enable_grad():`, which restores the mode on "
                              "exit; do not call torch.set_grad_enabled(True).")
    outside = expect_tensor(langevin_step(Plain(gm), x, 0.1, noise),
                            what="langevin_step(E, x, 0.1, noise)", shape=x.shape)
    expect_grad_mode(True, what="langevin_step",
                     hint="restore the grad mode you changed (use a `with` block).")
    got = expect_tensor(got, what=what, shape=x.shape)
    expect_close(got, outside.detach(), atol=1e-12, rtol=1e-10, what=what,
                 hint="under no_grad your function returns something else than with gradients "
                      "on: the gradient of the energy must still be computed there (inside "
                      "`with torch.enable_grad():`).")
    _expect_step(outside, Plain(gm), x, 0.1, noise, what="langevin_step(E, x, 0.1, noise)")


@langevin_ex.check("leaves x, the noise and the energy's parameters untouched", points=0.5)
def _ula_no_side_effects(langevin_step: Student, ctx: CheckContext) -> None:
    net = _mlp(ctx.generator(124))
    g = ctx.generator(25)
    x = torch.randn(5, 3, dtype=_F64, generator=g)
    noise = torch.randn(5, 3, dtype=_F64, generator=g)
    x_before, noise_before = x.clone(), noise.clone()
    reference = x - 0.1 * _energy_grad(net, x) + math.sqrt(0.2) * noise
    got = langevin_step(net, x, 0.1, noise)
    expect_unchanged(x, x_before, what="x",
                     hint="return a new tensor; do not update x in place (x -= ..., x.add_()).")
    expect_unchanged(noise, noise_before, what="noise",
                     hint="do not scale the noise in place (noise.mul_(...)); noise * c makes "
                          "a new tensor.")
    if x.requires_grad:
        fail("x after the call", expected="x.requires_grad == False, as passed", got="True",
             hint="x.requires_grad_() changes the caller's tensor; differentiate a copy, "
                  "x.detach().requires_grad_(True).")
    expect_no_parameter_grads(net)
    _expect_step(got, net, x_before, 0.1, noise_before, reference=reference,
                 what="langevin_step(E, x, 0.1, noise) for an MLP energy module")


@langevin_ex.check("returns x's shape and dtype without an autograd graph (float32 and "
                   "float64, batch of one)", points=0.25)
def _ula_shape_dtype(langevin_step: Student, ctx: CheckContext) -> None:
    for dtype in (torch.float32, torch.float64):
        scale = torch.tensor([1.0, 3.0], dtype=dtype)
        for batch in (1, 4):
            g = ctx.generator(25 + batch)
            x = torch.randn(batch, 2, dtype=dtype, generator=g)
            noise = torch.randn(batch, 2, dtype=dtype, generator=g)
            what = f"langevin_step(E, x, 0.1, noise) for x of shape ({batch}, 2), {dtype}"
            got = expect_tensor(langevin_step(ScaledQuadratic(scale), x, 0.1, noise),
                                what=what, shape=x.shape,
                                hint="the new state has x's shape; keep the batch axis for "
                                     "B = 1 (no .squeeze()).")
            expect_tensor(got, what=what, dtype=dtype,
                          hint="keep x's dtype: no .double()/.float(), and Python floats for "
                               "the step size and its square root (math.sqrt).")
            expect_detached(got, what=what,
                            hint="compute the update from the original x (or .detach() it): "
                                 "a chain that keeps every step's graph runs out of memory.")
            tol = 1e-5 if dtype == torch.float32 else 1e-10
            expect_close(got, x - 0.1 * scale * x + math.sqrt(0.2) * noise, atol=tol,
                         rtol=tol, what=what, hint=_ULA_HINT)


@langevin_ex.check("follows the input's device", points=0.25)
def _ula_device(langevin_step: Student, ctx: CheckContext) -> None:
    device = ctx.device
    g = ctx.generator(27)
    x = torch.randn(4, 2, dtype=_F64, generator=g).to(device)
    noise = torch.randn(4, 2, dtype=_F64, generator=g).to(device)
    meta = device.type == "meta"
    what = f"langevin_step(E, x, 0.1, noise) for x on device {device}"
    hint = ("build every new tensor on x's device (torch.zeros_like(x), device=x.device) and "
            "use math.sqrt for the step size; never call .cpu() or .item()."
            + (" This check runs your function on 'meta' tensors (shape and dtype, no data) "
               "to find tensors created on the wrong device." if meta else ""))
    if meta:  # the meta device has no values: check them on the CPU first
        g = ctx.generator(27)
        cpu, cpu_noise = (torch.randn(4, 2, dtype=_F64, generator=g) for _ in range(2))
        _expect_step(langevin_step(_QUADRATIC, cpu, 0.1, cpu_noise), _QUADRATIC, cpu, 0.1,
                     cpu_noise, what="langevin_step(E, x, 0.1, noise) on the CPU")
    got = call_student(langevin_step, _QUADRATIC, x, 0.1, noise, what=what,
                       expected=f"a tensor on {device}", hint=hint,
                       errors=(RuntimeError, TypeError, ValueError))
    got = expect_tensor(got, what=what, shape=x.shape)
    expect_device(got, device, what=what, hint=hint)
    if not meta:
        _expect_step(got, _QUADRATIC, x, 0.1, noise, what=what)


# =========================================================================================
# 2.3 — MALA's acceptance probability
# =========================================================================================

LogAcceptance = Callable[[Energy, torch.Tensor, torch.Tensor, float], torch.Tensor]

mala_ex = register("2.3", "MALA's acceptance probability", function="mala_log_acceptance",
                   forbidden=("ebmlab.mala",))
mala_ex.prepare(_warm_up_meta)

_MALA_HINT = ("log α = min(0, E(x) - E(y) + log q(x|y) - log q(y|x)) with "
              "log q(b|a) = -‖b - a + ε∇E(a)‖² / (4ε) + const; the constants cancel.")


def _log_q(to: torch.Tensor, frm: torch.Tensor, grad_from: torch.Tensor,
           eps: float) -> torch.Tensor:
    r"""The reference :math:`\log q(\text{to} \mid \text{from})` of the Langevin proposal.

    Computed with :class:`torch.distributions.Normal` (normalised), independently of the
    simplified formula a student would write.
    """
    normal = torch.distributions.Normal(frm - eps * grad_from, math.sqrt(2.0 * eps))
    return normal.log_prob(to).reshape(to.shape[0], -1).sum(-1)


def _mala_parts(energy: Energy, x: torch.Tensor, y: torch.Tensor,
                eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``E(x), E(y), log q(y|x), log q(x|y)`` by autograd and torch.distributions."""
    gx, gy = _energy_grad(energy, x), _energy_grad(energy, y)
    with torch.no_grad():
        ex, ey = energy(x), energy(y)
    return ex, ey, _log_q(y, x, gx, eps), _log_q(x, y, gy, eps)


def _mala_reference(energy: Energy, x: torch.Tensor, y: torch.Tensor,
                    eps: float) -> torch.Tensor:
    ex, ey, fwd, bwd = _mala_parts(energy, x, y, eps)
    return torch.clamp(ex - ey + bwd - fwd, max=0.0)


def _mala_diagnosis(got: torch.Tensor, energy: Energy, x: torch.Tensor, y: torch.Tensor,
                    eps: float) -> str:
    """A hint that names the mistake when ``got`` is a typical wrong log-acceptance."""
    ex, ey, fwd, bwd = (t.to("cpu", _F64) for t in _mala_parts(energy, x, y, eps))
    g = got.detach().to("cpu", _F64).reshape(-1)
    zero = torch.zeros_like(ex)
    correction = bwd - fwd
    candidates = [
        (torch.minimum(ex - ey, zero),
         "you left out the proposal correction log q(x|y) - log q(y|x): the Langevin proposal "
         "is not symmetric (it drifts along the score), so the plain Metropolis ratio "
         "p(y)/p(x) is not enough."),
        (torch.minimum(ey - ex + correction, zero),
         "the energy difference has the wrong sign: p(y)/p(x) = exp(E(x) - E(y))."),
        (torch.minimum(ex - ey - correction, zero),
         "the proposal densities are swapped: the ratio is q(x|y) / q(y|x) (the reverse move "
         "over the forward move)."),
        (ex - ey + correction,
         "the result is not capped at 0: α = min(1, ratio), so log α = min(0, log ratio) "
         "(torch.clamp(..., max=0.0))."),
        (torch.minimum(ex - ey + 2 * correction, zero),
         "the proposal's variance is 2ε, so log q(b|a) = -‖b - a + ε∇E(a)‖² / (4ε): divide "
         "by 4ε, not 2ε."),
        (torch.minimum(ex - ey + correction / 2, zero),
         "the proposal's variance is 2ε, so log q(b|a) = -‖b - a + ε∇E(a)‖² / (4ε): divide "
         "by 4ε, not 8ε."),
    ]
    for candidate, hint in candidates:
        if candidate.shape == g.shape and torch.allclose(g, candidate, rtol=1e-7, atol=1e-9):
            return hint
    return _MALA_HINT


def _expect_log_acceptance(got: object, energy: Energy, x: torch.Tensor, y: torch.Tensor,
                           eps: float, *, what: str, reference: torch.Tensor | None = None,
                           atol: float = 1e-9, rtol: float = 1e-7) -> torch.Tensor:
    got_t = expect_tensor(got, what=what, shape=(x.shape[0],),
                          hint="return one log-probability per chain: shape (B,) (sum the "
                               "squared norms over the coordinates, dim=-1).")
    if reference is None:
        reference = _mala_reference(energy, x, y, eps)
    g = got_t.detach().to("cpu", _F64)
    r = reference.detach().to("cpu", _F64)
    hint = _MALA_HINT
    if torch.isfinite(g).all() and not torch.allclose(g, r, atol=atol, rtol=rtol):
        hint = _mala_diagnosis(got_t, energy, x, y, eps)
    return expect_close(got_t, reference, atol=atol, rtol=rtol, what=what, hint=hint)


def _proposal(energy: Energy, x: torch.Tensor, eps: float, g: torch.Generator) -> torch.Tensor:
    """A Langevin proposal from ``x`` (so that the test points are the ones MALA meets)."""
    xi = torch.randn(x.shape, dtype=x.dtype, generator=g)
    return x - eps * _energy_grad(energy, x) + math.sqrt(2 * eps) * xi


class _QuadraticForm(nn.Module):
    """``E(x) = ½ (x - μ)ᵀ A (x - μ)`` with its closed-form gradient ``A (x - μ)``."""

    a: torch.Tensor
    mu: torch.Tensor

    def __init__(self, a: torch.Tensor, mu: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("a", a)
        self.register_buffer("mu", mu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x - self.mu
        return 0.5 * ((d @ self.a) * d).sum(-1)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mu) @ self.a


@mala_ex.check("matches an independent computation on a Gaussian energy "
               "(closed-form gradient, normalised proposal densities)", points=2)
def _mala_gaussian(mala_log_acceptance: Student, ctx: CheckContext) -> None:
    g = ctx.generator(30)
    m = torch.randn(3, 3, dtype=_F64, generator=g)
    quad = _QuadraticForm(m @ m.T + 0.5 * torch.eye(3, dtype=_F64),
                          torch.tensor([0.5, -1.0, 0.0], dtype=_F64))
    for eps in (0.05, 0.4):
        x = torch.randn(7, 3, dtype=_F64, generator=g)
        y = x - eps * quad.grad(x) + math.sqrt(2 * eps) * torch.randn(7, 3, dtype=_F64,
                                                                       generator=g)
        with torch.no_grad():
            log_ratio = (quad(x) - quad(y) + _log_q(x, y, quad.grad(y), eps)
                         - _log_q(y, x, quad.grad(x), eps))
        reference = torch.clamp(log_ratio, max=0.0)
        got = mala_log_acceptance(Plain(quad), x, y, eps)
        _expect_log_acceptance(got, Plain(quad), x, y, eps, reference=reference,
                               what=f"mala_log_acceptance(E, x, y, {eps:g}) for a Gaussian "
                                    "energy ½(x-μ)ᵀA(x-μ)")


@mala_ex.check("matches on a Gaussian mixture and a neural-network energy (autograd)", points=2)
def _mala_autograd(mala_log_acceptance: Student, ctx: CheckContext) -> None:
    g = ctx.generator(31)
    cases = [("a 3-component Gaussian mixture", Plain(_mixture()), 2, 0.1),
             ("an MLP energy", Plain(_mlp(ctx.generator(32))), 3, 0.2)]
    for name, energy, dim, eps in cases:
        x = 1.5 * torch.randn(8, dim, dtype=_F64, generator=g)
        y = _proposal(energy, x, eps, g)
        got = mala_log_acceptance(energy, x, y, eps)
        _expect_log_acceptance(got, energy, x, y, eps,
                               what=f"mala_log_acceptance(E, x, y, {eps:g}) for {name}")


@mala_ex.check("satisfies detailed balance: p(x) q(y|x) α(x, y) = p(y) q(x|y) α(y, x)",
               points=2)
def _mala_detailed_balance(mala_log_acceptance: Student, ctx: CheckContext) -> None:
    g = ctx.generator(33)
    energy = Plain(_mixture())
    eps = 0.3
    x = 1.5 * torch.randn(10, 2, dtype=_F64, generator=g)
    y = _proposal(energy, x, eps, g)
    forward = expect_tensor(mala_log_acceptance(energy, x, y, eps),
                            what="mala_log_acceptance(E, x, y, ε)", shape=(10,))
    backward = expect_tensor(mala_log_acceptance(energy, y, x, eps),
                             what="mala_log_acceptance(E, y, x, ε)", shape=(10,))
    ex, ey, fwd, bwd = _mala_parts(energy, x, y, eps)
    lhs = -ex + fwd + forward.detach().to("cpu", _F64)
    rhs = -ey + bwd + backward.detach().to("cpu", _F64)
    hint = _mala_diagnosis(forward, energy, x, y, eps)
    if hint == _MALA_HINT:
        hint = ("the flow x → y, p(x) q(y|x) α(x, y), must equal the flow y → x; with "
                + _MALA_HINT)
    expect_close(lhs, rhs, atol=1e-8, rtol=1e-8,
                 what="log[p(x) q(y|x) α(x, y)] - log Z compared with log[p(y) q(x|y) α(y, x)] "
                      "- log Z, using your α both ways", hint=hint)


@mala_ex.check("α is a probability: log α ≤ 0 and finite, also for moves far uphill; "
               "α(x, y) or α(y, x) is 1", points=1)
def _mala_bounded(mala_log_acceptance: Student, ctx: CheckContext) -> None:
    g = ctx.generator(34)
    energy = Plain(_QuadraticForm(50.0 * torch.eye(2, dtype=_F64), torch.zeros(2, dtype=_F64)))
    near = 0.1 * torch.randn(6, 2, dtype=_F64, generator=g)
    far = 10.0 + torch.randn(6, 2, dtype=_F64, generator=g)
    eps = 0.01
    results = []
    for x, y, move in ((near, far, "far uphill (E rises by about 5000)"),
                       (far, near, "far downhill (E falls by about 5000)")):
        what = f"mala_log_acceptance(E, x, y, {eps}) for a move {move}"
        got = expect_tensor(mala_log_acceptance(energy, x, y, eps), what=what, shape=(6,))
        expect_finite(got, what=what,
                      hint="work in log space: log α = min(0, log ratio). exp() of a ratio "
                           "this large overflows or underflows, and log(0) = -inf.")
        if bool((got.detach() > 1e-12).any()):
            fail(what, expected="log α ≤ 0 (α ≤ 1)", got=f"max log α = {float(got.max()):.4g}",
                 hint="α = min(1, ratio): cap the log-ratio at 0 with torch.clamp(..., max=0.0).")
        results.append(got.detach().to("cpu", _F64))
    if bool((results[0] > -100.0).any()):
        fail("log α for moves far uphill (E rises by about 5000)",
             expected="below -100 (such a move is essentially never accepted)",
             got=f"max log α = {float(results[0].max()):.4g}",
             hint="p(y)/p(x) = exp(E(x) - E(y)): check the sign of the energy difference.")
    larger = torch.maximum(results[0], results[1])
    expect_close(larger, torch.zeros_like(larger), atol=1e-9, rtol=0.0,
                 what="max(log α(x, y), log α(y, x)) for the same pairs",
                 hint="the ratio for y → x is the inverse of the ratio for x → y, so one of the "
                      "two moves is always accepted: log α = min(0, log ratio).")


@mala_ex.check("α → 1 as ε → 0: log α is O(ε^(3/2)) for Langevin proposals", points=1)
def _mala_small_step(mala_log_acceptance: Student, ctx: CheckContext) -> None:
    g = ctx.generator(35)
    energy = Plain(_mixture())
    x = 1.5 * torch.randn(20, 2, dtype=_F64, generator=g)
    worst = {}
    for eps in (1e-2, 1e-4, 1e-6):
        y = _proposal(energy, x, eps, g)
        got = expect_tensor(mala_log_acceptance(energy, x, y, eps),
                            what=f"mala_log_acceptance(E, x, y, {eps:g})", shape=(20,))
        expect_finite(got, what=f"mala_log_acceptance(E, x, y, {eps:g})")
        worst[eps] = float(got.detach().abs().max())
        if eps == 1e-2:
            _expect_log_acceptance(got, energy, x, y, eps, atol=1e-9, rtol=1e-6,
                                   what="mala_log_acceptance(E, x, y, 0.01) for 20 Langevin "
                                        "proposals")
    if worst[1e-6] > 1e-6:
        hint = _mala_diagnosis(got, energy, x, y, 1e-6)
        if hint == _MALA_HINT:
            hint = ("for a small step the terms of order sqrt(ε) in E(x) - E(y) and in "
                    "log q(x|y) - log q(y|x) cancel exactly; if they do not, a factor is off. "
                    + _MALA_HINT)
        fail("the largest |log α| over 20 Langevin proposals with ε = 1e-6",
             expected="below 1e-6 (α → 1: MALA accepts almost every small step)",
             got=f"{worst[1e-6]:.3g} (ε = 1e-2: {worst[1e-2]:.3g}, ε = 1e-4: {worst[1e-4]:.3g})",
             hint=hint)


@mala_ex.check("returns shape (B,) in x's dtype without a graph, leaves x and y untouched, "
               "works under torch.no_grad()", points=0.5)
def _mala_contract(mala_log_acceptance: Student, ctx: CheckContext) -> None:
    for dtype in (torch.float32, torch.float64):
        g = ctx.generator(36)
        gm = _mixture().to(dtype)
        x = torch.randn(1, 2, dtype=dtype, generator=g)
        y = x + 0.3 * torch.randn(1, 2, dtype=dtype, generator=g)
        x_before, y_before = x.clone(), y.clone()
        what = f"mala_log_acceptance(E, x, y, 0.1) for one chain in {dtype} under no_grad"
        with torch.no_grad():
            got = call_student(mala_log_acceptance, Plain(gm), x, y, 0.1, what=what,
                               expected="log α",
                               hint="MALA runs under torch.no_grad(); compute the gradients "
                                    "inside `with torch.enable_grad():` on detached copies "
                                    "of x and y.")
            expect_grad_mode(False, what=what, hint="use `with torch.enable_grad():`, which "
                                                    "restores the mode on exit.")
        got = expect_tensor(got, what=what, shape=(1,),
                            hint="one value per chain: shape (B,), also for B = 1.")
        expect_tensor(got, what=what, dtype=dtype,
                      hint="keep x's dtype: no .double()/.float(), Python floats for constants.")
        expect_detached(got, what=what,
                        hint="compute log α from detached values (or .detach() the result).")
        expect_unchanged(x, x_before, what="x")
        expect_unchanged(y, y_before, what="y")
        if x.requires_grad or y.requires_grad:
            fail("x and y after the call", expected="requires_grad False, as passed",
                 got="requires_grad switched on",
                 hint="differentiate copies: x.detach().requires_grad_(True).")
        tol = 1e-4 if dtype == torch.float32 else 1e-9
        _expect_log_acceptance(got.double(), Plain(_mixture()), x.double(), y.double(), 0.1,
                               atol=tol, rtol=tol, what=what)


@mala_ex.check("follows the input's device", points=0.5)
def _mala_device(mala_log_acceptance: Student, ctx: CheckContext) -> None:
    device = ctx.device
    g = ctx.generator(37)
    x = torch.randn(4, 2, dtype=_F64, generator=g)
    y = x + 0.3 * torch.randn(4, 2, dtype=_F64, generator=g)
    meta = device.type == "meta"
    what = f"mala_log_acceptance(E, x, y, 0.1) for x, y on device {device}"
    hint = ("build every new tensor on x's device (torch.zeros_like, device=x.device) and use "
            "Python floats for constants; never call .cpu() or .item()."
            + (" This check runs your function on 'meta' tensors (shape and dtype, no data) "
               "to find tensors created on the wrong device." if meta else ""))
    if meta:  # the meta device has no values: check them on the CPU first
        _expect_log_acceptance(mala_log_acceptance(_QUADRATIC, x, y, 0.1), _QUADRATIC, x, y,
                               0.1, what="mala_log_acceptance(E, x, y, 0.1) on the CPU")
    got = call_student(mala_log_acceptance, _QUADRATIC, x.to(device), y.to(device), 0.1,
                       what=what, expected=f"a tensor on {device}", hint=hint,
                       errors=(RuntimeError, TypeError, ValueError))
    got = expect_tensor(got, what=what, shape=(4,))
    expect_device(got, device, what=what, hint=hint)
    if not meta:
        _expect_log_acceptance(got.cpu(), _QUADRATIC, x, y, 0.1, what=what)


# =========================================================================================
# 2.4 — ULA's stationary covariance on a Gaussian (a checkable derivation)
# =========================================================================================

covariance_ex = register("2.4", "ULA's stationary covariance on a Gaussian",
                         function="ula_stationary_covariance")

_COV_HINT = ("write one ULA step on E(x) = ½ xᵀAx as x' = M x + sqrt(2ε) ξ with a matrix M; "
             "a stationary covariance S must satisfy S = M S Mᵀ + 2ε I. A and M are "
             "symmetric and commute, so solve that equation in the eigenbasis of A (or as a "
             "matrix function of A); it has a solution only when every eigenvalue of M lies "
             "strictly inside (-1, 1).")


def _lyapunov_fixed_point(precision: torch.Tensor, eps: float) -> torch.Tensor:
    """The stationary covariance by iterating S ← M S Mᵀ + 2ε I to convergence (no closed
    form): the reference of exercise 2.4."""
    m = torch.eye(len(precision), dtype=_F64) - eps * precision
    s = torch.zeros_like(precision)
    for _ in range(200_000):
        new = m @ s @ m.T + 2 * eps * torch.eye(len(precision), dtype=_F64)
        if float((new - s).abs().max()) <= 1e-13 * float(new.abs().max()):
            return new
        s = new
    raise AssertionError("bank: the recursion of 2.4 did not converge")


def _spd(d: int, g: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, dtype=_F64, generator=g))
    eigenvalues = 0.3 + 2.7 * torch.rand(d, dtype=_F64, generator=g)
    return (q * eigenvalues) @ q.T


def _expect_covariance(fn: Callable[..., object], precision: torch.Tensor, eps: float, *,
                       what: str) -> None:
    got = expect_tensor(call_student(fn, precision, eps, what=what,
                                     expected="a (d, d) covariance matrix", hint=_COV_HINT),
                        what=what, shape=precision.shape,
                        hint="return the covariance matrix, shape (d, d).")
    reference = _lyapunov_fixed_point(precision, eps)
    hint = _COV_HINT
    if torch.allclose(got.detach().to(_F64), torch.linalg.inv(precision), rtol=1e-6,
                      atol=1e-9):
        hint = ("you returned A⁻¹, the covariance of the target p: ULA's stationary "
                "covariance is larger for every ε > 0 (the chapter's one-dimensional result "
                "is the special case to recover). " + _COV_HINT)
    expect_close(got, reference, atol=1e-8, rtol=1e-7, what=what, hint=hint)


@covariance_ex.check("in one dimension it is the chapter's σ²/(1 - ε/(2σ²))", points=1)
def _cov_one_dimension(fn: Student, ctx: CheckContext) -> None:
    g = ctx.generator(60)
    for _ in range(3):
        sigma2 = float(0.2 + 2.0 * torch.rand((), dtype=_F64, generator=g))
        eps = float(0.05 + 1.5 * sigma2 * torch.rand((), dtype=_F64, generator=g))
        precision = torch.tensor([[1.0 / sigma2]], dtype=_F64)
        _expect_covariance(fn, precision, eps,
                           what=f"ula_stationary_covariance([[1/{sigma2:.3f}]], {eps:.3f})")


@covariance_ex.check("a correlated Gaussian in 3 and 5 dimensions: the fixed point of "
                     "S = M S Mᵀ + 2ε I", points=2)
def _cov_correlated(fn: Student, ctx: CheckContext) -> None:
    g = ctx.generator(61)
    for d in (3, 5):
        precision = _spd(d, g)
        lam = float(torch.linalg.eigvalsh(precision).max())
        for fraction in (0.1, 0.7):
            eps = fraction * 2.0 / lam
            _expect_covariance(fn, precision, eps,
                               what=f"ula_stationary_covariance(A, {eps:.4f}) for a {d}-d "
                                    f"precision A (ε = {fraction:g} × 2/λ_max)")


@covariance_ex.check("close to the stability limit ε → 2/λ_max the variance along the stiff "
                     "direction blows up", points=1)
def _cov_near_limit(fn: Student, ctx: CheckContext) -> None:
    precision = _spd(4, ctx.generator(62))
    eps = 0.97 * 2.0 / float(torch.linalg.eigvalsh(precision).max())
    _expect_covariance(fn, precision, eps,
                       what=f"ula_stationary_covariance(A, {eps:.4f}), 0.97 × 2/λ_max")


@covariance_ex.check("raises ValueError when no stationary distribution exists "
                     "(ε ≥ 2/λ_max)", points=1)
def _cov_unstable(fn: Student, ctx: CheckContext) -> None:
    precision = _spd(3, ctx.generator(63))
    lam = float(torch.linalg.eigvalsh(precision).max())
    for eps in (2.0 / lam * 1.01, 3.0 / lam):
        what = f"ula_stationary_covariance(A, {eps:.4f}) with ε > 2/λ_max = {2 / lam:.4f}"
        try:
            got = fn(precision, eps)
        except StudentRaised as raised:
            if "ValueError" not in raised.types:
                raise
            continue
        fail(what, expected="ValueError (the chain diverges: no stationary covariance)",
             got=f"a {type(got).__name__}",
             hint="along an eigenvector of A with eigenvalue λ the chain multiplies its "
                  "coordinate by 1 - ελ each step; for ελ ≥ 2 that factor is ≤ -1 and the "
                  "variance grows without bound. Check the condition and raise.")
