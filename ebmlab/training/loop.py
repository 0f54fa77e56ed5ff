r"""The training loop of :mod:`ebmlab`: :func:`fit`.

One loop runs every method of the course (exact MLE, CD-:math:`k`, PCD, score
matching, sliced and denoising score matching, NCSN, MCMC training with a replay
buffer): the method is an objective object (:class:`~ebmlab.training.Objective`),
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
from tqdm.auto import tqdm

from .._closed_form import backward
from .._validation import check_positive
from ..samplers import SamplerDivergedError
from ..utils import make_generator, seed_torch
from ._setup import check_data, check_int, make_optimizer, normalize_callbacks, resolve_objective
from ._step import optimizer_step, zero_grad
from .batches import Batches
from .checkpoint import (
    FORMAT,
    capture_rng,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
    to_device,
)
from .guard import ParameterGuard, TrainingDivergedError
from .history import History
from .objective import Objective, direct_gradient

__all__ = ["TrainingDivergedError", "fit"]


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
    an optimiser step. Built-in methods (see ``ebmlab.training.methods``):

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
        optionally ``init``, ``state_dict``, ``load_state_dict``, ``name``, ``hint``,
        ``loss_and_grad``; see :class:`~ebmlab.training.Objective`).
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
        same parameters). The RNG states come from the checkpoint (``seed`` and
        ``generator``'s own state are overridden); pass the same method, options and
        ``batch_size`` as the original run.
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
    data = check_data(model, data)
    if (epochs is None) == (steps is None):
        raise ValueError(f"pass exactly one of epochs= or steps=, got epochs={epochs!r}, "
                         f"steps={steps!r}.")
    batch_size = check_int(batch_size, "batch_size")
    sync_every = check_int(sync_every, "sync_every")
    eval_every = check_int(eval_every, "eval_every")
    checkpoint_every = check_int(checkpoint_every, "checkpoint_every", allow_none=True)
    if checkpoint_every is not None and checkpoint is None:
        raise ValueError("checkpoint_every needs checkpoint= (the path to write to).")
    clip = None if grad_clip is None else check_positive(grad_clip, "grad_clip")
    batches = Batches(data, batch_size)
    if epochs is not None:
        total = check_int(epochs, "epochs", minimum=0) * batches.per_epoch
    else:
        total = check_int(steps, "steps", minimum=0)
    objective = resolve_objective(method, k, method_options)
    name = str(getattr(objective, "name", type(objective).__name__))
    if seed is not None:
        if generator is not None:
            raise ValueError("pass either seed= or generator=, not both.")
        seed_torch(seed)  # raises TypeError for a seed that is not an int
        generator = make_generator(seed, device=data.device)
    opt = make_optimizer(model, optimizer, lr)
    params = [p for group in opt.param_groups for p in group["params"]]
    metrics = normalize_callbacks(callbacks, eval_every)
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

    guard = ParameterGuard(model, step)
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
        if bad is None and not bad_params and not isinstance(cause, SamplerDivergedError):
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

    checked = False
    loss_and_grad = direct_gradient(objective)
    start_time = time.perf_counter()
    try:
        if step == 0 and metrics:
            evaluate(0)
        while step < total:
            try:
                batch = batches.next(generator)
                zero_grad(opt)  # opt.zero_grad(set_to_none=True)
                if loss_and_grad is not None:  # loss with loss.backward() done
                    loss = loss_and_grad(model, batch, generator)
                    if not checked:
                        _check_loss(loss, name, params)
                        checked = True
                else:
                    loss = objective.loss(model, batch, generator)
                    if not checked:
                        _check_loss(loss, name)
                        checked = True
                    backward(loss)  # loss.backward(), shortcut for closed-form gradients
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, clip)
                optimizer_step(opt)  # opt.step(), direct for plain SGD
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


def _check_loss(loss: object, name: str, params: list[torch.Tensor] | None = None) -> None:
    """A 0-d loss that depends on the parameters (``params``: its gradient is already in
    their ``.grad``, from an objective's ``loss_and_grad``)."""
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        got = (f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor)
               else type(loss).__name__)
        raise TypeError(f"the loss of method {name!r} must be a 0-d tensor, got {got}.")
    if params is not None:
        if all(p.grad is None for p in params):
            raise ValueError(f"loss_and_grad of method {name!r} set no parameter's .grad; "
                             "nothing would be trained.")
    elif not loss.requires_grad:
        raise ValueError(f"the loss of method {name!r} does not depend on any parameter "
                         "(requires_grad is False); nothing would be trained.")
