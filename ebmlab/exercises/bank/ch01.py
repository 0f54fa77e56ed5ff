r"""Graded exercises of chapter 1: energy, the Boltzmann distribution and the partition function.

* 1.1 ``log_partition(energy, n_units, support)``: the exact :math:`\log Z` of a small
  discrete model by enumerating its states and a numerically stable log-sum-exp (the
  max-shift trick). Checked against closed forms (independent units), against
  :func:`ebmlab.exact_log_partition`, on energies shifted by :math:`\pm 10^4` (where
  :math:`e^{-E}` overflows or underflows), and for batching and the states it visits.
* 1.2 ``importance_log_z(energy, proposal, n_samples, generator=...)``: importance
  sampling of :math:`\log Z` with its delta-method standard error. Checked against closed
  forms within a few standard errors, for the calibration of the standard error and the
  unbiasedness of :math:`\hat Z` over many seeds, for stability and reproducibility.
* 1.3 ``rbm_free_energy(v, weight, visible_bias, hidden_bias)`` (a checkable derivation):
  the free energy :math:`F(v) = -\log\sum_h e^{-E(v,h)}` of a restricted Boltzmann
  machine, whose closed form the student derives (the stub gives only the definition).
  Checked against the brute-force sum over the hidden states (:func:`brute_free_energy`,
  the course's one enumeration of it), on 60 hidden units where only the derived closed
  form can answer in time, against :func:`ebmlab.exact_log_partition` (the probabilities
  sum to one), for overflow with large weights, for its gradients and its contract
  (shape, dtype, inputs, device).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch

from ...energies import RBM, BoltzmannMachine, Gaussian
from ...partition import exact_log_partition
from .._registry import register
from .._student import CheckContext, ProbeError, Student
from ..expect import (
    call_student,
    expect_close,
    expect_device,
    expect_finite,
    expect_tensor,
    expect_unchanged,
    fail,
)
from ._common import Plain, Shifted, argument_gradients

Energy = Callable[[torch.Tensor], torch.Tensor]

_F64 = torch.float64


def _scalar(got: object, *, what: str, hint: str) -> torch.Tensor:
    """The student's result as a 0-d tensor (a 1-element tensor is accepted for values)."""
    t = expect_tensor(got, what=what, hint=hint)
    if t.numel() != 1:
        fail(what, expected="a single number (a 0-d tensor)",
             got=f"a tensor of shape {tuple(t.shape)}", hint=hint)
    return t.reshape(())


# =========================================================================================
# 1.1 — log Z by enumeration and a stable log-sum-exp
# =========================================================================================

log_partition_ex = register("1.1", "A numerically stable log Z by enumeration",
                            function="log_partition", forbidden=("ebmlab.exact_log_partition",))

_LSE_HINT = ("Subtract the largest exponent before exponentiating: with a_s = -E(s) and "
             "m = max_s a_s, log Z = m + log sum_s exp(a_s - m). The largest term is then "
             "exp(0) = 1, so nothing overflows and the log never sees 0.")
_ENUM_HINT = ("Enumerate every configuration in support^n_units (itertools.product(support, "
              "repeat=n_units) or torch.cartesian_prod), stack them into one float64 tensor "
              "of shape (K**n_units, n_units), and evaluate the energy on that batch.")
_SCALAR_HINT = "return log Z as a 0-d float64 tensor, e.g. m + torch.log(total)."


class Independent:
    """:math:`E(x) = -h\\sum_i x_i`: independent units, :math:`\\log Z = n \\log\\sum_s e^{hs}`."""

    def __init__(self, field: float) -> None:
        self.field = field

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return -self.field * x.sum(dim=1)


def _independent_log_z(field: float, n: int, support: tuple[float, ...]) -> float:
    return n * math.log(sum(math.exp(field * s) for s in support))


def _call_log_partition(log_partition: Callable[..., object], energy: Energy, n: int,
                        support: tuple[float, ...], what: str) -> torch.Tensor:
    got = log_partition(energy, n, support)
    return _scalar(got, what=what, hint=_SCALAR_HINT)


