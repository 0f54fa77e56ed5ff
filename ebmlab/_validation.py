"""Argument checks shared by every public function of :mod:`ebmlab`, in one place.

One rule: a :class:`TypeError` when an argument has the wrong type, a :class:`ValueError`
when it has the right type but a wrong value. Every message names the argument, what was
passed and what was expected, so a user can act on it without reading the traceback.

The checks that read a tensor's values (:func:`check_finite`, :func:`check_in_support`)
synchronise with the device: they belong at the public boundary, never inside a loop.
"""

from __future__ import annotations

import inspect
import itertools
import math
import numbers
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = [
    "check_batch",
    "check_bool",
    "check_box",
    "check_callable",
    "check_choice",
    "check_continuous_model",
    "check_device",
    "check_finite",
    "check_float_dtype",
    "check_generator",
    "check_in_support",
    "check_int",
    "check_model_data",
    "check_module_device",
    "check_noise_conditional",
    "check_noise_level",
    "check_noise_levels",
    "check_number",
    "check_rectangle",
    "check_resolution",
    "check_sampler_arguments",
    "check_sampler_states",
    "check_seed",
    "evaluate_energy",
    "owning_module",
]

Box = tuple[Tensor, Tensor]


# ---------------------------------------------------------------------------- scalars


def check_int(value: object, name: str, *, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """An ``int`` (not a ``bool``) in ``[minimum, maximum]``.

    Raises
    ------
    TypeError
        If ``value`` is not an integer (``2.5``, ``"3"``, ``True``).
    ValueError
        If it lies outside the bounds.

    Examples
    --------
    >>> check_int(3, "n_steps", minimum=0)
    3
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int{_range_text(minimum, maximum, ' ')}, "
                        f"got {value!r}.")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an int{_range_text(minimum, maximum, ' ')}, "
                         f"got {value}.")
    return value


def _range_text(minimum: int | None, maximum: int | None, lead: str) -> str:
    if minimum is not None and maximum is not None:
        return f"{lead}between {minimum} and {maximum}"
    if minimum is not None:
        return f"{lead}>= {minimum}"
    if maximum is not None:
        return f"{lead}<= {maximum}"
    return ""


def check_number(value: object, name: str, *, greater_than: float | None = None,
                 at_least: float | None = None, at_most: float | None = None,
                 finite: bool = True) -> float:
    """A real number (a Python or NumPy number, or a one-element real tensor) as a float.

    Parameters
    ----------
    value : object
        The value to check.
    name : str
        The argument's name, for the message.
    greater_than, at_least, at_most : float, optional
        Bounds: ``value > greater_than``, ``value >= at_least``, ``value <= at_most``.
    finite : bool
        Reject ``inf`` and ``nan`` (``nan`` is always rejected).

    Raises
    ------
    TypeError
        If ``value`` is not a real number.
    ValueError
        If it is NaN, infinite (when ``finite``) or out of bounds.

    Examples
    --------
    >>> check_number(0.1, "step_size", greater_than=0)
    0.1
    """
    if isinstance(value, Tensor) and value.numel() == 1 and not (
            value.is_complex() or value.dtype == torch.bool):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}.")
    v = float(value)
    conditions = []
    if greater_than is not None:
        conditions.append((v > greater_than, f"> {greater_than:g}"))
    if at_least is not None:
        conditions.append((v >= at_least, f">= {at_least:g}"))
    if at_most is not None:
        conditions.append((v <= at_most, f"<= {at_most:g}"))
    wanted = " and ".join(text for _, text in conditions)
    if math.isnan(v) or (finite and math.isinf(v)):
        kind = "a finite number" if finite else "a number"
        raise ValueError(f"{name} must be {kind}{' ' + wanted if wanted else ''}, got {value!r}.")
    if not all(ok for ok, _ in conditions):
        raise ValueError(f"{name} must be {wanted}, got {value!r}.")
    return v


def check_bool(value: object, name: str) -> bool:
    """A ``bool`` (``0``, ``1`` and ``"yes"`` are refused)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool (True or False), got {value!r}.")
    return value


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """One of the strings ``choices``."""
    names = [repr(c) for c in choices]
    wanted = (" or ".join(names) if len(names) <= 2
              else f"one of {', '.join(names[:-1])} or {names[-1]}")
    if not isinstance(value, str):
        raise TypeError(f"{name} must be {wanted}, got {value!r}.")
    if value not in choices:
        raise ValueError(f"{name} must be {wanted}, got {value!r}.")
    return value


def check_callable(value: object, name: str, expected: str) -> Callable[..., object]:
    """A callable; ``expected`` describes its contract in the message."""
    if not callable(value):
        raise TypeError(f"{name} must be callable {expected}, got {type(value).__name__}.")
    return value


# ---------------------------------------------------------------------------- torch objects


def check_generator(generator: object, name: str = "generator") -> torch.Generator | None:
    """``None`` or a :class:`torch.Generator` (a seed is not a generator)."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {generator!r}; "
                        "make one with ebmlab.make_generator(seed).")
    return generator


def check_device(device: object, name: str = "device") -> torch.device:
    """A device that exists on this machine, as a :class:`torch.device`.

    Raises
    ------
    TypeError
        If ``device`` is neither a string nor a :class:`torch.device`.
    ValueError
        If it is not a device name, or names an accelerator this machine does not have.
    """
    if not isinstance(device, str | torch.device):
        raise TypeError(f"{name} must be a torch.device or a string such as 'cpu' or 'cuda', "
                        f"got {device!r}.")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"{name}={device!r} is not a device name (e.g. 'cpu', 'cuda', "
                         "'cuda:0').") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (dev.index is not None and dev.index >= count) or count == 0:
            raise ValueError(f"{name}={device!r} is not available: this machine has {count} "
                             "CUDA device(s).")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{name}={device!r} is not available on this machine.")
    return dev


def check_float_dtype(dtype: object, name: str = "dtype") -> torch.dtype:
    """A floating :class:`torch.dtype`."""
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"{name} must be a floating torch.dtype such as torch.float32, "
                        f"got {dtype!r}.")
    if not dtype.is_floating_point:  # like a tensor of the wrong dtype: a TypeError
        raise TypeError(f"{name} must be a floating dtype such as torch.float32, got {dtype}.")
    return dtype


#: The seeds :func:`torch.manual_seed` accepts.
_SEED_RANGE = (-(2**63), 2**64 - 1)


def check_seed(seed: object) -> int:
    """An ``int`` that :func:`torch.manual_seed` accepts, ``-2**63 <= seed < 2**64``."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, got {seed!r}.")
    low, high = _SEED_RANGE
    if not low <= int(seed) <= high:
        raise ValueError(f"seed must lie between -2**63 and 2**64 - 1, got {seed}.")
    return int(seed)


