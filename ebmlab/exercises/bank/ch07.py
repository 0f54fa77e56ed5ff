r"""Graded exercises of chapter 7: canonical models, RBMs and deep EBMs.

The free energy of a binary RBM, once exercise 7.1, is part of exercise 1.3.

Exercise 7.2: the negative phase of deep-EBM training (Du & Mordatch 2019): draw
chains from a replay buffer, restart some of them from noise, and run :math:`K`
Langevin steps with an elementwise-clipped energy gradient. The random numbers are
arguments, so every check is deterministic; the Langevin steps are compared with
:func:`ebmlab.langevin` fed the same noise, the restarts with the mask they must
follow and with their binomial statistics.

Exercise 7.3 (training): a deep EBM trained with a replay buffer. The student writes the
whole loop; the check trains a seeded MLP energy on a 2-d Gaussian mixture for a fixed
number of updates, samples the trained energy with its own long Langevin chains, and
grades the samples by their MMD to the data (the reference reaches 0.006-0.009, an untrained
energy 0.08; the threshold is 0.04) and by how many sit on the data's two modes.

Exercise 7.4 (a checkable derivation): the log-partition function of a Gaussian–Bernoulli
RBM, :math:`E(v, h) = \tfrac12\|v - a\|^2 - b^\top h - v^\top W h`, whose visible units are
integrated out in closed form for each hidden configuration. The checks compare it with
grid quadrature of :math:`e^{-F(v)}` in one and two dimensions (where every slip in
completing the square gives another number), with weights large enough to overflow a
naive sum, and in five dimensions with a Monte Carlo estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ...energies import GaussianMixture, MLPEnergy
from ...metrics import mmd
from ...samplers import langevin
from ...utils import randn_like, single_threaded
from .._registry import register
from .._student import CheckContext, Student
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
from ._common import Plain, Quadratic, all_binary_states
from ._training import curve_summary, expect_losses, expect_training_contract

Negatives = Callable[..., torch.Tensor]

negatives_ex = register("7.2", "The negative phase of deep-EBM training",
                        function="replay_negatives", forbidden=("ebmlab.langevin",))
training_ex = register("7.3", "Train a deep EBM with a replay buffer", function="train_replay_ebm",
                       forbidden=("ebmlab.fit", "ebmlab.contrastive_loss"))
log_z_ex = register("7.4", "The partition function of a Gaussian-Bernoulli RBM",
                    function="gb_rbm_log_partition")



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


# ====================================================================== exercise 7.3

_T_HOW = ("each update: draw negatives from the replay buffer (restart ~5% from uniform noise "
          "over the data's box), run 10-30 Langevin steps on them (clip the gradient), write "
          "them back, then take an optimiser step on mean E(data) - mean E(negatives) plus a "
          "small α (E(data)² + E(negatives)²). If the curve blows up, lower the step size or "
          "raise α; if the samples miss a mode, run more Langevin steps.")
_T_STEPS = 300
_T_MEANS = ((-1.5, 0.0), (1.5, 0.5))
_T_WEIGHTS = (0.6, 0.4)


def _t_problem(ctx: CheckContext, stream: int) -> tuple[GaussianMixture, torch.Tensor,
                                                        MLPEnergy]:
    """The data (2000 points of a two-Gaussian mixture) and a seeded MLP energy."""
    gm = GaussianMixture(torch.tensor(_T_MEANS), torch.tensor([0.4, 0.4]),
                         torch.tensor(_T_WEIGHTS))
    data = gm.sample(2000, generator=ctx.generator(stream))
    torch.manual_seed(ctx.generator(stream + 1).initial_seed())
    return gm, data, MLPEnergy(2, hidden=(64, 64))


def _train(train_replay_ebm: Student, ctx: CheckContext, stream: int
           ) -> tuple[GaussianMixture, torch.Tensor, MLPEnergy, list[float], torch.Tensor]:
    """Run the student's loop (its parameter updates come back), then sample the trained
    energy with the check's own chains: 600 chains from the box, 300 steps of
    x ← x - 0.01 ∇E(x) + 0.05 ξ (the sampler of chapter 7's deep EBMs)."""
    gm, data, energy = _t_problem(ctx, stream)
    what = f"train_replay_ebm(energy, data, n_steps={_T_STEPS}, generator=...)"
    losses = train_replay_ebm(energy, data.clone(), n_steps=_T_STEPS,
                              generator=ctx.generator(stream + 2))
    expect_losses(losses, _T_STEPS, what)
    g = ctx.generator(stream + 3)
    x0 = 6.0 * torch.rand(600, 2, generator=g) - 3.0
    with single_threaded():
        samples = langevin(energy, x0, step_size=0.01, n_steps=300, noise_scale=0.05,
                           generator=g, check_divergence=False).samples
    return gm, data, energy, losses, samples


@training_ex.check("the trained energy's samples reach the data: MMD < 0.04", points=5,
                   timeout=60)
def _t_mmd(train_replay_ebm: Student, ctx: CheckContext) -> None:
    _, data, _, losses, samples = _train(train_replay_ebm, ctx, 0)
    finite = bool(torch.isfinite(samples).all())
    value = float(mmd(samples, data[:600])) if finite else math.inf
    if not value < 0.04:
        fail("the MMD between 600 Langevin samples of your trained energy (300 steps of "
             "x ← x - 0.01 ∇E + 0.05 ξ from uniform noise on [-3, 3]²) and the data",
             expected="< 0.04 (the reference loop reaches about 0.015)",
             got=f"{value:.4f}; your learning curve: {curve_summary(losses)}", hint=_T_HOW)


@training_ex.check("the samples sit on the data: 80 % near a mode, each mode with at least "
                   "25 % of them", points=4, timeout=60)
def _t_modes(train_replay_ebm: Student, ctx: CheckContext) -> None:
    _, _, _, losses, samples = _train(train_replay_ebm, ctx, 10)
    means = torch.tensor(_T_MEANS)
    distance = torch.cdist(samples.float().nan_to_num(1e6), means)
    near = distance.min(1).values < 1.2  # three standard deviations of a component
    share = float(near.float().mean())
    weights = (torch.bincount(distance[near].argmin(1), minlength=2).double()
               / max(int(near.sum()), 1))
    if share < 0.8 or not bool((weights >= 0.25).all()):
        fail("the Langevin samples of your trained energy: the share within 1.2 of a mode "
             "(three standard deviations), and the fraction of those at each mode",
             expected="a share >= 0.8, and at least 0.25 at each of the two modes (the data "
                      "have 0.6 and 0.4; short-run EBMs blur the weights, not the modes)",
             got=f"share {share:.3f}, fractions {weights.numpy().round(3)}; your learning "
                 f"curve: {curve_summary(losses)}",
             hint=_T_HOW + " A loss that falls far below zero and stays there means the "
                           "data's energy is pushed UP: check the sign of the contrast.")


@training_ex.check("returns the learning curve, trains the parameters, leaves the data "
                   "untouched", points=1, timeout=60)
def _t_contract(train_replay_ebm: Student, ctx: CheckContext) -> None:
    _, data, energy = _t_problem(ctx, 20)
    expect_training_contract(train_replay_ebm, energy, data, ctx.generator(22), n_steps=5,
                             what="train_replay_ebm(energy, data, n_steps=5, ...)")


# ====================================================================== exercise 7.4

_Z_HOW = ("for each hidden configuration h, E(v, h) is a quadratic in v: complete the square, "
          "½‖v - a‖² - vᵀWh = ½‖v - (a + Wh)‖² - aᵀWh - ½‖Wh‖², and integrate the Gaussian "
          "((2π)^{d/2}); then log Z = logsumexp over all h of "
          "[bᵀh + aᵀWh + ½‖Wh‖²] + (d/2) log 2π.")


def _gb_params(d: int, n_h: int, g: torch.Generator, scale: float = 1.0
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    w = scale * 0.7 * torch.randn(d, n_h, dtype=torch.float64, generator=g)
    a = torch.randn(d, dtype=torch.float64, generator=g)
    b = scale * 0.5 * torch.randn(n_h, dtype=torch.float64, generator=g)
    return w, a, b


def _gb_free_energy(v: torch.Tensor, w: torch.Tensor, a: torch.Tensor,
                    b: torch.Tensor) -> torch.Tensor:
    """F(v) = ½‖v - a‖² - Σ_j softplus(b_j + vᵀW_{:j}): the hidden units summed out."""
    return 0.5 * (v - a).square().sum(-1) - torch.nn.functional.softplus(v @ w + b).sum(-1)


def _quadrature_log_z(w: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                      points: int) -> torch.Tensor:
    """log ∫ e^{-F(v)} dv by the midpoint rule on a box around the mass (d = 1 or 2)."""
    d = w.shape[0]
    reach = 1.0 + a.abs().max() + w.abs().sum(1).max() + 8.0
    t = torch.linspace(-float(reach), float(reach), points, dtype=torch.float64)
    cell = float(t[1] - t[0]) ** d
    v = t[:, None] if d == 1 else torch.cartesian_prod(t, t)
    return torch.logsumexp(-_gb_free_energy(v, w, a, b), 0) + math.log(cell)


def _z_variants(w: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """The usual slips in completing the square, for the hints."""
    hs = all_binary_states(w.shape[1])
    wh = hs @ w.T
    d = w.shape[0]
    base = hs @ b + wh @ a
    half = 0.5 * d * math.log(2 * math.pi)
    return {
        "the square of the shifted mean is missing: completing the square leaves "
        "+½‖Wh‖² in the exponent.": float(torch.logsumexp(base, 0)) + half,
        "the Gaussian integral ∫ exp(-½‖v - μ‖²) dv is (2π)^{d/2}: add (d/2) log 2π.":
            float(torch.logsumexp(base + 0.5 * wh.square().sum(1), 0)),
        "the sign of ½‖Wh‖²: integrating exp(vᵀWh - ½‖v - a‖²) over v gives "
        "(2π)^{d/2} exp(+aᵀWh + ½‖Wh‖²).":
            float(torch.logsumexp(base - 0.5 * wh.square().sum(1), 0)) + half,
    }


def _log_z(gb_rbm_log_partition: Student, w: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
           what: str) -> torch.Tensor:
    got = expect_tensor(gb_rbm_log_partition(w, a, b), what=what, shape=(),
                        hint="return log Z as a 0-d tensor.")
    return got


def _expect_log_z(got: torch.Tensor, reference: torch.Tensor, w: torch.Tensor,
                  a: torch.Tensor, b: torch.Tensor, what: str, tol: float) -> None:
    hint = _Z_HOW
    for text, value in _z_variants(w, a, b).items():
        if math.isfinite(float(got)) and abs(float(got) - value) < tol:
            hint = text
    expect_close(got, reference, atol=tol, rtol=0, what=what, hint=hint)


@log_z_ex.check("matches grid quadrature of exp(-F(v)) in one dimension (6 hidden units)",
                points=3)
def _z_one(gb_rbm_log_partition: Student, ctx: CheckContext) -> None:
    w, a, b = _gb_params(1, 6, ctx.generator(0))
    what = "gb_rbm_log_partition(W, a, b) for 1 visible and 6 hidden units"
    got = _log_z(gb_rbm_log_partition, w, a, b, what)
    _expect_log_z(got, _quadrature_log_z(w, a, b, 4001), w, a, b, what, 1e-6)


@log_z_ex.check("matches grid quadrature in two dimensions (4 hidden units)", points=3)
def _z_two(gb_rbm_log_partition: Student, ctx: CheckContext) -> None:
    w, a, b = _gb_params(2, 4, ctx.generator(1))
    what = "gb_rbm_log_partition(W, a, b) for 2 visible and 4 hidden units"
    got = _log_z(gb_rbm_log_partition, w, a, b, what)
    _expect_log_z(got, _quadrature_log_z(w, a, b, 701), w, a, b, what, 1e-5)


@log_z_ex.check("matches a Monte Carlo estimate in five dimensions (5 SE)", points=2)
def _z_five(gb_rbm_log_partition: Student, ctx: CheckContext) -> None:
    # Importance sampling with q = N(a, 2² I): Z = E_q[e^{-F(v)} / q(v)].
    g = ctx.generator(2)
    w, a, b = _gb_params(5, 3, g, scale=0.6)
    n = 200_000
    v = a + 2.0 * torch.randn(n, 5, dtype=torch.float64, generator=g)
    log_q = (-0.5 * ((v - a) / 2.0).square() - math.log(2.0)
             - 0.5 * math.log(2 * math.pi)).sum(1)
    log_ratio = -_gb_free_energy(v, w, a, b) - log_q
    shift = log_ratio.max()
    ratio = (log_ratio - shift).exp()
    estimate = shift + ratio.mean().log()
    se = float(ratio.std() / ratio.mean()) / math.sqrt(n)  # delta method on log
    what = "gb_rbm_log_partition(W, a, b) for 5 visible and 3 hidden units"
    got = _log_z(gb_rbm_log_partition, w, a, b, what)
    _expect_log_z(got, estimate, w, a, b, what + " (importance sampling, 200 000 draws)",
                  5 * se)


@log_z_ex.check("finite and exact for weights so large that exp overflows", points=1)
def _z_large(gb_rbm_log_partition: Student, ctx: CheckContext) -> None:
    w, a, b = _gb_params(1, 10, ctx.generator(3), scale=30.0)
    what = "gb_rbm_log_partition(W, a, b) with weights of size ~20 (exponents of size ~5000)"
    got = _log_z(gb_rbm_log_partition, w, a, b, what)
    expect_finite(got, what=what, hint="sum the 2^{n_h} terms with torch.logsumexp, never "
                  "by exponentiating them.")
    _expect_log_z(got, _quadrature_log_z(w, a, b, 40001), w, a, b, what, 1e-3)


@log_z_ex.check("a 0-d tensor of the weights' dtype; inputs untouched", points=1)
def _z_contract(gb_rbm_log_partition: Student, ctx: CheckContext) -> None:
    w, a, b = (t.float() for t in _gb_params(1, 3, ctx.generator(4)))
    copies = [t.clone() for t in (w, a, b)]
    what = "gb_rbm_log_partition(W, a, b) in float32"
    got = _log_z(gb_rbm_log_partition, w, a, b, what)
    expect_tensor(got, what=what, dtype=torch.float32, hint="keep the dtype of the weights.")
    for name, t, c in zip(("W", "a", "b"), (w, a, b), copies, strict=True):
        expect_unchanged(t, c, what=name)
    reference = _quadrature_log_z(w.double(), a.double(), b.double(), 4001)
    expect_close(got.double(), reference, atol=1e-4, rtol=0, what=what, hint=_Z_HOW)
