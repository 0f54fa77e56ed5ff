r"""Graded exercises of chapter 8: noise-contrastive estimation (Gutmann & Hyvärinen 2010).

Exercise 8.1 (a checkable derivation): NCE's optimal classifier. Pooling data from
:math:`p_m` with :math:`\nu` times as many noise samples from :math:`p_n`, Bayes' rule gives
:math:`P(\text{data}\mid u) = p_m/(p_m + \nu p_n) = \sigma(\log p_m - \log p_n - \log\nu)`.
The checks compare with that formula for several :math:`\nu` (where the usual slips give
other numbers), test log-densities 1000 nats apart in float32, and the contract.

Exercise 8.2: the NCE loss, the logistic loss of that classifier with the model
:math:`\log p_\theta = -E_\theta`, normalised per data point. The checks compare with a
closed form written with ``log1p``/``exp`` in float64, with :func:`ebmlab.nce_loss`, test
that its gradient is the one of the closed form, that it stays finite for energies far from
the noise, and that at the truth its gradient in the log-normaliser vanishes on average.

Exercise 8.3 (a design task): choose the noise. Given a data set, the student returns the
mean and standard deviations of a Gaussian noise distribution; the check fits a Gaussian
energy with a learnable log-normaliser by NCE with that noise (seeded Adam, fixed budget)
and accepts any noise with which the fit recovers :math:`\log Z` within 0.1 nats and the
density within a KL of 0.05. The chapter shows why noise that the classifier separates
easily fails; it does not give a recipe.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...objectives import nce_loss
from ...utils import single_threaded
from .._registry import register
from .._student import CheckContext, ProbeError, Student
from ..expect import expect_close, expect_finite, expect_tensor, fail
from ._common import parameter_gradients

posterior_ex = register("8.1", "NCE's optimal classifier", function="nce_posterior")
loss_ex = register("8.2", "The NCE loss", function="nce_objective",
                   forbidden=("ebmlab.nce_loss",))
noise_ex = register("8.3", "Design the noise", function="design_noise")


# ====================================================================== exercise 8.1

_P_HOW = ("by Bayes' rule with prior odds 1 : ν, P(data | u) = p_m(u) / (p_m(u) + ν p_n(u)) "
          "= σ(log p_m(u) - log p_n(u) - log ν); compute it with torch.sigmoid of the "
          "log-odds, never by dividing densities.")


def _posterior_hint(got: torch.Tensor, lm: torch.Tensor, ln: torch.Tensor, nu: float) -> str:
    g = got.detach().double()
    d = lm - ln
    variants = {
        "the noise is ν times more frequent, so its prior weighs on the noise side: subtract "
        "log ν from the log-odds (P = p_m / (p_m + ν p_n)).": torch.sigmoid(d + math.log(nu)),
        "the prior odds enter through log ν, not ν itself.": torch.sigmoid(d - nu),
        "this is P(noise | u): the posterior of the data class is p_m / (p_m + ν p_n).":
            torch.sigmoid(math.log(nu) - d),
        "the priors of the two classes are 1/(1+ν) and ν/(1+ν): they do not cancel when "
        "ν ≠ 1.": torch.sigmoid(d),
    }
    for hint, value in variants.items():
        if g.shape == value.shape and torch.allclose(g, value, rtol=1e-7, atol=1e-10):
            return hint
    return _P_HOW


@posterior_ex.check("matches Bayes' rule for ν = 1, 4 and 0.3", points=4)
def _bayes(nce_posterior: Student, ctx: CheckContext) -> None:
    g = ctx.generator(0)
    for nu in (1.0, 4.0, 0.3):
        lm = 2.0 * torch.randn(20, dtype=torch.float64, generator=g) - 1.0
        ln = 2.0 * torch.randn(20, dtype=torch.float64, generator=g) - 1.0
        what = f"nce_posterior(log_model, log_noise, nu={nu})"
        got = expect_tensor(nce_posterior(lm, ln, nu), what=what, shape=(20,),
                            hint="one posterior per point: the shape of log_model.")
        reference = lm.exp() / (lm.exp() + nu * ln.exp())
        expect_close(got, reference, atol=1e-12, rtol=1e-10, what=what,
                     hint=_posterior_hint(got, lm, ln, nu))


@posterior_ex.check("exact 0 and 1 (no NaN) for log-densities 1000 nats apart (float32)",
                    points=3)
def _extreme(nce_posterior: Student, ctx: CheckContext) -> None:
    sign = torch.where(torch.rand(8, generator=ctx.generator(1)) < 0.5, -1.0, 1.0)
    lm = (1000.0 * sign).to(torch.float32)
    ln = torch.zeros(8, dtype=torch.float32) - 3.0
    what = "nce_posterior(log_model, log_noise, nu=2.0) with log_model = ±1000, float32"
    got = expect_tensor(nce_posterior(lm, ln, 2.0), what=what, shape=(8,),
                        hint="one posterior per point.")
    expect_finite(got, what=what, hint="exp(1000) overflows to inf and inf/inf is NaN: "
                  "compute σ(log-odds) with torch.sigmoid.")
    expect_close(got, (sign > 0).to(torch.float32), atol=1e-6, rtol=0, what=what,
                 hint=_P_HOW)


@posterior_ex.check("keeps the dtype and the shape (batch of one)", points=1)
def _posterior_contract(nce_posterior: Student, ctx: CheckContext) -> None:
    lm = torch.tensor([0.5], dtype=torch.float32)
    ln = torch.tensor([-0.2], dtype=torch.float32)
    what = "nce_posterior(log_model, log_noise, nu=3.0) for one float32 point"
    got = expect_tensor(nce_posterior(lm, ln, 3.0), what=what, shape=(1,),
                        dtype=torch.float32, hint="keep the dtype and the shape of log_model.")
    expect_close(got, torch.sigmoid(torch.tensor([0.7 - math.log(3.0)])), atol=1e-6,
                 rtol=1e-6, what=what, hint=_posterior_hint(got, lm.double(), ln.double(), 3.0))


# ====================================================================== exercise 8.2

_L_HOW = ("the log-odds are G(u) - log ν with G(u) = -E(u) - log p_n(u) and ν = B_n/B_d; "
          "L = -(1/B_d)[Σ_data log σ(G(x) - log ν) + Σ_noise log σ(log ν - G(y))], with "
          "F.logsigmoid for stability.")


class GaussianEnergy(nn.Module):
    r""":math:`E(x) = \tfrac12\|(x - m)/s\|^2 + c` with learnable ``m``, ``log_s`` and ``c``
    (``c`` is the learnable log-normaliser: :math:`\log p = -E` is normalised when
    :math:`c = \log Z`)."""

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor, c: float) -> None:
        super().__init__()
        self.mean = nn.Parameter(mean.clone())
        self.log_std = nn.Parameter(log_std.clone())
        self.c = nn.Parameter(torch.tensor(float(c), dtype=mean.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((x - self.mean) / self.log_std.exp()).square().sum(-1) + self.c

    def log_z(self) -> torch.Tensor:
        """The true log-normaliser of the unnormalised part, :math:`\\sum_i \\log(\\sqrt{2\\pi}
        s_i)`."""
        return (0.5 * math.log(2 * math.pi) + self.log_std).sum()


class DiagonalGaussianLogProb:
    """The normalised log-density of :math:`\\mathcal N(\\mu, \\operatorname{diag}(s^2))`."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean = mean
        self.std = std

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.std
        return (-0.5 * z.square() - self.std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)


