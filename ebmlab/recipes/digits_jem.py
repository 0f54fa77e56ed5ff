r"""A joint energy model (JEM) on digits: one network that classifies, generates and detects.

Grathwohl et al. (2020) read the logits :math:`f_\theta(x) \in \mathbb R^K` of a classifier as an
energy-based model of the pairs :math:`(x, y)`:

.. math::

    E_\theta(x, y) = -f_\theta(x)[y], \qquad
    E_\theta(x) = -\log\sum_y e^{f_\theta(x)[y]},

so :math:`p_\theta(y \mid x)` is the classifier's softmax and :math:`p_\theta(x) \propto
e^{-E_\theta(x)}` is a generative model of the images. The network is a
:class:`~ebmlab.energies.ConvClassifierEnergy`; each step minimises

.. math::

    \mathcal L(\theta) = \underbrace{-\overline{\log p_\theta(y^+ \mid x^+)}}_{\text{cross-entropy}}
    + \overline{E_\theta(x^+)} - \overline{E_\theta(x^-)}
    + \alpha\Big(\overline{E_\theta(x^+)^2} + \overline{E_\theta(x^-)^2}\Big)

(a bar is a batch mean) on labelled data :math:`(x^+, y^+)` and negatives :math:`x^-` drawn as
in Du & Mordatch (2019): chains from a replay buffer (a fraction ``reinit_prob`` restarted from
uniform noise) continued by ``n_steps`` Langevin steps
:math:`x \leftarrow x - \epsilon \nabla_x E_\theta(x) + \sigma \xi`, clamped to the pixel range,
and written back. The second and third terms are the contrastive estimate of the gradient of
:math:`-\log p_\theta(x)`, the last one the energy-magnitude regulariser.

The data are scikit-learn's 8×8 digits (:func:`ebmlab.data.digits`, offline), split once by a
seeded permutation into a training set and a held-out test set of ``test_size`` digits; with
``--dataset mnist`` the 28×28 MNIST digits, downloaded through :mod:`torchvision` (which must be
installed), with their official split. Training runs single-threaded, so that the result
does not depend on the thread count; the full run takes a few CPU minutes::

    python -m ebmlab.recipes.digits_jem                       # the full run -> ./digits_jem.pt
    python -m ebmlab.recipes.digits_jem --steps 20 --out /tmp/short.pt
    python -m ebmlab.recipes.digits_jem --dataset mnist --device cuda --out mnist_jem.pt
    python -m ebmlab.recipes.digits_jem --ablation            # the stabiliser study

Under ``torchrun`` the same recipe trains data-parallel (:func:`train`: ``batch_size`` is the
global batch and ``buffer_size`` the global buffer, each process keeps its share)::

    torchrun --nproc_per_node=4 -m ebmlab.recipes.digits_jem --dataset mnist --device cuda

The checkpoint (about 400 kB) holds ``config`` (:data:`CONFIG`, with the steps run), the
network's ``state_dict``, ``buffer`` (the first ``n_saved`` replay-buffer states),
``history`` (per step: the cross-entropy and the mean energies of the data and of the
negatives) and ``metrics`` (:func:`evaluate` on the held-out digits). The one that ships with
the package is the full run; read it with :func:`load_checkpoint` (or
``ebmlab.recipes.load("digits_jem")``).

The stabiliser study of chapter 9 (:func:`ablate`: every variant of :data:`ABLATION` trained
for :data:`ABLATION_STEPS` steps and evaluated) ships beside it as
``digits_jem_ablation.pt``, written by ``--ablation`` with the defaults; read it with
:func:`load_ablation`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from ..data import digits, iterate_minibatches
from ..energies import ConvClassifierEnergy
from ..metrics import auroc, mmd
from ..samplers import ReplayBuffer, langevin
from ..training.distributed import DataParallel
from ..utils import make_generator, seed_torch, single_threaded
from ._cli import is_main_process, process_group, recipe_parser, save_and_report
from ._mnist import load_mnist
from ._store import (
    Trained,
    cpu_state,
    frozen,
    load_torch_file,
    read_checkpoint,
)

__all__ = [
    "ABLATION",
    "ABLATION_STEPS",
    "CONFIG",
    "MNIST_CONFIG",
    "DivergedError",
    "LabelledImages",
    "ablate",
    "evaluate",
    "jem_loss",
    "load_ablation",
    "load_checkpoint",
    "main",
    "make_data",
    "make_model",
    "mnist",
    "negatives",
    "shifted_digits",
    "train",
]

#: The file name of the stabiliser study that ships beside the checkpoint.
_ABLATION_NAME = "digits_jem_ablation.pt"

#: Everything that defines the shipped run.
CONFIG: dict[str, Any] = {
    "dataset": "digits",      # "digits" (8x8, offline) or "mnist" (28x28, torchvision)
    "image_size": 8,
    "test_size": 360,         # held-out digits, never trained on
    "split_seed": 0,          # the permutation that splits train and test
    "seed": 0,                # initial weights, minibatches, buffer and Langevin noise
    "features": 16,           # ConvClassifierEnergy channels: 16, 32, 64
    "spectral_norm": False,
    "steps": 3000,            # Adam steps
    "batch_size": 64,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "buffer_size": 2000,      # replay buffer of persistent chains
    "reinit_prob": 0.05,      # chance that a drawn chain restarts from uniform noise
    "step_size": 0.1,         # Langevin step epsilon
    "noise_scale": 0.01,      # Langevin noise sigma (decoupled from epsilon)
    "n_steps": 20,            # Langevin steps per update
    "grad_clip": None,        # clamp of each component of grad_x E in Langevin
    "alpha": 0.1,             # energy-magnitude regulariser
    "bounds": (0.0, 1.0),     # pixel range the chains are clamped to
    "n_saved": 64,            # buffer states kept in the checkpoint
    "eval_chains": 200,       # fresh chains from noise in evaluate() ...
    "eval_steps": 200,        # ... and their Langevin steps
}

#: The same recipe on 28x28 MNIST (official split), for a GPU; a starting point scaled up
#: from the digits run, not a tuned result.
MNIST_CONFIG: dict[str, Any] = {
    **CONFIG, "dataset": "mnist", "image_size": 28, "test_size": 10_000, "features": 32,
    "steps": 20_000, "batch_size": 128, "buffer_size": 10_000,
}

#: The stabiliser study: each variant changes the shipped configuration in one place, and
#: every variant (the unchanged one included) is trained for :data:`ABLATION_STEPS` steps.
ABLATION: dict[str, dict[str, Any]] = {
    "all stabilisers": {},
    "no regulariser": {"alpha": 0.0},
    "no restarts": {"reinit_prob": 0.0},
    "no replay buffer": {"reinit_prob": 1.0},
    "unbounded chains": {"bounds": None},
    "full Langevin noise": {"noise_scale": math.sqrt(2 * CONFIG["step_size"])},
    "step x10": {"step_size": 10 * CONFIG["step_size"]},
    "step x10, clipped": {"step_size": 10 * CONFIG["step_size"], "grad_clip": 0.1},
    "spectral norm": {"spectral_norm": True},
}
#: Adam steps of each variant of the stabiliser study (a third of the shipped run).
ABLATION_STEPS = 1000


class DivergedError(RuntimeError):
    """The JEM loss became non-finite (checked every 100 steps); training stopped."""


@dataclass(frozen=True)
class LabelledImages:
    """A labelled image data set split into training and test images.

    Attributes
    ----------
    x_train, x_test : torch.Tensor
        Images ``(N, C, H, W)``, floating point in ``[0, 1]``.
    y_train, y_test : torch.Tensor
        Integer labels ``(N,)`` in ``[0, K)``.
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor

    def __post_init__(self) -> None:
        for x, y, part in ((self.x_train, self.y_train, "train"),
                           (self.x_test, self.y_test, "test")):
            if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
                raise TypeError(f"x_{part} must be a floating tensor of images (N, C, H, W), "
                                f"got {_describe(x)}.")
            if not isinstance(y, Tensor) or y.dim() != 1 or y.dtype != torch.int64:
                raise TypeError(f"y_{part} must be an int64 tensor of labels (N,), got "
                                f"{_describe(y)}.")
            if x.shape[0] != y.shape[0]:
                raise ValueError(f"x_{part} holds {x.shape[0]} images but y_{part} "
                                 f"{y.shape[0]} labels.")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(f"train and test images differ in shape: "
                             f"{tuple(self.x_train.shape[1:])} vs {tuple(self.x_test.shape[1:])}.")

    @property
    def image_shape(self) -> tuple[int, ...]:
        """``(C, H, W)``."""
        return tuple(self.x_train.shape[1:])


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def _digits_split(test_size: int, split_seed: int) -> LabelledImages:
    x, y = digits(as_images=True, return_labels=True)
    if not 0 < test_size < len(x):
        raise ValueError(f"test_size must be in [1, {len(x) - 1}], got {test_size}.")
    order = torch.randperm(len(x), generator=make_generator(split_seed))
    test, train = order[:test_size], order[test_size:]
    return LabelledImages(x[train], y[train], x[test], y[test])


