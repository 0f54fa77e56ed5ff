"""Training recipes: how the book's trained models were made, and the models themselves.

Each recipe is a module that trains one model (or a few) from scratch, deterministically
on the CPU, and writes a checkpoint; the checkpoint of its full run ships with the package,
so a chapter (or you) can load the trained model without training it:

================================  ===========================================================
``digits_rbm``                    an RBM trained by CD-1 on binarized 8x8 digits (chapter 4)
``moons_score_matching``          exact, sliced and denoising score matching on two moons (ch. 5)
``eight_gaussians_ncsn``          a noise-conditional score network on eight Gaussians (ch. 6)
``digits_ebm``                    a deep EBM of 8x8 digits with a replay buffer (chapter 7)
``digits_jem``                    a joint energy model: classifier and EBM of digits (ch. 9)
================================  ===========================================================

Load a shipped model with :func:`load` (or the module's ``load_checkpoint``); retrain it
from the command line::

    python -m ebmlab.recipes.digits_rbm --help
    python -m ebmlab.recipes.digits_rbm --epochs 20 --seed 1 --out my_rbm.pt --device cuda

Every recipe module has the same parts: ``CONFIG`` (the settings of the shipped run),
``make_data``/``make_model``, ``train(config, *, steps or epochs, device, progress)``
returning the checkpoint dictionary, ``load_checkpoint(path=None)`` and ``main(argv)``
(options ``--steps``/``--epochs``, ``--seed``, ``--out``, ``--device``, ``--progress``).
A short run follows the start of the full run exactly; the test suite checks that each
recipe reproduces its shipped checkpoint.
"""

from __future__ import annotations

import importlib
import os

from ._store import RECIPES, Trained, check_recipe_name, read_checkpoint, shipped_checkpoint

__all__ = ["RECIPES", "Trained", "load", "read_checkpoint", "shipped_checkpoint"]


def load(name: str, path: str | os.PathLike[str] | None = None) -> Trained:
    """Load the trained model of recipe ``name``.

    Parameters
    ----------
    name : str
        One of :data:`RECIPES`: ``"digits_rbm"``, ``"digits_ebm"``,
        ``"moons_score_matching"``, ``"eight_gaussians_ncsn"`` or ``"digits_jem"``.
    path : str or os.PathLike, optional
        A checkpoint written by ``python -m ebmlab.recipes.<name> --out PATH``; by default
        the one that ships with the package.

    Returns
    -------
    Trained
        ``(model, checkpoint)``: the trained model (on the CPU, eval mode, parameters
        frozen; for ``"moons_score_matching"`` a :class:`torch.nn.ModuleDict` of the three
        fits) and the checkpoint dictionary (``checkpoint["config"]`` holds the settings).

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If ``name`` is not a recipe.

    Examples
    --------
    >>> import ebmlab.recipes
    >>> rbm, checkpoint = ebmlab.recipes.load("digits_rbm")
    >>> rbm.n_hidden == checkpoint["config"]["n_hidden"]
    True
    """
    module = importlib.import_module(f"{__name__}.{check_recipe_name(name)}")
    return module.load_checkpoint(path)
