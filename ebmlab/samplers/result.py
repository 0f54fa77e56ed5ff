"""What the samplers return (:class:`SamplerResult`) and raise (:class:`SamplerDivergedError`)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

__all__ = ["SamplerDivergedError", "SamplerResult"]


class SamplerDivergedError(RuntimeError):
    """A sampler's state became non-finite (NaN or inf).

    Raised by the gradient-based samplers unless they are called with
    ``check_divergence=False``. The message names the steps between which the
    divergence was first detected and suggests a smaller step size.

    Attributes
    ----------
    first_step, last_step : int
        The state was finite after step ``first_step - 1`` and non-finite after
        step ``last_step`` (steps are counted from 1).
    """

    def __init__(self, message: str, first_step: int, last_step: int):
        super().__init__(message)
        self.first_step = first_step
        self.last_step = last_step


@dataclass
class SamplerResult:
    """What every sampler of :mod:`ebmlab.samplers` returns.

    Attributes
    ----------
    samples : torch.Tensor
        Final state of the chains, ``(B, *event_shape)``, detached, on the device
        and with the dtype of ``x0``.
    trajectory : torch.Tensor or None
        ``(T, B, *event_shape)`` states recorded every ``record_every`` steps
        (``trajectory[0]`` is the initial state), or ``None`` when not recorded.
    acceptance_rate : torch.Tensor or None
        0-d tensor, fraction of accepted Metropolis–Hastings proposals over all
        chains and steps (``None`` for samplers without an accept/reject step).
    chain_acceptance_rate : torch.Tensor or None
        ``(B,)`` fraction of accepted proposals of each chain (MALA only).
    """

    samples: Tensor
    trajectory: Tensor | None = None
    acceptance_rate: Tensor | None = None
    chain_acceptance_rate: Tensor | None = None

    def __repr__(self) -> str:
        def describe(t: Tensor | None) -> str:
            if t is None:
                return "None"
            return f"<{tuple(t.shape)} {str(t.dtype).removeprefix('torch.')} on {t.device}>"

        parts = [f"samples={describe(self.samples)}", f"trajectory={describe(self.trajectory)}"]
        if self.acceptance_rate is not None:
            parts.append(f"acceptance_rate={float(self.acceptance_rate):.3f}")
        return f"SamplerResult({', '.join(parts)})"