def _precision(got: torch.Tensor, hint: str) -> str:
    """``hint``, preceded by a remark on the precision when the result is not float64."""
    if got.dtype != _F64:
        return (f"your result is {got.dtype}, which carries only about "
                f"{-int(math.log10(torch.finfo(got.dtype).eps))} digits: build the states "
                "with dtype=torch.float64. " + hint)
    return hint


@log_partition_ex.check("independent ±1 spins: log Z = n log(2 cosh h)", points=2)
def _lp_independent(log_partition: Student, ctx: CheckContext) -> None:
    fields = 2.0 * torch.rand(3, generator=ctx.generator(0), dtype=_F64) - 1.0
    for n, field in zip((1, 3, 6), (round(float(f), 3) for f in fields), strict=True):
        what = f"log_partition(E, {n}, (-1.0, 1.0)) for E(x) = -{field} * sum(x)"
        got = _call_log_partition(log_partition, Independent(field), n, (-1.0, 1.0), what)
        expect_close(got, torch.tensor(n * math.log(2 * math.cosh(field)), dtype=_F64),
                     atol=1e-10, rtol=1e-10, what=what,
                     hint=_precision(got, "with independent units the sum over 2^n states "
                                     "factorises into (e^h + e^-h)^n. If you are off, check "
                                     "that you visit every state once and use exp(-E), not "
                                     "exp(E). " + _ENUM_HINT))


@log_partition_ex.check("matches el.exact_log_partition on Boltzmann machines", points=2)
def _lp_boltzmann(log_partition: Student, ctx: CheckContext) -> None:
    for seed, d in ((0, 6), (1, 9)):
        g = ctx.generator(seed)
        w = 1.5 * torch.randn(d, d, dtype=_F64, generator=g)
        w = (w + w.T) / 2 * (1 - torch.eye(d, dtype=_F64))
        machine = BoltzmannMachine(w, torch.randn(d, dtype=_F64, generator=g))
        with torch.no_grad():
            reference = exact_log_partition(machine)
            what = f"log_partition(E, {d}, (0.0, 1.0)) for a Boltzmann machine on {{0,1}}^{d}"
            got = _call_log_partition(log_partition, Plain(machine), d, (0.0, 1.0), what)
        expect_close(got.detach(), reference, atol=1e-9, rtol=1e-10, what=what,
                     hint=_precision(got, "sum exp(-E(x)) over all 2^n states (here with "
                                     "units in {0, 1}). " + _ENUM_HINT))


@log_partition_ex.check("stable when the energies are huge: E + 1e4 and E - 1e4", points=2)
def _lp_stable(log_partition: Student, ctx: CheckContext) -> None:
    field, n = 0.5, 5
    base = _independent_log_z(field, n, (-1.0, 1.0))
    for shift in (1.0e4, -1.0e4, 5.0e5):
        what = f"log_partition(E + {shift:g}, {n}, (-1.0, 1.0))"
        got = _call_log_partition(log_partition, Shifted(Independent(field), shift), n,
                                  (-1.0, 1.0), what)
        expect_close(got, torch.tensor(base - shift, dtype=_F64), atol=1e-7, rtol=1e-12,
                     what=what,
                     hint=_precision(got, "adding a constant c to the energy changes log Z "
                                     "into log Z - c, but exp(-E) then overflows to inf "
                                     "(c < 0) or underflows to 0 (c > 0) in float64. "
                                     + _LSE_HINT))


@log_partition_ex.check("three-valued units, support (-1, 0, 1)", points=1)
def _lp_three_values(log_partition: Student, ctx: CheckContext) -> None:
    support, field, n = (-1.0, 0.0, 1.0), 0.8, 4
    what = f"log_partition(E, {n}, {support})"
    got = _call_log_partition(log_partition, Independent(field), n, support, what)
    expect_close(got, torch.tensor(_independent_log_z(field, n, support), dtype=_F64),
                 atol=1e-10, rtol=1e-10, what=what,
                 hint=_precision(got, "a unit takes len(support) values, so there are "
                                 "len(support)**n_units states (81 here), not 2**n_units. "
                                 + _ENUM_HINT))


