r"""Metric callbacks for :func:`ebmlab.training.fit`, evaluated every few steps.

A callback is any callable ``cb(model) -> float`` (or a dict of floats); the
optional attributes ``name`` and ``every`` set the key in
:attr:`History.metrics <ebmlab.training.History.metrics>` and the evaluation
period. The classes here wrap the measures of :mod:`ebmlab.metrics`; none of
them consumes the training's random numbers (the AIS callback owns a generator
reseeded at every evaluation), so adding a callback never changes the training.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from .. import metrics
from .._validation import check_int
from .history import History

__all__ = ["AISLogLikelihood", "ExactLogLikelihood", "GridKL", "MetricSchedule"]

Metric = Callable[[nn.Module], Any]


def _check_every(every: object) -> int | None:
    return None if every is None else check_int(every, "every", minimum=1)


class MetricSchedule:
    """The metric callbacks of a run and when each is due.

    Every callback is evaluated before training (step 0), every ``cb.every`` steps
    (default ``eval_every``) and at the last step. A callback returns a float, or a dict
    of floats recorded under their keys.

    Parameters
    ----------
    callbacks : callable or iterable of callable
        ``cb(model) -> float | dict[str, float]``; optional attributes ``name`` and
        ``every``.
    eval_every : int
        The default period.
    """

    def __init__(self, callbacks: Metric | Iterable[Metric], eval_every: int):
        eval_every = check_int(eval_every, "eval_every", minimum=1)
        if callable(callbacks):
            callbacks = (callbacks,)
        self.entries: list[tuple[str, int, Metric]] = []
        for cb in callbacks:
            if not callable(cb):
                raise TypeError(f"each callback must be callable as cb(model), got {cb!r}.")
            name = str(getattr(cb, "name", None) or getattr(cb, "__name__", type(cb).__name__))
            every = getattr(cb, "every", None) or eval_every
            self.entries.append((name, check_int(every, f"{name}.every", minimum=1), cb))

    def due(self, step: int, total: int) -> bool:
        """Whether a callback is due after ``step`` of ``total``."""
        return any(step % every == 0 or step == total for _, every, _ in self.entries)

    def evaluate(self, model: nn.Module, step: int, total: int, history: History) -> None:
        """Evaluate the callbacks due after ``step`` (all of them at step 0) into ``history``."""
        for name, every, cb in self.entries:
            if step == 0 or step % every == 0 or step == total:
                value = cb(model)
                values = value if isinstance(value, dict) else {name: value}
                for key, v in values.items():
                    history.record(str(key), step, float(v))


class ExactLogLikelihood:
    r"""Mean exact log-likelihood :math:`\frac1N\sum_n \log p_\theta(x_n)` of a data set.

    :math:`\log Z` by enumeration (RBMs: the smaller layer; Boltzmann machines
    and Ising models up to about :math:`2^{26}` states), see
    :func:`ebmlab.metrics.log_likelihood`.

    Parameters
    ----------
    data : torch.Tensor
        The data set ``(N, *event_shape)`` (training or held-out).
    every : int, optional
        Evaluation period in steps (default: ``fit``'s ``eval_every``).
    name : str
        Key in the history.
    """

    def __init__(self, data: torch.Tensor, *, every: int | None = None,
                 name: str = "log_likelihood"):
        self.data = data
        self.every = _check_every(every)
        self.name = name

    def __call__(self, model: nn.Module) -> float:
        with torch.no_grad():
            return float(metrics.log_likelihood(model, self.data))


class GridKL:
    r"""KL divergence :math:`\mathrm{KL}(p_\text{target}\,\|\,p_\theta)` on a 2D grid.

    Both densities are normalised by quadrature on ``bounds`` (see
    :func:`ebmlab.metrics.kl_divergence_grid`); for 2D models.

    Parameters
    ----------
    target_energy : callable
        Energy of the target density, ``(B, 2) -> (B,)``.
    bounds : ((float, float), (float, float))
        The box enclosing essentially all the mass of both densities.
    resolution : int
        Grid points per axis.
    every : int, optional
        Evaluation period in steps.
    name : str
        Key in the history.
    """

    def __init__(self, target_energy: Any, bounds: Any, *, resolution: int = 200,
                 every: int | None = None, name: str = "kl"):
        self.target_energy = target_energy
        self.bounds = bounds
        self.resolution = resolution
        self.every = _check_every(every)
        self.name = name

    def __call__(self, model: nn.Module) -> float:
        with torch.no_grad():
            return float(metrics.kl_divergence_grid(self.target_energy, model, self.bounds,
                                                     resolution=self.resolution))


class AISLogLikelihood:
    r"""Mean log-likelihood with :math:`\log Z` estimated by AIS (Neal 2001).

    Records the value under ``name`` and its standard error under
    ``name + "_stderr"``. AIS underestimates :math:`\log Z` on average, so the
    log-likelihood is an optimistic estimate (Salakhutdinov & Murray 2008).

    Parameters
    ----------
    data : torch.Tensor
        The data set.
    n_temperatures, n_runs : int
        AIS settings (see :func:`ebmlab.metrics.ais_log_likelihood`).
    seed : int
        Seed of the AIS generator, reset at every evaluation.
    every : int, optional
        Evaluation period in steps.
    name : str
        Key in the history.
    **ais_options
        Further keyword arguments of :func:`ebmlab.metrics.ais_log_likelihood`.
    """

    def __init__(self, data: torch.Tensor, *, n_temperatures: int = 1000, n_runs: int = 100,
                 seed: int = 0, every: int | None = None, name: str = "ais_log_likelihood",
                 **ais_options: Any):
        self.data = data
        self.n_temperatures = n_temperatures
        self.n_runs = n_runs
        self.seed = seed
        self.every = _check_every(every)
        self.name = name
        self.ais_options = ais_options

    def __call__(self, model: nn.Module) -> dict[str, float]:
        g = torch.Generator(device=self.data.device).manual_seed(self.seed)
        est = metrics.ais_log_likelihood(model, self.data, n_temperatures=self.n_temperatures,
                                          n_runs=self.n_runs, generator=g, **self.ais_options)
        return {self.name: float(est.log_likelihood), f"{self.name}_stderr": float(est.stderr)}
