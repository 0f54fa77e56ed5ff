r"""Train the restricted Boltzmann machine on binarized digits of chapter 4 and save it.

An :class:`~ebmlab.RBM` with 64 visible units (the pixels of scikit-learn's 8x8 digits,
binarized at half the grey range by :func:`ebmlab.data.binarized_digits`) and
``n_hidden`` hidden units is trained with CD-:math:`k` (Hinton 2002) by plain SGD on
minibatches, in float64. The visible biases start at the data's log-odds
:math:`a_i = \log(m_i / (1 - m_i))` (:math:`m_i` the mean of pixel :math:`i`, clipped to
:math:`[\epsilon, 1-\epsilon]`) and the weights at :math:`\mathcal N(0, 0.01^2)`, the
initialisation Hinton (2012) recommends. Run from anywhere::

    python book/scripts/train_digits_rbm.py            # the full run (about 20 CPU seconds)
    python book/scripts/train_digits_rbm.py --epochs 5 --out /tmp/short.pt

It writes :data:`CHECKPOINT` (``book/checkpoints/digits_rbm.pt``, about 40 kB): the
configuration and the RBM's ``state_dict``. Chapter 4 loads it with :func:`load`
(or ``torch.load``) and estimates the model's log-likelihood with AIS;
``tests/test_checkpoints.py`` checks that :func:`train` reproduces it. Training runs
single-threaded in float64 so that the result does not depend on the thread count.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

import ebmlab as el
from ebmlab.training import ContrastiveDivergence, fit

#: Where the trained RBM is stored.
CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "digits_rbm.pt"

#: Everything that defines the run.
CONFIG: dict[str, Any] = {
    "seed": 0,
    "n_hidden": 64,          # hidden units (64 visible units: the 8x8 pixels)
    "k": 1,                  # Gibbs sweeps per update: CD-1
    "epochs": 200,           # passes over the 1797 digits
    "batch_size": 100,       # 18 SGD steps per epoch
    "lr": 0.2,               # plain SGD
    "weight_std": 0.01,      # initial weights N(0, 0.01^2)
    "clip": 1e-3,            # pixel means clipped to [clip, 1 - clip] for the log-odds
}


def make_data() -> torch.Tensor:
    """The training set: the 1797 binarized digits, float64, shape ``(1797, 64)``."""
    return el.binarized_digits(dtype=torch.float64)


def data_log_odds(data: torch.Tensor, clip: float = CONFIG["clip"]) -> torch.Tensor:
    r"""Clipped log-odds :math:`\log(m_i/(1-m_i))` of the pixel means (independent pixels)."""
    m = data.mean(dim=0).clamp(clip, 1.0 - clip)
    return torch.log(m) - torch.log1p(-m)


def make_model(config: dict[str, Any] = CONFIG) -> el.RBM:
    """A fresh float64 RBM of the configured size with the configured initial weights."""
    generator = el.make_generator(config["seed"])
    return el.RBM(64, config["n_hidden"], weight_std=config["weight_std"],
                  generator=generator).double()


def train(epochs: int | None = None, config: dict[str, Any] = CONFIG, *,
          progress: bool = False) -> dict[str, Any]:
    """Train from scratch; deterministic on the CPU (single-threaded, float64).

    Parameters
    ----------
    epochs : int, optional
        Number of epochs (default ``config["epochs"]``); a short run follows exactly the
        first ``epochs`` epochs of the full one.
    config : dict
        The run's settings (:data:`CONFIG`).
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        The checkpoint: ``config`` (with ``epochs``) and ``state_dict``.
    """
    epochs = config["epochs"] if epochs is None else int(epochs)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = make_data()
        model = make_model(config)
        with torch.no_grad():
            model.visible_bias.copy_(data_log_odds(data, config["clip"]))
        fit(model, data, ContrastiveDivergence(k=config["k"]), epochs=epochs,
            batch_size=config["batch_size"], lr=config["lr"], optimizer="sgd",
            generator=el.make_generator(config["seed"] + 1), progress=progress)
    finally:
        torch.set_num_threads(threads)
    return {
        "config": {**config, "epochs": epochs},
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }


def load(path: str | Path = CHECKPOINT) -> tuple[el.RBM, dict[str, Any]]:
    """Load a checkpoint written by this script.

    Returns
    -------
    (RBM, dict)
        The trained float64 RBM (parameters frozen) and the whole checkpoint dictionary.
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model = make_model(checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    model.requires_grad_(False)
    return model, checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"epochs (default {CONFIG['epochs']}, the full run)")
    parser.add_argument("--out", type=Path, default=CHECKPOINT)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    checkpoint = train(args.epochs, progress=args.progress)
    seconds = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, args.out)
    print(f"trained {checkpoint['config']['epochs']} epochs in {seconds:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
