"""The optimiser calls of :func:`ebmlab.training.fit`, with direct paths for small models.

``torch.optim.Optimizer.step`` wraps every update in a profiler range, hook
dispatch and grad-mode switches; for a small model (an RBM on 8x8 digits) that
bookkeeping costs several times the update itself. Plain SGD -- no momentum,
weight decay, ``maximize``, ``fused`` or ``differentiable``, a float learning rate,
dense gradients and no step hooks -- is just :math:`\\theta \\leftarrow \\theta -
\\eta\\, g`, which :func:`optimizer_step` applies with one multi-tensor operation:
the same arithmetic as ``SGD.step`` (``param.add_(grad, alpha=-lr)``), bit for bit.
Every other optimiser, and SGD with any of those options, goes through ``step()``.
Likewise :func:`zero_grad` sets the gradients to ``None`` itself unless the optimiser
redefines ``zero_grad``.
"""

from __future__ import annotations

import torch
from torch.optim import optimizer as _optimizer_module

__all__ = ["optimizer_step", "zero_grad"]

_PLAIN = {"momentum": 0, "weight_decay": 0, "maximize": False, "differentiable": False}


def _no_hooks(opt: torch.optim.Optimizer) -> bool:
    hooks = (getattr(opt, "_optimizer_step_pre_hooks", None),
             getattr(opt, "_optimizer_step_post_hooks", None),
             getattr(_optimizer_module, "_global_optimizer_pre_hooks", None),
             getattr(_optimizer_module, "_global_optimizer_post_hooks", None))
    return all(h is not None and not h for h in hooks)


def _plain_sgd_groups(opt: torch.optim.Optimizer
                      ) -> list[tuple[list[torch.Tensor], list[torch.Tensor], float]] | None:
    """``(params, grads, lr)`` of each group if ``opt`` is plain SGD without hooks, else None."""
    if type(opt) is not torch.optim.SGD or not _no_hooks(opt):
        return None
    groups = []
    for group in opt.param_groups:
        lr = group["lr"]
        if (isinstance(lr, torch.Tensor) or group.get("fused")
                or any(group.get(k, v) != v for k, v in _PLAIN.items())):
            return None
        params = [p for p in group["params"] if p.grad is not None]
        grads = [p.grad for p in params]
        if any(g.is_sparse for g in grads):
            return None
        groups.append((params, grads, float(lr)))
    return groups


def optimizer_step(opt: torch.optim.Optimizer) -> None:
    """``opt.step()``, applied directly for plain SGD (see the module docstring)."""
    groups = _plain_sgd_groups(opt)
    if groups is None:
        opt.step()
        return
    with torch.no_grad():
        for params, grads, lr in groups:
            if params:
                torch._foreach_add_(params, grads, alpha=-lr)


def zero_grad(opt: torch.optim.Optimizer) -> None:
    """``opt.zero_grad(set_to_none=True)``, done directly unless the optimiser redefines it."""
    if type(opt).zero_grad is not torch.optim.Optimizer.zero_grad:
        opt.zero_grad(set_to_none=True)
        return
    for group in opt.param_groups:
        for p in group["params"]:
            p.grad = None
