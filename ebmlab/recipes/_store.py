"""The shipped checkpoints of the recipes: where they live and how they are read.

Each recipe ``<name>`` ships its trained result as package data,
``ebmlab/recipes/checkpoints/<name>.pt``, read through :mod:`importlib.resources` so that
it is found wherever (and however) the package is installed: a wheel, an editable
checkout, a zip file.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

__all__ = ["RECIPES", "Trained", "load_torch_file", "read_checkpoint", "shipped_checkpoint",
           "write_checkpoint"]

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
    where = f"the shipped checkpoint of {name!r}" if path is None else repr(os.fspath(path))
    if path is not None and not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint file at {os.fspath(path)!r}.")
    checkpoint = load_torch_file(shipped_checkpoint(name) if path is None else path, where,
                                 f"a checkpoint of recipe {name!r}")
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("config"), dict):
        raise ValueError(f"{where} is not a checkpoint of recipe {name!r} (expected a dict "
                         "with a 'config').")
    return checkpoint


def load_torch_file(file: Traversable | str | os.PathLike[str], where: str,
                    expected: str) -> Any:
    """Read ``file`` with :func:`torch.load` (plain data only, tensors on the CPU).

    Parameters
    ----------
    file : Traversable, str or os.PathLike
        A file of the installed package (see :func:`shipped_checkpoint`) or a path.
    where, expected : str
        How the error message names the file and what it should hold.

    Raises
    ------
    ValueError
        If the file cannot be read as a :func:`torch.save` file of plain data.
    """
    try:
        if isinstance(file, (str, os.PathLike)):
            return torch.load(file, map_location="cpu", weights_only=True)
        with file.open("rb") as f:
            return torch.load(f, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile,
            ValueError, IndexError, KeyError) as err:
        raise ValueError(f"{where} cannot be read as {expected} (a file written by "
                         f"torch.save): {err}") from None


def write_checkpoint(checkpoint: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a recipe's ``checkpoint`` to ``path`` with :func:`torch.save`, atomically.

    The file is written next to ``path`` and renamed over it once complete, so an
    interrupted run never leaves half a checkpoint. It is a plain :func:`torch.save` file,
    readable with ``torch.load(path, weights_only=True)`` as well as :func:`read_checkpoint`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``model``'s state dict on the CPU, as recipes store it."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def frozen(model: nn.Module) -> nn.Module:
    """``model`` in eval mode with its parameters frozen, as loaders return it."""
    return model.eval().requires_grad_(False)
