r"""The training methods of :func:`ebmlab.training.fit`, by name (:data:`METHODS`) or as objects.

Each method of the course is a small :class:`Method` whose options are keyword-only
constructor arguments:

* likelihood-based (``likelihood``): :class:`ExactMLE`, :class:`ContrastiveDivergence`,
  :class:`PersistentCD`; MCMC with a replay buffer (``mcmc``): :class:`MCMCReplay`;
* score-based (``score``): :class:`ScoreMatching`, :class:`SlicedScoreMatching`,
  :class:`DenoisingScoreMatching`, :class:`NCSN`.

A new method is a :class:`Method` subclass (``loss``, and ``init``/``state_dict`` if it
keeps state) registered in :data:`METHODS` under its name.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .base import Method
from .likelihood import MAX_MCMC_STEPS, ContrastiveDivergence, ExactMLE, PersistentCD
from .mcmc import MCMCReplay
from .score import NCSN, DenoisingScoreMatching, ScoreMatching, SlicedScoreMatching

__all__ = [
    "MAX_MCMC_STEPS",
    "METHODS",
    "NCSN",
    "ContrastiveDivergence",
    "DenoisingScoreMatching",
    "ExactMLE",
    "MCMCReplay",
    "Method",
    "PersistentCD",
    "ScoreMatching",
    "SlicedScoreMatching",
    "make_method",
]

METHODS: dict[str, type[Method]] = {
    "mle": ExactMLE,
    "cd": ContrastiveDivergence,
    "pcd": PersistentCD,
    "sm": ScoreMatching,
    "ssm": SlicedScoreMatching,
    "dsm": DenoisingScoreMatching,
    "ncsn": NCSN,
    "mcmc": MCMCReplay,
}
"""The built-in methods by the name :func:`ebmlab.training.fit` accepts."""


def make_method(method: object, **options: Any) -> Method:
    """A :class:`Method`: the built-in one named ``method`` with ``options``, or ``method``.

    Parameters
    ----------
    method : str or Method
        A name in :data:`METHODS`, or a method object (then ``options`` must be empty).
    **options
        Keyword arguments of the method's class (e.g. ``k=5`` for ``"cd"``).

    Raises
    ------
    ValueError
        An unknown method name.
    TypeError
        An option the method does not take, a missing required option, options given
        with a method object, or a ``method`` that is neither a name nor a Method.

    Examples
    --------
    >>> make_method("cd", k=5).k
    5
    """
    if isinstance(method, Method):
        if options:
            raise TypeError(f"options {sorted(options)} apply to method names only; configure "
                            f"the method object {type(method).__name__} instead.")
        return method
    if not isinstance(method, str):
        raise TypeError(f"method must be one of {', '.join(map(repr, METHODS))} or a "
                        f"ebmlab.training.Method, got {type(method).__name__}.")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)} "
                         "or a Method object.")
    cls = METHODS[method]
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise TypeError(f"method {method!r} takes no option {', '.join(map(repr, unknown))}; "
                        f"its options are: {', '.join(fields) or 'none'}.")
    missing = [name for name, f in fields.items() if name not in options
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise TypeError(f"method {method!r} needs the option(s) "
                        f"{', '.join(f'{m}=...' for m in missing)} "
                        f"(e.g. fit(model, data, {method!r}, {missing[0]}=0.1)).")
    return cls(**options)
