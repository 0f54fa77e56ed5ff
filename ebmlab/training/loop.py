r"""The training loop of :mod:`ebmlab`: :func:`fit`.

One loop runs every method of the course (exact MLE, CD-:math:`k`, PCD, score
matching, sliced and denoising score matching, NCSN, MCMC training with a replay
buffer): the method (:class:`~ebmlab.training.Method`) turns a minibatch into a gradient,
and the loop draws the minibatches, steps the optimiser -- in one place -- records the
history, evaluates metrics, writes checkpoints and guards against divergence. Under
``torchrun`` (a ``torch.distributed`` process group) the same loop trains data-parallel,
with what the processes share in ``ebmlab.training.distributed``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from .._validation import check_bool, check_generator, check_int, check_number, evaluate_energy
from ..samplers import SamplerDivergedError
from ..utils import make_generator, seed_torch
from .batches import Batches, check_training_data
from .callbacks import MetricSchedule
from .checkpoint import read_checkpoint, write_checkpoint
from .distributed import DataParallel, check_distributable, note_redistributed
from .guard import DivergenceGuard, TrainingDivergedError
from .history import History
from .methods import Method, make_method
from .optimizer import OptimizerLike, OptimizerSpec, make_optimizer

__all__ = ["TrainingDivergedError", "fit"]


def fit(
    model: nn.Module,
    data: torch.Tensor,
    method: str | Method,
    *,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int = 128,
    lr: float | None = None,
    optimizer: OptimizerSpec = None,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    progress: bool = True,
    callbacks: Iterable[Callable[[nn.Module], Any]] = (),
    eval_every: int = 100,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    resume: str | os.PathLike[str] | None = None,
    grad_clip: float | None = None,
    max_energy: float | None = None,
    max_param_norm: float | None = None,
    sync_every: int = 25,
    **method_options: Any,
) -> History:
    r"""Train an energy-based model with one of the methods of the course.

    Every method is a configuration of one loop: draw a shuffled minibatch, ask the
    method for its loss and gradient (:meth:`~ebmlab.training.Method.compute_gradient`
    sets the parameters' ``.grad``), take an optimiser step. Built-in methods
    (``ebmlab.training.METHODS``; their options are keyword arguments of ``fit``):

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
    method : str or Method
        A name above, or a :class:`~ebmlab.training.Method` object.
    epochs, steps : int
        Length of training; pass exactly one. ``steps`` counts optimiser steps in
        total, those of a resumed run included; an epoch is
        :math:`\lceil N / \text{batch\_size}\rceil` steps.
    batch_size : int
        Minibatch size (capped at ``N``; the last batch of an epoch may be smaller). In
        data-parallel training, the global batch: each process takes its share.
    lr : float, optional
        Learning rate of an optimiser given by name (default ``1e-3``).
    optimizer : None, "adam", "adamw", "sgd", Optimizer or callable
        ``None`` means Adam; ``"sgd"`` is plain SGD (:class:`~ebmlab.training.PlainSGD`);
        a callable is called with the trainable parameters.
    generator : torch.Generator, optional
        Source of all the loop's randomness (shuffling, chains, noise).
    seed : int, optional
        Seed torch's global RNG and create ``generator`` from it (do not pass both).
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
        Write a checkpoint here every ``checkpoint_every`` steps and at the end (see
        ``ebmlab.training.checkpoint``: checksummed, atomic, the previous one kept as
        ``<name>.prev<suffix>``).
    checkpoint_every : int, optional
        Checkpoint period in steps (``None``: only at the end).
    resume : path, optional
        Continue from this checkpoint, exactly where it stopped (on the CPU, ``steps=2n``
        straight and ``n`` + resume to ``2n`` give the same parameters). The RNG states
        come from the checkpoint; the method and its options must be those of the run
        that wrote it, and ``steps`` (or ``epochs``) at least its step count.
    grad_clip : float, optional
        Clip the parameters' gradient norm to this value.
    max_energy, max_param_norm : float, optional
        Stop, as for a non-finite loss, when an energy of the minibatch exceeds
        ``max_energy`` in magnitude or the parameters' norm exceeds ``max_param_norm``
        (checked at every sync): a blow-up is caught before it reaches ``inf``.
    sync_every : int
        Steps between two reads of the losses from the device (progress bar, divergence
        checks, snapshot of the parameters); the loop never synchronises in between.
    **method_options
        Options of the built-in method, e.g. ``k=5`` for ``"cd"``, ``sigma=0.1`` for
        ``"dsm"``, ``sigmas=...`` for ``"ncsn"``, ``step_size=...`` for ``"mcmc"``.

    Returns
    -------
    History
        Per-step losses and the metrics of the callbacks (in data-parallel training, the
        same on every process: the losses of the global batches, the metrics averaged).

    Notes
    -----
    **Data-parallel training.** When a ``torch.distributed`` process group of several
    processes is initialised (``torchrun --nproc_per_node=N script.py``, the script
    calling ``torch.distributed.init_process_group("gloo")`` on CPUs or ``("nccl")``, one
    GPU per process), every process calls ``fit`` with the same arguments and they train
    one model together (``ebmlab.training.distributed``): rank 0's parameters and
    generator are broadcast at the start; every process draws the same batch order and
    takes its share of each global batch of ``batch_size``; the gradients are averaged
    (weighted by the shares) before each optimiser step, so a deterministic method gives
    the parameters of one process with the same ``batch_size``; persistent chains and
    replay buffers (``n_chains``, ``buffer_size``: the totals) are split between the
    processes, each drawing its own noise; the divergence guard decides for all of them at
    once; rank 0 shows the progress and writes the checkpoints, which hold every
    process's chains and generator. A resume by as many processes continues exactly; by
    another number it redistributes the chains and says so.

    Raises
    ------
    ValueError, TypeError
        Unknown method or option, a method that does not apply to the model or data,
        data of the wrong shape, dtype, device or values, invalid settings, a checkpoint
        that does not match the run, a method that cannot be distributed (in
        data-parallel training).
    TrainingDivergedError
        A non-finite loss, parameter or sample, or a bound exceeded. The model is
        restored to the last parameters known to be good (see
        ``ebmlab.training.guard``; the optimiser's state is not restored); the error
        carries the history so far.
    DistributedTimeoutError
        In data-parallel training, when another process stopped or hung (after the
        process group's timeout).

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
    data = check_training_data(model, data)
    progress = check_bool(progress, "progress")
    method = make_method(method, **method_options)
    batches = Batches(data, check_int(batch_size, "batch_size", minimum=1))
    total = _total_steps(epochs, steps, batches.per_epoch)
    generator = _generator(seed, generator, data.device)
    parallel = DataParallel.current()
    if parallel is not None:  # one batch order, one model: rank 0's
        check_distributable(method)
        parallel.check_batches(batches.n, batches.batch_size)
        generator = parallel.broadcast_start(model, generator)
    opt = make_optimizer(optimizer, model, lr)
    params = [p for group in opt.param_groups for p in group["params"]]
    clip = None if grad_clip is None else check_number(grad_clip, "grad_clip", greater_than=0)
    metrics = MetricSchedule(callbacks, eval_every,
                             average=None if parallel is None else parallel.mean)
    every = _checkpoint_period(checkpoint, checkpoint_every, total)
    sync_every = check_int(sync_every, "sync_every", minimum=1)
    method.init(model, data, generator)  # every chain of the run (all processes alike)
    history = History(method=method.name)
    ranks = None
    if resume is not None:
        generator, ranks = read_checkpoint(resume, model=model, optimizer=opt, method=method,
                                           batches=batches, history=history,
                                           generator=generator)
        _check_resumable(resume, history.steps, total)
    chain_generator = generator  # the chains' and the noise's; per process in parallel
    if parallel is not None and generator is not None:
        method.keep_share(parallel.rows)
        chain_generator = parallel.chain_generator(generator, resume, ranks)
    elif ranks is not None:
        note_redistributed(resume, ranks["world_size"], 1)
    guard = _guard(model, data, history, method, opt, clip, max_energy, max_param_norm,
                   parallel)
    clock = time.perf_counter()
    with tqdm(total=total, initial=history.steps, desc=f"fit[{method.name}]", unit="step",
              disable=not progress or (parallel is not None and not parallel.is_main),
              dynamic_ncols=True) as bar:
        if history.steps == 0:
            metrics.evaluate(model, 0, total, history)
        for step in range(history.steps + 1, total + 1):
            batch, weight = batches.next(generator), 1.0
            if parallel is not None:  # this process's rows, and their share of the batch
                batch, weight = parallel.share(batch)
            try:  # sets the parameters' .grad (no zero_grad: it replaces the last step's)
                loss = method.compute_gradient(model, batch, chain_generator)
            except SamplerDivergedError as error:
                loss = guard.sampler_diverged(step, error)  # raises, but in parallel
            if parallel is not None:
                parallel.average_gradients(params, weight)
                loss = loss * weight
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()  # the one parameter update of the loop
            guard.record(loss)
            save = checkpoint is not None and (step % every == 0 or step == total)
            if guard.pending >= sync_every or metrics.due(step, total) or save or step == total:
                _show(bar, guard.sync(step, batch))
                metrics.evaluate(model, step, total, history)
            if save and checkpoint is not None:
                history.wall_time += time.perf_counter() - clock
                clock = time.perf_counter()
                _save(checkpoint, step, model, opt, method, batches, history, generator,
                      chain_generator, parallel)
    history.wall_time += time.perf_counter() - clock
    return history


def _total_steps(epochs: object, steps: object, per_epoch: int) -> int:
    if (epochs is None) == (steps is None):
        raise ValueError(f"pass exactly one of epochs= or steps=, got epochs={epochs!r}, "
                         f"steps={steps!r}.")
    if epochs is not None:
        return check_int(epochs, "epochs", minimum=0) * per_epoch
    return check_int(steps, "steps", minimum=0)


def _generator(seed: object, generator: object, device: torch.device) -> torch.Generator | None:
    """``generator``, or one made from ``seed`` (which also seeds torch's global RNG)."""
    generator = check_generator(generator)
    if seed is None:
        return generator
    if generator is not None:
        raise ValueError("pass either seed= or generator=, not both.")
    seed_torch(seed)  # type: ignore[arg-type]  # checks the seed
    return make_generator(seed, device=device)  # type: ignore[arg-type]


def _checkpoint_period(checkpoint: object, checkpoint_every: object, total: int) -> int:
    if checkpoint_every is None:
        return max(total, 1)
    if checkpoint is None:
        raise ValueError("checkpoint_every needs checkpoint= (the path to write to).")
    return check_int(checkpoint_every, "checkpoint_every", minimum=1)


def _check_resumable(resume: object, done: int, total: int) -> None:
    if done > total:
        raise ValueError(f"resume={str(resume)!r} is at step {done}, beyond the {total} steps "
                         "asked for; steps (or epochs) counts every step of the run, those "
                         f"before the checkpoint included: pass at least steps={done}.")


def _save(path: str | os.PathLike[str], step: int, model: nn.Module, optimizer: OptimizerLike,
          method: Method, batches: Batches, history: History,
          generator: torch.Generator | None, chain_generator: torch.Generator | None,
          parallel: DataParallel | None) -> None:
    """Write the checkpoint; in data-parallel training, rank 0 writes every process's
    chains (joined) and generator state, and the others wait until it is written."""
    if parallel is None:
        write_checkpoint(path, step=step, model=model, optimizer=optimizer, method=method,
                         batches=batches, history=history, generator=generator)
        return
    assert chain_generator is not None
    shares = parallel.gather((method.state_dict(), chain_generator.get_state()))
    if shares is not None:  # rank 0
        write_checkpoint(path, step=step, model=model, optimizer=optimizer, method=method,
                         batches=batches, history=history, generator=generator,
                         method_state=method.join_shares([state for state, _ in shares]),
                         ranks={"world_size": parallel.world_size,
                                "generators": [rng for _, rng in shares]})
    parallel.barrier("the checkpoint")


def _guard(model: nn.Module, data: torch.Tensor, history: History, method: Method,
           optimizer: OptimizerLike, clip: float | None, max_energy: object,
           max_param_norm: object, parallel: DataParallel | None) -> DivergenceGuard:
    """The divergence guard, with the bounds checked and the advice of its message."""
    energy_bound = None if max_energy is None else check_number(max_energy, "max_energy",
                                                                greater_than=0)
    norm_bound = None if max_param_norm is None else check_number(
        max_param_norm, "max_param_norm", greater_than=0)
    if energy_bound is not None:
        with torch.no_grad():
            try:
                evaluate_energy(model, data[:1], type(model).__name__)
            except TypeError:
                raise ValueError("max_energy applies to an energy model(x) -> (B,); "
                                 f"{type(model).__name__} is not one.") from None
    advice = [f"a smaller learning rate (lr={optimizer.param_groups[0].get('lr', float('nan')):g})"]
    if clip is None:
        advice.append("gradient clipping (fit(..., grad_clip=1.0))")
    if method.hint:
        advice.append(method.hint)
    return DivergenceGuard(model, history, method=method.name, advice="; ".join(advice),
                           max_energy=energy_bound, max_param_norm=norm_bound,
                           parallel=parallel)


def _show(bar: tqdm, losses: list[float]) -> None:
    if losses:
        bar.set_postfix(loss=f"{sum(losses) / len(losses):.4g}", refresh=False)
        bar.update(len(losses))
