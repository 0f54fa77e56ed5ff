r"""Train the deep energy-based model on 8x8 digits of chapter 7 and save its checkpoint.

An :class:`~ebmlab.MLPEnergy` on the 64 grey levels of scikit-learn's digits
(:func:`ebmlab.data.digits`, values in :math:`[0, 1]`) is trained by maximum likelihood
with Langevin negatives drawn from a replay buffer (Du & Mordatch 2019): each step
draws a batch of chains from the buffer (5% restarted from uniform noise), runs
``n_steps`` Langevin steps :math:`x \leftarrow x - \epsilon\nabla_x E(x) + \sigma\xi`
clamped to the pixel range :math:`[0, 1]`, writes them back, and minimises
:func:`ebmlab.contrastive_loss` with the energy-magnitude regulariser ``alpha``. Run
from anywhere::

    python book/scripts/train_digits_ebm.py            # the full run (a few CPU minutes)
    python book/scripts/train_digits_ebm.py --steps 20 --out /tmp/short.pt

It writes :data:`CHECKPOINT` (``book/checkpoints/digits_ebm.pt``, about 250 kB): the
configuration, the network's ``state_dict``, ``n_saved`` states of the replay buffer
and the loss history. Chapter 7 imports :data:`CONFIG`, :func:`make_model` and
:func:`load` from here; ``tests/test_checkpoints.py`` checks that a short run of this
script is bit-identical to a short run of :func:`train` and that the stored checkpoint
has the properties the chapter states. Training runs single-threaded so that the
result does not depend on the thread count.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

import ebmlab as el
from ebmlab.training import MCMCReplay, fit

#: Where the trained network is stored.
CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "digits_ebm.pt"

#: Everything that defines the run.
CONFIG: dict[str, Any] = {
    "seed": 0,
    "hidden": (128, 128),     # MLPEnergy hidden widths (SiLU), 64 inputs
    "steps": 6000,            # Adam steps
    "batch_size": 128,
    "lr": 1e-3,
    "buffer_size": 2000,      # replay buffer of persistent chains
    "reinit_prob": 0.05,      # chance that a drawn chain restarts from uniform noise
    "step_size": 0.1,         # Langevin step epsilon
    "noise_scale": 0.01,      # Langevin noise sigma (decoupled from epsilon)
    "n_steps": 20,            # Langevin steps per update
    "alpha": 0.01,            # energy-magnitude regulariser
    "bounds": (0.0, 1.0),     # pixel range the chains are clamped to
    "n_saved": 256,           # buffer states kept in the checkpoint
}


class BoundedReplay(MCMCReplay):
    """:class:`~ebmlab.training.MCMCReplay` whose Langevin chains stay in the pixel range.

    The negative phase is the same (buffer draw with restarts, ``n_steps`` Langevin
    steps, write-back), with every state clamped to ``bounds`` after each step
    (:func:`ebmlab.langevin`'s ``bounds`` option), so the samples are valid images.
    """

    def __init__(self, *, bounds: tuple[float, float], **options: Any) -> None:
        super().__init__(**options)
        self.bounds = bounds

    def loss(self, model: torch.nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        if self.buffer is None:
            raise RuntimeError("BoundedReplay.init(model, data, generator) must be called "
                               "before loss().")
        x0, idx = self.buffer.sample(batch.shape[0], generator=generator)
        negatives = el.langevin(model, x0, step_size=self.step_size, n_steps=self.n_steps,
                                noise_scale=self.noise_scale, grad_clip=self.grad_clip,
                                bounds=self.bounds, generator=generator).samples.detach()
        self.buffer.update(idx, negatives)
        return el.contrastive_loss(model, batch, negatives, alpha=self.alpha)


def make_data() -> torch.Tensor:
    """The training set: the 1797 digits as float32 vectors of 64 grey levels in [0, 1]."""
    return el.digits()


def make_model(config: dict[str, Any] = CONFIG) -> el.MLPEnergy:
    """A fresh (untrained) energy network of the configured size."""
    return el.MLPEnergy(64, hidden=tuple(config["hidden"]))


def train(steps: int | None = None, config: dict[str, Any] = CONFIG, *,
          progress: bool = False) -> dict[str, Any]:
    """Train from scratch; deterministic on the CPU (single-threaded).

    Parameters
    ----------
    steps : int, optional
        Number of Adam steps (default ``config["steps"]``); a short run follows exactly
        the first ``steps`` steps of the full one.
    config : dict
        The run's settings (:data:`CONFIG`).
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        The checkpoint: ``config`` (with ``steps``), ``state_dict``, ``buffer`` (the
        first ``n_saved`` states of the replay buffer) and ``loss`` (per step).
    """
    steps = config["steps"] if steps is None else int(steps)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(config["seed"])
        model = make_model(config)
        objective = BoundedReplay(
            buffer_size=config["buffer_size"], reinit_prob=config["reinit_prob"],
            step_size=config["step_size"], noise_scale=config["noise_scale"],
            n_steps=config["n_steps"], alpha=config["alpha"], bounds=tuple(config["bounds"]))
        history = fit(model, make_data(), objective, steps=steps,
                      batch_size=config["batch_size"], lr=config["lr"],
                      generator=el.make_generator(config["seed"] + 1), progress=progress)
    finally:
        torch.set_num_threads(threads)
    assert objective.buffer is not None
    return {
        "config": {**config, "steps": steps},
        "state_dict": {k: v.clone() for k, v in model.state_dict().items()},
        "buffer": objective.buffer.data[: config["n_saved"]].clone(),
        "loss": torch.tensor(history.loss, dtype=torch.float32),
    }


def load(path: str | Path = CHECKPOINT) -> tuple[el.MLPEnergy, torch.Tensor, dict[str, Any]]:
    """Load a checkpoint written by this script.

    Returns
    -------
    (MLPEnergy, torch.Tensor, dict)
        The trained network (in eval mode, parameters frozen), the saved replay-buffer
        states ``(n_saved, 64)`` and the whole checkpoint dictionary.
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model = make_model(checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    model.eval().requires_grad_(False)
    return model, checkpoint["buffer"], checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None,
                        help=f"Adam steps (default {CONFIG['steps']}, the full run)")
    parser.add_argument("--out", type=Path, default=CHECKPOINT)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    checkpoint = train(args.steps, progress=args.progress)
    checkpoint["train_seconds"] = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, args.out)
    print(f"trained {checkpoint['config']['steps']} steps in {checkpoint['train_seconds']:.0f} s;"
          f" wrote {args.out}")


if __name__ == "__main__":
    main()
