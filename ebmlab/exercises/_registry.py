"""The registry of graded exercises: id, title, the student's function name, the checks.

Exercise definitions live in ``ebmlab/exercises/bank/chNN.py`` (one module per chapter)
and register themselves when the module is imported. The registry imports a chapter's
module lazily, the first time one of its exercises is asked for. An instructor's bank
(:func:`load_bank`) may register new exercises and add checks to existing ones.

The registry is the only source of the exercises graded, their checks and points: nothing
a sandbox reports can add to them.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import pkgutil
import re
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_TIMEOUT",
    "Check",
    "Exercise",
    "bank_chapters",
    "exercises",
    "get_exercise",
    "load_bank",
    "register",
]

#: Time limit (seconds) of one check when neither the check nor the caller sets one.
DEFAULT_TIMEOUT = 10.0

_ID = re.compile(r"^([1-9][0-9]*)\.([1-9][0-9]*)$")
_BANK_PACKAGE = __name__.rsplit(".", 1)[0] + ".bank"

#: A check receives the student's function (a :class:`~ebmlab.exercises.Student`) and the
#: :class:`~ebmlab.exercises.CheckContext`, and returns nothing (pass) or raises
#: :class:`~ebmlab.exercises.expect.CheckFailure` (fail).
CheckFunction = Callable[[Any, Any], None]

_REGISTRY: dict[str, Exercise] = {}
_OWNERS: dict[str, str] = {}
_LOADED_BANKS: set[str] = set()


def _parse_id(exercise_id: object) -> tuple[int, int]:
    if not isinstance(exercise_id, str) or not _ID.match(exercise_id):
        raise ValueError(f"an exercise id is a string 'N.M' (chapter.number, e.g. '2.1'), "
                         f"got {exercise_id!r}.")
    chapter, number = exercise_id.split(".")
    return int(chapter), int(number)


def _check_timeout(timeout: object, name: str = "timeout") -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, got {timeout!r}.")
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {timeout!r}.")
    return float(timeout)


@dataclass(frozen=True)
class Check:
    """One check of an exercise: a name, its points and the function that tests.

    Attributes
    ----------
    name : str
        What the check verifies, in words ("matches autograd on a neural energy").
    points : float
        Points earned when the check passes (0 otherwise): partial credit per check.
    function : callable
        ``function(student, ctx) -> None``; raises
        :class:`~ebmlab.exercises.expect.CheckFailure` when the student's function fails.
    timeout : float or None
        Time limit in seconds of the student's calls in this check; ``None`` uses
        :data:`DEFAULT_TIMEOUT`.
    """

    name: str
    points: float
    function: CheckFunction
    timeout: float | None = None


@dataclass
class Exercise:
    """A graded exercise: the student writes one function, the checks test it.

    Create exercises with :func:`register`, then add checks with the
    :meth:`check` decorator, in the order they should be shown.

    Attributes
    ----------
    id : str
        ``"N.M"``: chapter ``N``, exercise ``M``.
    title : str
        Short title shown in reports.
    function : str
        Name of the function the student defines (the stub's name); the command-line
        grader looks this name up in a submission.
    forbidden : tuple of str
        Dotted names of library functions that would solve the exercise (e.g.
        ``"ebmlab.score_of"``); inside the student's function they raise an error that says
        to write it yourself, and the check's status is ``forbidden``.
    checks : list of Check
        The checks, in order.
    """

    id: str
    title: str
    function: str
    forbidden: tuple[str, ...] = ()
    checks: list[Check] = field(default_factory=list)
    preparations: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _prepared: bool = field(default=False, repr=False)

    @property
    def chapter(self) -> int:
        """The chapter number ``N`` of the id ``"N.M"``."""
        return _parse_id(self.id)[0]

    @property
    def max_points(self) -> float:
        """Sum of the points of all checks."""
        return float(sum(c.points for c in self.checks))

    def prepare(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Decorator for a set-up function run before this exercise's first check.

        It runs once in the grading process and once in each sandbox, outside the checks'
        time limits: warm up what every check needs (e.g. the first operation on the
        "meta" device loads seconds of PyTorch code), so that a time limit measures the
        student's code. It must be picklable (a module-level function).
        """
        if not callable(fn):
            raise TypeError(f"prepare needs a callable, got {type(fn).__name__}.")
        self.preparations.append(fn)
        return fn

    def run_preparations(self) -> None:
        """Run the :meth:`prepare` functions, once per process."""
        if not self._prepared:
            for fn in self.preparations:
                fn()
            self._prepared = True

    def check(self, name: str, *, points: float = 1.0,
              timeout: float | None = None) -> Callable[[CheckFunction], CheckFunction]:
        """Decorator adding a check to this exercise.

        Parameters
        ----------
        name : str
            What the check verifies, shown in the report.
        points : float
            Points for passing it.
        timeout : float, optional
            Time limit in seconds of the student's calls in this check (default
            :data:`DEFAULT_TIMEOUT`); a caller's ``timeout=`` overrides it.

        Returns
        -------
        callable
            The decorator; it returns the check function unchanged.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a check name must be a non-empty string, got {name!r}.")
        if any(c.name == name for c in self.checks):
            raise ValueError(f"exercise {self.id} already has a check named {name!r}.")
        if isinstance(points, bool) or not isinstance(points, (int, float)) or not (
                math.isfinite(points) and points > 0):
            raise ValueError(f"points must be a finite number > 0, got {points!r}.")
        limit = _check_timeout(timeout)

        def decorate(fn: CheckFunction) -> CheckFunction:
            if not callable(fn):
                raise TypeError(f"a check must be callable, got {type(fn).__name__}.")
            self.checks.append(Check(name, float(points), fn, limit))
            return fn

        return decorate


def register(exercise_id: str, title: str, *, function: str,
             forbidden: tuple[str, ...] = ()) -> Exercise:
    """Register an exercise and return it, to attach checks with :meth:`Exercise.check`.

    Parameters
    ----------
    exercise_id : str
        ``"N.M"`` (chapter ``N``, exercise ``M``).
    title : str
        Short title.
    function : str
        Name of the student's function (a Python identifier).
    forbidden : tuple of str
        Dotted names of library functions that would solve the exercise; see
        :class:`Exercise`.

    Returns
    -------
    Exercise

    Raises
    ------
    ValueError
        On a malformed id or function name, or an id already registered by another module.

    Examples
    --------
    >>> ex = register("99.1", "Double it", function="double")  # doctest: +SKIP
    >>> @ex.check("doubles a tensor", points=1)                   # doctest: +SKIP
    ... def _doubles(double, ctx):
    ...     x = torch.randn(3, generator=ctx.generator(0))
    ...     expect_close(double(x), 2 * x, what="double(x)")
    """
    _parse_id(exercise_id)
    if not isinstance(title, str) or not title.strip():
        raise ValueError(f"title must be a non-empty string, got {title!r}.")
    if not isinstance(function, str) or not function.isidentifier():
        raise ValueError(f"function must be the name of the student's function (an "
                         f"identifier), got {function!r}.")
    if not (isinstance(forbidden, tuple) and all(isinstance(f, str) and f for f in forbidden)):
        raise ValueError(f"forbidden must be a tuple of dotted names, got {forbidden!r}.")
    caller = sys._getframe(1).f_globals.get("__name__", "?")
    if exercise_id in _REGISTRY and _OWNERS.get(exercise_id) != caller:
        raise ValueError(f"exercise {exercise_id} is already registered (by "
                         f"{_OWNERS.get(exercise_id, '?')}); pick another id, or add checks to "
                         f"it with get_exercise({exercise_id!r}).check(...).")
    ex = Exercise(exercise_id, title, function, forbidden)
    _OWNERS[exercise_id] = caller
    _REGISTRY[exercise_id] = ex
    return ex


def bank_chapters() -> list[int]:
    """Chapters that have a bank module ``ebmlab/exercises/bank/chNN.py``."""
    bank = importlib.import_module(_BANK_PACKAGE)
    chapters = []
    for info in pkgutil.iter_modules(bank.__path__):
        m = re.fullmatch(r"ch(\d+)", info.name)
        if m:
            chapters.append(int(m.group(1)))
    return sorted(chapters)


def _load_chapter(chapter: int) -> None:
    name = f"{_BANK_PACKAGE}.ch{chapter:02d}"
    if name in _LOADED_BANKS:
        return
    _LOADED_BANKS.add(name)
    if importlib.util.find_spec(name) is not None:
        importlib.import_module(name)


def load_bank(source: str | Path) -> None:
    """Import extra exercise definitions: a module name or the path of a ``.py`` file.

    Instructors keep their own exercises, and hidden checks for the course's exercises,
    outside the package; ``python -m ebmlab grade --bank FILE`` loads them the same way,
    in the grading process and in every sandbox (which needs the module to receive its
    objects).

    Raises
    ------
    ValueError
        If the module or file cannot be found.
    """
    text = str(source)
    if text.endswith(".py") or "/" in text or "\\" in text:
        path = Path(text).resolve()
        if not path.is_file():
            raise ValueError(f"exercise bank file {text!r} does not exist.")
        name = f"_ebmlab_bank_{zlib.crc32(str(path).encode()):08x}"
        if name in sys.modules:
            return
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:  # pragma: no cover - defensive
            raise ValueError(f"cannot import exercise bank file {text!r}.")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return
    try:
        importlib.import_module(text)
    except ModuleNotFoundError as exc:
        raise ValueError(f"exercise bank module {text!r} not found ({exc}).") from None


def get_exercise(exercise_id: str) -> Exercise:
    """The registered exercise ``"N.M"`` (importing its chapter's bank module if needed).

    Raises
    ------
    ValueError
        If the id is malformed or no such exercise exists; the message lists the
        exercises of that chapter.
    """
    chapter, _ = _parse_id(exercise_id)
    if exercise_id not in _REGISTRY:
        _load_chapter(chapter)
    if exercise_id not in _REGISTRY:
        known = [e.id for e in exercises(chapter)]
        listing = ", ".join(known) if known else "none"
        raise ValueError(f"no exercise {exercise_id!r}; exercises of chapter {chapter}: {listing}.")
    return _REGISTRY[exercise_id]


def exercises(chapter: int | None = None) -> list[Exercise]:
    """Registered exercises (of one chapter, or all), sorted by id.

    Imports the bank modules needed: the chapter's, or all of them.
    """
    if chapter is None:
        for c in bank_chapters():
            _load_chapter(c)
    else:
        _load_chapter(chapter)
    found = [e for e in _REGISTRY.values() if chapter is None or e.chapter == chapter]
    return sorted(found, key=lambda e: _parse_id(e.id))
