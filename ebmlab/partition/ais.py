r"""Annealed importance sampling (Neal 2001), forward and reverse: RBMs and continuous energies."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from .._validation import (
    check_bool,
    check_callable,
    check_choice,
    check_generator,
    check_int,
    check_number,
)
from ..energies.base import energy_and_score, has_closed_form_score
from ..samplers import SamplerDivergedError
from ..utils import bernoulli, rand_like, randn_like
from .estimate import LogPartitionEstimate, estimate_from_log_weights
from .exact import RBMLike, is_rbm
from .quadrature import check_proposal, proposal_log_prob, sample_proposal

__all__ = ["ais", "annealing_schedule"]

_SCHEDULES = ("linear", "sigmoid", "geometric", "piecewise")


def annealing_schedule(kind: str, n_temperatures: int) -> Tensor:
    r"""An increasing ladder of inverse temperatures :math:`0 = \beta_0 < \dots < \beta_{K-1} = 1`.

    Parameters
    ----------
    kind : {"linear", "sigmoid", "geometric", "piecewise"}
        ``"linear"``: equal steps. ``"sigmoid"``: the sigmoidal schedule of Grosse,
        Maddison & Salakhutdinov (2013), :math:`\tilde\beta_k = \sigma(4(2k/(K-1) - 1))`
        rescaled to :math:`[0, 1]`, dense at both ends. ``"geometric"``:
        :math:`\beta_0 = 0` then :math:`K-1` values spaced geometrically from
        :math:`10^{-3}` to 1, dense near 0 (where an RBM's distribution changes fastest
        relative to :math:`\beta`). ``"piecewise"``: Salakhutdinov & Murray's (2008)
        ladder, linear pieces on :math:`[0, 0.5]`, :math:`[0.5, 0.9]` and
        :math:`[0.9, 1]` holding 1/15, 4/15 and 10/15 of the temperatures, dense near 1.
    n_temperatures : int
        Number :math:`K \ge 2` of inverse temperatures, both ends included.

    Returns
    -------
    torch.Tensor
        ``(K,)`` float64 tensor from 0 to 1.

    Raises
    ------
    ValueError
        For an unknown ``kind`` or ``n_temperatures < 2``.
    """
    k = check_int(n_temperatures, "n_temperatures", minimum=2)
    if kind == "linear":
        betas = torch.linspace(0.0, 1.0, k, dtype=torch.float64)
    elif kind == "sigmoid":
        s = torch.sigmoid(4.0 * torch.linspace(-1.0, 1.0, k, dtype=torch.float64))
        betas = (s - s[0]) / (s[-1] - s[0])
    elif kind == "geometric":
        rest = torch.logspace(-3.0, 0.0, k - 1, dtype=torch.float64)
        betas = torch.cat([torch.zeros(1, dtype=torch.float64), rest])
    elif kind == "piecewise":
        u = torch.linspace(0.0, 1.0, k, dtype=torch.float64)
        # inverse of the cumulative fraction of temperatures spent below each beta
        knots_u = torch.tensor([0.0, 1 / 15, 5 / 15, 1.0], dtype=torch.float64)
        knots_b = torch.tensor([0.0, 0.5, 0.9, 1.0], dtype=torch.float64)
        idx = torch.clamp(torch.searchsorted(knots_u, u, right=True) - 1, 0, 2)
        t = (u - knots_u[idx]) / (knots_u[idx + 1] - knots_u[idx])
        betas = knots_b[idx] + t * (knots_b[idx + 1] - knots_b[idx])
    else:
        raise ValueError(f"schedule must be one of {', '.join(map(repr, _SCHEDULES))} or an "
                         f"increasing 1-d tensor of betas from 0 to 1, got {kind!r}.")
    betas[0], betas[-1] = 0.0, 1.0
    return betas


def ais(
    model: Callable[[Tensor], Tensor],
    n_temperatures: int | None = None,
    n_runs: int | None = None,
    *,
    base: object = None,
    schedule: str | Tensor = "linear",
    transition: str | None = None,
    step_size: float = 0.1,
    n_steps_per_temperature: int = 1,
    base_visible_bias: Tensor | None = None,
    reverse: bool = False,
    init: Tensor | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> LogPartitionEstimate:
    r"""Estimate :math:`\log Z` by annealed importance sampling (Neal 2001).

    A ladder :math:`0 = \beta_0 < \dots < \beta_{K-1} = 1` connects a base
    :math:`p_0 = f_0 / Z_0` with known :math:`Z_0` to the model :math:`p_1 = f_1/Z_1`
    through unnormalised intermediates :math:`f_{\beta}`. Each run starts at
    :math:`x \sim p_0` and alternates a weight update and a transition that leaves
    :math:`p_{\beta_k}` invariant:

    .. math:: \log w = \sum_{k=1}^{K-1} \big[\log f_{\beta_k}(x_{k-1}) -
              \log f_{\beta_{k-1}}(x_{k-1})\big], \qquad
              \log \hat Z_1 = \log Z_0 + \log \tfrac1n \textstyle\sum_r w_r .

    :math:`\hat Z_1 / Z_0` is unbiased, so :math:`\log \hat Z_1` is a stochastic
    *lower* bound of :math:`\log Z_1`. **Reverse AIS** (``reverse=True``) starts from
    exact model samples ``init`` and runs the ladder backwards; its weights estimate
    :math:`Z_0 / Z_1` without bias, so :math:`\log Z_0 - \log \frac1n\sum_r w_r` is a
    stochastic *upper* bound. Together they sandwich :math:`\log Z`.

    **RBMs** (any model with ``weight``, ``visible_bias``, ``hidden_bias``; Salakhutdinov &
    Murray 2008): the base is the RBM with :math:`W = 0`, visible bias :math:`a_0`
    (``base_visible_bias``, zeros by default, e.g. the data's log-odds) and hidden bias
    0, whose :math:`\log Z_0 = \sum_i \operatorname{softplus}(a_{0,i}) + n_h \log 2`.
    The intermediates are RBMs with visible bias :math:`(1-\beta)a_0 + \beta a`, hidden
    bias :math:`\beta b` and weight :math:`\beta W`, hidden units summed out:

    .. math:: \log f_\beta(v) = ((1-\beta) a_0 + \beta a)^\top v
              + \sum_j \operatorname{softplus}\big(\beta(b_j + v^\top W_{:j})\big),

    and the transitions are block Gibbs sweeps :math:`v \to h \to v` of that RBM.

    **Continuous energies** (given a normalised ``base`` with ``sample`` and ``log_prob``):
    the geometric path :math:`\log f_\beta = (1-\beta)\log p_0 - \beta E`, with
    ``n_steps_per_temperature`` MALA (default, exact for any step) or unadjusted Langevin
    steps of size ``step_size`` per temperature. Each step costs one evaluation of the
    energy and of its gradient: values and gradients of both ends are cached.

    All runs advance together as one batch; the loop has no host synchronisation.

    Parameters
    ----------
    model : Energy or callable
        An RBM, or a continuous energy ``(B, *event_shape) -> (B,)``.
    n_temperatures : int, optional
        Number :math:`K` of inverse temperatures (both ends included); default 1000, or
        the length of a tensor ``schedule``.
    n_runs : int, optional
        Number of independent runs; default 100, or ``init.shape[0]`` when reversing.
    base : object, optional
        Continuous energies only: the normalised base distribution, with
        ``sample(n, generator=...)`` and ``log_prob(x)`` (e.g.
        :class:`ebmlab.energies.Gaussian`) or a :class:`torch.distributions.Distribution`.
        It should cover the model's mass (wider is safer).
    schedule : str or torch.Tensor
        ``"linear"``, ``"sigmoid"``, ``"geometric"``, ``"piecewise"`` (see
        :func:`annealing_schedule`), or an explicit non-decreasing 1-d tensor of betas
        from 0 to 1.
    transition : {"gibbs", "mala", "langevin"}, optional
        ``"gibbs"`` for RBMs (the default there); ``"mala"`` (default) or ``"langevin"``
        for continuous energies.
    step_size : float
        MALA/Langevin step :math:`\epsilon` (continuous energies).
    n_steps_per_temperature : int
        Transitions per intermediate distribution.
    base_visible_bias : torch.Tensor, optional
        RBMs only: the base's visible bias :math:`a_0`, shape ``(n_visible,)``.
    reverse : bool
        Run reverse AIS from ``init`` (an upper bound on :math:`\log Z`).
    init : torch.Tensor, optional
        With ``reverse=True``: exact samples from the model, ``(n_runs, *event_shape)``.
        Approximate samples (a long Gibbs chain) make the bound approximate too.
    generator : torch.Generator, optional
        Source of randomness.
    progress : bool
        Show a ``tqdm`` progress bar over the temperatures.

    Returns
    -------
    LogPartitionEstimate
        ``log_z`` (the model's :math:`\log Z_1`), delta-method ``stderr``, the runs'
        ``log_weights`` (reverse weights when ``reverse=True``), ``ess``, and for MALA the
        ``acceptance_rate``.

    Raises
    ------
    ValueError
        Bad schedule, counts, ``init`` or ``base_visible_bias``; a missing ``base`` for a
        continuous energy or a ``base`` given for an RBM; a transition that does not fit
        the model; a discrete model other than an RBM.
    TypeError
        A ``base`` without ``sample``/``log_prob``.
    SamplerDivergedError
        If the weights became non-finite (Langevin/MALA step too large).

    Examples
    --------
    >>> import torch, ebmlab as el
    >>> from ebmlab.partition import ais, exact_log_partition
    >>> rbm = el.RBM(12, 6, weight_std=0.5, generator=torch.Generator().manual_seed(0))
    >>> est = ais(rbm, 300, 200, generator=torch.Generator().manual_seed(1))
    >>> exact = exact_log_partition(rbm).detach()
    >>> abs(float(est.log_z) - float(exact)) < 0.1
    True
    """
    betas = _resolve_schedule(schedule, n_temperatures)
    check_bool(reverse, "reverse")
    check_generator(generator)
    if init is not None and not reverse:
        raise ValueError("init= is used by reverse AIS only (reverse=True); forward AIS starts "
                         "from the base distribution.")
    if reverse and init is None:
        raise ValueError("reverse AIS needs exact samples from the model: pass "
                         "init=tensor of shape (n_runs, *event_shape).")
    if init is not None:
        if not isinstance(init, Tensor) or init.dim() < 2:
            got = tuple(init.shape) if isinstance(init, Tensor) else type(init).__name__
            raise ValueError(f"init must be a tensor of model samples (n_runs, *event_shape), "
                             f"got {got}.")
        if n_runs is None:
            n_runs = init.shape[0]
        elif check_int(n_runs, "n_runs", minimum=1) != init.shape[0]:
            raise ValueError(f"n_runs={n_runs!r} does not match init with {init.shape[0]} "
                             f"samples; pass n_runs=None or {init.shape[0]}.")
    n_runs = check_int(100 if n_runs is None else n_runs, "n_runs", minimum=1)
    n_steps_per_temperature = check_int(n_steps_per_temperature, "n_steps_per_temperature",
                                        minimum=1)
    check_callable(model, "model", "(an RBM or an energy (B, ...) -> (B,))")

    ladder = betas.tolist()
    if reverse:
        ladder = ladder[::-1]
    with torch.no_grad():
        if is_rbm(model):
            if base is not None:
                raise ValueError("for an RBM, ais builds its own base (an RBM with W = 0); "
                                 "pass base_visible_bias= (e.g. the data's log-odds) instead of "
                                 f"base= (got {type(base).__name__}).")
            if transition not in (None, "gibbs"):
                raise ValueError(f"an RBM is annealed with block Gibbs transitions; "
                                 f"transition must be 'gibbs' or None, got {transition!r}.")
            log_w, log_z0 = _rbm_ais(model, ladder, n_runs, base_visible_bias, init,
                                     n_steps_per_temperature, generator, progress)
            acceptance = None
        else:
            if getattr(model, "support", None) is not None:
                raise ValueError(
                    f"ais anneals RBMs and continuous energies; {type(model).__name__} is "
                    "discrete. Use exact_log_partition for small models (and "
                    "ising_log_partition for a periodic Ising model at zero field).")
            if base_visible_bias is not None:
                raise ValueError("base_visible_bias= applies to RBMs only; pass base= for a "
                                 "continuous energy.")
            if base is None:
                raise ValueError(
                    "ais needs a normalised base distribution for a continuous energy: pass "
                    "base= with sample(n, generator=) and log_prob(x), e.g. "
                    "ebmlab.Gaussian(torch.zeros(d), 4 * torch.eye(d)).")
            check_proposal(base, "base")
            transition = check_choice("mala" if transition is None else transition,
                                      "transition for a continuous energy",
                                      ("mala", "langevin"))
            eps = check_number(step_size, "step_size", greater_than=0)
            log_w, acceptance = _continuous_ais(
                model, base, ladder, n_runs, init, transition, eps,
                n_steps_per_temperature, generator, progress)
            log_z0 = torch.zeros((), dtype=torch.float64)
    if not bool(torch.isfinite(log_w).all()):
        n_bad = int((~torch.isfinite(log_w)).sum())
        raise SamplerDivergedError(
            f"ais: {n_bad} of {n_runs} log-weights are not finite (the chains diverged "
            f"somewhere in the {len(ladder)} temperatures); use a smaller step_size "
            f"(got {step_size}) or transition='mala'.", 1, len(ladder))
    return estimate_from_log_weights(log_w, log_z0, sign=-1 if reverse else 1,
                                     acceptance_rate=acceptance)


def _resolve_schedule(schedule: str | Tensor, n_temperatures: int | None) -> Tensor:
    if isinstance(schedule, Tensor):
        b = schedule.detach().to("cpu", torch.float64)
        if b.dim() != 1 or b.numel() < 2:
            raise ValueError(f"schedule must be a 1-d tensor of at least 2 betas, got shape "
                             f"{tuple(schedule.shape)}.")
        if not bool(torch.isfinite(b).all()) or float(b[0]) != 0.0 or float(b[-1]) != 1.0 \
                or bool((b.diff() < 0).any()):
            raise ValueError(f"schedule must increase from beta = 0 to beta = 1, got "
                             f"{schedule.tolist() if schedule.numel() <= 8 else schedule}.")
        if n_temperatures is not None and n_temperatures != b.numel():
            raise ValueError(f"n_temperatures={n_temperatures!r} does not match the schedule's "
                             f"{b.numel()} betas; pass n_temperatures=None.")
        return b
    if not isinstance(schedule, str):
        raise TypeError(f"schedule must be a name or a tensor of betas, got "
                        f"{type(schedule).__name__}.")
    if n_temperatures is not None:
        check_int(n_temperatures, "n_temperatures", minimum=2)
    return annealing_schedule(schedule, 1000 if n_temperatures is None else n_temperatures)


def _progress(n: int, progress: bool, desc: str) -> Iterable[int]:
    if not progress:
        return range(1, n)
    from tqdm.auto import tqdm

    return tqdm(range(1, n), desc=desc, total=n - 1)


# ----------------------------------------------------------------------------------- RBM

def _rbm_ais(model: RBMLike, ladder: list[float], n_runs: int, base_bias: Tensor | None,
             init: Tensor | None, n_sweeps: int, generator: torch.Generator | None,
             progress: bool) -> tuple[Tensor, Tensor]:
    w = model.weight.detach()
    a = model.visible_bias.detach()
    b = model.hidden_bias.detach()
    n_v, n_h = w.shape
    dtype, device = w.dtype, w.device
    if base_bias is None:
        a0 = torch.zeros(n_v, dtype=dtype, device=device)
    else:
        if not isinstance(base_bias, Tensor) or base_bias.shape != (n_v,):
            got = tuple(base_bias.shape) if isinstance(base_bias, Tensor) else base_bias
            raise ValueError(f"base_visible_bias must be a tensor of shape ({n_v},), got {got}.")
        if base_bias.device != device:
            raise ValueError(f"base_visible_bias is on {base_bias.device} but the RBM is on "
                             f"{device}.")
        if not bool(torch.isfinite(base_bias).all()):
            raise ValueError("base_visible_bias must be finite (clip the data's log-odds).")
        a0 = base_bias.detach().to(dtype)
    log_z0 = F.softplus(a0.double()).sum() + n_h * math.log(2.0)
    if init is None:
        v = bernoulli(torch.sigmoid(a0).expand(n_runs, n_v), generator)
    else:
        if tuple(init.shape[1:]) != (n_v,):
            raise ValueError(f"init must have shape (n_runs, {n_v}) for this RBM, got "
                             f"{tuple(init.shape)}.")
        if init.device != device:
            raise ValueError(f"init is on {init.device} but the RBM is on {device}.")
        if not bool(((init == 0) | (init == 1)).all()):
            raise ValueError("init must hold binary visible states (0 or 1).")
        v = init.detach().to(dtype)
    da = a - a0
    da64 = da.double()
    log_w = torch.zeros(n_runs, dtype=torch.float64, device=device)
    last = len(ladder) - 1
    for k in _progress(len(ladder), progress, "AIS (RBM)"):
        beta, beta_prev = ladder[k], ladder[k - 1]
        z = v @ w + b  # (R, n_h): b_j + v.W_j, reused by the transition below
        z64 = z.double()
        log_w += (beta - beta_prev) * (v.double() @ da64) \
            + (F.softplus(beta * z64) - F.softplus(beta_prev * z64)).sum(dim=1)
        if k == last:
            break
        visible_field = a0 + beta * da  # (1 - beta) a0 + beta a
        for sweep in range(n_sweeps):
            if sweep > 0:
                z = v @ w + b
            h = bernoulli(torch.sigmoid(beta * z), generator)
            v = bernoulli(torch.sigmoid(visible_field + beta * (h @ w.T)), generator)
    return log_w, log_z0


# ---------------------------------------------------------------------------- continuous

class _PathState:
    """Positions with cached log-densities and gradients of both ends of the path."""

    __slots__ = ("g0", "g1", "l0", "l1", "x")

    def __init__(self, x: Tensor, l0: Tensor, g0: Tensor, l1: Tensor, g1: Tensor):
        self.x, self.l0, self.g0, self.l1, self.g1 = x, l0, g0, l1, g1


def _log_prob_and_grad(base: object, x: Tensor) -> tuple[Tensor, Tensor]:
    r""":math:`\log p_0(x)` and its gradient; ``base`` is a normalised density."""
    if has_closed_form_score(base):
        return proposal_log_prob(base, x, "base"), base.score(x)  # type: ignore[attr-defined]
    with torch.enable_grad():
        x_ = x.detach().requires_grad_(True)
        lp = proposal_log_prob(base, x_, "base")
        (g,) = torch.autograd.grad(lp.sum(), x_)
    return lp.detach(), g


def _evaluate(energy: Callable[[Tensor], Tensor], base: object, x: Tensor) -> _PathState:
    l0, g0 = _log_prob_and_grad(base, x)
    e, score = energy_and_score(energy, x, name="model")
    return _PathState(x, l0, g0, -e, score)


def _continuous_ais(energy: Callable[[Tensor], Tensor], base: object, ladder: list[float],
                    n_runs: int, init: Tensor | None, transition: str, eps: float,
                    n_steps: int, generator: torch.Generator | None,
                    progress: bool) -> tuple[Tensor, Tensor | None]:
    if init is None:
        x = sample_proposal(base, n_runs, generator, "base")
    else:
        x = init.detach()
    event_shape = getattr(energy, "event_shape", None)
    if event_shape is not None and tuple(x.shape[1:]) != tuple(event_shape):
        source = "init" if init is not None else "base samples"
        raise ValueError(f"{source} have shape {tuple(x.shape)} but the model's event_shape is "
                         f"{tuple(event_shape)}.")
    state = _evaluate(energy, base, x)
    if init is not None and state.l0.shape != (n_runs,):
        raise ValueError(f"base.log_prob(init) must have shape ({n_runs},).")
    dims = tuple(range(1, x.dim()))
    noise_scale = math.sqrt(2.0 * eps)
    log_w = torch.zeros(n_runs, dtype=torch.float64, device=x.device)
    accepted = torch.zeros((), dtype=torch.float64, device=x.device)
    last = len(ladder) - 1
    for k in _progress(len(ladder), progress, "AIS"):
        beta, beta_prev = ladder[k], ladder[k - 1]
        log_w += (beta - beta_prev) * (state.l1 - state.l0).double()
        if k == last:
            break
        for _ in range(n_steps):
            state, acc = _transition(energy, base, state, beta, eps, noise_scale, dims,
                                     transition == "mala", generator)
            if acc is not None:
                accepted += acc.double().mean()
    n_moves = (len(ladder) - 2) * n_steps
    rate = accepted / n_moves if transition == "mala" and n_moves > 0 else None
    return log_w, rate


def _transition(energy: Callable[[Tensor], Tensor], base: object, s: _PathState, beta: float,
                eps: float, noise_scale: float, dims: tuple[int, ...], metropolis: bool,
                generator: torch.Generator | None) -> tuple[_PathState, Tensor | None]:
    grad_x = (1.0 - beta) * s.g0 + beta * s.g1
    mean_x = s.x + eps * grad_x
    y = mean_x + noise_scale * randn_like(s.x, generator)
    t = _evaluate(energy, base, y)
    if not metropolis:
        return t, None
    grad_y = (1.0 - beta) * t.g0 + beta * t.g1
    mean_y = y + eps * grad_y
    log_target = ((1.0 - beta) * (t.l0 - s.l0) + beta * (t.l1 - s.l1))
    log_q_back = -((s.x - mean_y) ** 2).sum(dim=dims) / (4.0 * eps)
    log_q_fwd = -((y - mean_x) ** 2).sum(dim=dims) / (4.0 * eps)
    log_alpha = log_target + log_q_back - log_q_fwd
    u = rand_like(log_alpha, generator)
    accept = torch.log(u) < log_alpha  # NaN (a diverged proposal) is rejected
    shape = (-1,) + (1,) * len(dims)
    a_x = accept.view(shape)
    new = _PathState(
        torch.where(a_x, y, s.x),
        torch.where(accept, t.l0, s.l0),
        torch.where(a_x, t.g0, s.g0),
        torch.where(accept, t.l1, s.l1),
        torch.where(a_x, t.g1, s.g1),
    )
    return new, accept