class Recording:
    """:math:`E(x) = -0.3\\sum_i x_i` that counts its calls and records the first 64 batches
    (mirrored back to the check after the call)."""

    __mirror__ = ("calls", "count")

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls: list[torch.Tensor] = []
        self.count = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.n:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            fail("the states passed to the energy", expected=f"a tensor of shape (B, {self.n})",
                 got=f"{got}", hint=_ENUM_HINT)
        self.count += 1
        if self.count <= 64:
            self.calls.append(x.detach().to("cpu", _F64).clone())
        return -0.3 * x.sum(dim=1)


@log_partition_ex.check("evaluates every state exactly once, in batches", points=2)
def _lp_batches(log_partition: Student, ctx: CheckContext) -> None:
    n, support = 10, (0.0, 1.0)
    energy = Recording(n)
    _call_log_partition(log_partition, energy, n, support, f"log_partition(E, {n}, {support})")
    seen = energy.calls
    if not seen:
        fail(f"calls of the energy for {2 ** n} states", expected="at least one call",
             got="none", hint=_ENUM_HINT)
    if energy.count > 32:
        fail(f"calls of the energy for {2 ** n} states", expected="a few batched calls "
             "(at most 32)", got=f"{energy.count} calls",
             hint="evaluating one state per call is thousands of times slower than one "
                  "call on a batch of states. " + _ENUM_HINT)
    states = torch.cat(seen)
    values = torch.tensor(support, dtype=_F64)
    if not bool(torch.isin(states, values).all()):
        fail("the values of the units passed to the energy", expected=f"values in {support}",
             got="other values", hint=_ENUM_HINT)
    unique = torch.unique(states, dim=0).shape[0]
    if states.shape[0] != 2 ** n or unique != 2 ** n:
        fail(f"the states passed to the energy (n_units = {n})",
             expected=f"each of the {2 ** n} states exactly once",
             got=f"{states.shape[0]} states, {unique} of them distinct", hint=_ENUM_HINT)


@log_partition_ex.check("returns a 0-d float64 tensor", points=1)
def _lp_dtype(log_partition: Student, ctx: CheckContext) -> None:
    got = log_partition(Independent(0.4), 3, (-1.0, 1.0))
    what = "log_partition(E, 3, (-1.0, 1.0))"
    t = expect_tensor(got, what=what, hint=_SCALAR_HINT)
    if t.dim() != 0:
        fail(what, expected="a 0-d tensor (shape ())", got=f"shape {tuple(t.shape)}",
             hint="reduce over the states completely: a sum over dim=0 of a (K,) tensor "
                  "gives shape (), keepdim=True gives (1,).")
    expect_tensor(t, what=what, dtype=_F64,
                  hint="build the states with dtype=torch.float64: exact enumeration "
                       "sums many terms and needs double precision.")
    expect_close(t, torch.tensor(_independent_log_z(0.4, 3, (-1.0, 1.0)), dtype=_F64),
                 atol=1e-10, rtol=1e-10, what=what, hint=_ENUM_HINT)


# =========================================================================================
# 1.2 — importance sampling of log Z with a standard error
# =========================================================================================

importance_ex = register("1.2", "Importance sampling of log Z with its standard error",
                         function="importance_log_z",
                         forbidden=("ebmlab.importance_log_partition",
                                    "ebmlab.exact_log_partition"))

_IS_HINT = ("Draw x = proposal.sample(n_samples, generator=generator), form the log-weights "
            "log w = -energy(x) - proposal.log_prob(x), and return log of their mean, "
            "computed with the max-shift (log-sum-exp) trick: logsumexp(log w) - log n.")
_SE_HINT = ("the delta-method standard error of log(mean w) is sd(w) / (sqrt(n) * mean(w)); "
            "compute it from the normalised weights w_i / mean(w) = exp(log w_i - log Ẑ) so "
            "nothing overflows, and do not forget the sqrt(n).")
_RESULT_HINT = "return a tuple (log_z, stderr) of two 0-d tensors."


class _UniformSpins:
    """Uniform proposal over :math:`\\{-1,+1\\}^n` with the ``sample``/``log_prob`` interface."""

    def __init__(self, n: int) -> None:
        self.n = n

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        u = torch.rand(n, self.n, dtype=_F64, generator=generator)
        return torch.where(u < 0.5, -1.0, 1.0).to(_F64)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0],), -self.n * math.log(2.0), dtype=x.dtype)