def mnist(root: str | Path = "data") -> LabelledImages:
    """MNIST (60,000 training and 10,000 test digits, 28×28, scaled to ``[0, 1]``).

    Downloaded into ``root`` through :mod:`torchvision` on first use (under ``torchrun``,
    by rank 0 first).

    Raises
    ------
    ModuleNotFoundError
        If torchvision is not installed (it is not a dependency of ebmlab).
    """
    offline = "train on the offline 8x8 digits with --dataset digits"
    return LabelledImages(*load_mnist(root, train=True, option="--dataset mnist",
                                      offline=offline),
                          *load_mnist(root, train=False, option="--dataset mnist",
                                      offline=offline))


def make_data(config: dict[str, Any] = CONFIG, *, root: str | Path = "data") -> LabelledImages:
    """The configured data set: ``"digits"`` (offline, seeded split) or ``"mnist"``."""
    if config["dataset"] == "digits":
        return _digits_split(config["test_size"], config["split_seed"])
    if config["dataset"] == "mnist":
        return mnist(root)
    raise ValueError(f"dataset must be 'digits' or 'mnist', got {config['dataset']!r}.")


def make_model(config: dict[str, Any] = CONFIG) -> ConvClassifierEnergy:
    """A fresh (untrained) network of the configured size, drawn from torch's global RNG."""
    return ConvClassifierEnergy(image_size=config["image_size"], n_classes=10,
                                features=config["features"],
                                spectral_norm=config["spectral_norm"])


