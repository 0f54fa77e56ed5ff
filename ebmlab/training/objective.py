r"""The objective protocol of :func:`ebmlab.training.fit` and shared applicability checks.

An *objective* turns a minibatch into a scalar loss whose gradient is the
method's parameter update; ``fit`` only runs the loop around it. The protocol:

* ``init(model, data, generator)`` -- check that the method applies to this
  model and data, and build any persistent state (chains, replay buffer);
* ``loss(model, batch, generator) -> Tensor`` -- a 0-d loss for one minibatch;
* ``state_dict()`` / ``load_state_dict(state)`` -- the persistent state, saved
  in checkpoints so a resumed run continues exactly;
* optionally ``loss_and_grad(model, batch, generator) -> Tensor`` -- the same loss
  with ``loss.backward()`` already done: its gradient accumulated into the
  parameters' ``.grad``, the loss returned detached. An objective provides it when it
  can get the gradient more cheaply than through an autograd graph (CD and PCD on an
  RBM: :meth:`ebmlab.energies.RBM.free_energy_grad`); ``fit`` calls it instead of
  ``loss`` unless a subclass redefined ``loss`` below the class that defines it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["Objective"]


class Objective(abc.ABC):
    """Base class of training objectives used by :func:`ebmlab.training.fit`.

    Subclasses implement :meth:`loss`; :meth:`init`, :meth:`state_dict` and
    :meth:`load_state_dict` default to "no persistent state". Any object with a
    ``loss(model, batch, generator)`` method is accepted by ``fit`` as well.

    Attributes
    ----------
    name : str
        Short name stored in checkpoints and shown on the progress bar.
    hint : str
        Method-specific advice appended to the divergence message (a noun phrase,
        e.g. ``"a smaller step_size"``).

    Examples
    --------
    A custom method: negatives are the data plus Gaussian noise.

    >>> import torch
    >>> from ebmlab.energies import MLPEnergy
    >>> from ebmlab.objectives import contrastive_loss
    >>> from ebmlab.training import fit
    >>> class NoiseContrast(Objective):
    ...     name = "noise-contrast"
    ...     def loss(self, model, batch, generator):
    ...         noise = torch.randn(batch.shape, generator=generator)
    ...         return contrastive_loss(model, batch, batch + 0.5 * noise, alpha=0.1)
    >>> hist = fit(MLPEnergy(2, hidden=(8,)), torch.randn(64, 2), NoiseContrast(), steps=3,
    ...            seed=0, progress=False)
    >>> hist.method, hist.steps
    ('noise-contrast', 3)
    """

    name: str = "custom"
    hint: str = ""

    def init(self, model: nn.Module, data: torch.Tensor,
             generator: torch.Generator | None) -> None:
        """Check that the objective applies to ``model``/``data`` and build its state."""
        return None

    @abc.abstractmethod
    def loss(self, model: nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        """Return the 0-d loss of one minibatch (differentiable in the parameters)."""

    def state_dict(self) -> dict[str, Any]:
        """Persistent state (tensors and plain values), empty by default."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state returned by :meth:`state_dict`."""
        return None

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({opts})"


def direct_gradient(objective: object
                    ) -> Callable[[nn.Module, torch.Tensor, torch.Generator | None],
                                  torch.Tensor] | None:
    """The objective's ``loss_and_grad`` if it computes the same loss as its ``loss``, else None.

    It does when the class that defines ``loss_and_grad`` is the class that defines
    ``loss`` or a subclass of it: a subclass that redefines ``loss`` alone (a custom
    variant of a built-in method) is trained through ``loss`` and autograd.
    """
    method = getattr(objective, "loss_and_grad", None)
    if not callable(method):
        return None
    mro = type(objective).__mro__
    fast = next((c for c in mro if "loss_and_grad" in vars(c)), None)
    slow = next((c for c in mro if "loss" in vars(c)), None)
    if fast is None or slow is None or not issubclass(fast, slow):
        return None
    return method  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- applicability


def _is_discrete(model: object) -> bool:
    """A model over discrete units: it declares a ``support`` or has a Gibbs sampler."""
    return getattr(model, "support", None) is not None or hasattr(model, "gibbs_step")


def _require_continuous(model: object, data: torch.Tensor, method: str, use: str) -> None:
    if _is_discrete(model):
        support = getattr(model, "support", None)
        units = f" with units in {set(support)}" if support is not None else ""
        raise ValueError(
            f"method {method!r} does not apply to {type(model).__name__}: it is a discrete "
            f"model{units} and {use} needs a differentiable density over continuous x. "
            "Use 'mle', 'cd' or 'pcd' for discrete models."
        )
    if not data.is_floating_point():
        raise ValueError(f"method {method!r} needs continuous (floating-point) data, "
                         f"got dtype {data.dtype}.")


def _check_sigmas(sigmas: object, name: str) -> torch.Tensor:
    s = torch.as_tensor(sigmas, dtype=torch.float64).reshape(-1)
    if s.numel() == 0 or not bool(torch.isfinite(s).all()) or bool((s <= 0).any()):
        raise ValueError(f"{name} must be finite positive noise level(s), got {sigmas!r}.")
    return s


def _check_int(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return value