# ---------------------------------------------------------------------------- tensors


def check_batch(x: object, name: str = "x", *, event_shape: Sequence[int] | None = None,
                min_event_dims: int = 0, floating: bool = False, allow_empty: bool = True,
                finite: bool = False, owner: str | None = None) -> Tensor:
    """A tensor ``(B, *event_shape)`` with a leading batch axis.

    Parameters
    ----------
    x : object
        The value to check.
    name : str
        The argument's name, used in the message.
    event_shape : sequence of int, optional
        The required shape after the batch axis.
    min_event_dims : int
        The least number of dimensions after the batch axis.
    floating : bool
        Require a real floating dtype (integers and complex numbers are refused).
    allow_empty : bool
        Accept a batch of zero examples.
    finite : bool
        Refuse NaN and infinite values (this reads the tensor from its device).
    owner : str, optional
        Whose ``event_shape`` it is (a model's class name), for the message.

    Returns
    -------
    torch.Tensor
        ``x`` unchanged.

    Raises
    ------
    TypeError
        If ``x`` is not a tensor, or not floating when ``floating`` is set.
    ValueError
        If ``x`` has no batch axis, the wrong event shape, no examples or
        non-finite values.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, ...), got {type(x).__name__}.")
    if x.dim() < 1:
        raise ValueError(f"{name} must have a leading batch axis (B, ...), got a 0-d tensor.")
    if event_shape is not None and tuple(x.shape[1:]) != tuple(event_shape):
        wanted = f"(B, {', '.join(map(str, event_shape))})"
        if owner is not None:
            raise ValueError(f"{name} has shape {tuple(x.shape)} but {owner} expects {wanted}.")
        raise ValueError(f"{name} must have shape {wanted}, got {tuple(x.shape)}.")
    if x.dim() - 1 < min_event_dims:
        raise ValueError(f"{name} must have shape (B, *event_shape) with at least "
                         f"{min_event_dims} event dimension(s), got shape {tuple(x.shape)}; for "
                         f"one-dimensional data use {name}[:, None] (shape (B, 1)).")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}; "
                        f"convert it with {name}.float() (or .double()).")
    if not allow_empty and x.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one example, got shape {tuple(x.shape)}.")
    if finite:
        check_finite(x, name)
    return x


def check_model_data(x: object, name: str, model: object = None, *,
                     min_event_dims: int = 0) -> Tensor:
    """Data for ``model``: a non-empty, finite floating batch with ``model.event_shape``
    (when the model has one) and at least ``min_event_dims`` event dimensions."""
    return check_batch(x, name, event_shape=getattr(model, "event_shape", None),
                       min_event_dims=min_event_dims, floating=True, allow_empty=False,
                       finite=True, owner=type(model).__name__)


def check_finite(x: Tensor, name: str = "x") -> Tensor:
    """Raise a :class:`ValueError` if ``x`` holds NaN or infinite values."""
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        n_bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {n_bad} non-finite value(s) (NaN or inf); "
                         "expected finite numbers.")
    return x


def check_in_support(x: Tensor, model: object, name: str = "x") -> Tensor:
    """For a discrete model (one with ``support = (a, b)``), values of ``x`` in ``{a, b}``."""
    support = getattr(model, "support", None)
    if support is None:
        return x
    a, b = float(support[0]), float(support[1])
    bad = (x != a) & (x != b)
    if bool(bad.any()):
        check_finite(x, name)  # NaN and inf get their own message
        raise ValueError(f"{name} must take only the values {a:g} and {b:g} of "
                         f"{type(model).__name__}'s units, got e.g. {x[bad][:3].tolist()}.")
    return x


def check_continuous_model(model: object, user: str) -> None:
    """Refuse a discrete model (one with ``support`` or ``gibbs_step``) for ``user``.

    Gradient-based samplers and score-based losses need :math:`\\nabla_x E`, which a
    model over binary or spin units does not have.
    """
    support = getattr(model, "support", None)
    if support is None and not hasattr(model, "gibbs_step"):
        return
    name = type(model).__name__
    units = "" if support is None else f" (its units take the values {tuple(support)})"
    raise ValueError(
        f"{user} does not apply to {name}: it needs continuous data and an energy "
        f"differentiable in x, and {name} is a discrete model{units}, on whose states -dE/dx "
        "is not defined. Sample it with ebmlab.gibbs; train it with 'mle', 'cd' or 'pcd' "
        "(contrastive divergence).")


def check_box(bounds: object, x: Tensor) -> Box | None:
    """A box ``(low, high)`` for clamping the states ``x``: numbers, or tensors that
    broadcast to ``x``'s event shape, with ``low < high``; returned as tensors in ``x``'s
    dtype on its device."""
    if bounds is None:
        return None
    if not isinstance(bounds, tuple | list) or len(bounds) != 2:
        raise ValueError(f"bounds must be a pair (low, high), got {bounds!r}.")
    ends: list[Tensor | float] = []
    for side, end in zip(("low", "high"), bounds, strict=True):
        if isinstance(end, Tensor):
            end = end.to(device=x.device, dtype=x.dtype)
            try:
                fits = torch.broadcast_shapes(end.shape, x.shape) == x.shape
            except RuntimeError:
                fits = False
            if not fits:
                raise ValueError(f"bounds {side} of shape {tuple(end.shape)} does not broadcast "
                                 f"to the event shape {tuple(x.shape[1:])}.")
            ends.append(end)
        else:
            ends.append(check_number(end, f"bounds {side}", finite=False))
    low, high = (torch.as_tensor(e, device=x.device, dtype=x.dtype) for e in ends)
    if not bool(torch.all(low < high)):
        raise ValueError(f"bounds must satisfy low < high, got bounds={bounds!r}.")
    return low, high


def check_rectangle(bounds: object, name: str = "bounds", *,
                    dims: Sequence[int] | None = (1, 2, 3)) -> tuple[tuple[float, float], ...]:
    """A window ``((low, high), ...)``, one finite pair with ``low < high`` per axis.

    A single pair ``(low, high)`` is one axis. ``dims`` lists the numbers of axes allowed
    (None: any).
    """
    if isinstance(bounds, Tensor):
        bounds = bounds.detach().cpu().tolist()
    if not isinstance(bounds, Sequence) or isinstance(bounds, str):
        raise TypeError(f"{name} must be a sequence of (low, high) pairs, one per axis, "
                        f"got {bounds!r}.")
    pairs = list(bounds)
    if pairs and not isinstance(pairs[0], Sequence | Tensor):
        pairs = [pairs]  # a single (low, high) pair
    box = []
    for pair in pairs:
        if not isinstance(pair, Sequence | Tensor) or len(pair) != 2:
            raise ValueError(f"{name} must be (low, high) pairs, one per axis, got {bounds!r}.")
        low, high = (check_number(end, name) for end in pair)
        if not low < high:
            raise ValueError(f"{name} must have min < max on each axis, got {bounds!r}.")
        box.append((low, high))
    if dims is not None and len(box) not in dims:
        raise ValueError(f"{name} must be {' or '.join(map(str, dims))} (min, max) pair(s), one "
                         f"per axis, got {len(box)}: {bounds!r}.")
    return tuple(box)


def check_resolution(resolution: object, dims: int, name: str = "resolution") -> tuple[int, ...]:
    """Grid points per axis: one int >= 2 for every axis, or ``dims`` such ints."""
    values = [resolution] * dims if isinstance(resolution, numbers.Integral) else resolution
    if not isinstance(values, Sequence) or isinstance(values, str) or len(values) != dims:
        raise ValueError(f"{name} must be an int >= 2 or {dims} such ints (one per axis), "
                         f"got {resolution!r}.")
    return tuple(check_int(n, name, minimum=2) for n in values)


def check_noise_level(sigma: object, x: Tensor, name: str = "sigma") -> Tensor:
    """A noise level :math:`\\sigma > 0` as a ``(B,)`` tensor in ``x``'s dtype and device.

    ``sigma`` is a number, a 0-d tensor or one level per example, ``(B,)``.
    """
    if not isinstance(sigma, Tensor):
        value = check_number(sigma, name, greater_than=0)
        return torch.full((x.shape[0],), value, dtype=x.dtype, device=x.device)
    if sigma.numel() == 1:
        levels = sigma.reshape(()).to(device=x.device, dtype=x.dtype).expand(x.shape[0])
    elif sigma.shape == (x.shape[0],):
        levels = sigma.to(device=x.device, dtype=x.dtype)
    else:
        raise ValueError(f"{name} must be a positive number, a 0-d tensor or a tensor of shape "
                         f"({x.shape[0]},) (one level per example), got shape "
                         f"{tuple(sigma.shape)}.")
    if not bool((torch.isfinite(levels) & (levels > 0)).all()):
        raise ValueError(f"{name} must be finite and > 0, got {sigma.detach().flatten()[:5]}.")
    return levels.detach()


def check_noise_levels(sigmas: object, name: str = "sigmas", *,
                       decreasing: bool = False) -> list[float]:
    r"""A non-empty ladder of noise levels :math:`\sigma_i > 0`, as Python floats.

    ``sigmas`` is a sequence of numbers or a 1-d tensor; with ``decreasing`` it must be
    non-increasing (largest first, :math:`\sigma_1 \ge \dots \ge \sigma_L`).
    """
    if isinstance(sigmas, Tensor):
        if sigmas.dim() != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {tuple(sigmas.shape)}.")
        items: list[object] = sigmas.detach().cpu().tolist()
    elif isinstance(sigmas, Sequence) and not isinstance(sigmas, str):
        items = list(sigmas)
    else:
        raise TypeError(f"{name} must be a sequence or a 1-d tensor of noise levels, got "
                        f"{type(sigmas).__name__}.")
    if not items:
        raise ValueError(f"{name} must be a non-empty 1-d sequence of noise levels (at least "
                         "one), got none.")
    if any(isinstance(s, bool) or not isinstance(s, numbers.Real) for s in items):
        raise TypeError(f"{name} must hold numbers, got {sigmas!r}.")
    values = [float(s) for s in items]  # type: ignore[arg-type]
    if not all(math.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"{name} must all be finite and > 0, got {values}.")
    if decreasing and any(b > a for a, b in itertools.pairwise(values)):
        raise ValueError(f"{name} must be non-increasing (largest first, sigma_1 >= ... >= "
                         f"sigma_L), got {values}.")
    return values


# ---------------------------------------------------------------------------- samplers


#: The dtypes the gradient-based samplers run in: half precision cannot resolve their steps.
SAMPLER_DTYPES = (torch.float32, torch.float64)


def check_sampler_states(x0: object) -> Tensor:
    """``x0`` of a gradient-based sampler: a non-empty, finite float32 or float64 batch."""
    x0 = check_batch(x0, "x0", floating=True, allow_empty=False, finite=True)
    if x0.dtype not in SAMPLER_DTYPES:
        raise TypeError(f"x0 must be float32 or float64, got {x0.dtype}; half precision cannot "
                        "resolve small Langevin steps: convert it with x0.float().")
    return x0


def check_sampler_arguments(energy: object, x0: object) -> Tensor:
    """:func:`check_sampler_states`, and ``energy`` a callable continuous model on ``x0``'s
    device."""
    check_callable(energy, "energy", "(B, ...) -> (B,)")
    check_continuous_model(energy, "a gradient-based sampler")
    x0 = check_sampler_states(x0)
    check_module_device(energy, x0, "energy")
    return x0


# ---------------------------------------------------------------------------- energies


def check_noise_conditional(model: object, name: str = "model") -> None:
    """A noise-conditional model, callable as ``model(x, sigma)``."""
    fn = model.forward if isinstance(model, torch.nn.Module) else model
    try:
        inspect.signature(fn).bind(None, None)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be noise-conditional, called as {name}(x, sigma) (e.g. "
                         f"ebmlab.NoiseConditionalScoreNet); {type(model).__name__} takes x "
                         "only. For a model of x alone use one noise level (denoising score "
                         "matching).") from None
    except ValueError:  # no signature to inspect (a builtin): trust the caller
        return


def owning_module(fn: object) -> torch.nn.Module | None:
    """``fn`` if it is a module, the module of a bound method such as ``net.score``, else None."""
    if isinstance(fn, torch.nn.Module):
        return fn
    owner = getattr(fn, "__self__", None)
    return owner if isinstance(owner, torch.nn.Module) else None


def check_module_device(fn: object, x: Tensor, name: str, x_name: str = "x0") -> None:
    """If ``fn`` is (a method of) a module with tensors, check they live on ``x``'s device."""
    module = owning_module(fn)
    if module is None:
        return
    first = next(iter([*module.parameters(), *module.buffers()]), None)
    if first is not None and first.device != x.device:
        raise ValueError(f"{name} lives on {first.device} but {x_name} is on {x.device}; move "
                         f"one of them (e.g. {name}.to({x_name}.device)).")


def evaluate_energy(energy: Callable[[Tensor], Tensor], x: Tensor,
                    name: str = "energy") -> Tensor:
    """``energy(x)``, checked to be one real number per example, shape ``(B,)``."""
    e = energy(x)
    if not isinstance(e, Tensor) or e.shape != (x.shape[0],):
        got = tuple(e.shape) if isinstance(e, Tensor) else type(e).__name__
        raise ValueError(f"{name} must map a batch of shape {tuple(x.shape)} to energies of "
                         f"shape ({x.shape[0]},), got {got}.")
    return e