def _uniform_images(shape: Sequence[int], device: torch.device) -> Callable[..., Tensor]:
    """``init(n, generator)`` of the replay buffer: uniform noise images on ``device``."""
    def draw(n: int, generator: torch.Generator | None = None) -> Tensor:
        where = device if generator is None else generator.device
        return torch.rand(n, *shape, generator=generator, device=where).to(device)

    return draw


def negatives(model: ConvClassifierEnergy, buffer: ReplayBuffer, n: int,
              config: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
    """Draw ``n`` chains from the buffer, continue them with Langevin, write them back.

    Returns the detached end points :math:`x^-`, shape ``(n, C, H, W)``.
    """
    x0, slots = buffer.sample(n, generator=generator)
    bounds = config["bounds"]
    x_neg = langevin(model, x0, step_size=config["step_size"], n_steps=config["n_steps"],
                     noise_scale=config["noise_scale"], grad_clip=config["grad_clip"],
                     bounds=None if bounds is None else tuple(bounds), generator=generator,
                     check_divergence=False).samples
    buffer.update(slots, x_neg)
    return x_neg.detach()


def jem_loss(model: ConvClassifierEnergy, x: Tensor, y: Tensor, x_neg: Tensor, *,
             alpha: float) -> tuple[Tensor, Tensor]:
    r"""The JEM loss: cross-entropy plus the regularised contrastive term of :math:`p_\theta(x)`.

    Parameters
    ----------
    model : ConvClassifierEnergy
        The network.
    x, y : torch.Tensor
        Labelled data :math:`(x^+, y^+)`.
    x_neg : torch.Tensor
        Negatives :math:`x^-` (detached samples of the model).
    alpha : float
        Weight of the energy-magnitude regulariser.

    Returns
    -------
    loss : torch.Tensor
        0-d loss to minimise.
    parts : torch.Tensor
        Detached ``(3,)``: the cross-entropy, :math:`\overline{E(x^+)}` and
        :math:`\overline{E(x^-)}`.
    """
    logits = model.logits(torch.cat([x, x_neg]))      # one pass over both batches
    energy = -torch.logsumexp(logits, dim=1)
    e_pos, e_neg = energy[: len(x)], energy[len(x):]
    cross_entropy = F.cross_entropy(logits[: len(x)], y)
    loss = (cross_entropy + e_pos.mean() - e_neg.mean()
            + alpha * (e_pos.square().mean() + e_neg.square().mean()))
    parts = torch.stack([cross_entropy, e_pos.mean(), e_neg.mean()]).detach()
    return loss, parts


def train(config: dict[str, Any] = CONFIG, *, steps: int | None = None,
          data: LabelledImages | None = None, device: str | torch.device = "cpu",
          with_metrics: bool = True, progress: bool = False) -> dict[str, Any]:
    """Train from scratch; deterministic on the CPU (single-threaded).

    Under a ``torch.distributed`` process group of :math:`W > 1` processes (``torchrun``)
    the training is data-parallel, as in :func:`~ebmlab.training.fit`: rank 0's initial
    weights and generator are broadcast; every process draws the same order of global
    batches of ``config["batch_size"]`` and takes its rows (:math:`n_r` of :math:`B`); it
    keeps its share of the ``config["buffer_size"]`` chains, continued with noise from its
    own generator, so each process makes :math:`n_r` negatives; the gradients are summed
    with weights :math:`n_r/B` (the gradient of the global batch's loss) before every Adam
    step, so every process holds the same network. The divergence check is collective, the
    history is the weighted sum of the processes' parts, ``buffer`` holds the first
    ``n_saved`` chains of the global buffer, and only rank 0 evaluates (the other processes
    return empty ``metrics``). Each process runs single-threaded.

    Parameters
    ----------
    config : dict
        The run's settings (:data:`CONFIG`, :data:`MNIST_CONFIG` or a variant).
    steps : int, optional
        Number of Adam steps (default ``config["steps"]``); a short run follows exactly
        the first ``steps`` steps of the full one.
    data : LabelledImages, optional
        The data set (default :func:`make_data` of ``config``); its images must have the
        configured size.
    device : str or torch.device
        Where to train (``"cpu"``, ``"cuda"``); the checkpoint is stored on the CPU.
    with_metrics : bool
        Evaluate the trained network (:func:`evaluate`, a few seconds); otherwise the
        checkpoint's ``metrics`` is empty.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        The checkpoint: ``config`` (with ``steps``), ``state_dict``, ``buffer`` (the first
        ``n_saved`` replay-buffer states), ``history`` (``(steps, 3)``: cross-entropy, mean
        energy of the data and of the negatives at every step) and ``metrics``
        (:func:`evaluate` on the test set).

    Raises
    ------
    ValueError
        If ``steps`` is not positive, the images do not have the configured size, or (in a
        process group) ``batch_size`` or ``buffer_size`` is smaller than the number of
        processes.
    DivergedError
        If the loss became non-finite (on any process).
    """
    steps = config["steps"] if steps is None else int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}.")
    config = {**config, "steps": steps}
    data = make_data(config) if data is None else data
    size = config["image_size"]
    if data.image_shape != (1, size, size):
        raise ValueError(f"the configuration expects images of shape (1, {size}, {size}), the "
                         f"data hold {data.image_shape}.")
    device = torch.device(device)
    parallel = DataParallel.current()
    if parallel is not None:
        _check_shares(config, parallel.world_size)
    with single_threaded():
        seed_torch(config["seed"])
        model = make_model(config).to(device)
        x_train, y_train = data.x_train.to(device), data.y_train.to(device)
        generator = make_generator(config["seed"] + 1)   # on the CPU, for every device
        chains = generator                               # one process: one random stream
        buffer_size = config["buffer_size"]
        if parallel is not None:
            generator = parallel.broadcast_start(model, generator)  # the batch order
            chains = parallel.rank_generator(generator)  # this process's chains and noise
            buffer_size = len(range(buffer_size)[parallel.rows(buffer_size)])
        buffer = ReplayBuffer(buffer_size, _uniform_images(data.image_shape, device),
                              reinit_prob=config["reinit_prob"], generator=chains)
        optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"],
                                     weight_decay=config["weight_decay"])
        history: list[Tensor] = []
        bar = tqdm(total=steps, desc="JEM", leave=False, disable=not progress)
        while len(history) < steps:
            for x, y in iterate_minibatches((x_train, y_train), config["batch_size"],
                                            generator=generator, drop_last=True):
                share = 1.0
                if parallel is not None:
                    (x, share), (y, _) = parallel.share(x), parallel.share(y)
                x_neg = negatives(model, buffer, len(x), config, chains)
                loss, parts = jem_loss(model, x, y, x_neg, alpha=config["alpha"])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if parallel is not None:
                    parallel.average_gradients(list(model.parameters()), share)
                optimizer.step()
                history.append(parts if parallel is None else share * parts)
                bar.update(1)
                if len(history) % 100 == 0 and not _all_finite(parts, parallel):
                    raise DivergedError(
                        f"the JEM loss became non-finite by step {len(history)}: lower the "
                        "Langevin step_size or the learning rate, or raise alpha.")
                if len(history) == steps:
                    break
        bar.close()
        frozen(model)
        saved = buffer.data[: config["n_saved"]].cpu()
        trace = torch.stack(history)
        if parallel is not None:
            trace = parallel.combine(trace.reshape(-1), trace.numel()).view_as(trace)
            shares = parallel.gather(saved)
            saved = torch.cat(shares)[: config["n_saved"]] if shares is not None else saved
        main_process = parallel is None or parallel.is_main
        metrics = evaluate(model, data, config) if with_metrics and main_process else {}
    return {
        "config": config,
        "state_dict": cpu_state(model),
        "buffer": saved.clone(),
        "history": trace.float().cpu(),
        "metrics": metrics,
    }


