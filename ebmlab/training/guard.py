r"""The divergence guard of :func:`ebmlab.training.fit`: a state known to be good, and bounds.

The loss of step :math:`t` is evaluated at the parameters :math:`\theta_{t-1}` (so are
the energies and the sampler's chains of that step). The guard reads the losses from
the device only every few steps (a *sync*), so it keeps two snapshots of the
parameters (and floating buffers):

* ``candidate`` -- :math:`\theta_c` taken at the last sync :math:`c`;
* ``verified`` -- the previous candidate :math:`\theta_b`, known to be good: the step
  after it, :math:`b + 1 \le c`, had a finite loss (hence finite energies and chains).

When step :math:`j` fails -- a non-finite loss, a sampler that diverged, parameters
that became non-finite or left the optional bounds (counted as the step after the
sync that saw them) -- :math:`\theta_{j-1}` is bad, and the guard restores the latest
snapshot known to be good: the candidate if :math:`c \le j - 2` (every step up to
:math:`j - 1` was finite, so :math:`\theta_c`'s successor was), else the verified one.
With ``sync_every=1`` that is exactly :math:`\theta_{j-2}`.

The optional bounds catch a blow-up before it reaches ``inf``: ``max_param_norm`` on the
Euclidean norm of all parameters together, ``max_energy`` on :math:`|E|` of the last
minibatch. Both are read at the syncs, with the losses: one device read per sync.
"""

from __future__ import annotations

import math
from typing import NoReturn

import torch
from torch import nn

from ..samplers import SamplerDivergedError
from .history import History

__all__ = ["DivergenceGuard", "TrainingDivergedError"]


class TrainingDivergedError(RuntimeError):
    """Training produced a non-finite loss, parameters or samples, or left a bound.

    The model's parameters have been restored to the last ones known to be good (see
    ``ebmlab.training.guard``), so the model never holds NaNs.

    Attributes
    ----------
    step : int
        The step that failed (its loss, or its sampler, was not finite; or the
        parameters after the previous step were not).
    restored_step : int
        The step whose parameters were restored into the model.
    history : History
        The history up to the divergence (its last loss may be non-finite).
    """

    def __init__(self, message: str, *, step: int, restored_step: int, history: History):
        super().__init__(message)
        self.step = step
        self.restored_step = restored_step
        self.history = history


class DivergenceGuard:
    """Watch a training run for divergence; restore a known-good state when it happens.

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained (its floating parameters and buffers are snapshotted).
    history : History
        Receives the losses read at every sync.
    method : str
        The method's name, for the message.
    advice : str
        What to try, for the message (a ``"; "``-separated list of noun phrases).
    max_energy, max_param_norm : float, optional
        Bounds on :math:`\\max_b |E(x_b)|` over the last minibatch and on the parameters'
        norm.
    """

    def __init__(self, model: nn.Module, history: History, *, method: str, advice: str,
                 max_energy: float | None = None, max_param_norm: float | None = None):
        named = [(n, t.detach()) for n, t in model.state_dict(keep_vars=True).items()
                 if isinstance(t, torch.Tensor) and t.is_floating_point()]
        self.model = model
        self.history = history
        self.method = method
        self.advice = advice
        self.max_energy = max_energy
        self.max_param_norm = max_param_norm
        self._names = [n for n, _ in named]
        self._tensors = [t for _, t in named]
        self._params = [p.detach() for p in model.parameters()]
        self._verified = [t.clone() for t in self._tensors]
        self._candidate = [t.clone() for t in self._tensors]
        self._verified_step = self._candidate_step = history.steps
        self._losses: list[torch.Tensor] = []

    @property
    def pending(self) -> int:
        """Losses recorded since the last sync."""
        return len(self._losses)

    def record(self, loss: torch.Tensor) -> None:
        """Keep one step's (detached, 0-d) loss on the device until the next sync."""
        self._losses.append(loss)

    def sync(self, step: int, batch: torch.Tensor) -> list[float]:
        """Read the losses and checks after ``step`` from the device (one read).

        Returns the losses read (also appended to the history); on a failure restores the
        last good state and raises :class:`TrainingDivergedError`.
        """
        checks = [torch.isfinite(t).all() for t in self._tensors]
        if self.max_param_norm is not None:
            checks.append(torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(p) for p in self._params])))
        if self.max_energy is not None:
            with torch.no_grad():
                checks.append(self.model(batch).abs().max())
        values = torch.stack([*self._losses, *checks]).to(torch.float64).tolist() \
            if self._losses or checks else []
        losses, checks_read = values[:len(self._losses)], values[len(self._losses):]
        self._losses.clear()
        first = self.history.steps + 1
        bad_loss = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
        if bad_loss is not None:
            self.history.loss.extend(losses[:bad_loss + 1])
            self._fail(first + bad_loss, f"the loss was {losses[bad_loss]}")
        self.history.loss.extend(losses)
        finite = checks_read[:len(self._names)]
        bounds = checks_read[len(self._names):]
        bad_names = [n for n, ok in zip(self._names, finite, strict=True) if not ok]
        if bad_names:
            self._fail(step + 1, "the parameters " + ", ".join(bad_names) + " became non-finite")
        if self.max_param_norm is not None:
            norm = bounds.pop(0)
            if not norm <= self.max_param_norm:
                self._fail(step + 1, f"the parameters' norm reached {norm:.3g}, beyond "
                                     f"max_param_norm={self.max_param_norm:g}")
        if self.max_energy is not None:
            energy = bounds.pop(0)
            if not energy <= self.max_energy:
                self._fail(step + 1, f"an energy of the minibatch reached {energy:.3g}, beyond "
                                     f"max_energy={self.max_energy:g}")
        self._commit(step)
        return losses

    def sampler_diverged(self, step: int, error: SamplerDivergedError) -> NoReturn:
        """Step ``step``'s sampler raised ``error``: read the pending losses, restore, raise."""
        where = f" between its steps {error.first_step} and {error.last_step}"
        if self._losses:
            self.history.loss.extend(torch.stack(self._losses).to(torch.float64).tolist())
            self._losses.clear()
        self._fail(step, f"the sampler's chains became non-finite{where}", cause=error)

    def _commit(self, step: int) -> None:
        """Every loss up to ``step`` was finite: the candidate is verified, ``step``'s
        parameters become the candidate."""
        self._verified, self._candidate = self._candidate, self._verified
        self._verified_step = self._candidate_step
        with torch.no_grad():
            for snapshot, tensor in zip(self._candidate, self._tensors, strict=True):
                snapshot.copy_(tensor)
        self._candidate_step = step

    def _fail(self, step: int, what: str, cause: Exception | None = None) -> NoReturn:
        """Step ``step`` failed: restore the latest snapshot known to be good, then raise."""
        use_candidate = self._candidate_step <= step - 2
        snapshot = self._candidate if use_candidate else self._verified
        restored = self._candidate_step if use_candidate else self._verified_step
        with torch.no_grad():
            for tensor, saved in zip(self._tensors, snapshot, strict=True):
                tensor.copy_(saved)
        raise TrainingDivergedError(
            f"training with method {self.method!r} diverged at step {step}: {what}. The "
            f"parameters of step {restored} were restored into the model (the last known to "
            f"give a finite step). Try {self.advice}.",
            step=step, restored_step=restored, history=self.history) from cause
