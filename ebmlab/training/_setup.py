"""Checks and set-up of :func:`ebmlab.training.fit`: data, optimiser, method, callbacks."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from .._validation import check_batch, check_finite, check_positive
from .methods import METHODS, make_objective
from .objective import Objective

__all__ = ["check_data", "check_int", "make_optimizer", "normalize_callbacks",
           "resolve_objective"]


def check_int(value: object, name: str, *, minimum: int = 1, allow_none: bool = False
               ) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}"
                         f"{' or None' if allow_none else ''}, got {value!r}.")
    return value


def _first_float_tensor(model: nn.Module) -> torch.Tensor | None:
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t
    return None


def check_data(model: nn.Module, data: object) -> torch.Tensor:
    """Check ``data`` against the model before any training (shape, dtype, device, values)."""
    event_shape = getattr(model, "event_shape", None)
    data = check_batch(data, "data",
                       event_shape=tuple(event_shape) if event_shape is not None else None)
    if data.shape[0] == 0:
        raise ValueError("data must hold at least one example, got shape "
                         f"{tuple(data.shape)}.")
    ref = _first_float_tensor(model)
    if not data.is_floating_point():
        target = ref.dtype if ref is not None else torch.get_default_dtype()
        raise TypeError(f"data must be a floating-point tensor, got dtype {data.dtype}; "
                        f"convert it with data.to({target}).")
    if ref is not None and data.dtype != ref.dtype:
        raise TypeError(f"data has dtype {data.dtype} but the parameters of "
                        f"{type(model).__name__} are {ref.dtype}; convert one of them "
                        f"(data.to({ref.dtype}) or model.to({data.dtype})).")
    if ref is not None and data.device != ref.device:
        raise ValueError(f"data is on {data.device} but {type(model).__name__} is on "
                         f"{ref.device}; move one of them (data.to({str(ref.device)!r})).")
    support = getattr(model, "support", None)
    if support is None:
        check_finite(data, "data")
    else:  # values in the support are finite: one pass over the data checks both
        lo, hi = support
        bad = ~((data == lo) | (data == hi))
        if bool(bad.any()):
            check_finite(data, "data")  # NaN and inf get their own message
            example = float(data[bad][0])
            raise ValueError(f"data must only hold the values {lo} and {hi} of "
                             f"{type(model).__name__}'s units, got e.g. {example}.")
    return data


def _default_foreach(params: list[torch.Tensor]) -> bool | None:
    """torch's own choice of the multi-tensor implementation, made once.

    With ``foreach=None`` torch's optimisers redo this choice at every step, which
    costs as much as the update of a small model (an RBM on 8x8 digits).
    """
    try:
        from torch.optim.optimizer import _default_to_fused_or_foreach
    except ImportError:  # a torch without this helper: let it decide at every step
        return None
    return bool(_default_to_fused_or_foreach(params, differentiable=False)[1])


def make_optimizer(model: nn.Module, optimizer: Any, lr: float) -> torch.optim.Optimizer:
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters "
                         "(requires_grad=True); there is nothing to fit.")
    lr = check_positive(lr, "lr")
    choices: dict[str, Callable[..., torch.optim.Optimizer]] = {
        "adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD,
    }
    if optimizer is None:
        return torch.optim.Adam(params, lr=lr, foreach=_default_foreach(params))
    if isinstance(optimizer, str):
        if optimizer.lower() not in choices:
            raise ValueError(f"optimizer must be one of {sorted(choices)}, a "
                             f"torch.optim.Optimizer or a callable, got {optimizer!r}.")
        return choices[optimizer.lower()](params, lr=lr, foreach=_default_foreach(params))
    if callable(optimizer):
        opt = optimizer(params)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError("optimizer(params) must return a torch.optim.Optimizer, got "
                            f"{type(opt).__name__}.")
        return opt
    raise TypeError(f"optimizer must be None, 'adam', 'adamw', 'sgd', a torch.optim.Optimizer "
                    f"or a callable params -> Optimizer, got {type(optimizer).__name__}.")


def resolve_objective(method: object, k: int, options: dict[str, Any]) -> Objective:
    if isinstance(method, str):
        return make_objective(method, k=k, **options)
    if callable(getattr(method, "loss", None)):
        if k != 1:
            raise ValueError(f"k={k!r} applies to the built-in methods 'cd' and 'pcd'; set it "
                             f"on the objective object {type(method).__name__} instead.")
        if options:
            raise TypeError(f"options {sorted(options)} apply to built-in method names only; "
                            f"configure the objective object {type(method).__name__} instead.")
        return method  # type: ignore[return-value]
    raise ValueError(f"method must be one of {', '.join(METHODS)} or an objective object with "
                     f"a loss(model, batch, generator) method, got {method!r}.")


def normalize_callbacks(callbacks: Iterable[Any], eval_every: int
                         ) -> list[tuple[str, int, Callable[[nn.Module], Any]]]:
    if callable(callbacks):
        callbacks = (callbacks,)
    out = []
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"each callback must be callable as cb(model), got {cb!r}.")
        name = getattr(cb, "name", None) or getattr(cb, "__name__", type(cb).__name__)
        every = getattr(cb, "every", None) or eval_every
        out.append((str(name), check_int(every, f"{name}.every"), cb))
    return out
