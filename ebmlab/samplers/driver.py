r"""The one driver of every sampler: it runs a kernel's steps and owns everything around them.

A *kernel* (:class:`Kernel`) knows one transition of a Markov chain: ``step(state,
generator)`` takes a state record (any object with a ``position``, e.g.
:class:`~ebmlab.samplers.LangevinState`) and returns the next one, without touching the
old. :func:`run_chain` applies kernels for a number of steps and is the only place that

* records the trajectory (:class:`Trajectory`),
* watches for divergence without a host synchronisation in the loop
  (:class:`DivergenceMonitor`),
* shows progress.

The public samplers (:func:`~ebmlab.samplers.langevin`, ...) are validation, a kernel's
``init`` and this driver; training (:func:`ebmlab.training.fit`) calls the same kernels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import torch
from torch import Tensor

from .._validation import check_bool, check_generator, check_int
from .result import SamplerDivergedError

__all__ = ["CHECK_EVERY", "ChainRun", "ChainState", "DivergenceMonitor", "Kernel", "Trajectory",
           "run_chain"]

#: Steps between two on-device finiteness checks of the chain state.
CHECK_EVERY = 10


class ChainState(Protocol):
    """What the driver needs of a state record: where the chains are."""

    @property
    def position(self) -> Tensor:
        """The states of the chains, ``(B, *event_shape)``."""
        ...


S = TypeVar("S", bound=ChainState)


class Kernel(Protocol[S]):
    """One transition of a Markov chain on a state record of type ``S``, and where it starts."""

    def init(self, x0: Tensor) -> S:
        """The state of chains at (a copy of) the positions ``x0``."""
        ...

    def step(self, state: S, generator: torch.Generator | None) -> S:
        """The next state; ``state`` itself is left unchanged."""
        ...


@dataclass
class ChainRun(Generic[S]):
    """What :func:`run_chain` returns: the final state and the recorded positions."""

    state: S
    trajectory: Tensor | None


class Trajectory:
    """Preallocated positions: ``tensor[0]`` the start, then one every ``every`` steps."""

    def __init__(self, start: Tensor, n_steps: int, every: int | None):
        self.every = every
        self.tensor: Tensor | None = None
        if every is not None:
            self.tensor = start.new_empty((1 + n_steps // every, *start.shape))
            self.tensor[0].copy_(start)

    def record(self, t: int, position: Tensor) -> None:
        """Store ``position`` if step ``t`` is one to record."""
        if self.tensor is not None and self.every is not None and t % self.every == 0:
            self.tensor[t // self.every].copy_(position)


class DivergenceMonitor:
    """Detect a non-finite chain state without a device synchronisation inside the loop.

    Every :data:`CHECK_EVERY` steps (and at the last step) the flag
    ``isfinite(x).all()`` is written into a preallocated boolean tensor on the device; a
    non-finite state stays non-finite (NaN propagates), so the first false flag brackets
    the step where the chains diverged. On the CPU, where reading a flag costs nothing,
    the error is raised at once (``eager``); on an accelerator the flags are read once,
    in :meth:`finish`.

    Parameters
    ----------
    start : torch.Tensor
        The initial positions (their device decides ``eager``).
    n_steps : int
        The length of the run.
    sampler : str
        The sampler's name, for the message.
    advice : str
        What to try instead, for the message (e.g. ``"try a smaller step_size"``).
    """

    def __init__(self, start: Tensor, n_steps: int, *, sampler: str, advice: str):
        self.n_steps = n_steps
        self.sampler = sampler
        self.advice = advice
        self.eager = start.device.type == "cpu"
        self.flags = torch.ones(math.ceil(n_steps / CHECK_EVERY), dtype=torch.bool,
                                device=start.device)

    def check(self, t: int, position: Tensor) -> None:
        """Watch the positions after step ``t``."""
        if t % CHECK_EVERY != 0 and t != self.n_steps:
            return
        k = (t - 1) // CHECK_EVERY
        finite = torch.isfinite(position).all()
        if self.eager:
            if not bool(finite):
                self._raise(k)
        else:
            self.flags[k].copy_(finite)

    def finish(self) -> None:
        """Read the flags stored on the device (one synchronisation) and raise if one is off."""
        if not self.eager and self.n_steps > 0 and not bool(self.flags.all()):
            self._raise(int(torch.argmin(self.flags.to(torch.uint8))))

    def _raise(self, k: int) -> None:
        first = k * CHECK_EVERY + 1
        last = min((k + 1) * CHECK_EVERY, self.n_steps)
        raise SamplerDivergedError(
            f"{self.sampler} diverged: the chain state became non-finite (NaN or inf) between "
            f"step {first} and step {last} of {self.n_steps}. {self.advice}. Pass "
            "check_divergence=False to skip this check.", first, last)


def run_chain(state: S, schedule: Sequence[tuple[Kernel[S], int]], *,
              generator: torch.Generator | None = None, record_every: int | None = None,
              check_divergence: bool = False, progress: bool = False, sampler: str = "chain",
              advice: str = "") -> ChainRun[S]:
    """Run the kernels of ``schedule`` from ``state``: each ``(kernel, n)`` for ``n`` steps.

    Parameters
    ----------
    state : state record
        The initial state, e.g. from a kernel's ``init``.
    schedule : sequence of (Kernel, int)
        The kernels in the order they run and their numbers of steps (one pair for a
        sampler with fixed settings; one per noise level for annealed Langevin).
    generator : torch.Generator, optional
        Passed to every step.
    record_every : int, optional
        Record the positions every ``record_every`` steps (``trajectory[0]`` is the start).
    check_divergence : bool
        Raise :class:`~ebmlab.samplers.SamplerDivergedError` when the positions become
        non-finite (see :class:`DivergenceMonitor`); its message ends with ``advice``.
    progress : bool
        Show a tqdm progress bar named ``sampler``.
    sampler, advice : str
        For the progress bar and the divergence message.

    Returns
    -------
    ChainRun
        The final state and the trajectory (or None).

    Raises
    ------
    TypeError, ValueError
        For a ``generator``, ``record_every``, ``check_divergence`` or ``progress`` of the
        wrong type or value.
    """
    check_generator(generator)
    if record_every is not None:
        check_int(record_every, "record_every", minimum=1)
    check_divergence = check_bool(check_divergence, "check_divergence")
    progress = check_bool(progress, "progress")
    n_steps = sum(n for _, n in schedule)
    trajectory = Trajectory(state.position, n_steps, record_every)
    monitor = (DivergenceMonitor(state.position, n_steps, sampler=sampler, advice=advice)
               if check_divergence and n_steps > 0 else None)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_steps, desc=sampler, leave=False)
    t = 0
    for kernel, n in schedule:
        for _ in range(n):
            t += 1
            state = kernel.step(state, generator)
            trajectory.record(t, state.position)
            if monitor is not None:
                monitor.check(t, state.position)
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    if monitor is not None:
        monitor.finish()
    return ChainRun(state, trajectory.tensor)
