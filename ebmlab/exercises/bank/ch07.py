r"""Graded exercises of chapter 7: canonical models, RBMs and deep EBMs.

Exercise 7.1: the free energy of a restricted Boltzmann machine,
:math:`F(v) = -a^\top v - \sum_j \operatorname{softplus}(b_j + v^\top W_{:j})`, the
energy of the visible units once the hidden units are summed out. The checks compare
it with the brute-force sum over every hidden configuration (float64 enumeration), with
:class:`ebmlab.RBM`, with its closed-form parameter gradient, and test it with weights
so large that :math:`\log(1 + e^x)` overflows.

Exercise 7.2: the negative phase of deep-EBM training (Du & Mordatch 2019): draw
chains from a replay buffer, restart some of them from noise, and run :math:`K`
Langevin steps with an elementwise-clipped energy gradient. The random numbers are
arguments, so every check is deterministic; the Langevin steps are compared with
:func:`ebmlab.langevin` fed the same noise, the restarts with the mask they must
follow and with their binomial statistics.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ...energies import RBM, GaussianMixture
from ...samplers import langevin
from ...utils import randn_like
from .._registry import register
from .._student import CheckContext, ProbeError, Student
from ..expect import (
    call_student,
    expect_close,
    expect_detached,
    expect_device,
    expect_grad_mode,
    expect_no_parameter_grads,
    expect_tensor,
    expect_unchanged,
    fail,
)
from ._common import Plain, Quadratic, argument_gradients

FreeEnergy = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Negatives = Callable[..., torch.Tensor]

free_energy_ex = register("7.1", "The free energy of an RBM", function="rbm_free_energy",
                          forbidden=("ebmlab.RBM.free_energy", "ebmlab.RBM.forward"))
negatives_ex = register("7.2", "The negative phase of deep-EBM training",
                        function="replay_negatives", forbidden=("ebmlab.langevin",))



# ====================================================================== exercise 7.1

_F_HOW = ("sum the hidden units out one at a time: each h_j ∈ {0, 1} contributes a factor "
          "1 + exp(b_j + v·W[:, j]), so F(v) = -v·a - Σ_j softplus(b_j + v·W[:, j]).")
_F_SHAPE = ("F(v) is one number per row of v: shape (B,) for v of shape (B, n_v); keep the "
            "batch axis even when B = 1 (no .squeeze()).")


def _rbm_params(n_v: int, n_h: int, g: torch.Generator, scale: float = 1.0,
                dtype: torch.dtype = torch.float64
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    w = scale * torch.randn(n_v, n_h, generator=g, dtype=torch.float64)
    a = 0.5 * scale * torch.randn(n_v, generator=g, dtype=torch.float64)
    b = 0.5 * scale * torch.randn(n_h, generator=g, dtype=torch.float64)
    return w.to(dtype), a.to(dtype), b.to(dtype)


def _binary(n: int, d: int, g: torch.Generator,
            dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return (torch.rand(n, d, generator=g, dtype=torch.float64) < 0.5).to(dtype)


def _brute_force_free_energy(v: torch.Tensor, w: torch.Tensor, a: torch.Tensor,
                             b: torch.Tensor) -> torch.Tensor:
    r""":math:`-\log\sum_h e^{-E(v,h)}` by enumerating every :math:`h`, in float64."""
    v, w, a, b = (t.detach().to("cpu", torch.float64) for t in (v, w, a, b))
    hs = torch.tensor(list(itertools.product((0.0, 1.0), repeat=w.shape[1])),
                      dtype=torch.float64)                                   # (2^n_h, n_h)
    joint = -(v @ a)[:, None] - (hs @ b)[None, :] - (v @ w) @ hs.T          # E(v, h), (B, 2^n_h)
    return -torch.logsumexp(-joint, dim=1)


def _expect_free_energy(got: object, reference: torch.Tensor, v: torch.Tensor, *, what: str,
                        atol: float = 1e-9, rtol: float = 1e-9,
                        hint: str = _F_HOW) -> torch.Tensor:
    got_t = expect_tensor(got, what=what, shape=(v.shape[0],), hint=_F_SHAPE)
    g = got_t.detach().to("cpu", torch.float64)
    r = reference.detach().to("cpu", torch.float64)
    if torch.allclose(g, -r, atol=atol, rtol=rtol) and bool(r.abs().max() > atol):
        hint = ("your result has the opposite sign: the free energy is MINUS the log of "
                "Σ_h exp(-E(v, h)), F(v) = -a·v - Σ_j softplus(...).")
    return expect_close(got_t, reference, atol=atol, rtol=rtol, what=what, hint=hint)


@free_energy_ex.check("matches the brute-force sum over every hidden configuration", points=2)
def _brute_force(rbm_free_energy: Student, ctx: CheckContext) -> None:
    for n_v, n_h, seed in ((5, 3, 0), (4, 7, 1)):
        w, a, b = _rbm_params(n_v, n_h, ctx.generator(seed))
        v = _binary(9, n_v, ctx.generator(10 + seed))
        got = rbm_free_energy(v, w, a, b)
        _expect_free_energy(got, _brute_force_free_energy(v, w, a, b), v,
                            what=f"rbm_free_energy(v, W, a, b) for an RBM with {n_v} visible "
                                 f"and {n_h} hidden units (vs -log Σ_h exp(-E(v, h)))")


@free_energy_ex.check("matches ebmlab.RBM's free energy (the module's forward)", points=1)
def _matches_rbm(rbm_free_energy: Student, ctx: CheckContext) -> None:
    rbm = RBM(6, 4, generator=ctx.generator(3)).double()
    w, a, b = _rbm_params(6, 4, ctx.generator(4))
    with torch.no_grad():
        rbm.weight.copy_(w)
        rbm.visible_bias.copy_(a)
        rbm.hidden_bias.copy_(b)
        v = rbm.random_state(11, generator=ctx.generator(5))
        reference = rbm(v)
    got = rbm_free_energy(v, w, a, b)
    _expect_free_energy(got, reference, v, what="rbm_free_energy(v, W, a, b) vs ebmlab.RBM(v)")


@free_energy_ex.check("stays finite and exact for weights so large that exp overflows "
                      "(float32)", points=2)
def _large_weights(rbm_free_energy: Student, ctx: CheckContext) -> None:
    w, a, b = _rbm_params(8, 5, ctx.generator(6), scale=60.0)
    v = _binary(10, 8, ctx.generator(7))
    w32, a32, b32, v32 = (t.to(torch.float32) for t in (w, a, b, v))
    reference = _brute_force_free_energy(v32, w32, a32, b32)
    assert bool((v32 @ w32 + b32).abs().max() > 120.0)   # exp(120) overflows float32
    hint = ("log(1 + exp(x)) overflows to inf once x > 88 in float32 (and exp(-x) for "
            "x < -88): use torch.nn.functional.softplus, or max(x, 0) + log1p(exp(-|x|)).")
    got = expect_tensor(rbm_free_energy(v32, w32, a32, b32),
                        what="rbm_free_energy(v, W, a, b) with pre-activations of size ~100",
                        shape=(10,), hint=_F_SHAPE)
    expect_close(got, reference, atol=1e-3, rtol=1e-5,
                 what="rbm_free_energy(v, W, a, b) with weights of size ~60 (float32), vs "
                      "the float64 enumeration",
                 hint=hint)


@free_energy_ex.check("is differentiable: its gradient in W is -Σ_b v_b σ(b + v_b W)ᵀ", points=1)
def _gradient(rbm_free_energy: Student, ctx: CheckContext) -> None:
    w, a, b = _rbm_params(5, 4, ctx.generator(8))
    v = _binary(7, 5, ctx.generator(9))
    wr, ar, br = (t.clone().requires_grad_(True) for t in (w, a, b))
    what = "the gradient of Σ_b F(v_b) with respect to W"
    hint = ("CD and PCD differentiate the free energy with respect to the parameters: build "
            "F(v) from torch operations on W, a, b (no .detach(), .numpy(), .item(), no "
            "torch.no_grad()).")
    got, grads = rbm_free_energy.with_probe(argument_gradients)(v, wr, ar, br)
    got = expect_tensor(got, what="rbm_free_energy(v, W, a, b)", shape=(7,), hint=_F_SHAPE)
    if not got.requires_grad or grads is None or isinstance(grads, ProbeError):
        fail(what, expected="a result that depends on W (requires_grad True)",
             got="a result without a graph", hint=hint)
    if any(gr is None for gr in grads):
        fail(what, expected="gradients for W, a and b", got="no gradient for one of them",
             hint=hint)
    p_h = torch.sigmoid(v @ w + b)
    expect_close(grads[0], -(v.T @ p_h), atol=1e-9, rtol=1e-9, what=what,
                 hint="∂F/∂W_ij = -v_i σ(b_j + v·W[:, j]); check the softplus term.")
    expect_close(grads[1], -v.sum(0), atol=1e-9, rtol=1e-9,
                 what="the gradient of Σ_b F(v_b) with respect to a", hint=_F_HOW)
    expect_close(grads[2], -p_h.sum(0), atol=1e-9, rtol=1e-9,
                 what="the gradient of Σ_b F(v_b) with respect to b", hint=_F_HOW)


@free_energy_ex.check("returns shape (B,) with v's dtype (float32 and float64, batch of one), "
                      "leaving the inputs untouched", points=1)
def _shapes(rbm_free_energy: Student, ctx: CheckContext) -> None:
    for dtype in (torch.float32, torch.float64):
        for batch in (1, 6):
            w, a, b = _rbm_params(7, 3, ctx.generator(11), dtype=dtype)
            v = _binary(batch, 7, ctx.generator(12 + batch), dtype=dtype)
            copies = [t.clone() for t in (v, w, a, b)]
            what = f"rbm_free_energy(v, W, a, b) for v of shape ({batch}, 7), dtype {dtype}"
            got = expect_tensor(rbm_free_energy(v, w, a, b), what=what, shape=(batch,),
                                hint=_F_SHAPE)
            expect_tensor(got, what=what, dtype=dtype,
                          hint="keep the input's dtype: no .float()/.double() and no new "
                               "tensors in the default dtype.")
            for name, t, c in zip(("v", "W", "a", "b"), (v, w, a, b), copies, strict=True):
                expect_unchanged(t, c, what=name)
            _expect_free_energy(got, _brute_force_free_energy(v, w, a, b), v, what=what,
                                atol=1e-4 if dtype == torch.float32 else 1e-9,
                                rtol=1e-5 if dtype == torch.float32 else 1e-9)


@free_energy_ex.prepare
def _warm_up_meta() -> None:
    """Load the meta kernels once in the grading process (seconds), not in every check."""
    v = torch.zeros(2, 3, device="meta")
    w = torch.zeros(3, 2, device="meta")
    (-(v @ v.new_zeros(3)) - torch.nn.functional.softplus(v @ w).sum(-1)).clone()
    torch.logaddexp(v, v).log1p().exp().sigmoid().clamp(0, 1).abs().neg()


@free_energy_ex.check("follows the input's device", points=1)
def _follows_device(rbm_free_energy: Student, ctx: CheckContext) -> None:
    device = ctx.device
    w, a, b = (t.to(device) for t in _rbm_params(4, 3, ctx.generator(13)))
    v = _binary(5, 4, ctx.generator(14)).to(device)
    meta = device.type == "meta"
    hint = ("build every new tensor on v's device (device=v.device, torch.zeros_like(v)); "
            "never call .cpu(), .item() or .numpy()."
            + (" This check runs your function on 'meta' tensors (shape and dtype, no data) "
               "to find tensors created on the wrong device." if meta else ""))
    what = f"rbm_free_energy(v, W, a, b) for inputs on device {device}"
    if meta:  # the meta device has no values: check them on the CPU first
        cpu = (_binary(5, 4, ctx.generator(14)), *_rbm_params(4, 3, ctx.generator(13)))
        _expect_free_energy(rbm_free_energy(*cpu), _brute_force_free_energy(*cpu), cpu[0],
                            what="rbm_free_energy(v, W, a, b) on the CPU")
    got = call_student(rbm_free_energy, v, w, a, b, what=what, expected=f"a tensor on {device}",
                       hint=hint, errors=(RuntimeError, TypeError, ValueError))
    got = expect_tensor(got, what=what, shape=(5,), hint=_F_SHAPE)
    expect_device(got, device, what=what, hint=hint)
    if not meta:
        _expect_free_energy(got, _brute_force_free_energy(v, w, a, b), v, what=what)


# ====================================================================== exercise 7.2

_N_HOW = ("x_0 = fresh where u < reinit_prob, else buffer[idx]; then for t = 0..K-1: "
          "x ← x - step_size · clamp(∇_x E(x), -grad_clip, grad_clip) + noise_scale · noise[t].")
_N_SHAPE = ("the negatives have one row per drawn index: shape (len(idx), *event_shape), like "
            "fresh.")


def _mixture() -> GaussianMixture:
    means = torch.tensor([[-1.5, 0.0], [1.5, 0.5]], dtype=torch.float64)
    return GaussianMixture(means, torch.tensor([0.7, 0.5], dtype=torch.float64),
                           torch.tensor([0.6, 0.4], dtype=torch.float64))


class _MLP(nn.Module):
    """A small energy network ``(B, d) -> (B,)`` with seeded float64 weights."""

    def __init__(self, dim: int, g: torch.Generator) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 16), nn.Tanh(), nn.Linear(16, 1)).double()
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(0.8 * torch.randn(p.shape, dtype=p.dtype, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(-1)


def _inputs(n_buffer: int, batch: int, k: int, event: tuple[int, ...], g: torch.Generator, *,
            dtype: torch.dtype = torch.float64, u_low: float = 0.0
            ) -> dict[str, torch.Tensor]:
    """Buffer, indices, uniforms, fresh states and Langevin noise, all seeded."""
    buffer = 2.0 * torch.randn(n_buffer, *event, generator=g, dtype=torch.float64)
    idx = torch.randint(n_buffer, (batch,), generator=g)
    u = u_low + (1.0 - u_low) * torch.rand(batch, generator=g, dtype=torch.float64)
    fresh = 4.0 * torch.rand(batch, *event, generator=g, dtype=torch.float64) - 2.0
    noise = torch.randn(k, batch, *event, generator=g, dtype=torch.float64)
    return {"buffer": buffer.to(dtype), "idx": idx, "u": u.to(dtype),
            "fresh": fresh.to(dtype), "noise": noise.to(dtype)}


def _call_negatives(replay_negatives: Negatives, energy: Callable[[torch.Tensor], torch.Tensor],
                    inp: dict[str, torch.Tensor], **options: float | None) -> torch.Tensor:
    return replay_negatives(energy, inp["buffer"], inp["idx"], inp["u"], inp["fresh"],
                            inp["noise"], **options)


def _same_start(inp: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Make ``fresh`` equal to ``buffer[idx]``: a check of the Langevin steps then does not
    depend on the restarts (tested separately)."""
    inp["fresh"] = inp["buffer"][inp["idx"]].clone()
    return inp


