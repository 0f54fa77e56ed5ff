r"""Train the three score-matching fits of chapter 5 (section 5.5) and save them.

An :class:`~ebmlab.MLPEnergy` is fitted to two moons by score matching (``"sm"``,
Hyvärinen 2005), sliced score matching with one projection (``"ssm"``, Song et al.
2019) and denoising score matching (``"dsm"``, Vincent 2011) with the same data,
network, optimiser and number of steps. Run from anywhere::

    python book/scripts/train_ch05_toy.py

It writes :data:`CHECKPOINT` (``book/checkpoints/ch05_toy.pt``, about 150 kB): the
configuration, the three state dicts and their loss histories. Chapter 5 imports :data:`CONFIG`,
:func:`make_data`, :func:`make_model` and :func:`moons_density` from here and loads the
checkpoint; ``tests/test_checkpoints.py`` checks that the script reproduces it (a short
run, ``--steps N``, is bit-identical to :func:`train` and to the start of the stored loss
histories).
Training runs single-threaded so that the result does not depend on the thread count.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import torch

import ebmlab as el
from ebmlab.training import fit

#: Where the trained networks are stored.
CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "ch05_toy.pt"

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

METHODS = ("sm", "ssm", "dsm")


def make_data(config: dict[str, Any] = CONFIG) -> torch.Tensor:
    """The training set: ``config["n_data"]`` two-moons points, float32, shape ``(N, 2)``."""
    return el.two_moons(config["n_data"], noise=config["noise"],
                        generator=el.make_generator(config["seed"]))


def make_model(config: dict[str, Any] = CONFIG) -> el.MLPEnergy:
    """A fresh (untrained) energy network of the configured size."""
    return el.MLPEnergy(2, hidden=tuple(config["hidden"]))


def moons_density(noise: float, n_per_moon: int = 400) -> el.GaussianMixture:
    r"""The density of :func:`ebmlab.data.two_moons` with blur ``noise``, as a fine mixture.

    A two-moons point is :math:`(\cos t, \sin t)` or :math:`(1 - \cos t, \tfrac12 - \sin t)`
    with :math:`t \sim \mathcal U[0, \pi]`, plus :math:`\mathcal N(0, \text{noise}^2 I)`;
    the midpoint rule in :math:`t` turns the integral over the arcs into a mixture of
    ``2 * n_per_moon`` equal Gaussians (float64).
    """
    t = (torch.arange(n_per_moon, dtype=torch.float64) + 0.5) * math.pi / n_per_moon
    outer = torch.stack([t.cos(), t.sin()], dim=1)
    inner = torch.stack([1.0 - t.cos(), 0.5 - t.sin()], dim=1)
    means = torch.cat([outer, inner])
    weights = torch.full((2 * n_per_moon,), 1.0 / (2 * n_per_moon), dtype=torch.float64)
    return el.GaussianMixture(means, noise, weights)


def train(method: str, config: dict[str, Any] = CONFIG, *,
          steps: int | None = None) -> tuple[el.MLPEnergy, torch.Tensor]:
    """Fit one energy with ``method`` in ``("sm", "ssm", "dsm")``; deterministic on the CPU.

    Returns the model and the loss of every optimiser step (float64). With ``steps``, only
    the first ``steps`` steps of the run are made (a prefix of the full run, for tests).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(config["seed"])
        model = make_model(config)
        data = make_data(config)
        generator = el.make_generator(config["seed"] + 1)
        options = {"sigma": config["dsm_sigma"]} if method == "dsm" else {}
        opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
        common = {"batch_size": config["batch_size"], "optimizer": opt, "generator": generator,
                  "progress": False, **options}
        first = config["steps"] if steps is None else min(steps, config["steps"])
        losses = fit(model, data, method, steps=first, **common).loss
        rest = config["fine_steps"] if steps is None else steps - first
        if rest > 0:
            for group in opt.param_groups:
                group["lr"] = config["fine_lr"]
            losses = losses + fit(model, data, method, steps=rest, **common).loss
    finally:
        torch.set_num_threads(threads)
    return model, torch.tensor(losses, dtype=torch.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CHECKPOINT)
    parser.add_argument("--steps", type=int, default=None,
                        help="only the first STEPS steps of each run (for tests)")
    args = parser.parse_args()
    models, losses, seconds = {}, {}, {}
    for method in METHODS:
        t0 = time.perf_counter()
        model, losses[method] = train(method, steps=args.steps)
        seconds[method] = time.perf_counter() - t0
        models[method] = model.state_dict()
        print(f"{method}: trained in {seconds[method]:.0f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": CONFIG, "models": models, "losses": losses,
                "train_seconds": seconds}, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
