r"""Exact :math:`\log Z` of discrete models by enumeration, in float64 and chunked."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol, TypeGuard

import torch
import torch.nn.functional as F

from .._validation import check_int
from ..energies.base import float64_energy
from ..utils import tensor_device_of

__all__ = ["RBMLike", "exact_log_partition", "is_rbm", "resolve_log_partition"]

# Cap on the elements of one enumerated RBM chunk (states x units of the other layer),
# 2**23 float64 numbers = 64 MiB, so that a 784 x 20 RBM stays within memory.
_MAX_CHUNK_ELEMENTS = 2**23


def exact_log_partition(
    model: Callable[[torch.Tensor], torch.Tensor],
    *,
    support: Sequence[float] | None = None,
    event_shape: Sequence[int] | None = None,
    chunk_size: int = 65536,
    max_states: int = 2**26,
    layer: str = "auto",
) -> torch.Tensor:
    r"""Exact log partition function of a discrete model by enumerating its states.

    .. math:: \log Z = \log \sum_{x} e^{-E(x)},

    summed over every configuration :math:`x \in \mathcal S^{d}` (:math:`\mathcal S`
    the values one unit takes) in float64, chunk by chunk, each chunk reduced with
    ``logsumexp`` so memory stays bounded whatever the number of states.

    For a restricted Boltzmann machine (any model with ``weight`` :math:`W`,
    ``visible_bias`` :math:`a` and ``hidden_bias`` :math:`b`, such as
    :class:`ebmlab.energies.RBM`) only the smaller layer is enumerated and the other
    is summed out in closed form:

    .. math:: \log Z = \log \sum_v e^{-F(v)} = \log \sum_h \exp\Big(b^\top h
              + \sum_i \operatorname{softplus}(a_i + W_{i:} h)\Big),

    so the cost is :math:`2^{\min(n_v, n_h)}` (a 784 x 20 RBM is exact).

    The result keeps the autograd graph to the model's parameters, so it can be
    differentiated (exact maximum likelihood); wrap the call in
    :func:`torch.no_grad` when no gradient is needed.

    Parameters
    ----------
    model : Energy or callable
        A discrete energy ``(B, *event_shape) -> (B,)`` with attributes ``support``
        and ``event_shape`` (e.g. ``Ising``, ``BoltzmannMachine``), an RBM, or a
        plain callable together with ``support=`` and ``event_shape=``.
    support : sequence of float, optional
        The values one unit takes, e.g. ``(0., 1.)`` or ``(-1., 1.)``; defaults to
        ``model.support``.
    event_shape : sequence of int, optional
        Shape of one configuration; defaults to ``model.event_shape``.
    chunk_size : int
        Number of states evaluated at once.
    max_states : int
        Refuse to enumerate more states than this.
    layer : {"auto", "visible", "hidden"}
        For an RBM, the layer to enumerate; ``"auto"`` takes the smaller one.

    Returns
    -------
    torch.Tensor
        :math:`\log Z` as a float64 0-d tensor on the model's device.

    Raises
    ------
    ValueError
        If the model has too many states to enumerate (the message gives the number
        of states and points to :func:`ebmlab.partition.ais`), or if ``support`` or
        ``event_shape`` are invalid.
    TypeError
        If ``model`` is not callable, or the support or event shape is unknown.

    Examples
    --------
    >>> import torch
    >>> energy = lambda x: -x.sum(dim=1)                # independent units, E = -sum x
    >>> log_z = exact_log_partition(energy, support=(0., 1.), event_shape=(3,))
    >>> round(float(log_z), 4)                          # 3 log(1 + e)
    3.9398
    """
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    max_states = check_int(max_states, "max_states", minimum=1)
    if layer not in ("auto", "visible", "hidden"):
        raise ValueError(f"layer must be 'auto', 'visible' or 'hidden', got {layer!r}.")
    if is_rbm(model):
        return _rbm_log_partition(model, chunk_size, max_states, layer)
    if layer != "auto":
        raise ValueError(f"layer={layer!r} applies to RBMs only; got a "
                         f"{type(model).__name__}.")
    if not callable(model):
        raise TypeError(f"model must be a callable energy (B, *event_shape) -> (B,), "
                        f"got {type(model).__name__}.")
    values = _resolve_support(model, support)
    shape = _resolve_event_shape(model, event_shape)
    d = math.prod(shape)
    k = len(values)
    n_states = k**d
    if n_states > max_states:
        raise ValueError(_too_many_states_message(model, f"{d} units", k, d, n_states,
                                                  max_states))
    energy = float64_energy(model)
    device = tensor_device_of(model, torch.device("cpu"))
    values_t = torch.tensor(values, dtype=torch.float64, device=device)
    powers = k ** torch.arange(d, device=device, dtype=torch.int64)
    partial = []
    for start in range(0, n_states, chunk_size):
        idx = torch.arange(start, min(start + chunk_size, n_states), device=device)
        digits = (idx[:, None] // powers) % k
        x = values_t[digits].reshape(-1, *shape)
        e = energy(x)
        if not isinstance(e, torch.Tensor) or e.shape != (x.shape[0],):
            got = tuple(e.shape) if isinstance(e, torch.Tensor) else type(e).__name__
            raise ValueError(f"model must map a batch of shape {tuple(x.shape)} to energies of "
                             f"shape ({x.shape[0]},), got {got}.")
        partial.append(torch.logsumexp(-e.to(torch.float64), dim=0))
    return torch.logsumexp(torch.stack(partial), dim=0)


def _rbm_log_partition(model: RBMLike, chunk_size: int, max_states: int,
                       layer: str) -> torch.Tensor:
    w = model.weight.to(torch.float64)
    a = model.visible_bias.to(torch.float64)
    b = model.hidden_bias.to(torch.float64)
    n_v, n_h = w.shape
    if layer == "auto":
        layer = "visible" if n_v <= n_h else "hidden"
    if layer == "visible":
        d, own_bias, other_bias, coupling = n_v, a, b, w
    else:
        d, own_bias, other_bias, coupling = n_h, b, a, w.T
    n_states = 2**d
    if n_states > max_states:
        what = (f"the smaller layer of this {n_v} x {n_h} RBM ({layer}) has {d} units"
                if d == min(n_v, n_h) else f"the {layer} layer of this RBM has {d} units")
        raise ValueError(_too_many_states_message(model, what, 2, d, n_states, max_states))
    rows = max(1, min(chunk_size, _MAX_CHUNK_ELEMENTS // max(coupling.shape[1], 1)))
    device = w.device
    powers = 2 ** torch.arange(d, device=device, dtype=torch.int64)
    partial = []
    for start in range(0, n_states, rows):
        idx = torch.arange(start, min(start + rows, n_states), device=device)
        x = ((idx[:, None] // powers) % 2).to(torch.float64)
        # -F(x) with the other layer summed out: own_bias.x + sum softplus(other_bias + x W)
        neg_free = x @ own_bias + F.softplus(other_bias + x @ coupling).sum(dim=1)
        partial.append(torch.logsumexp(neg_free, dim=0))
    return torch.logsumexp(torch.stack(partial), dim=0)


class RBMLike(Protocol):
    """What the RBM routines need of a model: its three parameter tensors."""

    weight: torch.Tensor
    visible_bias: torch.Tensor
    hidden_bias: torch.Tensor


def is_rbm(model: object) -> TypeGuard[RBMLike]:
    """A restricted Boltzmann machine: ``weight`` :math:`W` (2-d), ``visible_bias``,
    ``hidden_bias`` and ``hidden_free_energy`` (such as :class:`ebmlab.energies.RBM`)."""
    w = getattr(model, "weight", None)
    return (
        isinstance(w, torch.Tensor)
        and w.dim() == 2
        and isinstance(getattr(model, "visible_bias", None), torch.Tensor)
        and isinstance(getattr(model, "hidden_bias", None), torch.Tensor)
        and hasattr(model, "hidden_free_energy")
    )


def _too_many_states_message(model: object, what: str, k: int, d: int, n_states: int,
                             max_states: int) -> str:
    msg = (f"cannot enumerate {type(model).__name__}: {what}, so {k}**{d} = {n_states:,} states, "
           f"more than max_states={max_states:,}. Estimate log Z with "
           f"ebmlab.partition.ais (annealed importance sampling) instead")
    if all(hasattr(model, attr) for attr in ("coupling", "field", "periodic")):
        msg += ("; for a periodic Ising model at zero field, "
                "ebmlab.partition.ising_log_partition(rows, cols, coupling) is exact at any size")
    return msg + " (or raise max_states if you have the time)."


def _resolve_support(model: object, support: Sequence[float] | None) -> tuple[float, ...]:
    if support is None:
        support = getattr(model, "support", None)
        if support is None:
            raise TypeError(
                f"exact_log_partition needs the values each unit takes: {type(model).__name__} "
                "has no attribute 'support', so pass support=(low, high) and event_shape=(...)."
            )
    try:
        values = tuple(float(v) for v in support)
    except (TypeError, ValueError):
        raise TypeError(f"support must be a sequence of numbers such as (0., 1.), "
                        f"got {support!r}.") from None
    if len(values) < 2 or len(set(values)) != len(values) or not all(map(math.isfinite, values)):
        raise ValueError(f"support must hold at least two distinct finite values such as "
                         f"(0., 1.), got {support!r}.")
    return values


def _resolve_event_shape(model: object, event_shape: Sequence[int] | None) -> tuple[int, ...]:
    if event_shape is None:
        event_shape = getattr(model, "event_shape", None)
        if event_shape is None:
            raise TypeError(
                f"exact_log_partition needs the shape of one configuration: "
                f"{type(model).__name__} has no attribute 'event_shape', so pass event_shape=(...)."
            )
    if isinstance(event_shape, int):
        event_shape = (event_shape,)
    try:
        shape = tuple(int(s) for s in event_shape)
    except (TypeError, ValueError):
        raise TypeError(f"event_shape must be a tuple of ints, got {event_shape!r}.") from None
    if any(s < 1 for s in shape) or any(int(s) != s for s in event_shape):
        raise ValueError(f"event_shape must hold positive ints, got {event_shape!r}.")
    return shape


def resolve_log_partition(model: object, log_partition: object = None) -> torch.Tensor:
    r"""The :math:`\log Z` of ``model`` to use: given, or computed as exactly as possible.

    Parameters
    ----------
    model : Energy or callable
        The model.
    log_partition : number, tensor or callable, optional
        :math:`\log Z` itself, or a callable ``model -> 0-d tensor``. ``None``:
        ``model.log_partition()`` when the model has one (closed forms), otherwise exact
        enumeration (:func:`exact_log_partition`) for a discrete model.

    Returns
    -------
    torch.Tensor
        A finite 0-d tensor (differentiable when computed from the model).

    Raises
    ------
    ValueError
        If :math:`\log Z` is unknown (a continuous model without ``log_partition``), not a
        scalar or not finite.
    TypeError
        If ``log_partition`` is neither a number, a tensor nor a callable.
    """
    if log_partition is None:
        closed_form = getattr(model, "log_partition", None)
        if callable(closed_form):
            log_z = closed_form()
        elif getattr(model, "support", None) is not None:
            log_z = exact_log_partition(model)  # type: ignore[arg-type]
        else:
            raise ValueError(
                f"log Z of {type(model).__name__} is unknown: it has no log_partition() method "
                "and no discrete support to enumerate. Pass log_partition= as a tensor or a "
                "callable model -> 0-d tensor, e.g. lambda m: "
                "ebmlab.partition.grid_log_partition(m, bounds, resolution).")
    elif callable(log_partition):
        log_z = log_partition(model)
    else:
        log_z = log_partition
    if not isinstance(log_z, torch.Tensor):
        if isinstance(log_z, bool) or not isinstance(log_z, int | float):
            raise TypeError("log_partition must be a number, a 0-d tensor or a callable "
                            f"returning one, got {type(log_z).__name__}.")
        log_z = torch.tensor(float(log_z), dtype=torch.float64)
    if log_z.numel() != 1:
        raise ValueError(f"log_partition must be a scalar (0-d tensor), got shape "
                         f"{tuple(log_z.shape)}.")
    log_z = log_z.reshape(())
    if not bool(torch.isfinite(log_z)):
        raise ValueError(f"log_partition is not finite ({float(log_z)}).")
    return log_z