def _start(inp: dict[str, torch.Tensor], reinit_prob: float) -> torch.Tensor:
    """The independent reference of the draw: buffer rows, restarted where u < reinit_prob."""
    x = inp["buffer"][inp["idx"]].clone()
    mask = inp["u"] < reinit_prob
    x[mask] = inp["fresh"][mask]
    return x


def _reference_langevin(energy: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor,
                        k: int, seed: int, **options: Any
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run :func:`ebmlab.langevin` and return its samples and the noise it drew (K, B, ...)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.stack([randn_like(x0, g) for _ in range(k)]) if k else x0.new_empty(0, *x0.shape)
    out = langevin(energy, x0.clone(), n_steps=k, generator=torch.Generator().manual_seed(seed),
                   **options)
    return out.samples, noise


def _explicit_steps(energy: Callable[[torch.Tensor], torch.Tensor],
                    inp: dict[str, torch.Tensor], reinit_prob: float, step_size: float,
                    noise_scale: float, grad_clip: float) -> torch.Tensor:
    """The negatives by explicit steps: the reference of the contract checks."""
    x = _start(inp, reinit_prob)
    for noise in inp["noise"]:
        xr = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(xr).sum(), xr)
        x = x - step_size * grad.clamp(-grad_clip, grad_clip) + noise_scale * noise
    return x.detach()