def _target() -> Gaussian:
    cov = torch.tensor([[1.0, 0.5, 0.2], [0.5, 0.8, -0.1], [0.2, -0.1, 0.6]], dtype=_F64)
    return Gaussian(torch.tensor([0.3, -0.2, 0.5], dtype=_F64), cov)


def _broad(d: int, std: float) -> Gaussian:
    return Gaussian(torch.zeros(d, dtype=_F64), std ** 2 * torch.eye(d, dtype=_F64))


def _estimate(importance_log_z: Callable[..., object], energy: Energy, proposal: object,
              n: int, generator: torch.Generator, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    got = importance_log_z(energy, proposal, n, generator=generator)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        fail(what, expected="a tuple (log_z, stderr)",
             got=f"{type(got).__name__}" + (f" of length {len(got)}"
                                            if isinstance(got, (tuple, list)) else ""),
             hint=_RESULT_HINT)
    log_z = _scalar(got[0], what=f"log_z of {what}", hint=_RESULT_HINT)
    stderr = _scalar(got[1], what=f"stderr of {what}", hint=_RESULT_HINT)
    expect_finite(log_z, what=f"log_z of {what}", hint=_IS_HINT)
    expect_finite(stderr, what=f"stderr of {what}", hint=_SE_HINT)
    return log_z.detach().to(_F64), stderr.detach().to(_F64)


def _many(importance_log_z: Callable[..., object], energy: Energy, proposal: object, n: int,
          runs: int, ctx: CheckContext, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = [_estimate(importance_log_z, energy, proposal, n, ctx.generator(100 + r), what)
             for r in range(runs)]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


@importance_ex.check("within 4 standard errors of a Gaussian's closed-form log Z", points=2)
def _is_gaussian(importance_log_z: Student, ctx: CheckContext) -> None:
    target = _target()
    truth = target.log_partition()
    what = "importance_log_z(E, N(0, 1.5² I), 20000) for a 3-D Gaussian energy"
    log_z, stderr = _estimate(importance_log_z, Plain(target), _broad(3, 1.5), 20_000,
                              ctx.generator(1), what)
    if not 0.0 < float(stderr) < 0.05:
        fail(f"stderr of {what}", expected="a positive standard error below 0.05 "
             "(about 0.01 here)", got=f"{float(stderr):.4g}", hint=_SE_HINT)
    if abs(float(log_z - truth)) > 4 * float(stderr):
        fail(f"log_z of {what}", expected=f"{float(truth):.5f} ± 4 × {float(stderr):.4f}",
             got=f"{float(log_z):.5f}",
             hint="the estimate is biased: average the weights w = exp(-E(x)) / q(x), not "
                  "the log-weights, and remember the division by q(x). " + _IS_HINT)


@importance_ex.check("a discrete model with a uniform proposal over spins", points=1)
def _is_discrete(importance_log_z: Student, ctx: CheckContext) -> None:
    n, field = 8, 0.5
    truth = n * math.log(2 * math.cosh(field))
    what = f"importance_log_z(E, uniform over {{-1,+1}}^{n}, 20000), independent spins"
    log_z, stderr = _estimate(importance_log_z, Independent(field), _UniformSpins(n),
                              20_000, ctx.generator(2), what)
    if abs(float(log_z) - truth) > 4 * float(stderr) + 1e-9:
        fail(f"log_z of {what}", expected=f"{truth:.5f} ± 4 × {float(stderr):.4f}",
             got=f"{float(log_z):.5f}",
             hint="nothing in the method is specific to Gaussians: use only "
                  "proposal.sample and proposal.log_prob. " + _IS_HINT)


@importance_ex.check("the standard error is calibrated over 300 seeds", points=2, timeout=60)
def _is_calibrated(importance_log_z: Student, ctx: CheckContext) -> None:
    target = Gaussian(torch.tensor([0.5, -0.5], dtype=_F64),
                      torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=_F64))
    truth = float(target.log_partition())
    what = "importance_log_z(E, N(0, 1.5² I), 400) for a 2-D Gaussian energy"
    log_z, stderr = _many(importance_log_z, Plain(target), _broad(2, 1.5), 400, 300, ctx,
                          what)
    z = (log_z - truth) / stderr
    coverage = float((z.abs() < 2).double().mean())
    ratio = float(log_z.std() / stderr.mean())
    # With n = 400 the delta-method error is accurate: coverage about 0.95, ratio about 1.
    if not (0.88 <= coverage <= 0.99 and 0.75 <= ratio <= 1.33):
        fail("the reported standard errors over 300 independent runs",
             expected="the truth within ±2 stderr in about 95% of the runs, and the spread of "
                      "the estimates about equal to the mean stderr (ratio 0.75 to 1.33)",
             got=f"coverage {coverage:.0%}, spread / mean stderr = {ratio:.2f}",
             hint=_SE_HINT)


@importance_ex.check("Ẑ = exp(log_z) is unbiased (300 seeds)", points=1, timeout=60)
def _is_unbiased(importance_log_z: Student, ctx: CheckContext) -> None:
    target = _target()
    truth = float(target.log_partition())
    what = "importance_log_z(E, N(0, 1.5² I), 200) for a 3-D Gaussian energy"
    log_z, _ = _many(importance_log_z, Plain(target), _broad(3, 1.5), 200, 300, ctx, what)
    ratios = torch.exp(log_z - truth)                 # Ẑ / Z, mean 1 if unbiased
    mean, se = float(ratios.mean()), float(ratios.std() / math.sqrt(ratios.numel()))
    if abs(mean - 1.0) > 4 * se + 1e-3:
        fail("the mean of Ẑ / Z over 300 runs", expected=f"1 (± 4 × {se:.3f})",
             got=f"{mean:.4f}",
             hint="Ẑ = (1/n) sum_i w_i is unbiased; an average of the log-weights is not "
                  "(it is a lower bound on log Z, by Jensen's inequality). " + _IS_HINT)


@importance_ex.check("stable when the energy is shifted by ±1e4", points=1)
def _is_stable(importance_log_z: Student, ctx: CheckContext) -> None:
    target = _target()
    base_what = "importance_log_z(E, N(0, 1.5² I), 2000)"
    base, base_se = _estimate(importance_log_z, Plain(target), _broad(3, 1.5), 2000,
                              ctx.generator(3), base_what)
    for shift in (1.0e4, -1.0e4):
        what = f"importance_log_z(E + {shift:g}, N(0, 1.5² I), 2000) with the same seed"
        log_z, stderr = _estimate(importance_log_z, Shifted(Plain(target), shift),
                                  _broad(3, 1.5), 2000, ctx.generator(3), what)
        expect_close(log_z, base - shift, atol=1e-6, rtol=1e-12, what=f"log_z of {what}",
                     hint="a constant c added to the energy divides every weight by e^c: "
                          "log Ẑ moves by -c and the standard error does not change. "
                          "exp(-E) overflows or underflows here, so work with log-weights "
                          "and subtract their maximum before exponentiating.")
        expect_close(stderr, base_se, atol=1e-8, rtol=1e-6, what=f"stderr of {what}",
                     hint=_SE_HINT)


@importance_ex.check("reproducible with the generator; two 0-d tensors", points=1)
def _is_generator(importance_log_z: Student, ctx: CheckContext) -> None:
    target, proposal = _target(), _broad(3, 1.5)
    what = "importance_log_z(E, N(0, 1.5² I), 1000)"
    first = importance_log_z(Plain(target), proposal, 1000, generator=ctx.generator(7))
    if not isinstance(first, (tuple, list)) or len(first) != 2:
        fail(what, expected="a tuple (log_z, stderr)", got=type(first).__name__,
             hint=_RESULT_HINT)
    for name, value in zip(("log_z", "stderr"), first, strict=True):
        t = expect_tensor(value, what=f"{name} of {what}", hint=_RESULT_HINT)
        if t.dim() != 0:
            fail(f"{name} of {what}", expected="a 0-d tensor (shape ())",
                 got=f"shape {tuple(t.shape)}", hint=_RESULT_HINT)
    again, _ = _estimate(importance_log_z, Plain(target), proposal, 1000, ctx.generator(7), what)
    other, _ = _estimate(importance_log_z, Plain(target), proposal, 1000, ctx.generator(8), what)
    hint = ("draw the samples with proposal.sample(n_samples, generator=generator), so that "
            "the same generator seed gives the same estimate and another seed another one.")
    if float(again) != float(first[0]):
        fail(f"log_z of {what}, called twice with generators of the same seed",
             expected="the same estimate twice", got=f"{float(first[0]):.6f} and "
                                                     f"{float(again):.6f}", hint=hint)
    if float(other) == float(again):
        fail(f"log_z of {what} with generators of two different seeds",
             expected="different estimates", got="the same value", hint=hint)


# =========================================================================================
# 1.3 — the free energy of an RBM (a checkable derivation)
# =========================================================================================

free_energy_ex = register("1.3", "The free energy of a restricted Boltzmann machine",
                          function="rbm_free_energy",
                          forbidden=("ebmlab.RBM.free_energy", "ebmlab.RBM.forward"))

_FE_HINT = ("Derive the closed form before coding: -E(v, h) = a·v + Σ_j h_j u_j(v) is linear "
            "in every h_j, so the sum over the 2^n_h hidden states factorises into a product "
            "of n_h sums over h_j ∈ {0, 1}. Take -log of that product, and evaluate "
            "log(1 + e^u) with a function that cannot overflow.")
_FE_SHAPE = ("return one free energy per row of v: shape (B,). Sum over the hidden units "
             "(dim=-1), not over the batch; keep the batch axis when B = 1 (no .squeeze()).")
_OVERFLOW_HINT = ("log(1 + exp(u)) overflows to inf for u > 88 in float32 (u > 709 in "
                  "float64): use torch.nn.functional.softplus, torch.logaddexp(0, u) or "
                  "max(u, 0) + log1p(exp(-|u|)).")


def _rbm_params(g: torch.Generator, n_v: int, n_h: int, scale: float = 1.0,
                dtype: torch.dtype = _F64) -> tuple[torch.Tensor, ...]:
    w = scale * torch.randn(n_v, n_h, dtype=_F64, generator=g)
    a = 0.5 * scale * torch.randn(n_v, dtype=_F64, generator=g)
    b = 0.5 * scale * torch.randn(n_h, dtype=_F64, generator=g)
    return w.to(dtype), a.to(dtype), b.to(dtype)


def _all_states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product((0.0, 1.0), repeat=n)), dtype=_F64)