def _check_shares(config: dict[str, Any], world_size: int) -> None:
    """Every process gets at least one example of each batch and one chain of the buffer."""
    for key in ("batch_size", "buffer_size"):
        if config[key] < world_size:
            raise ValueError(
                f"{key}={config[key]} is smaller than the {world_size} processes training "
                f"together; {key} is global (each process keeps its share): pass at least "
                f"{key}={world_size}.")


def _all_finite(parts: Tensor, parallel: DataParallel | None) -> bool:
    """Whether the loss parts are finite on this process (on every process, in a group)."""
    bad = (~torch.isfinite(parts)).any().to(parts.dtype).reshape(1)
    if parallel is not None:
        bad = parallel.combine(bad, n_sums=0)
    return not bool(bad.item())


def shifted_digits(x: Tensor) -> dict[str, Tensor]:
    """Out-of-distribution versions of images ``x``: upside down, rotated by 90°, negative."""
    return {"upside down": x.flip(-2), "rotated": torch.rot90(x, 1, dims=(-2, -1)),
            "negative": 1.0 - x}


def evaluate(model: ConvClassifierEnergy, data: LabelledImages, config: dict[str, Any], *,
             seed: int = 1) -> dict[str, float]:
    r"""What the chapter reports about a trained network, on the held-out test images.

    * ``accuracy``: test accuracy of :math:`\arg\max_y f_\theta(x)[y]`;
    * ``auroc_noise``, ``auroc_upside_down``, ``auroc_rotated``, ``auroc_negative``: AUROC of
      the score :math:`-E_\theta(x)` between the test images and as many images of uniform
      noise, or the test images changed by :func:`shifted_digits`;
    * ``energy_gap``: mean energy of the noise images minus that of the test images;
    * ``energy_scale``: mean :math:`|E_\theta(x)|` of the test images;
    * ``fresh_mmd``: squared MMD between ``config["eval_chains"]`` chains run
      ``config["eval_steps"]`` Langevin steps from uniform noise and the test images (the
      quality of unconditional samples; ``inf`` if the chains left the finite numbers).

    Deterministic for a given ``seed`` (noise images and chains).
    """
    device = next(model.parameters()).device
    g = make_generator(seed)                  # on the CPU: the same numbers on every device
    x, y = data.x_test.to(device), data.y_test.to(device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model.logits(x)
        energy = -torch.logsumexp(logits, dim=1)
        noise = torch.rand(x.shape, generator=g).to(device)
        others = {"noise": noise, **shifted_digits(x)}
        other_energy = {name: model(z) for name, z in others.items()}
    bounds = config["bounds"]
    x0 = torch.rand((config["eval_chains"], *x.shape[1:]), generator=g).to(device)
    fresh = langevin(model, x0, step_size=config["step_size"], n_steps=config["eval_steps"],
                     noise_scale=config["noise_scale"], grad_clip=config["grad_clip"],
                     bounds=None if bounds is None else tuple(bounds), generator=g,
                     check_divergence=False).samples
    model.train(was_training)
    metrics = {"accuracy": float((logits.argmax(dim=1) == y).double().mean())}
    for name, e in other_energy.items():
        metrics["auroc_" + name.replace(" ", "_")] = float(auroc(-energy, -e))
    metrics["energy_gap"] = float(other_energy["noise"].mean() - energy.mean())
    metrics["energy_scale"] = float(energy.abs().mean())
    metrics["fresh_mmd"] = float(mmd(fresh, x)) if bool(torch.isfinite(fresh).all()) else math.inf
    return metrics


def ablate(steps: int | None = None, *, base: dict[str, Any] | None = None,
           variants: dict[str, dict[str, Any]] | None = None,
           progress: bool = False) -> dict[str, Any]:
    """Train every variant of the stabiliser study and evaluate it: chapter 9's ablation.

    Each variant is ``base`` with its changes applied (:data:`ABLATION`: one setting changed
    at a time, the first variant unchanged), trained from scratch by :func:`train` for
    ``steps`` Adam steps and scored by :func:`evaluate` on the held-out digits. The study
    that ships with the package (:func:`load_ablation`) is ``ablate()`` with every default,
    written by ``python -m ebmlab.recipes.digits_jem --ablation``; its first row is the first
    :data:`ABLATION_STEPS` steps of the shipped run.

    Parameters
    ----------
    steps : int, optional
        Adam steps of each variant (default :data:`ABLATION_STEPS`).
    base : dict, optional
        The configuration the variants change (default :data:`CONFIG`).
    variants : dict, optional
        Name -> changes to ``base`` (default :data:`ABLATION`).
    progress : bool
        Show a progress bar per variant.

    Returns
    -------
    dict
        ``steps``, ``base`` (the configuration), ``variants`` (the changes) and ``metrics``:
        for each variant the :func:`evaluate` dictionary, or ``{"diverged": 1.0}`` when its
        loss became non-finite.

    Raises
    ------
    ValueError
        If ``steps`` is not positive, or a variant changes a setting that ``base`` lacks.
    """
    base = CONFIG if base is None else base
    variants = ABLATION if variants is None else variants
    steps = ABLATION_STEPS if steps is None else int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}.")
    for name, change in variants.items():
        unknown = sorted(set(change) - set(base))
        if unknown:
            raise ValueError(f"variant {name!r} changes unknown settings {unknown}; expected "
                             f"keys of the configuration, such as {sorted(base)[:4]}.")
    metrics: dict[str, dict[str, float]] = {}
    for name, change in variants.items():
        try:
            metrics[name] = train({**base, **change}, steps=steps, progress=progress)["metrics"]
        except DivergedError:
            metrics[name] = {"diverged": 1.0}
    return {"steps": steps, "base": dict(base), "variants": dict(variants), "metrics": metrics}