def _negatives_what(what: str) -> str:
    return f"replay_negatives(energy, buffer, idx, u, fresh, noise, ...) {what}"


@negatives_ex.check("with K = 0 steps and no restart, returns the drawn buffer rows", points=1)
def _draw_only(replay_negatives: Student, ctx: CheckContext) -> None:
    inp = _inputs(20, 6, 0, (3,), ctx.generator(0), u_low=0.5)
    got = _call_negatives(replay_negatives, Plain(_mixture()), inp, reinit_prob=0.1,
                          step_size=0.1, noise_scale=0.01, grad_clip=None)
    what = _negatives_what("with noise of shape (0, 6, 3) and every u >= reinit_prob")
    got = expect_tensor(got, what=what, shape=(6, 3), hint=_N_SHAPE)
    hint = ("start from buffer[idx] (one row per index, in the order of idx); with "
            "noise.shape[0] == 0 no Langevin step runs.")
    if torch.equal(got.detach().cpu(), inp["fresh"]):
        hint = ("you restarted every chain although every u >= reinit_prob: restart only "
                "where u < reinit_prob.")
    expect_close(got, inp["buffer"][inp["idx"]], atol=0, rtol=0, what=what, hint=hint)


@negatives_ex.check("restarts from `fresh` exactly the chains with u < reinit_prob", points=1)
def _restarts(replay_negatives: Student, ctx: CheckContext) -> None:
    inp = _inputs(30, 12, 0, (2,), ctx.generator(1))
    inp["u"] = torch.tensor([0.01, 0.9, 0.2, 0.29, 0.31, 0.6, 0.05, 0.99, 0.3, 0.15, 0.7, 0.5],
                            dtype=torch.float64)
    p = 0.3
    got = _call_negatives(replay_negatives, Plain(_mixture()), inp, reinit_prob=p,
                          step_size=0.1, noise_scale=0.01, grad_clip=None)
    what = _negatives_what(f"with K = 0 and reinit_prob = {p}")
    got = expect_tensor(got, what=what, shape=(12, 2), hint=_N_SHAPE)
    from_fresh = (got == inp["fresh"]).all(dim=1)
    expected = inp["u"] < p
    if not torch.equal(from_fresh, expected):
        wrong = [i for i in range(12) if bool(from_fresh[i]) != bool(expected[i])]
        hint = "a chain restarts when u < reinit_prob, i.e. with probability reinit_prob."
        if torch.equal(from_fresh, inp["u"] > p) or torch.equal(from_fresh, ~expected):
            hint = ("your restart mask is reversed: restart where u < reinit_prob (a small "
                    "reinit_prob restarts FEW chains), keep buffer[idx] elsewhere.")
        fail(what + ": the chains restarted from fresh",
             expected=f"rows {expected.nonzero().flatten().tolist()} (where u < {p})",
             got=f"rows {from_fresh.nonzero().flatten().tolist()} (wrong for rows {wrong})",
             hint=hint)
    expect_close(got, _start(inp, p), atol=0, rtol=0, what=what,
                 hint="restarted rows are fresh[i] (the same row i), the others buffer[idx[i]].")


