"""The command line shared by every recipe: ``python -m ebmlab.recipes.<name> [options]``.

Options: the run's length (``--steps``, or ``--epochs`` for epoch-based recipes), ``--seed``,
``--out``, ``--device`` and ``--progress``; where the recipe supports them, ``--full`` (the
full-size data set, downloaded by torchvision) and ``--resume`` (continue the training
state ``fit`` saved next to ``--out``). A recipe module's ``main(argv)`` calls
:func:`run_recipe`, which parses, trains, and writes the checkpoint atomically.

Every recipe also runs data-parallel under ``torchrun``::

    torchrun --nproc_per_node=4 -m ebmlab.recipes.digits_ebm --device cuda --out ebm.pt

Each process joins the process group (NCCL on ``cuda``, one GPU per process by
``LOCAL_RANK``; gloo on ``cpu``) and ``fit`` trains one model with the global batch of
the recipe's settings; process 0 writes the checkpoint.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ._store import write_checkpoint

__all__ = ["is_main_process", "process_group", "recipe_parser", "run_recipe", "save_and_report"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _device(text: str) -> torch.device:
    try:
        return torch.device(text)
    except RuntimeError as exc:
        raise argparse.ArgumentTypeError(f"not a torch device: {text!r} ({exc})") from None


def recipe_parser(name: str, doc: str, config: dict[str, Any], length: str, *,
                  full: bool = False, resumable: bool = False) -> argparse.ArgumentParser:
    """The argument parser of recipe ``name`` (``doc``: its module docstring)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m ebmlab.recipes.{name}", description=doc.strip().splitlines()[0],
        epilog=f"The checkpoint that ships with ebmlab is the full CPU run with the default "
               f"settings; ebmlab.recipes.load({name!r}) reads it.")
    parser.add_argument(f"--{length}", type=_positive_int, default=None,
                        help=f"{length} of training (default: the full run; a shorter run "
                             f"follows the start of the full one exactly)")
    parser.add_argument("--seed", type=int, default=None,
                        help=f"seed of the run (default {config['seed']})")
    parser.add_argument("--out", type=Path, default=Path(f"{name}.pt"),
                        help=f"where to write the checkpoint (default ./{name}.pt)")
    parser.add_argument("--device", type=_device, default=torch.device("cpu"),
                        help="torch device to train on: cpu (default, bit-reproducible), "
                             "cuda, cuda:1, ...")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    if full:
        parser.add_argument("--full", action="store_true",
                            help="train on the full-size data set (downloaded by torchvision "
                                 "into --data-dir; needs a network and `pip install "
                                 "torchvision`)")
        parser.add_argument("--data-dir", type=Path, default=Path("data"),
                            help="where torchvision keeps the full-size data set (default ./data)")
    if resumable:
        parser.add_argument("--resume", action="store_true",
                            help="continue the training state saved next to --out "
                                 "(<out>.fit.pt, written by every run) up to the run's length")
    return parser


def training_state(out: Path) -> Path:
    """Where a recipe run keeps ``fit``'s checkpoint (for ``--resume``): ``<out>.fit.pt``."""
    return out.with_name(f"{out.stem}.fit{out.suffix or '.pt'}")


def join_process_group(device: torch.device) -> torch.device:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1), join the process group and return this
    process's device: NCCL and GPU ``LOCAL_RANK`` for ``cuda``, gloo otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def run_recipe(name: str, doc: str, train: Callable[..., dict[str, Any]],
               config: dict[str, Any], argv: Sequence[str] | None, *,
               length: str = "steps", full: dict[str, Any] | None = None,
               resumable: bool = False) -> dict[str, Any]:
    """Parse ``argv``, run ``train`` and write its checkpoint to ``--out``.

    Parameters
    ----------
    name, doc : str
        The recipe's module name and docstring (the first line is the ``--help`` summary).
    train : callable
        The recipe's ``train(config, *, <length>, device, progress) -> dict``.
    config : dict
        The recipe's default settings; ``--seed`` replaces ``config["seed"]``.
    argv : sequence of str, optional
        The arguments (default: the command line).
    length : str
        The name of the run-length option and of ``train``'s keyword (``"steps"`` or
        ``"epochs"``).
    full : dict, optional
        The settings that ``--full`` merges into ``config`` (the full-size data set);
        ``None``: the recipe has no ``--full``. ``--data-dir`` is passed as
        ``config["data_dir"]``.
    resumable : bool
        Whether ``train`` takes ``checkpoint=`` and ``resume=`` (paths for ``fit``): then
        every run saves its training state to :func:`training_state` and ``--resume``
        continues it.

    Returns
    -------
    dict
        The checkpoint as written, with ``train_seconds`` (wall time of ``train``).
    """
    args = recipe_parser(name, doc, config, length, full=full is not None,
                         resumable=resumable).parse_args(argv)
    if args.seed is not None:
        config = {**config, "seed": args.seed}
    if full is not None and args.full:
        config = {**config, **full, "data_dir": str(args.data_dir)}
    options: dict[str, Any] = {length: getattr(args, length)}
    if resumable:
        state = training_state(args.out)
        options.update(checkpoint=state, resume=state if args.resume else None)
    with process_group(args.device) as device:
        start = time.perf_counter()
        checkpoint = train(config, **options, device=device,
                           progress=args.progress and is_main_process())
        checkpoint.setdefault("train_seconds", time.perf_counter() - start)
        save_and_report(name, checkpoint, args.out, device)
    return checkpoint


@contextmanager
def process_group(device: torch.device) -> Iterator[torch.device]:
    """Join the process group under ``torchrun`` (:func:`join_process_group`) for the body,
    which gets this process's device, and leave it afterwards (also after an error)."""
    device = join_process_group(device)
    try:
        yield device
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def is_main_process() -> bool:
    """Whether this process shows progress and writes (alone, or rank 0 of a group)."""
    return not dist.is_initialized() or dist.get_rank() == 0


def save_and_report(name: str, checkpoint: dict[str, Any], out: Path,
                    device: torch.device) -> None:
    """On the main process: write ``checkpoint`` to ``out`` atomically and say where, on
    what, and in how long (``checkpoint["train_seconds"]``)."""
    if not is_main_process():
        return
    write_checkpoint(checkpoint, out)
    processes = f" x {dist.get_world_size()} processes" if dist.is_initialized() else ""
    print(f"{name}: trained on {device}{processes} in "
          f"{_total(checkpoint['train_seconds']):.0f} s; wrote {out}", flush=True)


def _total(seconds: float | dict[str, float]) -> float:
    return sum(seconds.values()) if isinstance(seconds, dict) else seconds
