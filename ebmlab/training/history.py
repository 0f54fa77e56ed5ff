"""The record of a training run: per-step losses and metrics evaluated every few steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["History"]


@dataclass
class History:
    """What :func:`ebmlab.training.fit` returns.

    Attributes
    ----------
    method : str
        Name of the objective (``"pcd"``, ``"ncsn"``, ... or a custom name).
    loss : list of float
        The loss of every optimisation step, ``loss[t - 1]`` for step ``t``.
    metrics : dict of str to list of (int, float)
        For each metric (callback) name, the ``(step, value)`` pairs at which it
        was evaluated.
    wall_time : float
        Seconds spent in training so far (summed over resumed runs).

    Examples
    --------
    >>> h = History(method="cd", loss=[1.0, 0.5], metrics={"ll": [(2, -3.0)]})
    >>> h.metric("ll")
    (array([2]), array([-3.]))
    """

    method: str = ""
    loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    wall_time: float = 0.0

    @property
    def steps(self) -> int:
        """Number of optimisation steps recorded."""
        return len(self.loss)

    def metric(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The evaluations of one metric as arrays ``(steps, values)``.

        Raises
        ------
        KeyError
            If no metric of that name was recorded (the message lists those that were).
        """
        if name not in self.metrics:
            known = ", ".join(map(repr, self.metrics)) or "none"
            raise KeyError(f"no metric named {name!r} in this history; recorded: {known}.")
        pairs = self.metrics[name]
        steps = np.array([s for s, _ in pairs], dtype=np.int64)
        values = np.array([v for _, v in pairs], dtype=np.float64)
        return steps, values

    def record(self, name: str, step: int, value: float) -> None:
        """Append one evaluation of metric ``name`` at ``step``."""
        self.metrics.setdefault(name, []).append((int(step), float(value)))

    def to_dict(self) -> dict[str, Any]:
        """Plain Python data (lists, floats, str): JSON- and checkpoint-friendly."""
        return {
            "method": self.method,
            "loss": list(self.loss),
            "metrics": {k: [(int(s), float(v)) for s, v in pairs]
                        for k, pairs in self.metrics.items()},
            "wall_time": float(self.wall_time),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> History:
        """Rebuild a :class:`History` from :meth:`to_dict`'s output."""
        return cls(
            method=str(state.get("method", "")),
            loss=[float(v) for v in state.get("loss", [])],
            metrics={k: [(int(s), float(v)) for s, v in pairs]
                     for k, pairs in state.get("metrics", {}).items()},
            wall_time=float(state.get("wall_time", 0.0)),
        )

    def __repr__(self) -> str:
        last = f", final loss {self.loss[-1]:.4g}" if self.loss else ""
        names = f", metrics {sorted(self.metrics)}" if self.metrics else ""
        return f"History(method={self.method!r}, {self.steps} steps{last}{names})"