@negatives_ex.check("restarts a fraction reinit_prob of 4000 chains (binomial test, 5 SE)",
                    points=1)
def _restart_fraction(replay_negatives: Student, ctx: CheckContext) -> None:
    n, p = 4000, 0.05
    g = ctx.generator(2)
    inp = {"buffer": torch.randn(500, 2, generator=g, dtype=torch.float64),
           "idx": torch.randint(500, (n,), generator=g),
           "u": torch.rand(n, generator=g, dtype=torch.float64),
           "fresh": 10.0 + torch.rand(n, 2, generator=g, dtype=torch.float64),
           "noise": torch.zeros(0, n, 2, dtype=torch.float64)}
    got = _call_negatives(replay_negatives, Plain(_mixture()), inp, reinit_prob=p,
                          step_size=0.1, noise_scale=0.01, grad_clip=None)
    got = expect_tensor(got, what=_negatives_what(f"for {n} chains"), shape=(n, 2),
                        hint=_N_SHAPE)
    frac = float((got[:, 0] >= 10.0).double().mean())
    se = math.sqrt(p * (1 - p) / n)
    if abs(frac - p) > 5 * se:
        fail(_negatives_what(f"with reinit_prob = {p}: the fraction of restarted chains"),
             expected=f"{p} ± {5 * se:.4f} (5 binomial standard errors)", got=f"{frac:.4f}",
             hint="restart chain i when u[i] < reinit_prob; do not draw your own random "
                  "numbers (use u).")


