"""Picklable building blocks shared by the chapters' checks.

Everything a check passes to the student's function travels to the sandbox by pickle, so
it must be a module-level function or an instance of a module-level class: never a lambda
or a closure. These are the energies and helpers the banks share.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["Plain", "Quadratic", "ScaledQuadratic", "Shifted", "all_binary_states",
           "argument_gradients", "parameter_gradients"]


class Plain:
    """An energy module behind a plain call: ``Plain(module)(x) == module(x)``.

    The student gets no ``.score`` method or attribute to borrow and must differentiate
    the energy itself.
    """

    def __init__(self, module: nn.Module) -> None:
        self._module = module

    @property
    def module(self) -> nn.Module:
        """The wrapped module (for the checks and their probes)."""
        return self._module

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._module(x)


class Quadratic:
    r""":math:`E(x) = \tfrac12\|x\|^2` over the last axis: the score is :math:`-x`."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x ** 2).sum(-1)


class ScaledQuadratic:
    r""":math:`E(x) = \tfrac12\sum_i s_i x_i^2` with a fixed ``scale`` :math:`s`."""

    def __init__(self, scale: torch.Tensor) -> None:
        self.scale = scale

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.scale * x * x).sum(-1)


class Shifted:
    """``energy(x) + offset``: the same distribution for every constant offset."""

    def __init__(self, energy: Callable[[torch.Tensor], torch.Tensor], offset: float) -> None:
        self.energy = energy
        self.offset = offset

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.energy(x) + self.offset


def all_binary_states(d: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Every configuration of ``d`` units in {0, 1}, shape ``(2**d, d)`` (bit ``i`` of row
    ``k`` is bit ``i`` of ``k``)."""
    codes = torch.arange(2 ** d)
    return ((codes[:, None] >> torch.arange(d)) & 1).to(dtype)


def parameter_gradients(result: object, args: tuple[object, ...],
                        kwargs: dict[str, object]) -> object:
    """Probe: the gradients of the student's scalar result with respect to the parameters of
    the module passed first (or wrapped by :class:`Plain`), None where it does not depend on
    one, or None altogether when the result carries no graph."""
    if not (isinstance(result, torch.Tensor) and result.requires_grad and result.numel() == 1):
        return None
    first = args[0]
    module = first.module if isinstance(first, Plain) else first
    if not isinstance(module, nn.Module):
        return None
    return list(torch.autograd.grad(result.sum(), list(module.parameters()), allow_unused=True))


def argument_gradients(result: object, args: tuple[object, ...],
                       kwargs: dict[str, object]) -> object:
    """Probe: the gradients of ``result.sum()`` with respect to the tensor arguments that
    require grad, in order (None where the result does not depend on one), or None when the
    result carries no graph."""
    if not (isinstance(result, torch.Tensor) and result.requires_grad):
        return None
    inputs = [t for t in args if isinstance(t, torch.Tensor) and t.requires_grad]
    return list(torch.autograd.grad(result.sum(), inputs, allow_unused=True))
