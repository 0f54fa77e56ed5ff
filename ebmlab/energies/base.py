"""The :class:`Energy` base class and helpers that turn callables into energies."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .._validation import evaluate_energy

__all__ = ["Energy", "EnergyFunction", "score_of"]


class Energy(nn.Module):
    r"""Base class of energy functions, :math:`p(x) \propto \exp(-E(x))`.

    A subclass implements :meth:`forward`, mapping a batch ``(B, *event_shape)``
    to energies ``(B,)``. The score :math:`s(x) = -\nabla_x E(x)` is computed by
    autograd unless the subclass overrides :meth:`score` with a closed form.

    Notes
    -----
    Every function of :mod:`ebmlab` that takes an energy also accepts a plain
    callable with the same contract; :class:`Energy` adds the score and the
    unnormalised log-density as methods.
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

    def log_prob_unnormalized(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\log \tilde p(x) = -E(x)`, the log-density up to :math:`\log Z`."""
        return -self(x)


class EnergyFunction(Energy):
    """Wrap a plain callable ``f: (B, *shape) -> (B,)`` as an :class:`Energy`.

    Parameters
    ----------
    fn : callable
        The energy function.
    """

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}.")
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _autograd_score(energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                    *, create_graph: bool = False) -> torch.Tensor:
    with torch.enable_grad():
        x_ = x.detach().requires_grad_(True) if not create_graph else x
        if create_graph and not x_.requires_grad:
            x_ = x_.requires_grad_(True)
        e = evaluate_energy(energy, x_)
        (grad,) = torch.autograd.grad(e.sum(), x_, create_graph=create_graph)
    return -grad


def score_of(energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
             *, create_graph: bool = False) -> torch.Tensor:
    r"""Score :math:`-\nabla_x E(x)` of any energy (an :class:`Energy` or a callable).

    Uses a closed-form :meth:`Energy.score` when the energy has one and no graph
    through the score is requested; otherwise autograd.

    Parameters
    ----------
    energy : Energy or callable
        Maps ``(B, *shape)`` to ``(B,)``.
    x : torch.Tensor
        Batch of configurations.
    create_graph : bool
        Keep the graph so the score can be differentiated again (score matching,
        training through samples).

    Returns
    -------
    torch.Tensor
        The score, same shape as ``x``.
    """
    if not create_graph and isinstance(energy, Energy) and type(energy).score is not Energy.score:
        return energy.score(x)
    return _autograd_score(energy, x, create_graph=create_graph)
