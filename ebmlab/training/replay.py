r"""MCMC training with a replay buffer (Du & Mordatch 2019): :class:`MCMCReplay`.

Negatives are short Langevin runs (:func:`ebmlab.samplers.langevin`) started from a
:class:`~ebmlab.samplers.ReplayBuffer` of past negatives; the loss is
:func:`ebmlab.objectives.contrastive_loss` with its energy-magnitude regulariser.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._validation import check_positive
from ..objectives import contrastive_loss
from ..samplers import ReplayBuffer
from ..utils import rand_like
from .contrastive import _langevin_negatives
from .objective import Objective, _check_int, _require_continuous

__all__ = ["MCMCReplay"]


class MCMCReplay(Objective):
    r"""MCMC training with a replay buffer (Du & Mordatch 2019).

    Negatives come from short Langevin runs started from a replay buffer of past
    negatives (a fraction ``reinit_prob`` restarted from uniform noise over the
    data's bounding box, widened by ``margin``); the final states go back into the
    buffer. The loss is :func:`~ebmlab.objectives.contrastive_loss` with the
    regulariser :math:`\alpha(E(x^+)^2 + E(x^-)^2)`.

    Parameters
    ----------
    buffer_size : int
        Capacity of the replay buffer.
    reinit_prob : float
        Probability that a chain restarts from noise.
    step_size : float
        Langevin step :math:`\epsilon`.
    noise_scale : float, optional
        Langevin noise standard deviation (``None``: :math:`\sqrt{2\epsilon}`, the
        unadjusted Langevin algorithm).
    n_steps : int
        Langevin steps per update.
    alpha : float
        Energy-magnitude regulariser.
    grad_clip : float, optional
        Clip the energy gradient inside Langevin.
    margin : float
        Relative widening of the data's bounding box for the noise restarts.
    """

    name = "mcmc"
    hint = ("a smaller Langevin step_size, a larger energy regulariser alpha, or the "
            "Langevin grad_clip option")

    def __init__(self, buffer_size: int = 10000, reinit_prob: float = 0.05,
                 step_size: float = 0.01, noise_scale: float | None = None,
                 n_steps: int = 20, alpha: float = 0.1, grad_clip: float | None = None,
                 margin: float = 0.1):
        self.buffer_size = _check_int(buffer_size, "buffer_size")
        self.reinit_prob = reinit_prob
        self.step_size = step_size
        self.noise_scale = noise_scale
        self.n_steps = _check_int(n_steps, "n_steps")
        self.alpha = check_positive(alpha, "alpha", strict=False)
        self.grad_clip = grad_clip
        self.margin = margin
        self._buffer: ReplayBuffer | None = None

    def init(self, model: nn.Module, data: torch.Tensor,
             generator: torch.Generator | None) -> None:
        _require_continuous(model, data, self.name, "Langevin sampling")
        lo = data.amin(dim=0)
        hi = data.amax(dim=0)
        pad = self.margin * (hi - lo)
        box = _UniformBox(lo - pad, hi + pad)
        self._buffer = ReplayBuffer(self.buffer_size, box, reinit_prob=self.reinit_prob)
        # The constructor draws the initial states from the global RNG; redraw them from
        # ``generator`` so that a run is reproducible from its generator alone.
        state = self._buffer.state_dict()
        state["data"] = box(self.buffer_size, generator=generator)
        self._buffer.load_state_dict(state)

    @property
    def buffer(self) -> ReplayBuffer | None:
        """The replay buffer of negatives."""
        return self._buffer

    def loss(self, model: nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        if self._buffer is None:
            raise RuntimeError("MCMCReplay.init(model, data, generator) must be called "
                               "before loss().")
        x0, idx = self._buffer.sample(batch.shape[0], generator=generator)
        negatives = _langevin_negatives(model, x0, generator, step_size=self.step_size,
                                        n_steps=self.n_steps, noise_scale=self.noise_scale,
                                        grad_clip=self.grad_clip)
        self._buffer.update(idx, negatives)
        return contrastive_loss(model, batch, negatives, alpha=self.alpha, validate=False)

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": None if self._buffer is None else self._buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("buffer") is not None and self._buffer is not None:
            self._buffer.load_state_dict(state["buffer"])


class _UniformBox:
    """Uniform noise on a box, the replay buffer's restart distribution."""

    def __init__(self, low: torch.Tensor, high: torch.Tensor):
        self.low = low
        self.high = high

    def __call__(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        u = rand_like(self.low.expand(n, *self.low.shape), generator)
        return self.low + (self.high - self.low) * u
