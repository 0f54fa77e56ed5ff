r"""The :class:`Energy` base class, and the score :math:`-\nabla_x E` of any energy."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from .._validation import evaluate_energy

__all__ = ["Energy", "EnergyFunction", "energy_and_score", "float64_energy", "score_of"]

EnergyLike = Callable[[torch.Tensor], torch.Tensor]


class Energy(nn.Module):
    r"""Base class of energy functions, :math:`p(x) \propto \exp(-E(x))`.

    A subclass implements :meth:`forward`, mapping a batch ``(B, *event_shape)``
    to energies ``(B,)``. The score :math:`s(x) = -\nabla_x E(x)` is computed by
    autograd unless the subclass overrides :meth:`score` with a closed form.

    Notes
    -----
    Every function of :mod:`ebmlab` that takes an energy also accepts a plain
    callable with the same contract; :class:`Energy` adds the score as a method.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x) -> (B,)")

    def score(self, x: torch.Tensor) -> torch.Tensor:
        r"""The score :math:`s(x) = \nabla_x \log p(x) = -\nabla_x E(x)`.

        Parameters
        ----------
        x : torch.Tensor
            Batch of shape ``(B, *event_shape)``.

        Returns
        -------
        torch.Tensor
            Same shape as ``x``. The partition function does not appear.
        """
        return _autograd_score(self, x)


class EnergyFunction(Energy):
    """Wrap a plain callable ``f: (B, *shape) -> (B,)`` as an :class:`Energy`.

    Parameters
    ----------
    fn : callable
        The energy function.
    event_shape : tuple of int, optional
        The shape of one configuration, when known (some functions read it).
    """

    def __init__(self, fn: EnergyLike, event_shape: tuple[int, ...] | None = None):
        super().__init__()
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}.")
        self.fn = fn
        if event_shape is not None:
            self.event_shape: tuple[int, ...] = tuple(event_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def has_closed_form_score(energy: object) -> bool:
    """Whether ``energy`` is an :class:`Energy` whose class overrides :meth:`Energy.score`."""
    return isinstance(energy, Energy) and type(energy).score is not Energy.score


def _differentiable_energy(energy: EnergyLike, x: torch.Tensor, name: str) -> torch.Tensor:
    e = evaluate_energy(energy, x, name)
    if not e.requires_grad:
        raise TypeError(f"{name}(x) does not depend differentiably on x (its output has no "
                        "gradient); the score -dE/dx needs a differentiable energy.")
    return e


@functools.lru_cache(maxsize=8)
def _minus_ones(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``-1`` per example: the ``grad_outputs`` that turn autograd's ``dE/dx`` into the score
    (made once per batch size; samplers ask for it at every step)."""
    return torch.full((n,), -1.0, dtype=dtype, device=device)


def _autograd_score(energy: EnergyLike, x: torch.Tensor, *, create_graph: bool = False,
                    name: str = "energy") -> torch.Tensor:
    # The backward pass of E summed over the batch, started from -1 per example
    # (grad_outputs), returns -dE/dx directly: no sum and no negation kernel.
    with torch.enable_grad():
        leaf = x if create_graph and x.requires_grad else x.detach().requires_grad_(True)
        e = _differentiable_energy(energy, leaf, name)
        (score,) = torch.autograd.grad(e, leaf, grad_outputs=_minus_ones(len(e), e.dtype, e.device),
                                       create_graph=create_graph)
    return score


def score_of(energy: EnergyLike, x: torch.Tensor, *, create_graph: bool = False,
             name: str = "energy") -> torch.Tensor:
    r"""Score :math:`s(x) = -\nabla_x E(x)` of any energy (an :class:`Energy` or a callable).

    Uses a closed-form :meth:`Energy.score` when the energy has one and no graph
    through the score is requested; otherwise autograd with respect to ``x`` only.

    Parameters
    ----------
    energy : Energy or callable
        Maps ``(B, *shape)`` to ``(B,)``.
    x : torch.Tensor
        Batch of configurations.
    create_graph : bool
        Keep the graph so the score can be differentiated again (score matching,
        training through samples).
    name : str
        The energy's name in error messages.

    Returns
    -------
    torch.Tensor
        The score, same shape as ``x``.

    Raises
    ------
    ValueError
        If the energy does not return shape ``(B,)`` or its score not the shape of ``x``.
    TypeError
        If the energy does not depend differentiably on ``x``.
    """
    if create_graph or not has_closed_form_score(energy):
        return _autograd_score(energy, x, create_graph=create_graph, name=name)
    score = energy.score(x)  # type: ignore[attr-defined]
    if not isinstance(score, torch.Tensor) or score.shape != x.shape:
        got = tuple(score.shape) if isinstance(score, torch.Tensor) else type(score).__name__
        raise ValueError(f"{name}.score must return the shape of x, {tuple(x.shape)}, got {got}.")
    return score


def energy_and_score(energy: EnergyLike, x: torch.Tensor, *,
                     name: str = "energy") -> tuple[torch.Tensor, torch.Tensor]:
    r""":math:`E(x)` and :math:`s(x) = -\nabla_x E(x)` from one evaluation, both detached.

    What a Metropolis-adjusted sampler caches at every state (the energy for the
    acceptance test, the score for the next proposal).
    """
    if has_closed_form_score(energy):
        with torch.no_grad():
            return evaluate_energy(energy, x, name), score_of(energy, x, name=name)
    with torch.enable_grad():
        leaf = x.detach().requires_grad_(True)
        e = _differentiable_energy(energy, leaf, name)
        (score,) = torch.autograd.grad(e, leaf, grad_outputs=_minus_ones(len(e), e.dtype, e.device))
    return e.detach(), score


def float64_energy(energy: EnergyLike) -> EnergyLike:
    """``energy`` evaluated in float64: inputs and floating parameters and buffers cast.

    For a :class:`torch.nn.Module` the casts happen inside
    :func:`torch.func.functional_call`, so gradients still reach the original parameters
    (exact enumeration of :math:`\\log Z` differentiates through them). A plain callable
    gets float64 inputs.
    """
    if not isinstance(energy, nn.Module):
        return lambda x: energy(x.to(torch.float64))
    tensors = {name: (t.to(torch.float64) if t.is_floating_point() else t)
               for name, t in (*energy.named_parameters(), *energy.named_buffers())}

    def call(x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = torch.func.functional_call(energy, tensors, (x.to(torch.float64),))
        return out

    return call
