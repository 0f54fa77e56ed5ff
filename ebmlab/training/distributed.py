r"""Data-parallel training under ``torch.distributed``: what :func:`~ebmlab.training.fit` asks
of the other processes.

Launched by ``torchrun --nproc_per_node=N script.py``, where the script calls
``torch.distributed.init_process_group("gloo")`` (CPU) or ``("nccl")`` (one GPU per
process) before ``fit``, every process runs the same ``fit`` call. ``fit`` finds the
process group (:meth:`DataParallel.current`) and then trains data-parallel:

* **one batch order** -- every process draws the same permutation from the *shared*
  generator (rank 0's state, broadcast at the start with the parameters), and process
  :math:`r` of :math:`W` takes its rows of each global batch (:meth:`~DataParallel.share`:
  contiguous, sizes differing by at most one);
* **one gradient** -- the gradient of the global batch's mean loss is the sum over
  processes of :math:`(n_r / B)\,\nabla\ell_r`, one ``all_reduce`` per step
  (:meth:`~DataParallel.average_gradients`). ``fit``'s methods set ``.grad`` themselves
  (autograd through :func:`torch.autograd.grad`, double backward for score matching, the
  closed-form RBM update), which :class:`~torch.nn.parallel.DistributedDataParallel`'s
  backward hooks never see, so the reduction is this one explicit call;
* **per-process chains** -- persistent chains and replay buffers are built for the whole
  run (the count the user asked for) and each process keeps its share
  (``Method.keep_share``); each process draws its chains' noise from its own generator
  (:meth:`~DataParallel.rank_generator`);
* **one decision** -- at every sync of the divergence guard the processes exchange their
  losses and checks (:meth:`~DataParallel.combine`), so all of them see the same numbers,
  stop at the same step and restore the same parameters;
* **one checkpoint** -- rank 0 writes it, with every process's chains joined
  (:meth:`~DataParallel.gather`) and every process's generator state.

A collective that the other processes never reach (one of them stopped or hung) fails
after the process group's ``timeout`` with a :class:`DistributedTimeoutError` that says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from .methods.base import Method

__all__ = ["DataParallel", "DistributedTimeoutError", "check_distributable", "note_redistributed",
           "share_bounds"]

T = TypeVar("T")


class DistributedTimeoutError(RuntimeError):
    """Another process of the group did not take part in a collective operation in time."""


def share_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of ``n`` that process ``rank`` of ``world_size`` owns.

    Contiguous shares in rank order, sizes ``n // world_size`` or one more (the first
    ``n % world_size`` processes take one more).

    Examples
    --------
    >>> [share_bounds(10, r, 3) for r in range(3)]
    [(0, 4), (4, 7), (7, 10)]
    """
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


