r"""Recipe: a deep energy-based model of 8x8 digits, trained with a replay buffer (chapter 7).

An :class:`~ebmlab.energies.MLPEnergy` on the 64 grey levels of scikit-learn's digits
(:func:`ebmlab.data.digits`, values in :math:`[0, 1]`) is trained by maximum likelihood
with Langevin negatives drawn from a replay buffer (Du & Mordatch 2019): each step draws
a batch of chains from the buffer (20% restarted from uniform noise), runs ``n_steps``
Langevin steps :math:`x \leftarrow x - \epsilon\nabla_x E(x) + \sigma\xi` clamped to the
pixel range :math:`[0, 1]`, writes them back, and minimises
:func:`ebmlab.objectives.contrastive_loss` with the energy-magnitude regulariser ``alpha``.

A chain therefore lives ``1 / reinit_prob`` = 5 updates on average, 100 Langevin steps, and
training shapes the energy so that chains of about that age look like the data: fresh chains
started from uniform noise and run for that long end on every digit class (chapter 7 measures
it); run much longer, they drift toward the valleys that happen to be deepest. Training
runs single-threaded so that the result does not depend on the thread count; the full run
takes a few CPU minutes::

    python -m ebmlab.recipes.digits_ebm                      # the full run -> ./digits_ebm.pt
    python -m ebmlab.recipes.digits_ebm --steps 20 --out /tmp/short.pt
    python -m ebmlab.recipes.digits_ebm --steps 40 --out /tmp/short.pt --resume  # 20 more
    torchrun --nproc_per_node=4 -m ebmlab.recipes.digits_ebm --device cuda --full

``--full`` trains on MNIST (60 000 images of 28x28 grey levels, :data:`FULL`), downloaded by
torchvision; the shipped checkpoint is the digits run. Under ``torchrun`` the batch of
128 is the global batch and the replay buffer is split between the processes.

The checkpoint (about 200 kB) holds ``config`` (:data:`CONFIG`, with the steps run), the
network's ``state_dict``, ``buffer`` (the first ``n_saved`` states of the replay buffer)
and ``loss`` (per step). The one that ships with the package is the full run; read it with
:func:`load_checkpoint` (or ``ebmlab.recipes.load("digits_ebm")``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, cast

import torch

from ..data import digits
from ..energies import MLPEnergy
from ..objectives import contrastive_loss
from ..samplers import langevin
from ..training import MCMCReplay, fit
from ..utils import make_generator, single_threaded
from ._cli import run_recipe
from ._mnist import load_mnist
from ._store import Trained, cpu_state, frozen, read_checkpoint

__all__ = ["CONFIG", "FULL", "BoundedReplay", "load_checkpoint", "main", "make_data",
           "make_model", "mnist", "train"]

#: Everything that defines the run.
CONFIG: dict[str, Any] = {
    "seed": 0,
    "hidden": (128, 128),     # MLPEnergy hidden widths (SiLU), 64 inputs
    "steps": 6000,            # Adam steps
    "batch_size": 128,
    "lr": 1e-3,
    "buffer_size": 2000,      # replay buffer of persistent chains
    "reinit_prob": 0.2,       # chance that a drawn chain restarts from uniform noise
    "step_size": 0.1,         # Langevin step epsilon
    "noise_scale": 0.03,      # Langevin noise sigma (decoupled from epsilon)
    "n_steps": 20,            # Langevin steps per update
    "alpha": 0.01,            # energy-magnitude regulariser
    "bounds": (0.0, 1.0),     # pixel range the chains are clamped to
    "n_saved": 256,           # buffer states kept in the checkpoint
}

#: What ``--full`` changes: MNIST's 28x28 images and a wider network, more chains.
FULL: dict[str, Any] = {
    "data": "mnist",
    "hidden": (512, 512),
    "buffer_size": 10000,
    "steps": 20000,
}


class BoundedReplay(MCMCReplay):
    """:class:`~ebmlab.training.MCMCReplay` whose Langevin chains stay in the pixel range.

    The negative phase is the same (buffer draw with restarts, ``n_steps`` Langevin
    steps, write-back), with every state clamped to ``bounds`` after each step
    (:func:`ebmlab.samplers.langevin`'s ``bounds`` option), so the samples are valid images.
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
        negatives = langevin(model, x0, step_size=self.step_size, n_steps=self.n_steps,
                             noise_scale=self.noise_scale, grad_clip=self.grad_clip,
                             bounds=self.bounds, generator=generator).samples.detach()
        self.buffer.update(idx, negatives)
        return contrastive_loss(model, batch, negatives, alpha=self.alpha)


def make_data(config: dict[str, Any] = CONFIG) -> torch.Tensor:
    """The training set: the 1797 digits as float32 vectors of 64 grey levels in [0, 1]
    (with ``config["data"] == "mnist"``, MNIST's 60 000 training images, 784 levels)."""
    if config.get("data", "digits") == "mnist":
        return mnist(config.get("data_dir", "data"))
    return cast(torch.Tensor, digits())  # no labels asked


def mnist(root: str | os.PathLike[str]) -> torch.Tensor:
    """MNIST's training images as float32 vectors ``(60000, 784)`` in [0, 1], downloaded by
    torchvision into ``root`` the first time (under ``torchrun``, by rank 0 first).

    Raises
    ------
    ModuleNotFoundError
        If torchvision is not installed (the message says how to install it).
    """
    images, _ = load_mnist(root, train=True, option="--full",
                           offline="train on the offline 8x8 digits without --full")
    return images.reshape(len(images), -1)


def make_model(config: dict[str, Any] = CONFIG) -> MLPEnergy:
    """A fresh (untrained) energy network of the configured size."""
    inputs = 784 if config.get("data", "digits") == "mnist" else 64
    return MLPEnergy(inputs, hidden=tuple(config["hidden"]))


def train(config: dict[str, Any] = CONFIG, *, steps: int | None = None,
          device: str | torch.device = "cpu", progress: bool = False,
          checkpoint: str | os.PathLike[str] | None = None,
          resume: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Train from scratch; deterministic on the CPU (single-threaded).

    Parameters
    ----------
    config : dict
        The run's settings (:data:`CONFIG`).
    steps : int, optional
        Number of Adam steps (default ``config["steps"]``); a short run follows exactly
        the first ``steps`` steps of the full one.
    device : str or torch.device
        Where to train (the random numbers are drawn on the CPU either way).
    progress : bool
        Show a progress bar.
    checkpoint, resume : path, optional
        ``fit``'s training state: where to save it (every 500 steps and at the end) and
        where to continue from (see :func:`ebmlab.training.fit`).

    Returns
    -------
    dict
        The checkpoint: ``config`` (with ``steps``), ``state_dict``, ``buffer`` (the
        first ``n_saved`` states of the replay buffer) and ``loss`` (per step), on the CPU.
    """
    steps = config["steps"] if steps is None else int(steps)
    with single_threaded():
        torch.manual_seed(config["seed"])
        model = make_model(config).to(device)
        objective = BoundedReplay(
            buffer_size=config["buffer_size"], reinit_prob=config["reinit_prob"],
            step_size=config["step_size"], noise_scale=config["noise_scale"],
            n_steps=config["n_steps"], alpha=config["alpha"], bounds=tuple(config["bounds"]))
        history = fit(model, make_data(config).to(device), objective, steps=steps,
                      batch_size=config["batch_size"], lr=config["lr"],
                      generator=make_generator(config["seed"] + 1),
                      progress=progress, checkpoint=checkpoint,
                      checkpoint_every=None if checkpoint is None else 500, resume=resume)
    if objective.buffer is None:
        raise RuntimeError("fit did not initialise the replay buffer.")
    return {
        "config": {**config, "steps": steps},
        "state_dict": cpu_state(model),
        "buffer": objective.buffer.data[: config["n_saved"]].cpu().clone(),
        "loss": torch.tensor(history.loss, dtype=torch.float32),
    }


def load_checkpoint(path: str | os.PathLike[str] | None = None) -> Trained:
    """The trained network: the checkpoint that ships with the package, or one at ``path``.

    Returns
    -------
    Trained
        ``(model, checkpoint)``: the :class:`~ebmlab.energies.MLPEnergy` (eval mode, parameters
        frozen) and the checkpoint dictionary; ``checkpoint["buffer"]`` holds replay-buffer
        states ``(n_saved, 64)``, samples of the model.

    Examples
    --------
    >>> from ebmlab.recipes import digits_ebm
    >>> model, checkpoint = digits_ebm.load_checkpoint()
    >>> tuple(checkpoint["buffer"].shape), len(checkpoint["loss"])
    ((256, 64), 6000)
    """
    checkpoint = read_checkpoint("digits_ebm", path)
    model = make_model(checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    return Trained(frozen(model), checkpoint)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line: train and write the checkpoint (``--help`` lists the options)."""
    return run_recipe("digits_ebm", __doc__ or "", train, CONFIG, argv, full=FULL,
                      resumable=True)


if __name__ == "__main__":
    main()