def _closed_form(energy: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 noise: DiagonalGaussianLogProb) -> torch.Tensor:
    """The NCE loss written with log1p/exp (float64 inputs, moderate values only)."""
    log_nu = math.log(y.shape[0] / x.shape[0])
    gx = -energy(x) - noise(x) - log_nu
    gy = -energy(y) - noise(y) - log_nu
    return (torch.log1p(torch.exp(-gx)).sum() + torch.log1p(torch.exp(gy)).sum()) / x.shape[0]


def _problem(g: torch.Generator, n_data: int, n_noise: int, dim: int = 2
             ) -> tuple[GaussianEnergy, torch.Tensor, torch.Tensor, DiagonalGaussianLogProb]:
    energy = GaussianEnergy(torch.randn(dim, dtype=torch.float64, generator=g),
                            0.3 * torch.randn(dim, dtype=torch.float64, generator=g), 1.2)
    x = torch.randn(n_data, dim, dtype=torch.float64, generator=g)
    noise = DiagonalGaussianLogProb(torch.zeros(dim, dtype=torch.float64),
                                    torch.full((dim,), 1.5, dtype=torch.float64))
    y = 1.5 * torch.randn(n_noise, dim, dtype=torch.float64, generator=g)
    return energy, x, y, noise


def _loss_hint(got: torch.Tensor, energy: nn.Module, x: torch.Tensor, y: torch.Tensor,
               noise: DiagonalGaussianLogProb) -> str:
    g = float(got.detach())
    with torch.no_grad():
        n_d, n_n = x.shape[0], y.shape[0]
        gx, gy = -energy(x) - noise(x), -energy(y) - noise(y)
        log_nu = math.log(n_n / n_d)
        variants = {
            "the noise ratio ν = B_n/B_d enters the log-odds as - log ν (here B_n ≠ B_d).":
                [float(-(F.logsigmoid(gx).sum() + F.logsigmoid(-gy).sum()) / n_d)],
            "normalise by the number of DATA points B_d (as ebmlab.nce_loss), not by "
            "B_d + B_n or by each class's own size.":
                [float(-(F.logsigmoid(gx - log_nu).sum() + F.logsigmoid(log_nu - gy).sum())
                       / (n_d + n_n)),
                 float(-(F.logsigmoid(gx - log_nu).mean() + F.logsigmoid(log_nu - gy).mean()))],
            "the model's log-density is -E(u): G(u) = -E(u) - log p_n(u), with a minus on "
            "the energy.":
                [float(-(F.logsigmoid(-gx - 2 * noise(x) - log_nu).sum()
                         + F.logsigmoid(log_nu + gy + 2 * noise(y)).sum()) / n_d)],
        }
    for hint, values in variants.items():
        if any(math.isclose(g, v, rel_tol=1e-8, abs_tol=1e-10) for v in values):
            return hint
    return _L_HOW


