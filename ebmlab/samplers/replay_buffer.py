"""Replay buffer of persistent chains for MCMC-based EBM training (Du & Mordatch 2019)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .._validation import check_batch, check_generator, check_int, check_number
from ..utils import rand_like, randint

__all__ = ["ReplayBuffer"]

InitFn = Callable[..., Tensor]


class ReplayBuffer:
    r"""A fixed-size buffer of persistent chain states (Du & Mordatch 2019).

    Training a deep EBM with short-run Langevin chains works far better when the
    chains persist across parameter updates (persistent contrastive divergence,
    Tieleman 2008). The buffer holds ``capacity`` states; :meth:`sample` draws a
    batch of them uniformly, replacing each draw with probability
    ``reinit_prob`` by a fresh state from ``init`` (so the buffer keeps
    exploring), and :meth:`update` writes the evolved states back to the slots
    they came from.

    Parameters
    ----------
    capacity : int
        Number of stored states (typically much larger than the batch size).
    init : callable or torch.Tensor
        Either ``init(n, generator=None) -> (n, *event_shape)`` drawing fresh
        states (called with only ``n`` when no generator is given), or a tensor
        ``(capacity, *event_shape)`` of initial states; then fresh states are
        rows drawn uniformly from this tensor (a copy is kept). The buffer lives
        on the device and has the dtype of these states.
    reinit_prob : float
        Probability in ``[0, 1]`` that a drawn state is replaced by a fresh one.
    generator : torch.Generator, optional
        Passed to a callable ``init`` for the initial fill of the buffer.

    Attributes
    ----------
    data : torch.Tensor
        The stored states ``(capacity, *event_shape)``.

    Examples
    --------
    >>> import torch, ebmlab as el
    >>> buf = el.ReplayBuffer(1000, lambda n, generator=None: torch.rand(n, 2, generator=generator))
    >>> x, idx = buf.sample(64)
    >>> buf.update(idx, x + 0.01)
    >>> len(buf)
    1000
    """

    def __init__(self, capacity: int, init: InitFn | Tensor, reinit_prob: float = 0.05, *,
                 generator: torch.Generator | None = None):
        self.capacity = check_int(capacity, "capacity", minimum=1)
        self.reinit_prob = check_number(reinit_prob, "reinit_prob", at_least=0, at_most=1)
        check_generator(generator)
        if isinstance(init, Tensor):
            check_batch(init, "init", floating=True)
            if init.shape[0] != capacity:
                raise ValueError(f"init must hold capacity={capacity} states, shape "
                                 f"({capacity}, ...), got {tuple(init.shape)}.")
            self._pool: Tensor | None = init.detach().clone()
            self._init_fn: InitFn | None = None
            self.data = init.detach().clone()
        elif callable(init):
            self._pool = None
            self._init_fn = init
            self.data = self._fresh(capacity, generator)
        else:
            raise TypeError("init must be a callable init(n, generator=None) -> Tensor or a "
                            f"tensor of shape (capacity, ...), got {type(init).__name__}.")

    @property
    def event_shape(self) -> tuple[int, ...]:
        """Shape of one stored state."""
        return tuple(self.data.shape[1:])

    @property
    def device(self) -> torch.device:
        """Device of the stored states."""
        return self.data.device

    def __len__(self) -> int:
        return self.capacity

    def __repr__(self) -> str:
        return (f"ReplayBuffer(capacity={self.capacity}, event_shape={self.event_shape}, "
                f"reinit_prob={self.reinit_prob}, device={self.device})")

    def _fresh(self, n: int, generator: torch.Generator | None) -> Tensor:
        if self._pool is not None:
            idx = randint(self._pool.shape[0], n, self._pool.device, generator)
            return self._pool[idx]
        assert self._init_fn is not None
        x = self._init_fn(n) if generator is None else self._init_fn(n, generator=generator)
        if not isinstance(x, Tensor) or x.dim() < 1 or x.shape[0] != n:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"init(n) must return a tensor of shape (n, ...) = ({n}, ...), "
                             f"got {got}.")
        if hasattr(self, "data") and tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(f"init(n) returned states of shape {tuple(x.shape[1:])}, but the "
                             f"buffer holds {self.event_shape}.")
        return x.detach()

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``n`` states uniformly from the buffer (with replacement).

        Each draw is independently replaced, with probability ``reinit_prob``, by a
        fresh state from ``init``. No device synchronisation happens.

        Parameters
        ----------
        n : int
            Batch size, ``>= 1``.
        generator : torch.Generator, optional
            Source of randomness (also passed to ``init``).

        Returns
        -------
        x : torch.Tensor
            ``(n, *event_shape)``, a new tensor (not a view of the buffer).
        idx : torch.Tensor
            ``(n,)`` int64 slot indices, to pass back to :meth:`update`.
        """
        n = check_int(n, "n", minimum=1)
        check_generator(generator)
        idx = randint(self.capacity, n, self.device, generator)
        x = self.data[idx]
        if self.reinit_prob > 0:
            fresh = self._fresh(n, generator).to(device=self.device, dtype=self.data.dtype)
            u = rand_like(torch.empty(n, device=self.device), generator)
            mask = (u < self.reinit_prob).view((n,) + (1,) * (x.dim() - 1))
            x = torch.where(mask, fresh, x)
        return x, idx

    def update(self, idx: Tensor, x: Tensor) -> None:
        """Write states ``x`` (detached) back to slots ``idx``.

        Parameters
        ----------
        idx : torch.Tensor
            ``(n,)`` slot indices, as returned by :meth:`sample`.
        x : torch.Tensor
            ``(n, *event_shape)`` new states.
        """
        if not isinstance(idx, Tensor) or idx.dim() != 1 or idx.dtype not in (
            torch.int64, torch.int32
        ):
            raise TypeError(f"idx must be a 1-D integer tensor (as returned by sample), got "
                            f"{idx!r:.80}.")
        check_batch(x, "x", event_shape=self.event_shape, floating=True)
        if x.shape[0] != idx.shape[0]:
            raise ValueError(f"x holds {x.shape[0]} states but idx names {idx.shape[0]} slots.")
        if idx.numel() and not (0 <= int(idx.min()) and int(idx.max()) < self.capacity):
            raise ValueError(f"idx must name slots 0 to {self.capacity - 1} of the buffer, got "
                             f"indices from {int(idx.min())} to {int(idx.max())}.")
        self.data[idx.to(self.device)] = x.detach().to(device=self.device, dtype=self.data.dtype)

    def state_dict(self) -> dict[str, Any]:
        """The buffer's contents, for checkpoints (``torch.save``-able).

        A callable ``init`` is code, not state: pass it again to the constructor
        before :meth:`load_state_dict`.
        """
        state: dict[str, Any] = {"capacity": self.capacity, "reinit_prob": self.reinit_prob,
                                 "data": self.data.clone()}
        if self._pool is not None:
            state["init_pool"] = self._pool.clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the contents saved by :meth:`state_dict` (onto the buffer's device)."""
        missing = {"capacity", "reinit_prob", "data"} - set(state)
        if missing:
            raise ValueError(f"state_dict is missing key(s) {sorted(missing)}; expected the "
                             "output of ReplayBuffer.state_dict().")
        data = state["data"]
        if not isinstance(data, Tensor) or data.shape[0] != state["capacity"]:
            raise ValueError("state_dict['data'] must be a tensor of shape (capacity, ...).")
        if tuple(data.shape[1:]) != self.event_shape:
            raise ValueError(f"state_dict holds states of shape {tuple(data.shape[1:])}, but this "
                             f"buffer holds {self.event_shape}.")
        self.capacity = int(state["capacity"])
        self.reinit_prob = check_number(state["reinit_prob"], "reinit_prob", at_least=0, at_most=1)
        self.data = data.detach().to(device=self.device, dtype=self.data.dtype).clone()
        if "init_pool" in state and self._pool is not None:
            self._pool = state["init_pool"].detach().to(self._pool.device).clone()
