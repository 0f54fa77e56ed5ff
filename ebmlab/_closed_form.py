r"""Closed-form parameter gradients of weighted energy sums, wired into autograd.

A model may provide ``free_energy_grad(x, weights) -> (energies, grads)``: its
energies :math:`E_\theta(x_b)` and the gradient of :math:`\sum_b w_b E_\theta(x_b)`
with respect to its parameters, ``grads`` mapping parameter names (as in
``named_parameters()``) to tensors shaped like the parameters. The restricted
Boltzmann machine does (:meth:`ebmlab.energies.RBM.free_energy_grad`): its free-energy
gradient is two matrix products. :func:`weighted_energy_sum` turns that into a 0-d
loss whose ``backward()`` deposits those gradients, so optimisers, gradient clipping
and :func:`torch.autograd.grad` work exactly as with the autograd graph it replaces,
without building one; :func:`weighted_energy_sum_and_grad` is ``loss.backward()``
already done (the training loop's path), and :func:`backward` runs the backward pass
of a :func:`weighted_energy_sum` without the autograd engine.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import torch

__all__ = ["backward", "closed_form_gradient", "contrast_weights", "weighted_energy_sum",
           "weighted_energy_sum_and_grad"]

GradFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def _defining_class(cls: type, name: str) -> type | None:
    return next((klass for klass in cls.__mro__ if name in vars(klass)), None)


@functools.cache
def _applies(cls: type) -> bool:
    # The closed form belongs to the class that defines it: a subclass that redefines
    # ``forward`` without redefining ``free_energy_grad`` falls back to autograd.
    grad_owner = _defining_class(cls, "free_energy_grad")
    forward_owner = _defining_class(cls, "forward")
    return (grad_owner is not None and forward_owner is not None
            and issubclass(grad_owner, forward_owner))


def _functorch_active() -> bool:
    # Under torch.func transforms (grad, vmap, ...) plain autograd is what composes.
    peek = getattr(getattr(torch._C, "_functorch", None), "peek_interpreter_stack", None)
    return peek is not None and peek() is not None


def closed_form_gradient(energy: object) -> GradFn | None:
    """``energy.free_energy_grad`` if it is the closed form of ``energy``'s forward, else None.

    None as well under :mod:`torch.func` transforms, which need the autograd graph.
    """
    if (not isinstance(energy, torch.nn.Module) or not _applies(type(energy))
            or _functorch_active()):
        return None
    return energy.free_energy_grad  # type: ignore[attr-defined,no-any-return]


@functools.lru_cache(maxsize=16)
def contrast_weights(n_pos: int, n_neg: int, dtype: torch.dtype,
                     device: torch.device) -> torch.Tensor:
    r"""The weights :math:`(1/B^+, \dots, -1/B^-, \dots)` of :math:`\bar E(x^+) - \bar E(x^-)`."""
    w = torch.empty(n_pos + n_neg, dtype=dtype, device=device)
    w[:n_pos] = 1.0 / n_pos
    w[n_pos:] = -1.0 / n_neg
    return w


class _Terms(NamedTuple):
    energy: torch.nn.Module
    x: torch.Tensor
    energies: torch.Tensor
    weights: torch.Tensor
    grads: tuple[torch.Tensor, ...]


class _WeightedEnergySum(torch.autograd.Function):
    """``weights @ energies`` whose gradient in the parameters is given (closed form)."""

    @staticmethod
    def forward(ctx: Any, terms: _Terms, *params: torch.Tensor) -> torch.Tensor:
        ctx.terms = terms
        ctx.closed_form_params = params  # read by backward() below
        return torch.dot(terms.weights, terms.energies)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        terms = ctx.terms
        if torch.is_grad_enabled():
            # create_graph=True: a gradient that is itself differentiable, by autograd on
            # the model's forward (which the closed form equals).
            value = torch.dot(terms.weights, terms.energy(terms.x))
            grads = torch.autograd.grad(value, ctx.closed_form_params, grad_output,
                                        create_graph=True, allow_unused=True)
        else:
            grads = tuple(grad_output * g for g in terms.grads)
        return (None, *grads)


def weighted_energy_sum(energy: torch.nn.Module, grad_fn: GradFn, x: torch.Tensor,
                        weights: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_b w_b E_\theta(x_b)`, a 0-d tensor whose backward gives ``grad_fn``'s gradients.

    The result is differentiable in the parameters that ``grad_fn`` names (not in ``x``
    nor ``weights``); with ``create_graph=True`` the gradient comes from autograd on
    ``energy(x)`` so that it can be differentiated again.
    """
    energies, grads = grad_fn(x, weights)
    terms = _Terms(energy, x, energies, weights, tuple(grads.values()))
    return _WeightedEnergySum.apply(terms, *_parameters(energy, grads))


def weighted_energy_sum_and_grad(energy: torch.nn.Module, grad_fn: GradFn, x: torch.Tensor,
                                 weights: torch.Tensor) -> torch.Tensor:
    r"""``weighted_energy_sum(...).backward()``, returning the value detached.

    The closed-form gradients are accumulated into the parameters' ``.grad`` directly,
    with neither an autograd node nor the engine, unless a parameter has gradient
    hooks (then the engine runs them).
    """
    energies, grads = grad_fn(x, weights)
    params = _parameters(energy, grads)
    if any(_has_hooks(p) for p in params):
        terms = _Terms(energy, x, energies, weights, tuple(grads.values()))
        loss = _WeightedEnergySum.apply(terms, *params)
        loss.backward()
        return loss.detach()
    _accumulate(params, grads.values())
    return torch.dot(weights, energies)


def _parameters(energy: torch.nn.Module, grads: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    own = energy._parameters  # direct lookup; get_parameter walks dotted names
    return [own[name] if name in own else energy.get_parameter(name) for name in grads]


def _accumulate(params: Iterable[torch.Tensor], grads: Iterable[torch.Tensor]) -> None:
    # What the engine's AccumulateGrad does with an incoming gradient of 1.
    for p, g in zip(params, grads, strict=True):
        if not p.requires_grad:
            continue
        if p.grad is None:
            p.grad = g
        else:
            p.grad += g


def _has_hooks(p: torch.Tensor) -> bool:
    return bool(getattr(p, "_backward_hooks", None)
                or getattr(p, "_post_accumulate_grad_hooks", None))


def backward(loss: torch.Tensor) -> None:
    """``loss.backward()``, without the autograd engine for a :func:`weighted_energy_sum`.

    Such a loss carries its parameter gradients already; they are accumulated into
    ``.grad`` exactly as the engine would (the incoming gradient is 1), unless a
    parameter has gradient hooks, in which case the engine runs.
    """
    node = loss.grad_fn
    params = getattr(node, "closed_form_params", None)
    if params is None or any(_has_hooks(p) for p in params):
        loss.backward()
        return
    _accumulate(params, node.terms.grads)
