"""``check()``: grade one exercise from a notebook and show the report."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from . import _state
from ._report import Report
from ._runner import grade_function

__all__ = ["check"]


def _displays_results() -> bool:
    """True in IPython/Jupyter and the interactive interpreter, which show the returned value."""
    if hasattr(sys, "ps1"):
        return True
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        return ipython.get_ipython() is not None
    except Exception:  # pragma: no cover - defensive
        return False


def check(exercise_id: str, fn: Callable[..., Any], *, verbose: bool = False,
          timeout: float | None = None) -> Report:
    """Run the checks of exercise ``exercise_id`` on your function ``fn`` and show the result.

    Each check runs in a separate process (on Linux), with a time limit, so whatever your
    function does cannot break the notebook. In Jupyter the returned report displays as a
    table when ``check(...)`` is the last line of the cell: each check with pass/fail, its
    points, and for a failure what was expected, what came back and a hint. In a script
    it is printed.

    Parameters
    ----------
    exercise_id : str
        The exercise, ``"N.M"`` (e.g. ``"2.1"``).
    fn : callable
        Your function (the function itself, not a call of it).
    verbose : bool
        Also show tracebacks and what your function printed.
    timeout : float, optional
        Time limit of every check in seconds (default: each check's own, usually 10 s).

    Returns
    -------
    Report
        ``report.points``, ``report.max_points``, ``report.results``.

    Raises
    ------
    ValueError
        For an unknown exercise id.
    TypeError
        If ``fn`` is not callable.

    Examples
    --------
    >>> from ebmlab.exercises import check
    >>> check("2.1", score)  # doctest: +SKIP
    """
    if _state.GRADING:
        return Report(str(exercise_id), "", "", [],
                      note="check() does nothing while the autograder grades this file.")
    report = grade_function(exercise_id, fn, timeout=timeout, verbose=verbose)
    if not _displays_results():
        print(report.to_text())
    return report
