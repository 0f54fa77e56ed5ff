"""Input validation shared by every public function of :mod:`ebmlab`.

Each helper raises a :class:`ValueError` or :class:`TypeError` whose message
names the offending argument, what was passed and what was expected, so a user
can act on it without reading the traceback.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = [
    "check_batch",
    "check_finite",
    "check_positive",
    "check_probability",
    "check_same_device",
    "evaluate_energy",
]


def check_batch(x: object, name: str = "x", *, event_dim: int | None = None,
                event_shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """Check that ``x`` is a floating/integer tensor with a leading batch axis.

    Parameters
    ----------
    x : object
        The value to check.
    name : str
        The argument's name, used in the error message.
    event_dim : int, optional
        Required number of dimensions after the batch axis.
    event_shape : tuple of int, optional
        Required shape after the batch axis.

    Returns
    -------
    torch.Tensor
        ``x`` unchanged.

    Raises
    ------
    TypeError
        If ``x`` is not a tensor.
    ValueError
        If ``x`` has no batch axis or the wrong event shape.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, ...), got {type(x).__name__}.")
    if x.dim() < 1:
        raise ValueError(f"{name} must have a leading batch axis (B, ...), got a 0-d tensor.")
    if event_shape is not None and tuple(x.shape[1:]) != tuple(event_shape):
        raise ValueError(
            f"{name} must have shape (B, {', '.join(map(str, event_shape))}), "
            f"got {tuple(x.shape)}."
        )
    if event_dim is not None and x.dim() - 1 != event_dim:
        raise ValueError(
            f"{name} must have {event_dim} event dimension(s) after the batch axis, "
            f"got shape {tuple(x.shape)}."
        )
    return x


def check_finite(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Raise a :class:`ValueError` if ``x`` holds NaN or infinite values.

    This synchronises with the device, so call it at the public boundary only,
    never inside a sampling loop.
    """
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        n_bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {n_bad} non-finite value(s) (NaN or inf); "
                         "expected finite numbers.")
    return x


def check_positive(value: float, name: str, *, strict: bool = True) -> float:
    """Check that a scalar hyper-parameter is positive (or non-negative)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}.") from None
    if not (v > 0 if strict else v >= 0) or v != v:
        expected = "> 0" if strict else ">= 0"
        raise ValueError(f"{name} must be {expected}, got {value!r}.")
    return v


def check_probability(value: float, name: str) -> float:
    """Check that a scalar lies in the closed interval [0, 1]."""
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}.")
    return v


def check_same_device(*tensors: tuple[str, torch.Tensor]) -> None:
    """Check that named tensors all live on one device.

    Parameters
    ----------
    *tensors : (str, torch.Tensor)
        Pairs of argument name and tensor.
    """
    devices = {t.device for _, t in tensors}
    if len(devices) > 1:
        listing = ", ".join(f"{n} on {t.device}" for n, t in tensors)
        raise ValueError(f"all tensors must be on the same device, got {listing}.")


def evaluate_energy(energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                    name: str = "energy") -> torch.Tensor:
    """Evaluate ``energy(x)`` and check that it returns one value per batch element.

    Parameters
    ----------
    energy : callable
        Maps ``(B, *event_shape)`` to ``(B,)``.
    x : torch.Tensor
        A batch of configurations.
    name : str
        Name used in error messages.

    Returns
    -------
    torch.Tensor
        The energies, shape ``(B,)``.
    """
    e = energy(x)
    if not isinstance(e, torch.Tensor) or e.shape != (x.shape[0],):
        got = tuple(e.shape) if isinstance(e, torch.Tensor) else type(e).__name__
        raise ValueError(
            f"{name} must map a batch of shape {tuple(x.shape)} to energies of shape "
            f"({x.shape[0]},), got {got}."
        )
    return e