def _binary(n: int, d: int, g: torch.Generator, dtype: torch.dtype = _F64) -> torch.Tensor:
    return (torch.rand(n, d, dtype=_F64, generator=g) < 0.5).to(dtype)


def brute_free_energy(v: torch.Tensor, w: torch.Tensor, a: torch.Tensor,
                      b: torch.Tensor) -> torch.Tensor:
    r""":math:`F(v) = -\log\sum_h e^{-E(v,h)}` by enumerating every hidden state, in float64.

    The definition itself, with no derivation: the reference of exercise 1.3 (the course's
    only brute-force free energy).
    """
    v, w, a, b = (t.detach().to("cpu", _F64) for t in (v, w, a, b))
    h = _all_states(w.shape[1])                                         # (H, n_h)
    neg_energy = (v @ a)[:, None] + (h @ b)[None, :] + (v @ w) @ h.T   # -E(v, h), (B, H)
    return -torch.logsumexp(neg_energy, dim=1)


def _expect_free_energy(got: object, reference: torch.Tensor, v: torch.Tensor, *, what: str,
                        atol: float = 1e-10, rtol: float = 1e-10,
                        hint: str = _FE_HINT) -> torch.Tensor:
    got_t = expect_tensor(got, what=what, shape=(v.shape[0],), hint=_FE_SHAPE)
    g = got_t.detach().to("cpu", _F64)
    r = reference.detach().to("cpu", _F64)
    if bool(r.abs().max() > 100 * atol) and torch.allclose(g, -r, atol=atol, rtol=rtol):
        hint = ("your result has the opposite sign: the free energy is MINUS the log of "
                "Σ_h exp(-E(v, h)).")
    return expect_close(got_t, reference, atol=atol, rtol=rtol, what=what, hint=hint)


