r"""MCMC training with a replay buffer (Du & Mordatch 2019): :class:`MCMCReplay`.

Negatives are short Langevin runs (:class:`~ebmlab.samplers.LangevinKernel`, run by
:func:`~ebmlab.samplers.run_chain`) started from a :class:`~ebmlab.samplers.ReplayBuffer`
of past negatives; the loss is :func:`ebmlab.objectives.contrastive_loss` with its
energy-magnitude regulariser.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from ..._validation import check_box, check_continuous_model, check_int, check_number
from ...energies.base import score_of
from ...objectives import contrastive_loss
from ...samplers import LangevinKernel, ReplayBuffer, run_chain
from ...utils import frozen_parameters, rand_like
from .base import KeywordOptions, Method
from .likelihood import MAX_MCMC_STEPS

__all__ = ["MCMCReplay"]


@dataclass(kw_only=True)
class MCMCReplay(KeywordOptions, Method):
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
        Langevin steps per update, ``1 <= n_steps <= 10000``.
    alpha : float
        Energy-magnitude regulariser.
    grad_clip : float, optional
        Clip the energy gradient inside Langevin.
    bounds : (float, float), optional
        Clamp the chains to this box after every Langevin step (e.g. the pixel range).
    margin : float
        Relative widening of the data's bounding box for the noise restarts.
    """

    name: ClassVar[str] = "mcmc"
    hint: ClassVar[str] = ("a smaller Langevin step_size, a larger energy regulariser alpha, "
                           "or the Langevin grad_clip option")
    buffer_size: int = 10000
    reinit_prob: float = 0.05
    step_size: float = 0.01
    noise_scale: float | None = None
    n_steps: int = 20
    alpha: float = 0.1
    grad_clip: float | None = None
    bounds: tuple[float, float] | None = None
    margin: float = 0.1
    _buffer: ReplayBuffer | None = field(default=None, init=False, repr=False)
    _kernel: LangevinKernel | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        check_int(self.buffer_size, "buffer_size", minimum=1)
        check_number(self.reinit_prob, "reinit_prob", at_least=0, at_most=1)
        check_number(self.step_size, "step_size", greater_than=0)
        if self.noise_scale is not None:
            check_number(self.noise_scale, "noise_scale", at_least=0)
        check_int(self.n_steps, "n_steps", minimum=1, maximum=MAX_MCMC_STEPS)
        check_number(self.alpha, "alpha", at_least=0)
        if self.grad_clip is not None:
            check_number(self.grad_clip, "grad_clip", greater_than=0)
        check_number(self.margin, "margin", at_least=0)

    def init(self, model: nn.Module, data: torch.Tensor,
             generator: torch.Generator | None) -> None:
        """Check the model is a continuous energy; fill the buffer with uniform noise."""
        check_continuous_model(model, f"method {self.name!r}")
        low, high = data.amin(dim=0), data.amax(dim=0)
        pad = self.margin * (high - low)
        self._buffer = ReplayBuffer(self.buffer_size, _UniformBox(low - pad, high + pad),
                                    reinit_prob=self.reinit_prob, generator=generator)
        noise = math.sqrt(2 * self.step_size) if self.noise_scale is None else self.noise_scale
        self._kernel = LangevinKernel(functools.partial(score_of, model), self.step_size, noise,
                                      self.grad_clip, check_box(self.bounds, data))

    @property
    def buffer(self) -> ReplayBuffer | None:
        """The replay buffer of negatives."""
        return self._buffer

    def loss(self, model: nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        if self._buffer is None or self._kernel is None:
            raise RuntimeError("MCMCReplay.init(model, data, generator) must be called "
                               "before loss().")
        x0, slots = self._buffer.sample(batch.shape[0], generator=generator)
        with frozen_parameters(model), torch.no_grad():
            run = run_chain(self._kernel.init(x0), [(self._kernel, self.n_steps)],
                            generator=generator)
        negatives = run.state.position
        self._buffer.update(slots, negatives)
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