@dataclass(frozen=True)
class DataParallel:
    """This process's place in a data-parallel run: ``rank`` of ``world_size`` processes."""

    rank: int
    world_size: int

    @classmethod
    def current(cls) -> DataParallel | None:
        """The running process group's view, or None outside one (or with one process)."""
        if not (dist.is_available() and dist.is_initialized()):
            return None
        world_size = dist.get_world_size()
        return None if world_size == 1 else cls(dist.get_rank(), world_size)

    @property
    def is_main(self) -> bool:
        """Whether this process writes the checkpoints and shows progress (rank 0)."""
        return self.rank == 0

    # ----------------------------------------------------------------- shares of the data

    def share(self, batch: torch.Tensor) -> tuple[torch.Tensor, float]:
        """This process's rows of a global batch (a view) and their fraction :math:`n_r/B`."""
        start, stop = share_bounds(batch.shape[0], self.rank, self.world_size)
        return batch[start:stop], (stop - start) / batch.shape[0]

    def rows(self, n: int) -> slice:
        """This process's rows of ``n`` persistent chains."""
        return slice(*share_bounds(n, self.rank, self.world_size))

    def check_batches(self, n: int, batch_size: int) -> None:
        """Every global batch (the last of an epoch included) gives each process a row."""
        last = n % batch_size or batch_size
        if min(batch_size, last) < self.world_size:
            raise ValueError(
                f"batch_size={batch_size} on {n} examples gives a batch of "
                f"{min(batch_size, last)} examples, fewer than the {self.world_size} processes "
                "training together; batch_size is the global batch: pass at least "
                f"batch_size={self.world_size} and one that leaves no smaller last batch "
                f"(e.g. a divisor of {n}).")

    # ----------------------------------------------------------------- the start

    def broadcast_start(self, model: nn.Module,
                        generator: torch.Generator | None) -> torch.Generator:
        """Give every process rank 0's parameters, buffers and shared generator.

        Returns the shared generator: ``generator`` with rank 0's state, or (when the run
        has none) a new one seeded from rank 0's global RNG, on the model's data device.
        """
        with torch.no_grad(), self._collective("the start of training"):
            for tensor in model.state_dict().values():
                dist.broadcast(tensor, src=0)
            state = None if generator is None else generator.get_state()
            seed = int(torch.randint(2**62, (1,)))  # used when there is no generator
            shared = self._broadcast_object((state, seed))
        if generator is None:
            device = next((t.device for t in model.state_dict().values()), torch.device("cpu"))
            return torch.Generator(device=device).manual_seed(shared[1])
        assert shared[0] is not None  # every process has a generator, or none has
        generator.set_state(shared[0])
        return generator

    def rank_generator(self, shared: torch.Generator) -> torch.Generator:
        """This process's own generator, for its chains and noise.

        Seeded from a number drawn from a copy of the shared generator (which is left
        untouched, so the batch order is that of a single process) plus the rank.
        """
        probe = torch.Generator(device=shared.device)
        probe.set_state(shared.get_state())
        seed = int(torch.randint(2**62, (1,), generator=probe, device=shared.device))
        return torch.Generator(device=shared.device).manual_seed(seed + self.rank + 1)

    def chain_generator(self, shared: torch.Generator, resume: object,
                        ranks: dict[str, Any] | None) -> torch.Generator:
        """This process's generator for its chains and noise (:meth:`rank_generator`).

        On a resume (``resume``: the checkpoint's path; ``ranks``: its ``ranks`` entry) by
        as many processes as wrote the checkpoint, the saved state of this process's
        generator, so the run continues exactly; by a different number, a new one (and
        rank 0 says so: the chains were redistributed).
        """
        own = self.rank_generator(shared)
        if resume is None:
            return own
        written_by = 1 if ranks is None else int(ranks["world_size"])
        if written_by == self.world_size and ranks is not None:
            own.set_state(ranks["generators"][self.rank])
        elif self.is_main:
            note_redistributed(resume, written_by, self.world_size)
        return own

    def barrier(self, what: str) -> None:
        """Wait until every process gets here (e.g. until rank 0 has written a checkpoint)."""
        with self._collective(what):
            dist.barrier()

    # ----------------------------------------------------------------- every step

    def average_gradients(self, params: Sequence[torch.Tensor], weight: float) -> None:
        r"""Replace every ``.grad`` by :math:`\sum_r w_r\,g_r` over the processes.

        ``weight`` is this process's :math:`w_r = n_r / B`, its share of the global
        batch, so the result is the gradient of the global batch's mean loss. One
        ``all_reduce`` per dtype on the gradients flattened into one buffer; a parameter
        without a gradient on this process contributes zeros and keeps ``grad=None``.
        """
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for p in params:
            by_dtype.setdefault(p.dtype, []).append(p)
        with self._collective("the gradient all-reduce"):
            for group in by_dtype.values():
                flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p))
                                  .reshape(-1) for p in group]).mul_(weight)
                dist.all_reduce(flat)
                offset = 0
                for p in group:
                    if p.grad is not None:
                        p.grad = flat[offset:offset + p.numel()].view_as(p)
                    offset += p.numel()

    # ----------------------------------------------------------------- syncs

    def combine(self, values: torch.Tensor, n_sums: int) -> torch.Tensor:
        """The guard's numbers of all processes: the first ``n_sums`` summed (the losses,
        already weighted by :math:`n_r / B`), the rest their maximum (non-finite flags,
        norms, energy magnitudes). A non-finite value on any process stays non-finite."""
        gathered = [torch.empty_like(values) for _ in range(self.world_size)]
        with self._collective("the divergence guard's sync"):
            dist.all_gather(gathered, values)
        stacked = torch.stack(gathered)
        return torch.cat([stacked[:, :n_sums].sum(0), stacked[:, n_sums:].amax(0)])

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """The average over the processes of metric values (the same keys everywhere)."""
        keys = sorted(values)
        device = (torch.device("cuda", torch.cuda.current_device())
                  if dist.get_backend() == "nccl" else torch.device("cpu"))  # NCCL: CUDA only
        tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64,
                              device=device)
        with self._collective("the metrics' average"):
            dist.all_reduce(tensor)
        return {k: v / self.world_size for k, v in zip(keys, tensor.tolist(), strict=True)}

    def gather(self, obj: T) -> list[T] | None:
        """Every process's ``obj`` (picklable), in rank order, on rank 0; None elsewhere."""
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        with self._collective("the checkpoint's gather"):
            dist.gather_object(obj, out, dst=0)
        return out

    # ----------------------------------------------------------------- helpers

    def _broadcast_object(self, obj: T) -> T:
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    @contextmanager
    def _collective(self, what: str) -> Iterator[None]:
        """Turn a timed-out or broken collective into an error that says what happened."""
        try:
            yield
        except RuntimeError as err:
            raise DistributedTimeoutError(
                f"process {self.rank} of {self.world_size}: the other processes did not take "
                f"part in {what} (another process stopped, failed or hung; a hung one is "
                "given up on after the process group's timeout, "
                f"init_process_group(..., timeout=...)). Original error: {err}") from err


def note_redistributed(resume: object, written_by: int, resumed_by: int) -> None:
    """Say that a checkpoint of ``written_by`` processes is resumed by ``resumed_by``."""
    warnings.warn(
        f"resume={str(resume)!r} was written by {written_by} process(es) and is resumed by "
        f"{resumed_by}: the persistent chains were redistributed ({resumed_by} share(s) of "
        "the same chains) and each process draws from a new random stream, so the run does "
        "not continue exactly as it would have; resume with the same number of processes "
        "for that.", stacklevel=3)


def check_distributable(method: Method) -> None:
    """Raise a ValueError if ``method`` keeps persistent state it cannot split across
    processes (it overrides ``state_dict`` but not ``keep_share`` and ``join_shares``)."""
    cls = type(method)
    stateful = cls.state_dict is not Method.state_dict
    splits = cls.keep_share is not Method.keep_share and cls.join_shares is not Method.join_shares
    if stateful and not splits:
        raise ValueError(
            f"method {method.name!r} ({cls.__name__}) cannot be distributed: it keeps "
            "persistent state (state_dict) but does not say how to split it across processes. "
            "Implement keep_share(rows) and join_shares(states) (see PersistentCD), or train "
            "it in one process.")
