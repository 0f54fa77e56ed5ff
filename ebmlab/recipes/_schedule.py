"""How the recipes run: single-threaded, and in two phases of Adam with their prefixes.

Every recipe trains on one thread (:func:`ebmlab.utils.single_threaded`), so that its
result does not depend on the machine's thread count. The score-matching recipes train
with Adam at a learning rate ``lr`` for ``steps`` steps, then lower it to ``fine_lr`` for
``fine_steps`` more steps with the same optimiser state (:func:`fit_two_phases`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..training import fit

__all__ = ["fit_two_phases", "prefix_config"]


def prefix_config(config: dict[str, Any], steps: int | None) -> dict[str, Any]:
    """The settings of the first ``steps`` optimiser steps of the run ``config``.

    ``None`` keeps the whole run. Otherwise ``steps`` and ``fine_steps`` are cut so that
    they add up to ``steps`` (at most the full run's length): training with the returned
    settings makes exactly the first ``steps`` steps of the full run.
    """
    if steps is None:
        return dict(config)
    first = min(int(steps), config["steps"])
    rest = min(int(steps) - first, config["fine_steps"])
    return {**config, "steps": first, "fine_steps": rest}


def fit_two_phases(model: nn.Module, data: torch.Tensor, method: str,
                   config: dict[str, Any], **options: Any) -> torch.Tensor:
    """Train ``model`` by ``method`` with :func:`~ebmlab.training.fit`, in the phases of ``config``.

    Parameters
    ----------
    model, data, method
        As for :func:`ebmlab.training.fit`.
    config : dict
        With ``steps``, ``lr``, ``fine_steps``, ``fine_lr`` and ``batch_size``.
    **options
        Passed on to :func:`ebmlab.training.fit` (``generator``, ``progress``, method options).

    Returns
    -------
    torch.Tensor
        The loss of every optimiser step, float64, length ``steps + fine_steps``.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    common = {"batch_size": config["batch_size"], "optimizer": optimizer, **options}
    losses = fit(model, data, method, steps=config["steps"], **common).loss
    if config["fine_steps"] > 0:
        for group in optimizer.param_groups:
            group["lr"] = config["fine_lr"]
        losses = losses + fit(model, data, method, steps=config["fine_steps"], **common).loss
    return torch.tensor(losses, dtype=torch.float64)
