r"""Graded exercises of chapter 2: the score function and Langevin sampling.

Exercise 2.1 (exercise 1 of the notes): the score :math:`s(x) = -\nabla_x E(x)` does not
depend on the partition function :math:`Z`. The student writes ``score(energy, x)`` for
any energy callable; the checks compare it with closed forms and with autograd, shift
the energy by constants (and by a learnable :math:`\log Z`), and test the contract a
sampler relies on (shape, dtype, device, no side effects, works under ``no_grad``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ...energies import GaussianMixture
from .._registry import register
from ..expect import expect_close, expect_device, expect_tensor, fail

Score = Callable[[Callable[[torch.Tensor], torch.Tensor], torch.Tensor], torch.Tensor]

score_ex = register("2.1", "The score does not depend on Z", function="score")

_HOW = "compute -∇_x E(x) with torch.autograd.grad(energy(x).sum(), x) and negate it."
_SHAPE_HINT = ("the score has one component per coordinate of x, so it has x's shape "
               "(B, d); keep the batch axis even when B = 1 (no .squeeze()).")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mixture() -> GaussianMixture:
    means = torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.0]], dtype=torch.float64)
    return GaussianMixture(means, torch.tensor([0.6, 1.0, 0.8], dtype=torch.float64),
                           torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))


def _as_callable(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """A plain function (no ``.score`` method to borrow): the student must differentiate."""
    def energy(x: torch.Tensor) -> torch.Tensor:
        return module(x)
    return energy


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


def _call(score: Score, energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
          *, context: str, hint: str) -> torch.Tensor:
    """Call the student's function; turn a RuntimeError into a failure with ``hint``."""
    try:
        return score(energy, x)
    except NotImplementedError:
        raise
    except RuntimeError as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        fail(f"score(energy, x) {context}", expected="the score",
             got=f"RuntimeError: {first}", hint=hint)