@negatives_ex.check("K Langevin steps match ebmlab.langevin fed the same noise", points=2)
def _langevin_steps(replay_negatives: Student, ctx: CheckContext) -> None:
    gm = _mixture()
    for k, eps, sigma in ((1, 0.05, 0.3), (15, 0.02, None)):
        inp = _same_start(_inputs(40, 8, 0, (2,), ctx.generator(3 + k)))
        p = 0.25
        x0 = _start(inp, p)
        noise_scale = math.sqrt(2 * eps) if sigma is None else sigma
        reference, noise = _reference_langevin(gm, x0, k, ctx.generator(100 + k).initial_seed(),
                                               step_size=eps,
                                               noise_scale=noise_scale)
        inp["noise"] = noise
        what = _negatives_what(f"with K = {k}, step_size = {eps}, noise_scale = "
                               f"{noise_scale:.4g}, no clipping")
        got = _call_negatives(replay_negatives, Plain(gm), inp, reinit_prob=p,
                              step_size=eps, noise_scale=noise_scale, grad_clip=None)
        got = expect_tensor(got, what=what, shape=(8, 2), hint=_N_SHAPE)
        hint = _N_HOW
        moved = got.detach() - x0
        if k == 1:
            drift = reference - x0 - noise_scale * noise[0]
            if torch.allclose(moved, -drift + noise_scale * noise[0], atol=1e-9):
                hint = ("you step UP the energy: Langevin moves against the gradient, "
                        "x ← x - step_size · ∇_x E(x) + noise_scale · noise[t].")
        expect_close(got, reference, atol=1e-9, rtol=1e-9, what=what, hint=hint)