def load_ablation(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The stabiliser study of chapter 9: the one that ships with the package, or ``path``.

    The shipped file, ``checkpoints/digits_jem_ablation.pt``, was written by
    ``python -m ebmlab.recipes.digits_jem --ablation`` (:func:`ablate` with its defaults:
    the nine variants of :data:`ABLATION`, :data:`ABLATION_STEPS` steps each, single-threaded
    on the CPU, about 50 CPU minutes).

    Returns
    -------
    dict
        As returned by :func:`ablate` (``steps``, ``base``, ``variants``, ``metrics``), with
        ``train_seconds``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a study written by :func:`ablate`.
    """
    if path is not None and not os.path.isfile(path):
        raise FileNotFoundError(f"no ablation file at {os.fspath(path)!r}.")
    where = "the shipped stabiliser study" if path is None else repr(os.fspath(path))
    shipped = resources.files(__package__).joinpath("checkpoints", _ABLATION_NAME)
    study = load_torch_file(shipped if path is None else path, where,
                            "the stabiliser study of digits_jem")
    if not isinstance(study, dict) or not {"steps", "variants", "metrics"} <= set(study):
        raise ValueError(f"{where} is not a stabiliser study of digits_jem (expected the dict "
                         "written by `python -m ebmlab.recipes.digits_jem --ablation`).")
    return study


def load_checkpoint(path: str | os.PathLike[str] | None = None) -> Trained:
    """The trained network: the checkpoint that ships with the package, or one at ``path``.

    Returns
    -------
    Trained
        ``(model, checkpoint)``: the :class:`~ebmlab.energies.ConvClassifierEnergy` (eval
        mode, parameters frozen) and the checkpoint dictionary; ``checkpoint["buffer"]``
        holds replay-buffer states ``(n_saved, 1, H, W)``, samples of the model.

    Examples
    --------
    >>> from ebmlab.recipes import digits_jem
    >>> model, checkpoint = digits_jem.load_checkpoint()
    >>> model.logits(checkpoint["buffer"][:2]).shape
    torch.Size([2, 10])
    """
    checkpoint = read_checkpoint("digits_jem", path)
    model = make_model(checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    return Trained(frozen(model), checkpoint)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line: train (or run the stabiliser study) and write the result.

    The options of every recipe (``--steps``, ``--seed``, ``--out``, ``--device``,
    ``--progress``), plus ``--dataset {digits,mnist}``, ``--data-root`` (where MNIST is
    downloaded) and ``--ablation``.
    """
    parser = recipe_parser("digits_jem", __doc__ or "", CONFIG, "steps")
    parser.add_argument("--dataset", choices=("digits", "mnist"), default="digits",
                        help="digits: 8x8, offline (default); mnist: 28x28, downloaded "
                             "through torchvision")
    parser.add_argument("--data-root", type=Path, default=Path("data"),
                        help="where MNIST is downloaded (default ./data)")
    parser.add_argument("--ablation", action="store_true",
                        help=f"train every variant of the stabiliser study instead "
                             f"({ABLATION_STEPS} steps each by default)")
    parser.set_defaults(out=None)
    args = parser.parse_args(argv)
    if args.ablation and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        parser.error("--ablation trains its variants one after another in one process; "
                     "run it with python -m, not torchrun")
    start = time.perf_counter()
    if args.ablation:
        if args.dataset != "digits" or args.seed is not None:
            parser.error("--ablation studies the shipped digits configuration only")
        result = ablate(args.steps, progress=args.progress)
        out = args.out or Path(_ABLATION_NAME)
        result["train_seconds"] = time.perf_counter() - start
        save_and_report("digits_jem", result, out, torch.device("cpu"))
        return result
    config = dict(MNIST_CONFIG if args.dataset == "mnist" else CONFIG)
    if args.seed is not None:
        config["seed"] = args.seed
    out = args.out or Path(f"{'digits' if args.dataset == 'digits' else 'mnist'}_jem.pt")
    with process_group(args.device) as device:
        data = make_data(config, root=args.data_root)
        result = train(config, steps=args.steps, data=data, device=device,
                       progress=args.progress and is_main_process())
        result["train_seconds"] = time.perf_counter() - start
        save_and_report("digits_jem", result, out, device)
    return result


if __name__ == "__main__":
    main()
