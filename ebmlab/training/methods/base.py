r"""The base class of the training methods of :func:`ebmlab.training.fit`: :class:`Method`.

A method turns a minibatch into a loss whose gradient is the method's parameter update;
``fit`` runs the loop around it (minibatches, optimiser, history, checkpoints, guard).
What ``fit`` asks of a method, in the order it asks:

* :meth:`Method.init` ``(model, data, generator)`` -- check that the method applies to
  this model and data, and build its persistent state (chains, replay buffer);
* :meth:`Method.compute_gradient` ``(model, batch, generator)`` at every step -- the
  minibatch's loss, with its gradient set as the parameters' ``.grad`` (replacing the
  last step's, so no ``zero_grad`` is needed). By default ``loss(...)`` differentiated by
  autograd, the route of every method except CD and PCD on an RBM, which use the
  textbook closed form;
* :meth:`Method.state_dict` / :meth:`Method.load_state_dict` -- the persistent state, for
  checkpoints, and :meth:`Method.options` -- the settings, which a resumed run must share.

Built-in methods are keyword-only dataclasses whose fields are their options.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import torch
from torch import nn

__all__ = ["KeywordOptions", "Method", "describe_option", "set_gradient"]


class KeywordOptions:
    """Mixin of the built-in methods: options are given by keyword, ``PersistentCD(k=5)``."""

    def __new__(cls, *args: object, **kwargs: object) -> KeywordOptions:
        if args:
            names: list[str] = [f.name for f in dataclasses.fields(cls) if f.init] \
                if dataclasses.is_dataclass(cls) else []
            example = names[0] if names else "option"
            raise TypeError(f"{cls.__name__} takes its options by keyword, e.g. "
                            f"{cls.__name__}({example}=...); got {len(args)} positional "
                            "argument(s).")
        return super().__new__(cls)


class Method(abc.ABC):
    """Base class of the training methods used by :func:`ebmlab.training.fit`.

    Subclasses implement :meth:`loss`; the other methods default to "autograd, no
    persistent state, no options".

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
    >>> class NoiseContrast(Method):
    ...     name = "noise-contrast"
    ...     def loss(self, model, batch, generator):
    ...         noise = torch.randn(batch.shape, generator=generator)
    ...         return contrastive_loss(model, batch, batch + 0.5 * noise, alpha=0.1)
    >>> hist = fit(MLPEnergy(2, hidden=(8,)), torch.randn(64, 2), NoiseContrast(), steps=3,
    ...            seed=0, progress=False)
    >>> hist.method, hist.steps
    ('noise-contrast', 3)
    """

    name: ClassVar[str] = "custom"
    hint: ClassVar[str] = ""

    def init(self, model: nn.Module, data: torch.Tensor,
             generator: torch.Generator | None) -> None:
        """Check that the method applies to ``model`` and ``data``; build its state."""
        return None

    @abc.abstractmethod
    def loss(self, model: nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        """The 0-d loss of one minibatch, differentiable in the parameters."""

    def compute_gradient(self, model: nn.Module, batch: torch.Tensor,
                         generator: torch.Generator | None) -> torch.Tensor:
        """One minibatch's loss; its gradient becomes the trainable parameters' ``.grad``.

        :meth:`loss`, differentiated by :func:`torch.autograd.grad` with respect to every
        parameter that requires a gradient (``None`` for those it does not depend on);
        returns the loss, detached.

        Raises
        ------
        TypeError
            If :meth:`loss` does not return a 0-d tensor.
        ValueError
            If the loss does not depend on any parameter (nothing would be trained).
        """
        loss = self.loss(model, batch, generator)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            got = (f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor)
                   else type(loss).__name__)
            raise TypeError(f"the loss of method {self.name!r} must be a 0-d tensor, got {got}.")
        if not loss.requires_grad:
            raise ValueError(f"the loss of method {self.name!r} does not depend on any parameter "
                             "(requires_grad is False); nothing would be trained.")
        params = [p for p in model.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for param, grad in zip(params, grads, strict=True):
            param.grad = grad
        return loss.detach()

    def options(self) -> dict[str, Any]:
        """The method's settings as plain data (its dataclass fields), for checkpoints."""
        if not dataclasses.is_dataclass(self):
            return {}
        return {f.name: describe_option(getattr(self, f.name))
                for f in dataclasses.fields(self) if f.init}

    def state_dict(self) -> dict[str, Any]:
        """Persistent state (tensors and plain values), empty by default."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state returned by :meth:`state_dict`."""
        return None


def describe_option(value: object) -> Any:
    """An option as plain, comparable data: numbers, strings, lists; tensors as lists and
    callables by their qualified name."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, list | tuple):
        return [describe_option(v) for v in value]
    qualname = getattr(value, "__qualname__", None) or type(value).__qualname__
    return f"{getattr(value, '__module__', '')}.{qualname}"


def set_gradient(model: nn.Module, grads: dict[str, torch.Tensor]) -> None:
    """Set closed-form gradients as the parameters' ``.grad``, as :meth:`Method.compute_gradient`
    does with autograd's.

    ``grads`` maps parameter names (as in ``model.named_parameters()``) to tensors shaped
    like the parameters; parameters that do not require a gradient are left alone.
    Gradient hooks registered on the parameters are not run (no autograd is involved).
    """
    for name, grad in grads.items():
        param = model.get_parameter(name) if "." in name else getattr(model, name)
        if param.requires_grad:
            param.grad = grad
