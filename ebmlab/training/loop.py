r"""The training loop of :mod:`ebmlab`: :func:`fit` and its divergence error.

One loop runs every method of the course (exact MLE, CD-:math:`k`, PCD, score
matching, sliced and denoising score matching, NCSN, MCMC training with a replay
buffer): the method is an objective object (:mod:`ebmlab.training.methods`),
the loop only draws minibatches, steps the optimiser, records the history,
evaluates metrics, writes checkpoints and guards against divergence.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from .._validation import check_batch, check_finite, check_positive
from ..utils import make_generator
from .checkpoint import (
    FORMAT,
    capture_rng,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
    to_device,
)
from .history import History
from .methods import Objective, make_objective

__all__ = ["TrainingDivergedError", "fit"]


class TrainingDivergedError(RuntimeError):
    """Training produced a non-finite loss, parameters or samples and was stopped.

    The model's parameters have been restored to the last values known to be
    good (see :func:`fit`), so the model never holds NaNs.

    Attributes
    ----------
    step : int
        The step at which the divergence was detected (first non-finite loss).
    restored_step : int
        The step whose parameters were restored into the model.
    history : History
        The history up to the divergence (its last loss may be non-finite).
    """

    def __init__(self, message: str, *, step: int, restored_step: int, history: History):
        super().__init__(message)
        self.step = step
        self.restored_step = restored_step
        self.history = history


# ---------------------------------------------------------------------------- validation


def _check_int(value: object, name: str, *, minimum: int = 1, allow_none: bool = False
               ) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}"
                         f"{' or None' if allow_none else ''}, got {value!r}.")
    return value


def _first_float_tensor(model: nn.Module) -> torch.Tensor | None:
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t
    return None


def _check_data(model: nn.Module, data: object) -> torch.Tensor:
    """Check ``data`` against the model before any training (shape, dtype, device, values)."""
    event_shape = getattr(model, "event_shape", None)
    data = check_batch(data, "data",
                       event_shape=tuple(event_shape) if event_shape is not None else None)
    if data.shape[0] == 0:
        raise ValueError("data must hold at least one example, got shape "
                         f"{tuple(data.shape)}.")
    ref = _first_float_tensor(model)
    if not data.is_floating_point():
        target = ref.dtype if ref is not None else torch.get_default_dtype()
        raise TypeError(f"data must be a floating-point tensor, got dtype {data.dtype}; "
                        f"convert it with data.to({target}).")
    if ref is not None and data.dtype != ref.dtype:
        raise TypeError(f"data has dtype {data.dtype} but the parameters of "
                        f"{type(model).__name__} are {ref.dtype}; convert one of them "
                        f"(data.to({ref.dtype}) or model.to({data.dtype})).")
    if ref is not None and data.device != ref.device:
        raise ValueError(f"data is on {data.device} but {type(model).__name__} is on "
                         f"{ref.device}; move one of them (data.to({str(ref.device)!r})).")
    check_finite(data, "data")
    support = getattr(model, "support", None)
    if support is not None:
        lo, hi = support
        bad = ~((data == lo) | (data == hi))
        if bool(bad.any()):
            example = float(data[bad][0])
            raise ValueError(f"data must only hold the values {lo} and {hi} of "
                             f"{type(model).__name__}'s units, got e.g. {example}.")
    return data


def _make_optimizer(model: nn.Module, optimizer: Any, lr: float) -> torch.optim.Optimizer:
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters "
                         "(requires_grad=True); there is nothing to fit.")
    lr = check_positive(lr, "lr")
    choices: dict[str, Callable[..., torch.optim.Optimizer]] = {
        "adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD,
    }
    if optimizer is None:
        return torch.optim.Adam(params, lr=lr)
    if isinstance(optimizer, str):
        if optimizer.lower() not in choices:
            raise ValueError(f"optimizer must be one of {sorted(choices)}, a "
                             f"torch.optim.Optimizer or a callable, got {optimizer!r}.")
        return choices[optimizer.lower()](params, lr=lr)
    if callable(optimizer):
        opt = optimizer(params)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError("optimizer(params) must return a torch.optim.Optimizer, got "
                            f"{type(opt).__name__}.")
        return opt
    raise TypeError(f"optimizer must be None, 'adam', 'adamw', 'sgd', a torch.optim.Optimizer "
                    f"or a callable params -> Optimizer, got {type(optimizer).__name__}.")


def _resolve_objective(method: object, k: int, options: dict[str, Any]) -> Objective:
    if isinstance(method, str):
        return make_objective(method, k=k, **options)
    if callable(getattr(method, "loss", None)):
        if k != 1:
            raise ValueError(f"k={k!r} applies to the built-in methods 'cd' and 'pcd'; set it "
                             f"on the objective object {type(method).__name__} instead.")
        if options:
            raise TypeError(f"options {sorted(options)} apply to built-in method names only; "
                            f"configure the objective object {type(method).__name__} instead.")
        return method  # type: ignore[return-value]
    from .methods import METHODS

    raise ValueError(f"method must be one of {', '.join(METHODS)} or an objective object with "
                     f"a loss(model, batch, generator) method, got {method!r}.")


def _normalize_callbacks(callbacks: Iterable[Any], eval_every: int
                         ) -> list[tuple[str, int, Callable[[nn.Module], Any]]]:
    if callable(callbacks):
        callbacks = (callbacks,)
    out = []
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"each callback must be callable as cb(model), got {cb!r}.")
        name = getattr(cb, "name", None) or getattr(cb, "__name__", type(cb).__name__)
        every = getattr(cb, "every", None) or eval_every
        out.append((str(name), _check_int(every, f"{name}.every"), cb))
    return out


# ---------------------------------------------------------------------------- loop parts


def _randperm(n: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    where = device if generator is None else generator.device
    return torch.randperm(n, generator=generator, device=where).to(device)


class _Batches:
    """Shuffled minibatches, one permutation per epoch; checkpointable mid-epoch."""

    def __init__(self, data: torch.Tensor, batch_size: int):
        self.data = data
        self.n = data.shape[0]
        self.batch_size = min(batch_size, self.n)
        self.perm: torch.Tensor | None = None
        self.pos = 0

    @property
    def per_epoch(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def next(self, generator: torch.Generator | None) -> torch.Tensor:
        if self.batch_size == self.n:
            return self.data
        if self.perm is None or self.pos >= self.n:
            self.perm = _randperm(self.n, self.data.device, generator)
            self.pos = 0
        idx = self.perm[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return self.data[idx]

    def state_dict(self) -> dict[str, Any]:
        return {"perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        perm = state.get("perm")
        self.perm = None if perm is None else perm.to(self.data.device)
        self.pos = int(state.get("pos", 0))


class _Guard:
    """Snapshots of the parameters, so a divergence restores the last good ones.

    The loss of step :math:`t` is evaluated at the parameters :math:`\\theta_{t-1}`.
    At each synchronisation ``c`` with all losses finite since the previous one ``b``,
    :math:`\\theta_b` is known good (its loss was finite): it becomes ``verified`` and
    :math:`\\theta_c` becomes ``pending``. After a divergence first seen at step ``j``,
    ``pending`` (:math:`\\theta_b`) is restored unless ``j = b + 1`` (then :math:`\\theta_b`
    itself produced the bad loss and ``verified`` is restored).
    """

    def __init__(self, model: nn.Module, step: int):
        named = [(n, t.detach()) for n, t in model.state_dict(keep_vars=True).items()
                 if isinstance(t, torch.Tensor) and t.is_floating_point()]
        self.names = [n for n, _ in named]
        self.tensors = [t for _, t in named]
        self.verified = [t.clone() for t in self.tensors]
        self.pending = [t.clone() for t in self.tensors]
        self.verified_step = self.pending_step = step

    def nonfinite(self) -> list[str]:
        if not self.tensors:
            return []
        flags = torch.stack([torch.isfinite(t).all() for t in self.tensors]).tolist()
        return [n for n, ok in zip(self.names, flags, strict=True) if not ok]

    def commit(self, step: int) -> None:
        self.verified, self.pending = self.pending, self.verified
        self.verified_step = self.pending_step
        with torch.no_grad():
            for dst, src in zip(self.pending, self.tensors, strict=True):
                dst.copy_(src)
        self.pending_step = step

    def restore(self, first_bad: int | None) -> int:
        use_verified = first_bad is not None and first_bad <= self.pending_step + 1
        source = self.verified if use_verified else self.pending
        with torch.no_grad():
            for dst, src in zip(self.tensors, source, strict=True):
                dst.copy_(src)
        return self.verified_step if use_verified else self.pending_step


def _metric_values(name: str, value: Any) -> dict[str, float]:
    if isinstance(value, dict):
        return {str(k): float(v) for k, v in value.items()}
    return {name: float(value)}


# ---------------------------------------------------------------------------- fit


def fit(
    model: nn.Module,
    data: torch.Tensor,
    method: str | Objective,
    *,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int = 128,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | str | Callable[..., torch.optim.Optimizer] | None = None,
    k: int = 1,
    generator: torch.Generator | None = None,
    progress: bool = True,
    callbacks: Iterable[Callable[[nn.Module], Any]] = (),
    eval_every: int = 100,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    resume: str | os.PathLike[str] | None = None,
    seed: int | None = None,
    grad_clip: float | None = None,
    sync_every: int = 25,
    **method_options: Any,
) -> History:
    r"""Train an energy-based model with one of the methods of the course.

    Every method is a configuration of one loop: draw a shuffled minibatch, ask
    the objective for a scalar loss whose gradient is the method's update, take
    an optimiser step. Built-in methods (see :mod:`ebmlab.training.methods`):

    ========  ==============================================================
    ``mle``   exact maximum likelihood, :math:`\log Z` by enumeration/closed form
    ``cd``    CD-:math:`k` (Hinton 2002): Gibbs for RBMs/BMs, Langevin otherwise
    ``pcd``   persistent CD (Tieleman 2008), ``n_chains`` persistent chains
    ``sm``    score matching, exact Hessian trace (Hyvärinen 2005)
    ``ssm``   sliced score matching (Song et al. 2019)
    ``dsm``   denoising score matching at ``sigma`` (Vincent 2011)
    ``ncsn``  multi-level DSM over ``sigmas`` (Song & Ermon 2019)
    ``mcmc``  Langevin negatives from a replay buffer (Du & Mordatch 2019)
    ========  ==============================================================

    Parameters
    ----------
    model : torch.nn.Module
        The energy (or, for ``"ncsn"``, the noise-conditional score network).
    data : torch.Tensor
        Training set ``(N, *event_shape)``, floating point, with the model's dtype
        and device (and values in ``model.support`` for discrete models).
    method : str or Objective
        A name above, or an object with ``loss(model, batch, generator)`` (and
        optionally ``init``, ``state_dict``, ``load_state_dict``, ``name``, ``hint``).
    epochs, steps : int
        Length of training; pass exactly one. ``steps`` counts optimiser steps in
        total, including those of a resumed run; an epoch is
        :math:`\lceil N / \text{batch\_size}\rceil` steps.
    batch_size : int
        Minibatch size (capped at ``N``; the last batch of an epoch may be smaller).
    lr : float
        Learning rate of the default optimiser (ignored for an optimiser instance).
    optimizer : None, "adam", "adamw", "sgd", Optimizer or callable
        ``None`` means Adam; a callable is called with the trainable parameters.
    k : int
        Gibbs sweeps or Langevin steps per update of ``"cd"`` and ``"pcd"``.
    generator : torch.Generator, optional
        Source of all the loop's randomness (shuffling, chains, noise).
    progress : bool
        Show a tqdm progress bar with the running loss.
    callbacks : iterable of callable
        Metrics ``cb(model) -> float`` (or a dict of floats), evaluated before
        training, every ``cb.every`` steps (default ``eval_every``) and at the end;
        see :class:`~ebmlab.training.ExactLogLikelihood`,
        :class:`~ebmlab.training.GridKL`, :class:`~ebmlab.training.AISLogLikelihood`.
    eval_every : int
        Default evaluation period of the callbacks.
    checkpoint : path, optional
        Write a checkpoint here (atomically) every ``checkpoint_every`` steps and
        at the end: model, optimiser, objective state (persistent chains, replay
        buffer), batch order, step, RNG states and history.
    checkpoint_every : int, optional
        Checkpoint period in steps (``None``: only at the end).
    resume : path, optional
        Continue from this checkpoint: the run continues exactly where it stopped
        (on the CPU, ``steps=2n`` straight and ``n`` + resume to ``2n`` give the
        same parameters).
    seed : int, optional
        Seed torch's global RNG and create ``generator`` from it (do not pass both).
    grad_clip : float, optional
        Clip the parameters' gradient norm to this value.
    sync_every : int
        Steps between two reads of the losses from the device (progress bar,
        divergence check, parameter snapshot); the loop never synchronises in between.
    **method_options
        Options of the built-in method (e.g. ``sigma=0.1`` for ``"dsm"``,
        ``sigmas=...`` for ``"ncsn"``, ``step_size=...`` for ``"mcmc"``).

    Returns
    -------
    History
        Per-step losses and the metrics of the callbacks.

    Raises
    ------
    ValueError, TypeError
        Unknown method, a method that does not apply to the model or data, data of
        the wrong shape, dtype, device or values, invalid settings.
    TrainingDivergedError
        A non-finite loss, parameter or sample. The model is restored to the last
        parameters known to be good (the optimiser's state is not); the error
        carries the history so far.

    Examples
    --------
    >>> import torch
    >>> from ebmlab.data import bars_and_stripes
    >>> from ebmlab.energies import RBM
    >>> rbm = RBM(9, 8, generator=torch.Generator().manual_seed(0))
    >>> hist = fit(rbm, bars_and_stripes(3), "pcd", k=5, steps=200, lr=0.1, optimizer="sgd",
    ...            seed=0, progress=False)
    >>> len(hist.loss)
    200
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    data = _check_data(model, data)
    if (epochs is None) == (steps is None):
        raise ValueError(f"pass exactly one of epochs= or steps=, got epochs={epochs!r}, "
                         f"steps={steps!r}.")
    batch_size = _check_int(batch_size, "batch_size")
    sync_every = _check_int(sync_every, "sync_every")
    eval_every = _check_int(eval_every, "eval_every")
    checkpoint_every = _check_int(checkpoint_every, "checkpoint_every", allow_none=True)
    if checkpoint_every is not None and checkpoint is None:
        raise ValueError("checkpoint_every needs checkpoint= (the path to write to).")
    clip = None if grad_clip is None else check_positive(grad_clip, "grad_clip")
    batches = _Batches(data, batch_size)
    if epochs is not None:
        total = _check_int(epochs, "epochs", minimum=0) * batches.per_epoch
    else:
        total = _check_int(steps, "steps", minimum=0)
    objective = _resolve_objective(method, k, method_options)
    name = str(getattr(objective, "name", type(objective).__name__))
    if seed is not None:
        if generator is not None:
            raise ValueError("pass either seed= or generator=, not both.")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}.")
        torch.manual_seed(seed)
        generator = make_generator(seed, device=data.device)
    opt = _make_optimizer(model, optimizer, lr)
    params = [p for group in opt.param_groups for p in group["params"]]
    metrics = _normalize_callbacks(callbacks, eval_every)
    if callable(getattr(objective, "init", None)):
        objective.init(model, data, generator)

    history = History(method=name)
    step = 0
    if resume is not None:
        state = load_checkpoint(resume)
        if state["method"] != name:
            raise ValueError(f"resume={str(resume)!r} was written by method {state['method']!r}, "
                             f"not {name!r}.")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if callable(getattr(objective, "load_state_dict", None)):
            objective.load_state_dict(to_device(state["objective"], data.device))
        batches.load_state_dict(state["batches"])
        generator = restore_rng(state["rng"], generator)
        history = History.from_dict(state["history"])
        step = int(state["step"])

    def save() -> None:
        assert checkpoint is not None
        save_checkpoint({
            "format": FORMAT, "method": name, "step": step,
            "model": model.state_dict(), "optimizer": opt.state_dict(),
            "objective": (objective.state_dict()
                          if callable(getattr(objective, "state_dict", None)) else {}),
            "batches": batches.state_dict(), "rng": capture_rng(generator),
            "history": history.to_dict(),
        }, checkpoint)

    def evaluate(at: int) -> None:
        for metric_name, _, cb in metrics:
            for key, value in _metric_values(metric_name, cb(model)).items():
                history.record(key, at, value)

    from tqdm.auto import tqdm

    guard = _Guard(model, step)
    pending: list[torch.Tensor] = []
    bar = tqdm(total=total, initial=min(step, total), desc=f"fit[{name}]", unit="step",
               disable=not progress, dynamic_ncols=True)

    def sync(cause: BaseException | None = None) -> None:
        """Read the pending losses; on a non-finite value restore and raise."""
        first = len(history.loss) + 1
        values = torch.stack(pending).tolist() if pending else []
        pending.clear()
        history.loss.extend(values)
        bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
        bad_params = guard.nonfinite()
        if bad is None and not bad_params and cause is None:
            guard.commit(step)
            if values:
                bar.set_postfix(loss=f"{sum(values) / len(values):.4g}", refresh=False)
                bar.update(len(values))
            return
        if bad is None and not bad_params and not _is_sampler_divergence(cause):
            return  # an ordinary error: the caller re-raises it
        first_bad = first + bad if bad is not None else None
        restored = guard.restore(first_bad)
        if first_bad is not None:
            at = first_bad
        else:  # non-finite parameters after step `step`, or a sampler failing in the next step
            at = step if bad_params else step + 1
        if bad is not None:
            what = f"the loss was {values[bad]}"
        elif bad_params:
            what = "the parameters " + ", ".join(bad_params) + " became non-finite"
        else:
            what = f"the sampler's chains became non-finite ({str(cause).split('. ')[0]})"
        if bad is not None and bad_params:
            what += " and the parameters " + ", ".join(bad_params) + " became non-finite"
        advice = [f"a smaller learning rate (lr={opt.param_groups[0].get('lr', float('nan')):g})"]
        if clip is None:
            advice.append("gradient clipping (fit(..., grad_clip=1.0))")
        hint = str(getattr(objective, "hint", ""))
        if hint:
            advice.append(hint)
        raise TrainingDivergedError(
            f"training with method {name!r} diverged at step {at}: {what}. The parameters of "
            f"step {restored} were restored into the model. Try " + "; ".join(advice) + ".",
            step=at, restored_step=restored, history=history,
        ) from cause

    start_time = time.perf_counter()
    try:
        if step == 0 and metrics:
            evaluate(0)
        while step < total:
            try:
                batch = batches.next(generator)
                opt.zero_grad(set_to_none=True)
                loss = objective.loss(model, batch, generator)
                if step == 0 or not pending:
                    _check_loss(loss, name)
                loss.backward()
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, clip)
                opt.step()
            except TrainingDivergedError:
                raise
            except Exception as exc:
                sync(cause=exc)
                raise
            step += 1
            pending.append(loss.detach())
            due = [m for m in metrics if step % m[1] == 0 or step == total]
            save_now = checkpoint is not None and (
                step == total or (checkpoint_every is not None and step % checkpoint_every == 0))
            if len(pending) >= sync_every or due or save_now or step == total:
                sync()
            if due:
                evaluate(step)
            if save_now:
                history.wall_time += time.perf_counter() - start_time
                start_time = time.perf_counter()
                save()
    finally:
        bar.close()
        history.wall_time += time.perf_counter() - start_time
    return history


def _is_sampler_divergence(exc: BaseException | None) -> bool:
    from ..samplers import SamplerDivergedError

    return isinstance(exc, SamplerDivergedError)


def _check_loss(loss: object, name: str) -> None:
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        got = (f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor)
               else type(loss).__name__)
        raise TypeError(f"the loss of method {name!r} must be a 0-d tensor, got {got}.")
    if not loss.requires_grad:
        raise ValueError(f"the loss of method {name!r} does not depend on any parameter "
                         "(requires_grad is False); nothing would be trained.")