class _ShiftedEnergy(nn.Module):
    """``E(x) + log_z`` with a learnable offset: the same distribution for every ``log_z``."""

    def __init__(self, base: nn.Module, log_z: float) -> None:
        super().__init__()
        self.base = base
        self.log_z = nn.Parameter(torch.tensor(log_z, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.log_z


def _mlp(seed: int, dim: int = 3) -> nn.Module:
    net = nn.Sequential(nn.Linear(dim, 16), nn.Tanh(), nn.Linear(16, 1)).double()
    g = _generator(seed)
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
def _quadratic(score: Score) -> None:
    x = torch.randn(6, 3, dtype=torch.float64, generator=_generator(0))
    got = score(lambda y: 0.5 * (y ** 2).sum(-1), x)
    _expect_score(got, -x, x, what="score(E, x) for E(x) = ½‖x‖²")


@score_ex.check("matches the closed-form score of a Gaussian mixture", points=2)
def _mixture_score(score: Score) -> None:
    gm = _mixture()
    x = 2.0 * torch.randn(8, 2, dtype=torch.float64, generator=_generator(1))
    got = score(_as_callable(gm), x)
    _expect_score(got, gm.score(x), x, what="score(E, x) for a 3-component Gaussian mixture")


@score_ex.check("matches autograd on a small neural-network energy", points=1)
def _neural(score: Score) -> None:
    net = _mlp(2)
    x = torch.randn(5, 3, dtype=torch.float64, generator=_generator(2))
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(net(xr).sum(), xr)
    got = score(_as_callable(net), x)
    _expect_score(got, -grad, x, what="score(E, x) for an MLP energy")


@score_ex.check("adding a constant to the energy leaves the score unchanged", points=1)
def _constants(score: Score) -> None:
    gm = _mixture()
    x = 2.0 * torch.randn(7, 2, dtype=torch.float64, generator=_generator(3))
    reference = gm.score(x)
    for c in (-7.5, 3.0e4, 1.0e20):
        got = score(lambda y, c=c: gm(y) + c, x)
        _expect_score(got, reference, x, what=f"score(E + c, x) with c = {c:g}",
                      hint="a constant such as log Z has zero gradient, so E + c has the score "
                           "of E. Differentiate the energy itself, not exp(-E) (which underflows "
                           "to 0 for a large c).")


@score_ex.check("a learnable log Z offset leaves the score unchanged", points=1)
def _learnable_offset(score: Score) -> None:
    gm = _mixture()
    x = 2.0 * torch.randn(6, 2, dtype=torch.float64, generator=_generator(4))
    reference = gm.score(x)
    for log_z in (0.0, 2.5, -40.0):
        got = score(_ShiftedEnergy(gm, log_z), x)
        _expect_score(got, reference, x,
                      what=f"score(E + log Z, x) with a learnable log Z = {log_z:g}",
                      hint="p(x) = exp(-E(x)) / Z: log Z is constant in x, so it cannot change "
                           "∇_x log p(x). Differentiate with respect to x only.")


@score_ex.check("works under torch.no_grad() and leaves the grad mode as it was", points=1)
def _no_grad(score: Score) -> None:
    gm = _mixture()
    x = torch.randn(4, 2, dtype=torch.float64, generator=_generator(5))
    hint = ("samplers call the score inside torch.no_grad(); compute the gradient inside "
            "`with torch.enable_grad():` (on a copy x.detach().requires_grad_(True)).")
    with torch.no_grad():
        got = _call(score, _as_callable(gm), x, context="called inside torch.no_grad()",
                    hint=hint)
        if torch.is_grad_enabled():
            fail("the grad mode after score(energy, x) inside torch.no_grad()",
                 expected="still disabled", got="enabled",
                 hint="use `with torch.enable_grad():` so the mode is restored on exit; "
                      "do not call torch.set_grad_enabled(True).")
    _expect_score(got, gm.score(x), x, what="score(E, x) called inside torch.no_grad()")
    score(_as_callable(gm), x)
    if not torch.is_grad_enabled():
        fail("the grad mode after score(energy, x)", expected="still enabled", got="disabled",
             hint="restore the grad mode you changed (use a `with` block).")


@score_ex.check("leaves x and the energy's parameters untouched", points=1)
def _no_side_effects(score: Score) -> None:
    net = _mlp(6)
    x = torch.randn(5, 3, dtype=torch.float64, generator=_generator(6))
    snapshot = x.clone()
    score(net, x)
    if not torch.equal(x, snapshot):
        fail("x after the call", expected="x unchanged", got="its values were modified in place",
             hint="do not write into x (no x += ..., x[...] = ..., x.add_(...)).")
    if x.requires_grad or x.grad is not None:
        fail("x after the call", expected="x.requires_grad == False and x.grad None, as passed",
             got=f"x.requires_grad == {x.requires_grad}, x.grad "
                 f"{'set' if x.grad is not None else 'None'}",
             hint="x.requires_grad_() changes the caller's tensor; work on a copy: "
                  "x = x.detach().requires_grad_(True).")
    leaf = torch.randn(5, 3, dtype=torch.float64, generator=_generator(7)).requires_grad_(True)
    score(net, leaf)
    touched = [n for n, p in net.named_parameters() if p.grad is not None]
    if touched:
        fail("the energy's parameters after the call", expected="no .grad (None)",
             got=f"gradients accumulated in {len(touched)} parameter(s) ({', '.join(touched)})",
             hint="energy(x).sum().backward() also accumulates gradients into the model's "
                  "parameters and would corrupt a training step; torch.autograd.grad("
                  "energy(x).sum(), x) returns the gradient with respect to x only.")
    if leaf.grad is not None:
        fail("x.grad of an input that requires grad, after the call", expected="None",
             got="a gradient was accumulated into x.grad",
             hint="use torch.autograd.grad(energy(x).sum(), x) on a copy of x instead of "
                  ".backward(), which writes into the caller's x.grad.")


@score_ex.check("returns a tensor of x's shape and dtype, without a graph "
                "(float32 and float64, batch of one)", points=1)
def _shape_dtype(score: Score) -> None:
    for dtype in (torch.float32, torch.float64):
        scale = torch.tensor([1.0, 3.0], dtype=dtype)
        for batch in (1, 5):
            x = torch.randn(batch, 2, dtype=dtype, generator=_generator(8 + batch))
            what = f"score(E, x) for x of shape ({batch}, 2) and dtype {dtype}"
            got = expect_tensor(score(lambda y, s=scale: 0.5 * (s * y * y).sum(-1), x),
                                what=what, shape=x.shape, hint=_SHAPE_HINT)
            expect_tensor(got, what=what, dtype=dtype,
                          hint="keep x's dtype: no .float()/.double(), and new tensors with "
                               "dtype=x.dtype.")
            if got.requires_grad:
                fail(what, expected="a tensor without a graph (requires_grad False)",
                     got="a tensor that requires grad",
                     hint="return the gradient itself: torch.autograd.grad(...) without "
                          "create_graph, or .detach() the result.")


def _device() -> torch.device:
    """CUDA when this process can use it; otherwise the data-free "meta" device.

    Called in the check's (forked) process only: a process forked after its parent used
    CUDA cannot use it, and the meta device then still finds tensors created on the
    wrong device.
    """
    bad_fork = getattr(torch.cuda, "_is_in_bad_fork", lambda: False)()
    if not bad_fork and torch.cuda.is_available():
        try:
            torch.zeros(1, device="cuda")
        except RuntimeError:
            pass
        else:
            return torch.device("cuda")
    return torch.device("meta")


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


@score_ex.check("follows the input's device", points=1)
def _follows_device(score: Score) -> None:
    device = _device()
    x = torch.randn(4, 2, dtype=torch.float64, generator=_generator(12)).to(device)
    meta = device.type == "meta"
    hint = ("build every new tensor on x's device (device=x.device, torch.zeros_like(x)); "
            "never call .cpu() or .item()."
            + (" This check runs your function on a 'meta' tensor (shape and dtype, no data) "
               "to find tensors created on the wrong device." if meta else ""))
    try:
        got = score(lambda y: 0.5 * (y ** 2).sum(-1) + 3.0, x)
    except NotImplementedError:
        raise
    except (RuntimeError, TypeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        fail(f"score(E, x) for x on device {device}", expected=f"a tensor on {device}",
             got=f"{type(exc).__name__}: {first}", hint=hint)
    got = expect_tensor(got, what=f"score(E, x) for x on device {device}", shape=x.shape,
                        hint=_SHAPE_HINT)
    expect_device(got, device, what=f"score(E, x) for x on device {device}", hint=hint)
    if not meta:
        _expect_score(got, -x, x, what=f"score(E, x) for x on device {device}")
