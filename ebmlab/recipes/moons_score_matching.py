r"""Recipe: three score-matching fits of an energy network to two moons (chapter 5).

An :class:`~ebmlab.energies.MLPEnergy` is fitted to two moons by score matching (``"sm"``,
Hyvärinen 2005), sliced score matching with one projection (``"ssm"``, Song et al. 2019)
and denoising score matching (``"dsm"``, Vincent 2011), with the same data, network,
optimiser and number of steps: Adam at ``lr`` for ``steps`` steps, then at ``fine_lr``
for ``fine_steps`` more. Training runs single-threaded so that the result does not depend
on the thread count; the full run takes a few CPU minutes::

    python -m ebmlab.recipes.moons_score_matching          # -> ./moons_score_matching.pt
    python -m ebmlab.recipes.moons_score_matching --steps 10 --out /tmp/short.pt

The checkpoint (about 150 kB) holds ``config`` (:data:`CONFIG`, with the steps run),
``models`` (a state dict per method), ``losses`` (per method, per step) and
``train_seconds`` (per method). The one that ships with the package is the full run; read
it with :func:`load_checkpoint` (or ``ebmlab.recipes.load("moons_score_matching")``).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..data import two_moons
from ..energies import GaussianMixture, MLPEnergy
from ..utils import make_generator, single_threaded
from ._cli import run_recipe
from ._schedule import fit_two_phases, prefix_config
from ._store import Trained, cpu_state, frozen, read_checkpoint

__all__ = ["CONFIG", "METHODS", "load_checkpoint", "main", "make_data", "make_model",
           "moons_density", "train", "train_method"]

#: Everything that defines the three fits.
CONFIG: dict[str, Any] = {
    "seed": 0,
    "n_data": 5000,          # two-moons points
    "noise": 0.1,            # their Gaussian blur
    "hidden": (64, 64),      # MLPEnergy hidden widths (SiLU)
    "batch_size": 512,
    "steps": 3000,           # Adam steps at lr
    "lr": 3e-3,
    "fine_steps": 750,       # then Adam steps at fine_lr (same optimiser state)
    "fine_lr": 3e-4,
    "dsm_sigma": 0.1,        # noise level of denoising score matching
}

#: The methods, in the order they are trained: exact, sliced and denoising score matching.
METHODS: tuple[str, ...] = ("sm", "ssm", "dsm")


def make_data(config: dict[str, Any] = CONFIG) -> torch.Tensor:
    """The training set: ``config["n_data"]`` two-moons points, float32, shape ``(N, 2)``."""
    return two_moons(config["n_data"], noise=config["noise"],
                     generator=make_generator(config["seed"]))


def make_model(config: dict[str, Any] = CONFIG) -> MLPEnergy:
    """A fresh (untrained) energy network of the configured size."""
    return MLPEnergy(2, hidden=tuple(config["hidden"]))


def moons_density(noise: float, n_per_moon: int = 400) -> GaussianMixture:
    r"""The density of :func:`ebmlab.data.two_moons` with blur ``noise``, as a fine mixture.

    A two-moons point is :math:`(\cos t, \sin t)` or :math:`(1 - \cos t, \tfrac12 - \sin t)`
    with :math:`t \sim \mathcal U[0, \pi]`, plus :math:`\mathcal N(0, \text{noise}^2 I)`;
    the midpoint rule in :math:`t` turns the integral over the arcs into a mixture of
    ``2 * n_per_moon`` equal Gaussians (float64).

    Examples
    --------
    >>> density = moons_density(0.1)
    >>> density.means.shape
    torch.Size([800, 2])
    """
    t = (torch.arange(n_per_moon, dtype=torch.float64) + 0.5) * math.pi / n_per_moon
    outer = torch.stack([t.cos(), t.sin()], dim=1)
    inner = torch.stack([1.0 - t.cos(), 0.5 - t.sin()], dim=1)
    means = torch.cat([outer, inner])
    weights = torch.full((2 * n_per_moon,), 1.0 / (2 * n_per_moon), dtype=torch.float64)
    return GaussianMixture(means, noise, weights)


def train_method(method: str, config: dict[str, Any] = CONFIG, *,
                 device: str | torch.device = "cpu",
                 progress: bool = False) -> tuple[MLPEnergy, torch.Tensor]:
    """Fit one energy by ``method`` (one of :data:`METHODS`); deterministic on the CPU.

    Returns
    -------
    (MLPEnergy, torch.Tensor)
        The trained model (on ``device``) and the loss of every optimiser step (float64).

    Raises
    ------
    ValueError
        If ``method`` is not one of :data:`METHODS`.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    with single_threaded():
        torch.manual_seed(config["seed"])
        model = make_model(config).to(device)
        options = {"sigma": config["dsm_sigma"]} if method == "dsm" else {}
        losses = fit_two_phases(model, make_data(config).to(device), method, config,
                                generator=make_generator(config["seed"] + 1),
                                progress=progress, **options)
    return model, losses


def train(config: dict[str, Any] = CONFIG, *, steps: int | None = None,
          device: str | torch.device = "cpu", progress: bool = False) -> dict[str, Any]:
    """Fit the three energies of :data:`METHODS` one after the other.

    Parameters
    ----------
    config : dict
        The run's settings (:data:`CONFIG`).
    steps : int, optional
        Only the first ``steps`` optimiser steps of each fit (default: all of them).
    device : str or torch.device
        Where to train (the random numbers are drawn on the CPU either way).
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        The checkpoint: ``config`` (with the steps run), ``models``, ``losses`` and
        ``train_seconds``, each a dict keyed by method; tensors on the CPU.
    """
    config = prefix_config(config, steps)
    models, losses, seconds = {}, {}, {}
    for method in METHODS:
        start = time.perf_counter()
        model, losses[method] = train_method(method, config, device=device, progress=progress)
        seconds[method] = time.perf_counter() - start
        models[method] = cpu_state(model)
    return {"config": config, "models": models, "losses": losses, "train_seconds": seconds}


def load_checkpoint(path: str | os.PathLike[str] | None = None) -> Trained:
    """The three fits: the checkpoint that ships with the package, or one at ``path``.

    Returns
    -------
    Trained
        ``(models, checkpoint)``: a :class:`torch.nn.ModuleDict` mapping each method of
        :data:`METHODS` to its :class:`~ebmlab.energies.MLPEnergy` (eval mode, parameters frozen),
        and the checkpoint dictionary.

    Examples
    --------
    >>> from ebmlab.recipes import moons_score_matching
    >>> models, checkpoint = moons_score_matching.load_checkpoint()
    >>> list(models)
    ['sm', 'ssm', 'dsm']
    """
    checkpoint = read_checkpoint("moons_score_matching", path)
    models = nn.ModuleDict()
    for method in METHODS:
        models[method] = make_model(checkpoint["config"])
        models[method].load_state_dict(checkpoint["models"][method])
    return Trained(frozen(models), checkpoint)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line: train and write the checkpoint (``--help`` lists the options)."""
    return run_recipe("moons_score_matching", __doc__ or "", train, CONFIG, argv)


if __name__ == "__main__":
    main()
