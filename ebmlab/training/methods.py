"""The built-in training methods by name: :data:`METHODS` and :func:`make_objective`.

Each method of the course is a small objective class (see
:class:`~ebmlab.training.Objective`): likelihood-based ones in
``ebmlab.training.contrastive`` and ``ebmlab.training.replay``, score-based ones in
``ebmlab.training.score``.
"""

from __future__ import annotations

import inspect
from typing import Any

from .contrastive import ContrastiveDivergence, MLEObjective, PersistentCD
from .objective import Objective
from .replay import MCMCReplay
from .score import DenoisingScoreMatching, NCSNObjective, ScoreMatching, SlicedScoreMatching

__all__ = ["METHODS", "make_objective"]

_REGISTRY: dict[str, type[Objective]] = {
    "mle": MLEObjective,
    "cd": ContrastiveDivergence,
    "pcd": PersistentCD,
    "sm": ScoreMatching,
    "ssm": SlicedScoreMatching,
    "dsm": DenoisingScoreMatching,
    "ncsn": NCSNObjective,
    "mcmc": MCMCReplay,
}

METHODS: tuple[str, ...] = tuple(_REGISTRY)
"""Names accepted as ``method`` by :func:`ebmlab.training.fit`."""


def make_objective(method: str, *, k: int = 1, **options: Any) -> Objective:
    """Build the objective object of a built-in method name.

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.
    k : int
        MCMC steps per update for ``"cd"`` and ``"pcd"`` (must stay 1 otherwise).
    **options
        Keyword arguments of the method's class (e.g. ``sigma`` for ``"dsm"``).

    Returns
    -------
    Objective

    Raises
    ------
    ValueError
        Unknown method name, or ``k`` given to a method without MCMC steps.
    TypeError
        An option the method does not take, or a missing required option.
    """
    if not isinstance(method, str) or method not in _REGISTRY:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)} "
                         "or an Objective object.")
    cls = _REGISTRY[method]
    params = {name: p for name, p in inspect.signature(cls.__init__).parameters.items()
              if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    valid = list(params)
    if "k" in params:
        options["k"] = k
    elif k != 1:
        raise ValueError(f"k={k!r} applies to 'cd' and 'pcd' only, not to {method!r}"
                         + (" (use n_steps=...)." if method == "mcmc" else "."))
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(map(repr, unknown))} for method "
                        f"{method!r}; valid options: {', '.join(valid) or 'none'}.")
    missing = [name for name, p in params.items()
               if p.default is inspect.Parameter.empty and name not in options]
    if missing:
        raise TypeError(f"method {method!r} needs the option(s) "
                        f"{', '.join(f'{m}=...' for m in missing)} "
                        f"(e.g. fit(model, data, {method!r}, {missing[0]}=0.1)).")
    return cls(**options)
