r"""Recipe: a noise-conditional score network on eight Gaussians on a circle (chapter 6).

A :class:`~ebmlab.energies.NoiseConditionalScoreNet` is trained by multi-noise denoising score
matching (NCSN, Song & Ermon 2019; ``fit(..., "ncsn")``) on samples of eight Gaussians on
a circle (:func:`ebmlab.data.eight_gaussians`), over a geometric ladder of noise levels
(:func:`sigmas`): Adam at ``lr`` for ``steps`` steps, then at ``fine_lr`` for
``fine_steps`` more. Training runs single-threaded so that the result does not depend on
the thread count; the full run takes a few CPU minutes::

    python -m ebmlab.recipes.eight_gaussians_ncsn          # -> ./eight_gaussians_ncsn.pt
    python -m ebmlab.recipes.eight_gaussians_ncsn --steps 10 --out /tmp/short.pt

The checkpoint (about 150 kB) holds ``config`` (:data:`CONFIG`, with the steps run),
``model`` (the network's state dict), ``losses`` (per step) and ``train_seconds``. The
one that ships with the package is the full run; read it with :func:`load_checkpoint` (or
``ebmlab.recipes.load("eight_gaussians_ncsn")``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, cast

import torch

from ..data import eight_gaussians
from ..energies import GaussianMixture, NoiseConditionalScoreNet
from ..utils import make_generator, single_threaded
from ._cli import run_recipe
from ._schedule import fit_two_phases, prefix_config
from ._store import Trained, cpu_state, frozen, read_checkpoint

__all__ = ["CONFIG", "load_checkpoint", "main", "make_data", "make_model", "sigmas",
           "target_mixture", "train"]

#: Everything that defines the training run.
CONFIG: dict[str, Any] = {
    "seed": 0,
    "n_data": 4000,          # training points
    "radius": 2.0,           # eight Gaussians on a circle of this radius...
    "std": 0.15,             # ...with this standard deviation each
    "sigma_max": 4.0,        # noise ladder: geometric from sigma_max...
    "sigma_min": 0.05,       # ...down to sigma_min...
    "n_levels": 10,          # ...in this many levels
    "hidden": (128, 128),    # NoiseConditionalScoreNet hidden widths (SiLU)
    "batch_size": 256,
    "steps": 6000,           # Adam steps at lr
    "lr": 2e-3,
    "fine_steps": 2000,      # then Adam steps at fine_lr (same optimiser state)
    "fine_lr": 2e-4,
}


def sigmas(config: dict[str, Any] = CONFIG) -> list[float]:
    r"""The noise ladder :math:`\sigma_1 > \dots > \sigma_L`, geometric, largest first.

    Examples
    --------
    >>> ladder = sigmas()
    >>> len(ladder), round(ladder[0], 6), round(ladder[-1], 6)
    (10, 4.0, 0.05)
    """
    return torch.logspace(math.log10(config["sigma_max"]), math.log10(config["sigma_min"]),
                          config["n_levels"], dtype=torch.float64).tolist()


def make_data(config: dict[str, Any] = CONFIG) -> torch.Tensor:
    """The training set, float32, shape ``(N, 2)``."""
    data = eight_gaussians(config["n_data"], radius=config["radius"], std=config["std"],
                           generator=make_generator(config["seed"]))
    return cast(torch.Tensor, data)  # no labels asked


def target_mixture(config: dict[str, Any] = CONFIG) -> GaussianMixture:
    """The exact density of the data (float64): its ``smoothed(sigma)`` gives exact scores."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    means = config["radius"] * torch.stack([angles.cos(), angles.sin()], dim=1)
    return GaussianMixture(means, config["std"], torch.full((8,), 1 / 8, dtype=torch.float64))


def make_model(config: dict[str, Any] = CONFIG) -> NoiseConditionalScoreNet:
    """A fresh (untrained) score network of the configured size."""
    return NoiseConditionalScoreNet(2, hidden=tuple(config["hidden"]))


def train(config: dict[str, Any] = CONFIG, *, steps: int | None = None,
          device: str | torch.device = "cpu", progress: bool = False) -> dict[str, Any]:
    """Train the score network; deterministic on the CPU (single-threaded).

    Parameters
    ----------
    config : dict
        The run's settings (:data:`CONFIG`).
    steps : int, optional
        Only the first ``steps`` optimiser steps of the run (default: all of them).
    device : str or torch.device
        Where to train (the random numbers are drawn on the CPU either way).
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        The checkpoint: ``config`` (with the steps run), ``model`` (the state dict, on
        the CPU) and ``losses`` (float64, per step).
    """
    config = prefix_config(config, steps)
    with single_threaded():
        torch.manual_seed(config["seed"])
        net = make_model(config).to(device)
        losses = fit_two_phases(net, make_data(config).to(device), "ncsn", config,
                                sigmas=sigmas(config),
                                generator=make_generator(config["seed"] + 1),
                                progress=progress)
    return {"config": config,
            "model": cpu_state(net),
            "losses": losses}


def load_checkpoint(path: str | os.PathLike[str] | None = None) -> Trained:
    """The trained score network: the shipped checkpoint, or one at ``path``.

    Returns
    -------
    Trained
        ``(model, checkpoint)``: the :class:`~ebmlab.energies.NoiseConditionalScoreNet` (eval mode,
        parameters frozen) and the checkpoint dictionary.

    Examples
    --------
    >>> from ebmlab.recipes import eight_gaussians_ncsn
    >>> net, checkpoint = eight_gaussians_ncsn.load_checkpoint()
    >>> len(checkpoint["losses"]), type(net).__name__
    (8000, 'NoiseConditionalScoreNet')
    """
    checkpoint = read_checkpoint("eight_gaussians_ncsn", path)
    model = make_model(checkpoint["config"])
    model.load_state_dict(checkpoint["model"])
    return Trained(frozen(model), checkpoint)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line: train and write the checkpoint (``--help`` lists the options)."""
    return run_recipe("eight_gaussians_ncsn", __doc__ or "", train, CONFIG, argv)


if __name__ == "__main__":
    main()