def _scalar(got: object, what: str) -> torch.Tensor:
    t = expect_tensor(got, what=what, hint="return the loss, a 0-d tensor.")
    if t.dim() != 0:
        fail(what, expected="a 0-d tensor", got=f"shape {tuple(t.shape)}",
             hint="sum over the data and the noise, divide by B_d: one number.")
    return t


@loss_ex.check("matches the closed form for ν = 1 and ν = 3 (B_n ≠ B_d)", points=4)
def _closed(nce_objective: Student, ctx: CheckContext) -> None:
    for seed, n_noise in ((0, 30), (1, 90)):
        energy, x, y, noise = _problem(ctx.generator(10 + seed), 30, n_noise)
        with torch.no_grad():
            reference = _closed_form(energy, x, y, noise)
        what = f"nce_objective(E, x_data, x_noise, log p_n) with B_d = 30, B_n = {n_noise}"
        got = _scalar(nce_objective(energy, x, y, noise), what)
        expect_close(got, reference, atol=1e-10, rtol=1e-9, what=what,
                     hint=_loss_hint(got, energy, x, y, noise))


@loss_ex.check("matches ebmlab.nce_loss on a 3-d problem", points=2)
def _library(nce_objective: Student, ctx: CheckContext) -> None:
    energy, x, y, noise = _problem(ctx.generator(12), 25, 50, dim=3)
    reference = nce_loss(energy, x, y, noise).detach()
    what = "nce_objective(E, x_data, x_noise, log p_n) vs ebmlab.nce_loss"
    got = _scalar(nce_objective(energy, x, y, noise), what)
    expect_close(got, reference, atol=1e-10, rtol=1e-9, what=what,
                 hint=_loss_hint(got, energy, x, y, noise))


