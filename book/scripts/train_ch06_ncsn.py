r"""Train the noise-conditional score network of chapter 6 (section 6.3) and save it.

A :class:`~ebmlab.NoiseConditionalScoreNet` is trained by multi-noise denoising score
matching (NCSN, Song & Ermon 2019; ``fit(..., "ncsn")``) on samples of eight Gaussians on
a circle (:func:`ebmlab.data.eight_gaussians`), over a geometric ladder of noise levels.
Run from anywhere::

    python book/scripts/train_ch06_ncsn.py

It writes :data:`CHECKPOINT` (``book/checkpoints/ch06_ncsn.pt``, about 150 kB): the
configuration, the network's state dict and its loss history. Chapter 6 imports :data:`CONFIG`,
:func:`make_data`, :func:`make_model`, :func:`sigmas` and :func:`target_mixture` from here
and loads the checkpoint; ``tests/test_checkpoints.py`` checks that the script reproduces
it (a short run, ``--steps N``, is bit-identical to :func:`train` and to the start of the
stored loss history). Training runs single-threaded so that the result does not depend on the
thread count.
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

#: Where the trained network is stored.
CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "ch06_ncsn.pt"

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
    r"""The noise ladder :math:`\sigma_1 > \dots > \sigma_L`, geometric, largest first."""
    return torch.logspace(math.log10(config["sigma_max"]), math.log10(config["sigma_min"]),
                          config["n_levels"], dtype=torch.float64).tolist()


def make_data(config: dict[str, Any] = CONFIG) -> torch.Tensor:
    """The training set, float32, shape ``(N, 2)``."""
    return el.eight_gaussians(config["n_data"], radius=config["radius"], std=config["std"],
                              generator=el.make_generator(config["seed"]))


def target_mixture(config: dict[str, Any] = CONFIG) -> el.GaussianMixture:
    """The exact density of the data (float64): its ``smoothed(sigma)`` gives exact scores."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    means = config["radius"] * torch.stack([angles.cos(), angles.sin()], dim=1)
    return el.GaussianMixture(means, config["std"], torch.full((8,), 1 / 8, dtype=torch.float64))


def make_model(config: dict[str, Any] = CONFIG) -> el.NoiseConditionalScoreNet:
    """A fresh (untrained) score network of the configured size."""
    return el.NoiseConditionalScoreNet(2, hidden=tuple(config["hidden"]))


def train(config: dict[str, Any] = CONFIG, *,
          steps: int | None = None) -> tuple[el.NoiseConditionalScoreNet, torch.Tensor]:
    """Train the score network; deterministic on the CPU.

    Returns the network and the loss of every optimiser step (float64). With ``steps``,
    only the first ``steps`` steps of the run are made (a prefix of the full run, for tests).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(config["seed"])
        net = make_model(config)
        data = make_data(config)
        generator = el.make_generator(config["seed"] + 1)
        opt = torch.optim.Adam(net.parameters(), lr=config["lr"])
        common = {"sigmas": sigmas(config), "batch_size": config["batch_size"], "optimizer": opt,
                  "generator": generator, "progress": False}
        first = config["steps"] if steps is None else min(steps, config["steps"])
        losses = fit(net, data, "ncsn", steps=first, **common).loss
        rest = config["fine_steps"] if steps is None else steps - first
        if rest > 0:
            for group in opt.param_groups:
                group["lr"] = config["fine_lr"]
            losses = losses + fit(net, data, "ncsn", steps=rest, **common).loss
    finally:
        torch.set_num_threads(threads)
    return net, torch.tensor(losses, dtype=torch.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CHECKPOINT)
    parser.add_argument("--steps", type=int, default=None,
                        help="only the first STEPS steps of the run (for tests)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    net, losses = train(steps=args.steps)
    seconds = time.perf_counter() - t0
    print(f"trained in {seconds:.0f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": CONFIG, "model": net.state_dict(), "losses": losses,
                "train_seconds": seconds}, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