@free_energy_ex.check("matches the definition -log Σ_h exp(-E(v, h)) (brute force over the "
                      "hidden states)", points=3)
def _fe_brute(rbm_free_energy: Student, ctx: CheckContext) -> None:
    for seed, (n_v, n_h) in ((0, (5, 4)), (1, (3, 7))):
        params = _rbm_params(ctx.generator(seed), n_v, n_h)
        v = _all_states(n_v)
        what = f"rbm_free_energy(v, W, a, b) for all v of a {n_v} x {n_h} RBM"
        _expect_free_energy(rbm_free_energy(v, *params), brute_free_energy(v, *params), v,
                            what=what)


@free_energy_ex.check("the derived closed form: 60 hidden units, 2^60 hidden states that no "
                      "enumeration can visit", points=3, timeout=5.0)
def _fe_many_hidden(rbm_free_energy: Student, ctx: CheckContext) -> None:
    n_v, n_h = 7, 60
    w, a, b = _rbm_params(ctx.generator(20), n_v, n_h, scale=0.5)
    v = _binary(32, n_v, ctx.generator(21))
    # The reference factorises over the hidden units one at a time: each h_j is summed out
    # by enumerating its two values, log(e^0 + e^u) (checked against brute_free_energy on
    # small RBMs in the tests).
    u = v @ w + b                                                       # (B, n_h)
    per_unit = torch.logsumexp(torch.stack([torch.zeros_like(u), u]), dim=0)
    reference = -(v @ a) - per_unit.sum(1)
    what = f"rbm_free_energy(v, W, a, b) for an RBM with {n_h} hidden units"
    hint = ("2^60 hidden states cannot be enumerated (and this check allows 5 seconds). "
            + _FE_HINT)
    _expect_free_energy(rbm_free_energy(v, w, a, b), reference, v, what=what, hint=hint,
                        atol=1e-9, rtol=1e-10)


