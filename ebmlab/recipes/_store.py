"""The shipped checkpoints of the recipes: where they live and how they are read.

Each recipe ``<name>`` ships its trained result as package data,
``ebmlab/recipes/checkpoints/<name>.pt``, read through :mod:`importlib.resources` so that
it is found wherever (and however) the package is installed: a wheel, an editable
checkout, a zip file.
"""

from __future__ import annotations

import os
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, NamedTuple

import torch
from torch import nn

__all__ = ["RECIPES", "Trained", "read_checkpoint", "shipped_checkpoint"]

#: The recipes of :mod:`ebmlab.recipes`, by module name; each ships ``<name>.pt``.
RECIPES: tuple[str, ...] = ("digits_rbm", "digits_ebm", "moons_score_matching",
                            "eight_gaussians_ncsn", "digits_jem")


class Trained(NamedTuple):
    """A trained model and the checkpoint it was loaded from.

    Unpacks as ``model, checkpoint = ebmlab.recipes.load(name)``.

    Attributes
    ----------
    model : torch.nn.Module
        The trained network, on the CPU, in eval mode, its parameters frozen
        (``requires_grad=False``): gradients with respect to inputs, as samplers and
        score-based losses take them, still work.
    checkpoint : dict
        Everything the recipe saved: at least ``"config"`` (the settings of the run) and
        the state dict(s); see the recipe's module for the rest.
    """

    model: nn.Module
    checkpoint: dict[str, Any]


def check_recipe_name(name: object) -> str:
    """Return ``name`` if it names a recipe; raise a TypeError/ValueError otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"recipe name must be a str, got {type(name).__name__} ({name!r}).")
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; expected one of {', '.join(RECIPES)}.")
    return name


def shipped_checkpoint(name: str) -> Traversable:
    """The checkpoint file that ships with the package for recipe ``name``.

    Parameters
    ----------
    name : str
        A recipe, one of :data:`RECIPES`.

    Returns
    -------
    importlib.resources.abc.Traversable
        The file inside the installed package (open it with ``.open("rb")``; it has a file
        system path only when the package is installed as plain files).

    Raises
    ------
    ValueError
        If ``name`` is not a recipe.
    FileNotFoundError
        If the installed package lacks the file (a broken installation).

    Examples
    --------
    >>> from ebmlab.recipes import shipped_checkpoint
    >>> shipped_checkpoint("digits_rbm").name
    'digits_rbm.pt'
    """
    name = check_recipe_name(name)
    file = resources.files(__package__).joinpath("checkpoints", f"{name}.pt")
    if not file.is_file():
        raise FileNotFoundError(f"the checkpoint of recipe {name!r} is missing from the "
                                f"installed package (looked for {file}); reinstall ebmlab.")
    return file


def read_checkpoint(name: str, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Read a recipe's checkpoint: the shipped one, or a file written by the recipe.

    Parameters
    ----------
    name : str
        A recipe, one of :data:`RECIPES`.
    path : str or os.PathLike, optional
        A checkpoint written by ``python -m ebmlab.recipes.<name> --out PATH``; by default
        the one that ships with the package.

    Returns
    -------
    dict
        The checkpoint, tensors on the CPU (read with ``weights_only=True``: plain data
        only, no code).

    Raises
    ------
    ValueError
        If ``name`` is not a recipe, or the file holds no ``"config"`` of a run.
    FileNotFoundError
        If ``path`` does not exist.
    """
    name = check_recipe_name(name)
    if path is None:
        with shipped_checkpoint(name).open("rb") as f:
            checkpoint = torch.load(f, map_location="cpu", weights_only=True)
    else:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no checkpoint file at {os.fspath(path)!r}.")
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("config"), dict):
        raise ValueError(f"{os.fspath(path) if path is not None else name!r} is not a "
                         f"checkpoint of recipe {name!r} (expected a dict with a 'config').")
    return checkpoint


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``model``'s state dict on the CPU, as recipes store it."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def frozen(model: nn.Module) -> nn.Module:
    """``model`` in eval mode with its parameters frozen, as loaders return it."""
    return model.eval().requires_grad_(False)
