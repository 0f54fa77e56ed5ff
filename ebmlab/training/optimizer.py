r"""The optimiser of :func:`ebmlab.training.fit`, built from its ``optimizer`` argument.

By name, ``"adam"`` and ``"adamw"`` are those of :mod:`torch.optim`, and ``"sgd"`` is
:class:`PlainSGD`, the textbook update :math:`\theta \leftarrow \theta - \eta\,g` written
out; pass a :class:`torch.optim.Optimizer` (or a callable building one) for anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import torch
from torch import nn

from .._validation import check_number

__all__ = ["DEFAULT_LR", "OptimizerLike", "PlainSGD", "make_optimizer"]


class OptimizerLike(Protocol):
    """What :func:`~ebmlab.training.fit` asks of an optimiser (a :class:`torch.optim.Optimizer`
    or :class:`PlainSGD`)."""

    param_groups: list[dict[str, Any]]

    def step(self) -> Any:
        """Update the parameters from their ``.grad``."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """The optimiser's state, for checkpoints."""
        ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        ...


class PlainSGD:
    r"""Plain stochastic gradient descent: :math:`\theta \leftarrow \theta - \eta\, g` per step.

    The optimiser of ``fit(..., optimizer="sgd")``: the arithmetic of
    :class:`torch.optim.SGD` without momentum or weight decay (``param.add_(grad,
    alpha=-lr)``, the same numbers), without its per-step bookkeeping (step hooks,
    profiler ranges, the choice of a kernel), which costs as much as the whole update of
    a small model such as an RBM on 8x8 digits (``benchmarks/bench_rbm.py``). For
    momentum, weight decay, hooks or learning-rate schedulers pass a
    :class:`torch.optim.SGD` instead.

    Parameters
    ----------
    params : iterable of torch.Tensor
        The parameters to update.
    lr : float
        The learning rate :math:`\eta > 0`.

    Attributes
    ----------
    param_groups : list of dict
        One group, ``{"params": [...], "lr": lr}``, as in :mod:`torch.optim`.

    Examples
    --------
    >>> w = torch.nn.Parameter(torch.ones(2))
    >>> opt = PlainSGD([w], lr=0.1)
    >>> w.grad = torch.tensor([1.0, -1.0])
    >>> opt.step()
    >>> w.data
    tensor([0.9000, 1.1000])
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float):
        self.param_groups: list[dict[str, Any]] = [
            {"params": list(params), "lr": check_number(lr, "lr", greater_than=0)}]

    def step(self) -> None:
        r"""Move every parameter with a gradient by :math:`-\eta\, g`."""
        with torch.no_grad():
            for group in self.param_groups:
                for param in group["params"]:
                    if param.grad is not None:
                        param.add_(param.grad, alpha=-group["lr"])

    def state_dict(self) -> dict[str, Any]:
        """The learning rate of each group (the update keeps no other state)."""
        return {"lr": [group["lr"] for group in self.param_groups]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the learning rates of :meth:`state_dict`."""
        for group, lr in zip(self.param_groups, state_dict["lr"], strict=True):
            group["lr"] = lr


OptimizerSpec = torch.optim.Optimizer | str | Callable[..., torch.optim.Optimizer] | None

_BY_NAME: dict[str, Callable[..., OptimizerLike]] = {
    "adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": PlainSGD,
}

#: The learning rate of an optimiser built by name when ``lr`` is not given.
DEFAULT_LR = 1e-3


def make_optimizer(spec: OptimizerSpec, model: nn.Module, lr: float | None) -> OptimizerLike:
    """The optimiser of ``model``'s trainable parameters that ``spec`` describes.

    Parameters
    ----------
    spec : None, "adam", "adamw", "sgd", Optimizer or callable
        ``None`` means Adam; a name builds that optimiser (``"sgd"``: :class:`PlainSGD`)
        with learning rate ``lr`` (default :data:`DEFAULT_LR`); a callable is called with
        the trainable parameters; an optimiser instance is used as it is, and must
        optimise parameters of ``model``.
    model : torch.nn.Module
        The model.
    lr : float, optional
        The learning rate of an optimiser built by name (not for an instance or callable).

    Raises
    ------
    ValueError
        No trainable parameters, an unknown name, ``lr`` given with an optimiser instance
        or callable, or an instance that optimises none of the model's parameters.
    TypeError
        A ``spec`` of another type, or a callable that does not return an optimiser.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters "
                         "(requires_grad=True); there is nothing to fit.")
    if spec is None or isinstance(spec, str):
        name = "adam" if spec is None else spec.lower()
        if name not in _BY_NAME:
            raise ValueError(f"optimizer must be one of {sorted(_BY_NAME)}, a "
                             f"torch.optim.Optimizer or a callable, got {spec!r}.")
        rate = DEFAULT_LR if lr is None else check_number(lr, "lr", greater_than=0)
        return _BY_NAME[name](params, lr=rate)
    if lr is not None:
        raise ValueError(f"lr={lr!r} applies to an optimiser built by name; set the learning "
                         "rate on your optimiser instead.")
    if isinstance(spec, torch.optim.Optimizer):
        mine = {id(p) for p in params}
        if not any(id(p) in mine for group in spec.param_groups for p in group["params"]):
            raise ValueError(f"optimizer optimises none of the parameters of "
                             f"{type(model).__name__}; build it from model.parameters().")
        return spec
    if callable(spec):
        opt = spec(params)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError("optimizer(params) must return a torch.optim.Optimizer, got "
                            f"{type(opt).__name__}.")
        return opt
    raise TypeError(f"optimizer must be None, 'adam', 'adamw', 'sgd', a torch.optim.Optimizer "
                    f"or a callable params -> Optimizer, got {type(spec).__name__}.")