class Steep:
    r""":math:`E(x) = 40\|x\|^2 + 25 x_1`: gradients far above the clipping threshold."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return 40.0 * (x ** 2).sum(-1) + 25.0 * x[:, 0]


@negatives_ex.check("clips every element of ∇_x E to [-grad_clip, grad_clip]", points=2)
def _clipping(replay_negatives: Student, ctx: CheckContext) -> None:
    steep = Steep()
    for k in (1, 6):
        inp = _same_start(_inputs(25, 10, 0, (2,), ctx.generator(20 + k)))
        eps, sigma, clip = 0.05, 0.01, 0.5
        x0 = _start(inp, 0.1)
        reference, noise = _reference_langevin(steep, x0, k, ctx.generator(200 + k).initial_seed(),
                                               step_size=eps,
                                               noise_scale=sigma, grad_clip=clip)
        inp["noise"] = noise
        what = _negatives_what(f"with K = {k} and grad_clip = {clip} on a steep energy")
        got = _call_negatives(replay_negatives, steep, inp, reinit_prob=0.1, step_size=eps,
                              noise_scale=sigma, grad_clip=clip)
        got = expect_tensor(got, what=what, shape=(10, 2), hint=_N_SHAPE)
        if k == 1:
            move = (got.detach() - x0 - sigma * noise[0]).abs().max()
            if float(move) > eps * clip * (1 + 1e-9):
                fail(what + ": the largest deterministic move |x_1 - x_0 - noise_scale·noise|",
                     expected=f"<= step_size · grad_clip = {eps * clip:g}",
                     got=f"{float(move):.6g}",
                     hint="clamp the gradient elementwise BEFORE the step: "
                          "grad.clamp(-grad_clip, grad_clip) (not its norm, not the step).")
        expect_close(got, reference, atol=1e-9, rtol=1e-9, what=what,
                     hint="clamp each element of ∇_x E(x) to [-grad_clip, grad_clip] at every "
                          "step (elementwise, with torch.clamp; not the gradient's norm), as "
                          "Du & Mordatch (2019) and ebmlab.langevin do.")


@negatives_ex.check("returns detached samples, leaves the inputs and the energy's "
                    "parameters untouched, works under torch.no_grad()", points=1)
def _side_effects(replay_negatives: Student, ctx: CheckContext) -> None:
    net = _MLP(3, ctx.generator(30))
    inp = _inputs(15, 5, 4, (3,), ctx.generator(31))
    copies = {name: t.clone() for name, t in inp.items()}
    got = _call_negatives(replay_negatives, net, inp, reinit_prob=0.2, step_size=0.05,
                          noise_scale=0.05, grad_clip=1.0)
    what = _negatives_what("for an MLP energy with learnable parameters")
    got = expect_tensor(got, what=what, shape=(5, 3), hint=_N_SHAPE)
    expect_detached(got, what=what, hint="the negatives are treated as constants in the loss: "
                                         "return x.detach().")
    for name, t in inp.items():
        expect_unchanged(t, copies[name], what=name,
                         hint="do not modify the buffer or the random numbers in place "
                              "(x = buffer[idx] is a copy, but x[mask] = ... on a view of the "
                              "buffer is not); the caller writes the negatives back itself.")
    expect_no_parameter_grads(
        net, hint="use torch.autograd.grad(energy(x).sum(), x), which returns ∇_x E only; "
                  ".backward() also fills the parameters' .grad and corrupts the training step.")
    expect_close(got, _explicit_steps(net, inp, 0.2, 0.05, 0.05, 1.0), atol=1e-10, rtol=1e-10,
                 what=what, hint=_N_HOW)
    reference = got.detach().clone()
    with torch.no_grad():
        again = call_student(_call_negatives, replay_negatives, net,
                             {k: v.clone() for k, v in inp.items()}, reinit_prob=0.2,
                             step_size=0.05, noise_scale=0.05, grad_clip=1.0,
                             what=_negatives_what("called inside torch.no_grad()"),
                             expected="the negatives",
                             hint="compute ∇_x E inside `with torch.enable_grad():` on "
                                  "x.detach().requires_grad_(True).")
        expect_grad_mode(False, what="the call inside torch.no_grad()",
                         hint="use `with torch.enable_grad():`, which restores the mode on "
                              "exit.")
    expect_close(again, reference, atol=1e-12, rtol=1e-12,
                 what=_negatives_what("called inside torch.no_grad()"),
                 hint="the result must not depend on the grad mode.")


@negatives_ex.check("works for image-shaped states and keeps their dtype "
                    "(float32 and float64, batch of one)", points=1)
def _images(replay_negatives: Student, ctx: CheckContext) -> None:
    for dtype in (torch.float32, torch.float64):
        for batch in (1, 7):
            net = _MLP(9, ctx.generator(40)).to(dtype)
            inp = _inputs(12, batch, 3, (1, 3, 3), ctx.generator(41 + batch), dtype=dtype)
            what = _negatives_what(f"for states of shape (1, 3, 3), batch {batch}, {dtype}")
            got = _call_negatives(replay_negatives, Plain(net), inp, reinit_prob=0.4,
                                  step_size=0.05, noise_scale=0.02, grad_clip=0.3)
            got = expect_tensor(got, what=what, shape=(batch, 1, 3, 3), hint=_N_SHAPE)
            expect_tensor(got, what=what, dtype=dtype,
                          hint="keep the buffer's dtype: no .float()/.double().")
            tol = 1e-5 if dtype == torch.float32 else 1e-10
            expect_close(got, _explicit_steps(net, inp, 0.4, 0.05, 0.02, 0.3), atol=tol,
                         rtol=tol, what=what,
                         hint=_N_HOW + " Index the batch axis only (buffer[idx], a mask of "
                              "shape (B, 1, 1, 1) for torch.where) so any event shape works.")


@negatives_ex.prepare
def _warm_up_meta_negatives() -> None:
    """Load the meta kernels of indexing, masking and autograd once (seconds)."""
    with torch.enable_grad():
        buf = torch.zeros(4, 2, dtype=torch.float64, device="meta")
        idx = torch.zeros(3, dtype=torch.int64, device="meta")
        u = torch.zeros(3, dtype=torch.float64, device="meta")
        x = torch.where((u < 0.5)[:, None], buf[idx], buf[idx]).requires_grad_(True)
        (g,) = torch.autograd.grad((0.5 * x * x).sum(-1).sum(), x)
        (x.detach() - 0.1 * g.clamp(-1.0, 1.0) + 0.1 * torch.zeros_like(x)).clone()


@negatives_ex.check("follows the input's device", points=1)
def _negatives_device(replay_negatives: Student, ctx: CheckContext) -> None:
    device = ctx.device
    inp = {k: v.to(device) for k, v in _inputs(10, 4, 2, (2,), ctx.generator(50)).items()}
    meta = device.type == "meta"
    hint = ("build every new tensor on the buffer's device (device=buffer.device, "
            "torch.zeros_like(x)); never call .cpu(), .item() or bool(tensor)."
            + (" This check runs your function on 'meta' tensors (shape and dtype, no data) "
               "to find tensors created on the wrong device." if meta else ""))
    what = _negatives_what(f"for inputs on device {device}")
    if meta:  # the meta device has no values: check them on the CPU first
        cpu = _inputs(10, 4, 2, (2,), ctx.generator(50))
        expect_close(_call_negatives(replay_negatives, Quadratic(), cpu, reinit_prob=0.5,
                                     step_size=0.1, noise_scale=0.1, grad_clip=1.0),
                     _explicit_steps(Quadratic(), cpu, 0.5, 0.1, 0.1, 1.0), atol=1e-10,
                     rtol=1e-10, what=_negatives_what("on the CPU"), hint=_N_HOW)
    got = call_student(_call_negatives, replay_negatives, Quadratic(), inp, reinit_prob=0.5,
                       step_size=0.1, noise_scale=0.1, grad_clip=1.0, what=what,
                       expected=f"a tensor on {device}", hint=hint,
                       errors=(RuntimeError, TypeError, ValueError))
    got = expect_tensor(got, what=what, shape=(4, 2), hint=_N_SHAPE)
    expect_device(got, device, what=what, hint=hint)
    if not meta:
        expect_close(got.cpu(), _explicit_steps(Quadratic(), {k: v.cpu() for k, v in inp.items()},
                                                0.5, 0.1, 0.1, 1.0),
                     atol=1e-10, rtol=1e-10, what=what, hint=_N_HOW)
