r"""Recipe: a restricted Boltzmann machine trained by CD-1 on binarized 8x8 digits (chapter 4).

An :class:`~ebmlab.energies.RBM` with 64 visible units (the pixels of scikit-learn's 8x8 digits,
binarized at half the grey range by :func:`ebmlab.data.binarized_digits`) and
``n_hidden`` hidden units is trained with CD-:math:`k` (Hinton 2002) by plain SGD on
minibatches, in float64. The visible biases start at the data's log-odds
:math:`a_i = \log(m_i / (1 - m_i))` (:math:`m_i` the mean of pixel :math:`i`, clipped to
:math:`[\epsilon, 1-\epsilon]`) and the weights at :math:`\mathcal N(0, 0.01^2)`, the
initialisation Hinton (2012) recommends. Training runs single-threaded so that the result
does not depend on the thread count; the full run takes about 20 CPU seconds::

    python -m ebmlab.recipes.digits_rbm                      # the full run -> ./digits_rbm.pt
    python -m ebmlab.recipes.digits_rbm --epochs 5 --out /tmp/short.pt

The checkpoint (about 40 kB) holds ``config`` (:data:`CONFIG`, with the epochs run) and
``state_dict``. The one that ships with the package is the full run; read it with
:func:`load_checkpoint` (or ``ebmlab.recipes.load("digits_rbm")``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, cast

import torch

from ..data import binarized_digits
from ..energies import RBM
from ..training import ContrastiveDivergence, fit
from ..utils import make_generator, single_threaded
from ._cli import run_recipe
from ._store import Trained, cpu_state, frozen, read_checkpoint

__all__ = ["CONFIG", "data_log_odds", "load_checkpoint", "main", "make_data", "make_model",
           "train"]

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
    return cast(torch.Tensor, binarized_digits(dtype=torch.float64))  # no labels asked


def data_log_odds(data: torch.Tensor, clip: float = CONFIG["clip"]) -> torch.Tensor:
    r"""Clipped log-odds :math:`\log(m_i/(1-m_i))` of the pixel means.

    They are the visible biases of the independent-pixel model, the RBM's starting point
    and the base distribution of its AIS estimates.
    """
    m = data.mean(dim=0).clamp(clip, 1.0 - clip)
    return torch.log(m) - torch.log1p(-m)


def make_model(config: dict[str, Any] = CONFIG) -> RBM:
    """A fresh float64 RBM of the configured size with the configured initial weights."""
    return RBM(64, config["n_hidden"], weight_std=config["weight_std"],
               generator=make_generator(config["seed"])).double()


def train(config: dict[str, Any] = CONFIG, *, epochs: int | None = None,
          device: str | torch.device = "cpu", progress: bool = False) -> dict[str, Any]:
    """Train from scratch; deterministic on the CPU (single-threaded, float64).

    Parameters
    ----------
    config : dict
        The run's settings (:data:`CONFIG`).
    epochs : int, optional
        Number of epochs (default ``config["epochs"]``); a short run follows exactly the
        first ``epochs`` epochs of the full one.
    device : str or torch.device
        Where to train (the random numbers are drawn on the CPU either way).
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        The checkpoint: ``config`` (with ``epochs``) and ``state_dict`` (on the CPU).
    """
    epochs = config["epochs"] if epochs is None else int(epochs)
    with single_threaded():
        data = make_data().to(device)
        model = make_model(config).to(device)
        with torch.no_grad():
            model.visible_bias.copy_(data_log_odds(data, config["clip"]))
        fit(model, data, ContrastiveDivergence(k=config["k"]), epochs=epochs,
            batch_size=config["batch_size"], lr=config["lr"], optimizer="sgd",
            generator=make_generator(config["seed"] + 1), progress=progress)
    return {
        "config": {**config, "epochs": epochs},
        "state_dict": cpu_state(model),
    }


def load_checkpoint(path: str | os.PathLike[str] | None = None) -> Trained:
    """The trained RBM: the checkpoint that ships with the package, or one at ``path``.

    Returns
    -------
    Trained
        ``(model, checkpoint)``: the float64 :class:`~ebmlab.energies.RBM` (parameters frozen) and
        the checkpoint dictionary.

    Examples
    --------
    >>> from ebmlab.recipes import digits_rbm
    >>> rbm, checkpoint = digits_rbm.load_checkpoint()
    >>> rbm.n_visible, rbm.n_hidden, checkpoint["config"]["k"]
    (64, 64, 1)
    """
    checkpoint = read_checkpoint("digits_rbm", path)
    model = make_model(checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    return Trained(frozen(model), checkpoint)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line: train and write the checkpoint (``--help`` lists the options)."""
    return run_recipe("digits_rbm", __doc__ or "", train, CONFIG, argv, length="epochs")


if __name__ == "__main__":
    main()