@loss_ex.check("its gradient in the energy's parameters is the closed form's", points=2)
def _gradient(nce_objective: Student, ctx: CheckContext) -> None:
    energy, x, y, noise = _problem(ctx.generator(13), 20, 40)
    ref = torch.autograd.grad(_closed_form(energy, x, y, noise), list(energy.parameters()))
    got, grads = nce_objective.with_probe(parameter_gradients)(energy, x, y, noise)
    _scalar(got, "nce_objective(E, x_data, x_noise, log p_n)")
    hint = "keep the graph to the energy's parameters: no .detach(), .item() or no_grad."
    if grads is None or isinstance(grads, ProbeError) or any(gr is None for gr in grads):
        fail("the gradient of the loss in the energy's parameters", expected="a gradient",
             got="none (the loss has no graph)", hint=hint)
    for name, gr, r in zip(("m", "log s", "c"), grads, ref, strict=True):
        expect_close(gr, r, atol=1e-9, rtol=1e-7,
                     what=f"the gradient of the loss with respect to {name}",
                     hint=_loss_hint(got, energy, x, y, noise))


@loss_ex.check("finite and right when the classes are 800 nats apart (float32)", points=2)
def _far(nce_objective: Student, ctx: CheckContext) -> None:
    energy, x, y, noise = _problem(ctx.generator(14), 10, 10)
    with torch.no_grad():
        energy.c.fill_(800.0)  # the model puts ~e^-800 on everything: data look like noise
    e32 = GaussianEnergy(energy.mean.detach().float(), energy.log_std.detach().float(), 800.0)
    n32 = DiagonalGaussianLogProb(noise.mean.float(), noise.std.float())
    what = "nce_objective(E, x_data, x_noise, log p_n) with E ≈ 800 everywhere, float32"
    got = _scalar(nce_objective(e32, x.float(), y.float(), n32), what)
    expect_finite(got, what=what, hint="log σ(t) for t = -800 is log(0) if computed as "
                  "log(sigmoid(t)): use F.logsigmoid.")
    with torch.no_grad():
        gx = -energy(x) - noise(x)
        gy = -energy(y) - noise(y)
        reference = -(F.logsigmoid(gx).sum() + F.logsigmoid(-gy).sum()) / 10
    expect_close(got.double(), reference, atol=0, rtol=1e-4, what=what, hint=_L_HOW)


# ====================================================================== exercise 8.3

_N_HOW = ("NCE learns only what the classifier has to work for: noise that is easy to tell "
          "from the data (far away, or much narrower or broader in some direction) leaves "
          "the log-normaliser and the shape badly determined. Put the noise where the data "
          "are, at their scale in every coordinate, a little broader so that it covers "
          "their tails.")


def _data(g: torch.Generator, n: int = 3000) -> tuple[torch.Tensor, torch.Tensor,
                                                         torch.Tensor]:
    """Data from N(μ, diag(s²)) far from the origin and with very unequal scales."""
    mean = torch.tensor([6.0, -4.0], dtype=torch.float64) + torch.randn(2, dtype=torch.float64,
                                                                         generator=g)
    std = torch.tensor([0.3, 2.5], dtype=torch.float64) * (1 + 0.3 * torch.rand(
        2, dtype=torch.float64, generator=g))
    return mean + std * torch.randn(n, 2, dtype=torch.float64, generator=g), mean, std