@free_energy_ex.check("exp(-F(v)) / Z sums to one with el.exact_log_partition", points=1)
def _fe_normalised(rbm_free_energy: Student, ctx: CheckContext) -> None:
    n_v, n_h = 6, 3
    rbm = RBM(n_v, n_h).double()
    w, a, b = _rbm_params(ctx.generator(2), n_v, n_h)
    with torch.no_grad():
        rbm.weight.copy_(w)
        rbm.visible_bias.copy_(a)
        rbm.hidden_bias.copy_(b)
        log_z = exact_log_partition(rbm)
    v = _all_states(n_v)
    what = f"the sum over all 2^{n_v} states v of exp(-rbm_free_energy(v, ...) - log Z)"
    free = expect_tensor(rbm_free_energy(v, w, a, b), what="rbm_free_energy(v, W, a, b)",
                         shape=(v.shape[0],), hint=_FE_SHAPE)
    total = torch.exp(-free.detach().to(_F64) - log_z).sum()
    expect_close(total, torch.tensor(1.0, dtype=_F64), atol=1e-10, rtol=0.0, what=what,
                 hint="p(v) = exp(-F(v)) / Z must be a distribution over v. " + _FE_HINT)


@free_energy_ex.check("no overflow with large weights (float32)", points=2)
def _fe_large(rbm_free_energy: Student, ctx: CheckContext) -> None:
    n_v, n_h = 8, 5
    params64 = _rbm_params(ctx.generator(3), n_v, n_h, scale=60.0)
    params32 = tuple(p.float() for p in params64)
    v = _binary(16, n_v, ctx.generator(4))
    reference = brute_free_energy(v, *params64)
    what = "rbm_free_energy(v, W, a, b) in float32 with weights of size about 60"
    got = expect_tensor(rbm_free_energy(v.float(), *params32), what=what, shape=(16,),
                        hint=_FE_SHAPE)
    expect_finite(got, what=what, hint=_OVERFLOW_HINT)
    expect_close(got.detach(), reference, atol=1e-3, rtol=1e-5, what=what,
                 hint=_OVERFLOW_HINT)


@free_energy_ex.check("is differentiable: its gradients in W, a and b are those of the free "
                      "energy", points=1)
