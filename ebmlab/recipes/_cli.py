"""The command line shared by every recipe: ``python -m ebmlab.recipes.<name> [options]``.

Options: the run's length (``--steps``, or ``--epochs`` for epoch-based recipes), ``--seed``,
``--out``, ``--device`` and ``--progress``. A recipe module's ``main(argv)`` calls
:func:`run_recipe`, which parses, trains, and writes the checkpoint atomically.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ._store import write_checkpoint

__all__ = ["run_recipe"]


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


def recipe_parser(name: str, doc: str, config: dict[str, Any], length: str
                  ) -> argparse.ArgumentParser:
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
    return parser


def run_recipe(name: str, doc: str, train: Callable[..., dict[str, Any]],
               config: dict[str, Any], argv: Sequence[str] | None, *,
               length: str = "steps") -> dict[str, Any]:
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

    Returns
    -------
    dict
        The checkpoint as written, with ``train_seconds`` (wall time of ``train``).
    """
    args = recipe_parser(name, doc, config, length).parse_args(argv)
    if args.seed is not None:
        config = {**config, "seed": args.seed}
    start = time.perf_counter()
    checkpoint = train(config, **{length: getattr(args, length)}, device=args.device,
                       progress=args.progress)
    checkpoint.setdefault("train_seconds", time.perf_counter() - start)
    write_checkpoint(checkpoint, args.out)
    print(f"{name}: trained on {args.device} in {_total(checkpoint['train_seconds']):.0f} s; "
          f"wrote {args.out}", flush=True)
    return checkpoint


def _total(seconds: float | dict[str, float]) -> float:
    return sum(seconds.values()) if isinstance(seconds, dict) else seconds
