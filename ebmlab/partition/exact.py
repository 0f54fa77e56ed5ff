r"""Exact :math:`\log Z` of discrete models by enumeration, in float64 and chunked."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol, TypeGuard

import torch
import torch.nn.functional as F

from .._validation import check_generator, check_int
from ..energies.base import float64_energy
from ..utils import floating_dtype_of, rand_like, tensor_device_of

__all__ = ["RBMLike", "exact_log_partition", "exact_samples", "is_rbm",
           "resolve_log_partition"]

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
    space = _state_space(model, support, event_shape, chunk_size, max_states, layer)
    partial = [torch.logsumexp(space.log_weight(space.states(space.chunk(c))), dim=0)
               for c in range(space.n_chunks)]
    return torch.logsumexp(torch.stack(partial), dim=0)


def exact_samples(
    model: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    *,
    generator: torch.Generator | None = None,
    support: Sequence[float] | None = None,
    event_shape: Sequence[int] | None = None,
    chunk_size: int = 65536,
    max_states: int = 2**26,
    layer: str = "auto",
) -> torch.Tensor:
    r"""Independent exact samples of a discrete model, by enumerating its states.

    Draws ``n`` states from :math:`p(x) = e^{-E(x)}/Z` with no Markov chain, so there is
    no burn-in and no correlation between samples. Two passes over the states, chunk by
    chunk, keep memory bounded: the first computes the probability mass of every chunk
    (the terms of :func:`exact_log_partition`), a chunk is drawn for each sample in
    proportion to its mass, and the second pass draws a state inside each chunk that was
    drawn, in proportion to :math:`e^{-E(x)}`.

    For a restricted Boltzmann machine only the smaller layer is enumerated. When that is
    the hidden layer, :math:`h` is drawn from its marginal
    :math:`p(h) \propto \exp\big(b^\top h + \sum_i \operatorname{softplus}(a_i +
    W_{i:} h)\big)` and then :math:`v \sim p(v \mid h)`: the pair is an exact draw of
    :math:`p(v, h)`, so :math:`v` is an exact draw of :math:`p(v)`. This is what reverse
    annealed importance sampling (:func:`ebmlab.partition.ais`) needs to start from.

    Parameters
    ----------
    model : Energy or callable
        As in :func:`exact_log_partition`: a discrete energy with ``support`` and
        ``event_shape``, an RBM, or a callable with ``support=`` and ``event_shape=``.
    n : int
        Number of samples.
    generator : torch.Generator, optional
        Source of randomness (it may live on another device than the model).
    support, event_shape, chunk_size, max_states, layer
        As in :func:`exact_log_partition`.

    Returns
    -------
    torch.Tensor
        ``(n, *event_shape)`` states on the model's device, in the dtype of its floating
        parameters (float64 for a plain callable); the visible states for an RBM.

    Raises
    ------
    ValueError
        As :func:`exact_log_partition` (too many states, bad support or event shape), or
        if ``n`` is not a positive int.
    TypeError
        As :func:`exact_log_partition`, or if ``generator`` is not a
        :class:`torch.Generator`.

    Examples
    --------
    >>> import torch
    >>> energy = lambda x: -2.0 * x.sum(dim=1)           # independent units, p(1) = sigmoid(2)
    >>> x = exact_samples(energy, 20000, support=(0., 1.), event_shape=(3,),
    ...                   generator=torch.Generator().manual_seed(0))
    >>> x.shape, bool(abs(x.mean() - torch.sigmoid(torch.tensor(2.0))) < 0.01)
    (torch.Size([20000, 3]), True)
    """
    n = check_int(n, "n", minimum=1)
    generator = check_generator(generator)
    with torch.no_grad():
        space = _state_space(model, support, event_shape, chunk_size, max_states, layer)
        chunk_mass = torch.stack([
            torch.logsumexp(space.log_weight(space.states(space.chunk(c))), dim=0)
            for c in range(space.n_chunks)])
        which = _draw_categorical(chunk_mass, n, generator)     # the chunk of each sample
        index = torch.empty(n, dtype=torch.int64, device=which.device)
        for c in torch.unique(which).tolist():
            rows = torch.nonzero(which == c).squeeze(1)
            in_chunk = space.chunk(c)
            log_weight = space.log_weight(space.states(in_chunk))
            index[rows] = in_chunk[_draw_categorical(log_weight, len(rows), generator)]
        x = space.states(index).to(space.dtype)
        if space.complete is not None:
            x = space.complete(x, generator)
    return x


class _StateSpace:
    """The states of a discrete model, enumerated in chunks of consecutive indices.

    State ``i`` has digits ``(i // k**j) % k`` (base ``k``, one digit per unit);
    ``log_weight`` gives the unnormalised log-probability of a batch of states, and for an
    RBM enumerated over its hidden layer, ``complete`` draws the visible units given them.
    """

    def __init__(self, values: torch.Tensor, shape: tuple[int, ...], rows: int,
                 log_weight: Callable[[torch.Tensor], torch.Tensor], dtype: torch.dtype,
                 complete: Callable[[torch.Tensor, torch.Generator | None],
                                    torch.Tensor] | None = None) -> None:
        self.values, self.shape, self.rows = values, shape, rows
        self.log_weight, self.dtype, self.complete = log_weight, dtype, complete
        d, k = math.prod(shape), len(values)
        self.n_states = k**d
        self.n_chunks = -(-self.n_states // rows)
        self._powers = k ** torch.arange(d, device=values.device, dtype=torch.int64)

    def chunk(self, c: int) -> torch.Tensor:
        """The indices of the states in chunk ``c``."""
        stop = min((c + 1) * self.rows, self.n_states)
        return torch.arange(c * self.rows, stop, device=self.values.device)

    def states(self, index: torch.Tensor) -> torch.Tensor:
        """The float64 states with the given indices, shape ``(len(index), *shape)``."""
        digits = (index[:, None] // self._powers) % len(self.values)
        return self.values[digits].reshape(-1, *self.shape)


def _state_space(model: object, support: Sequence[float] | None,
                 event_shape: Sequence[int] | None, chunk_size: int, max_states: int,
                 layer: str) -> _StateSpace:
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    max_states = check_int(max_states, "max_states", minimum=1)
    if layer not in ("auto", "visible", "hidden"):
        raise ValueError(f"layer must be 'auto', 'visible' or 'hidden', got {layer!r}.")
    if is_rbm(model):
        return _rbm_state_space(model, chunk_size, max_states, layer)
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

    def log_weight(x: torch.Tensor) -> torch.Tensor:
        e = energy(x)
        if not isinstance(e, torch.Tensor) or e.shape != (x.shape[0],):
            got = tuple(e.shape) if isinstance(e, torch.Tensor) else type(e).__name__
            raise ValueError(f"model must map a batch of shape {tuple(x.shape)} to energies of "
                             f"shape ({x.shape[0]},), got {got}.")
        return -e.to(torch.float64)

    device = tensor_device_of(model, torch.device("cpu"))
    values_t = torch.tensor(values, dtype=torch.float64, device=device)
    return _StateSpace(values_t, shape, chunk_size, log_weight,
                       floating_dtype_of(model) or torch.float64)


def _rbm_state_space(model: RBMLike, chunk_size: int, max_states: int,
                     layer: str) -> _StateSpace:
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

    def log_weight(x: torch.Tensor) -> torch.Tensor:
        # -F(x) with the other layer summed out: own_bias.x + sum softplus(other_bias + x W)
        return x @ own_bias + F.softplus(other_bias + x @ coupling).sum(dim=1)

    def visible_given_hidden(h: torch.Tensor, generator: torch.Generator | None
                             ) -> torch.Tensor:
        p_v = torch.sigmoid(h.to(torch.float64) @ w.T + a)
        return (rand_like(p_v, generator) < p_v).to(model.weight.dtype)

    values = torch.tensor((0.0, 1.0), dtype=torch.float64, device=w.device)
    return _StateSpace(values, (d,), rows, log_weight, model.weight.dtype,
                       visible_given_hidden if layer == "hidden" else None)


def _draw_categorical(log_weight: torch.Tensor, n: int,
                      generator: torch.Generator | None) -> torch.Tensor:
    """``n`` indices drawn with probabilities proportional to ``exp(log_weight)``.

    Inverse-CDF sampling (``searchsorted``), which, unlike ``torch.multinomial``, has no
    limit on the number of categories; the uniforms come from the generator's device.
    """
    cdf = torch.softmax(log_weight.to(torch.float64), dim=0).cumsum(dim=0)
    u = rand_like(torch.empty(n, dtype=torch.float64, device=cdf.device), generator)
    index = torch.searchsorted(cdf, u * cdf[-1], right=True)
    return index.clamp_(max=len(cdf) - 1)


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


def resolve_log_partition(model: object, log_partition: object = None, *,
                          finite: bool = True) -> torch.Tensor:
    r"""The :math:`\log Z` of ``model`` to use: given, or computed as exactly as possible.

    Parameters
    ----------
    model : Energy or callable
        The model.
    log_partition : number, tensor or callable, optional
        :math:`\log Z` itself, or a callable ``model -> 0-d tensor``. ``None``:
        ``model.log_partition()`` when the model has one (closed forms), otherwise exact
        enumeration (:func:`exact_log_partition`) for a discrete model.
    finite : bool
        Check that :math:`\log Z` is finite (a read back from the device; a training loop,
        whose divergence guard sees a non-finite loss anyway, passes ``False``).

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
    if finite and not bool(torch.isfinite(log_z)):
        raise ValueError(f"log_partition is not finite ({float(log_z)}).")
    return log_z