def _fe_gradient(rbm_free_energy: Student, ctx: CheckContext) -> None:
    w, a, b = _rbm_params(ctx.generator(5), 5, 4)
    v = _binary(7, 5, ctx.generator(6))
    wr, ar, br = (t.clone().requires_grad_(True) for t in (w, a, b))
    what = "the gradient of Σ_b F(v_b) with respect to W"
    hint = ("CD and PCD differentiate the free energy with respect to the parameters: build "
            "F(v) from torch operations on W, a, b (no .detach(), .item(), NumPy or "
            "torch.no_grad()).")
    got, grads = rbm_free_energy.with_probe(argument_gradients)(v, wr, ar, br)
    expect_tensor(got, what="rbm_free_energy(v, W, a, b)", shape=(7,), hint=_FE_SHAPE)
    if (not isinstance(got, torch.Tensor) or not got.requires_grad or grads is None
            or isinstance(grads, ProbeError) or any(gr is None for gr in grads)):
        fail(what, expected="an autograd graph from W, a and b to the result",
             got="a result that does not depend on all three", hint=hint)
    p_h = torch.sigmoid(v @ w + b)
    for name, grad, expected in (("W", grads[0], -(v.T @ p_h)), ("a", grads[1], -v.sum(0)),
                                 ("b", grads[2], -p_h.sum(0))):
        expect_close(grad, expected, atol=1e-9, rtol=1e-9,
                     what=f"the gradient of Σ_b F(v_b) with respect to {name}", hint=_FE_HINT)


@free_energy_ex.check("shape (B,), dtype of v, batch of one, inputs unchanged", points=1)
def _fe_contract(rbm_free_energy: Student, ctx: CheckContext) -> None:
    for dtype in (torch.float32, _F64):
        w, a, b = _rbm_params(ctx.generator(7), 5, 3, dtype=dtype)
        for batch in (1, 4):
            v = _binary(batch, 5, ctx.generator(8 + batch), dtype=dtype)
            snapshot = [t.clone() for t in (v, w, a, b)]
            what = f"rbm_free_energy(v, W, a, b) for v of shape ({batch}, 5), {dtype}"
            got = expect_tensor(rbm_free_energy(v, w, a, b), what=what, shape=(batch,),
                                hint=_FE_SHAPE)
            expect_tensor(got, what=what, dtype=dtype,
                          hint="keep v's dtype: no .double()/.float() on the result.")
            for name, t, s in zip(("v", "W", "a", "b"), (v, w, a, b), snapshot, strict=True):
                expect_unchanged(t, s, what=name)
            tol = 1e-4 if dtype == torch.float32 else 1e-10
            _expect_free_energy(got, brute_free_energy(v, w, a, b), v, what=what,
                                atol=tol, rtol=tol)


@free_energy_ex.prepare
def _warm_up_meta() -> None:
    """Load the meta kernels once in the grading process (seconds), not in every check."""
    v = torch.zeros(2, 3, device="meta")
    w = torch.zeros(3, 2, device="meta")
    (-(v @ v.new_zeros(3)) - torch.nn.functional.softplus(v @ w).sum(-1)).clone()
    torch.logaddexp(v, v).log1p().exp().sigmoid().clamp(0, 1).abs().neg()


@free_energy_ex.check("follows the input's device", points=1)
def _fe_device(rbm_free_energy: Student, ctx: CheckContext) -> None:
    device = ctx.device
    params = _rbm_params(ctx.generator(13), 4, 3)
    v = _binary(5, 4, ctx.generator(14))
    meta = device.type == "meta"
    hint = ("build every new tensor on v's device (device=v.device, torch.zeros_like(v)); "
            "never call .cpu(), .item() or .numpy()."
            + (" This check runs your function on 'meta' tensors (shape and dtype, no data) "
               "to find tensors created on the wrong device." if meta else ""))
    what = f"rbm_free_energy(v, W, a, b) for inputs on device {device}"
    if meta:  # the meta device has no values: check them on the CPU first
        _expect_free_energy(rbm_free_energy(v, *params), brute_free_energy(v, *params), v,
                            what="rbm_free_energy(v, W, a, b) on the CPU")
    got = call_student(rbm_free_energy, v.to(device), *(t.to(device) for t in params),
                       what=what, expected=f"a tensor on {device}", hint=hint,
                       errors=(RuntimeError, TypeError, ValueError))
    got = expect_tensor(got, what=what, shape=(5,), hint=_FE_SHAPE)
    expect_device(got, device, what=what, hint=hint)
    if not meta:
        _expect_free_energy(got.cpu(), brute_free_energy(v, *params), v, what=what)