def fit_nce(data: torch.Tensor, noise_mean: torch.Tensor, noise_std: torch.Tensor,
            g: torch.Generator, *, steps: int = 300) -> GaussianEnergy:
    """NCE fit of a Gaussian energy with a learnable log-normaliser (ν = 1, full batch,
    Adam), started at the noise distribution itself (normaliser included), as is usual."""
    noise = DiagonalGaussianLogProb(noise_mean, noise_std)
    y = noise_mean + noise_std * torch.randn(data.shape, dtype=torch.float64, generator=g)
    energy = GaussianEnergy(noise_mean, noise_std.log(), 0.0)
    with torch.no_grad():
        energy.c.copy_(energy.log_z())
    opt = torch.optim.Adam(energy.parameters(), lr=0.03)
    with single_threaded():
        for _ in range(steps):
            opt.zero_grad()
            nce_loss(energy, data, y, noise, validate=False).backward()
            opt.step()
    return energy


def _kl(mean: torch.Tensor, std: torch.Tensor, energy: GaussianEnergy) -> float:
    """KL(N(mean, std²) ‖ the fitted Gaussian), in nats."""
    s2 = energy.log_std.detach().exp()
    ratio = (std / s2).square()
    return float(0.5 * (ratio - 1 - ratio.log()).sum()
                 + 0.5 * ((mean - energy.mean.detach()) / s2).square().sum())


def _design(design_noise: Student, data: torch.Tensor, what: str
            ) -> tuple[torch.Tensor, torch.Tensor]:
    got = design_noise(data.clone())
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        fail(what, expected="a tuple (mean, std) of two tensors of shape (d,)",
             got=type(got).__name__, hint="return (mean, std).")
    mean = expect_tensor(got[0], what=f"the noise mean of {what}", shape=(2,),
                         hint="one mean per coordinate, shape (d,).")
    std = expect_tensor(got[1], what=f"the noise std of {what}", shape=(2,),
                        hint="one standard deviation per coordinate, shape (d,).")
    expect_finite(mean, what=f"the noise mean of {what}", hint=_N_HOW)
    expect_finite(std, what=f"the noise std of {what}", hint=_N_HOW)
    if not bool((std > 0).all()):
        fail(f"the noise std of {what}", expected="positive standard deviations",
             got=str(std.tolist()), hint="a density needs std > 0 in every coordinate.")
    return mean.double(), std.double()


def _expect_good_fit(design_noise: Student, ctx: CheckContext, stream: int) -> None:
    data, mean, std = _data(ctx.generator(stream))
    what = "design_noise(data)"
    noise_mean, noise_std = _design(design_noise, data, what)
    energy = fit_nce(data, noise_mean, noise_std, ctx.generator(stream + 100))
    err = abs(float(energy.c.detach() - energy.log_z().detach()))
    kl = _kl(mean, std, energy)
    if err >= 0.1 or kl >= 0.05 or not math.isfinite(err + kl):
        fail(f"NCE (300 Adam steps, ν = 1, started at the noise) with your noise "
             f"N({noise_mean.numpy().round(2)}, diag({noise_std.numpy().round(2)})²) on data "
             f"of mean {mean.numpy().round(2)} and std {std.numpy().round(2)}",
             expected="|c - log Z| < 0.1 nats and KL(data ‖ model) < 0.05",
             got=f"|c - log Z| = {err:.3f}, KL = {kl:.3f}", hint=_N_HOW)


@noise_ex.check("NCE with your noise recovers log Z and the density (data set A)", points=5,
                timeout=30)
def _data_a(design_noise: Student, ctx: CheckContext) -> None:
    _expect_good_fit(design_noise, ctx, 20)


@noise_ex.check("NCE with your noise recovers log Z and the density (data set B)", points=5,
                timeout=30)
def _data_b(design_noise: Student, ctx: CheckContext) -> None:
    _expect_good_fit(design_noise, ctx, 21)


@noise_ex.check("returns (mean, std): finite tensors of shape (d,), std > 0", points=2)
def _noise_contract(design_noise: Student, ctx: CheckContext) -> None:
    data, _, _ = _data(ctx.generator(22), n=500)
    _design(design_noise, data, "design_noise(data) for 500 points")
