"""Grade a submitted notebook or Python file: read its cells, run them in a sandbox, grade.

:func:`grade_file` is what ``python -m ebmlab grade`` does for each file. The cells are
read here, as text, and executed in a confined sandbox process (see
:mod:`ebmlab.exercises._supervisor`); a cell that raises is skipped, a cell that hangs or
ends the process is skipped on a fresh sandbox. The exercises graded come from the
caller, or are inferred from the file (:func:`plan_exercises`); their checks run here,
calling the student's functions in the sandbox. A check that times out or kills the
sandbox scores 0 and the next check gets a fresh sandbox, with the cells executed again.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ._confine import Limits
from ._registry import Exercise, exercises, get_exercise
from ._report import CheckResult, Report, SubmissionReport
from ._runner import grader_state, run_check
from ._sandbox import ListCallables, Prepare, RunCell
from ._student import CheckContext
from ._supervisor import STARTUP_TIMEOUT, CallTimeout, Sandbox, SandboxDied, SpawnedSandbox
from ._wire import ProtocolError

__all__ = ["Cell", "GradingError", "SubmissionError", "grade_file", "plan_exercises",
           "read_cells"]

#: Suffixes the grader reads.
SUFFIXES = (".ipynb", ".py")
#: Fresh sandboxes a submission may need after timeouts and crashes of its checks.
MAX_RESTARTS = 10
#: Seconds an exercise's set-up may take in a sandbox.
PREPARE_TIMEOUT = 120.0
_CHECK_CALL = re.compile(r"""\bcheck\(\s*["']([1-9][0-9]*\.[1-9][0-9]*)["']""")
_CHAPTER_IN_NAME = re.compile(r"(?:^|[^a-z0-9])ch(?:apter)?[ _-]?0*([1-9][0-9]*)", re.I)
_KEEP_CELL_MAGICS = ("%%time", "%%timeit", "%%capture")


class GradingError(Exception):
    """The submission could not be graded (missing or unreadable file, grader failure)."""


class SubmissionError(Exception):
    """The submission cannot be read (missing file, not a notebook, wrong suffix)."""


@dataclass(frozen=True)
class Cell:
    """A unit of code executed on its own: a notebook code cell, or a block of a ``.py``.

    ``number`` counts from 1 (code cells only, in order); ``filename`` names it in
    tracebacks; ``label`` names it in reports ("cell 3", or "line 12" in a ``.py``).
    """

    number: int
    source: str
    filename: str
    label: str


def _without_magics(source: str) -> str | None:
    """Turn IPython syntax into plain Python: line magics and shell lines become ``pass``.

    Returns None for a cell magic other than %%time/%%timeit/%%capture (not Python).
    """
    lines = source.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        if not lines[first].lstrip().startswith(_KEEP_CELL_MAGICS):
            return None
        lines[first] = ""
    out = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            out.append(line[: len(line) - len(stripped)] + "pass")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def _notebook_sources(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{path}: cannot read the file ({exc}).") from None
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SubmissionError(f"{path}: not a readable Jupyter notebook (invalid JSON at line "
                              f"{exc.lineno}: {exc.msg}).") from None
    if isinstance(nb, dict) and isinstance(nb.get("worksheets"), list):  # nbformat 3
        cells = [c for ws in nb["worksheets"] if isinstance(ws, dict)
                 for c in ws.get("cells", [])]
        key = "input"
    elif isinstance(nb, dict) and isinstance(nb.get("cells"), list):
        cells, key = nb["cells"], "source"
    else:
        raise SubmissionError(f"{path}: not a Jupyter notebook (no list of cells).")
    sources = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get(key, "")
        if isinstance(src, list):
            src = "".join(s for s in src if isinstance(s, str))
        if not isinstance(src, str):
            continue
        sources.append(src)
    return sources


def _python_blocks(source: str) -> list[tuple[int, str]]:
    """Split a ``.py`` into blocks executed one by one: ``# %%`` cells, else top-level statements.

    Returns ``(first_line, text)`` pairs. A file with a syntax error is split before every
    top-level ``def``/``class``/decorator, so one broken function does not hide the others.
    """
    lines = source.splitlines(keepends=True)
    markers = [i for i, line in enumerate(lines) if re.match(r"#\s*%%", line)]
    if markers:
        starts = sorted(set([0, *markers]))
    else:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            starts = [0] + [i for i, line in enumerate(lines)
                            if i > 0 and re.match(r"(def |class |async def |@)", line)]
            # keep decorators with the function they decorate
            starts = [s for j, s in enumerate(starts)
                      if j == 0 or not lines[s - 1].startswith("@")]
        else:
            starts = []
            for node in tree.body:
                first = min([node.lineno] + [d.lineno for d in
                                             getattr(node, "decorator_list", [])])
                starts.append(first - 1)
            starts = sorted(set([0, *starts]))
    blocks = []
    for a, b in zip(starts, [*starts[1:], len(lines)], strict=True):
        text = "".join(lines[a:b])
        if text.strip():
            blocks.append((a + 1, text))
    return blocks


def read_cells(path: str | Path) -> list[Cell]:
    """The code of a submission as cells.

    Parameters
    ----------
    path : str or Path
        A Jupyter notebook (``.ipynb``: its code cells) or a Python file (``.py``: its
        ``# %%`` cells if it has any, else its top-level statements).

    Raises
    ------
    SubmissionError
        If the file is missing, unreadable, or neither a notebook nor a Python file.
    """
    p = Path(path)
    if not p.exists():
        raise SubmissionError(f"{p}: no such file.")
    if not p.is_file():
        raise SubmissionError(f"{p}: not a file.")
    if p.suffix == ".ipynb":
        cells: list[Cell] = []
        for source in _notebook_sources(p):
            number = len(cells) + 1
            code = _without_magics(source)
            cells.append(Cell(number, code if code is not None else "", f"<cell {number}>",
                              f"cell {number}"))
        return cells
    if p.suffix == ".py":
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SubmissionError(f"{p}: cannot read the file ({exc}).") from None
        filename = str(p.resolve())
        # Pad with newlines so tracebacks give the file's own line numbers.
        return [Cell(i + 1, "\n" * (line - 1) + block, filename, f"line {line}")
                for i, (line, block) in enumerate(_python_blocks(text))]
    raise SubmissionError(f"{p}: expected a Jupyter notebook (.ipynb) or a Python file (.py), "
                          f"got {p.suffix or 'no suffix'!r}.")


def _chapters_named(path: Path, cells: list[Cell]) -> tuple[set[int], set[str]]:
    chapters = {int(m) for m in _CHAPTER_IN_NAME.findall(path.stem)}
    ids = {i for c in cells for i in _CHECK_CALL.findall(c.source)}
    return chapters | {int(i.split(".")[0]) for i in ids}, ids


def plan_exercises(path: str | Path, cells: list[Cell],
                   callables: set[str]) -> tuple[list[Exercise], str]:
    """The exercises to grade in a submission when the caller does not fix them, and how
    they were chosen (a sentence for the report).

    Every exercise of the chapters the submission names: the chapter in its file name
    (``ch02_...``, ``alice_ch2.py``) and the chapters of its ``check("N.M", ...)`` calls. A
    submission with neither is graded on every registered exercise whose function it
    defines (``callables``: the names its code defined). ``--exercises`` avoids the
    guess: then every student has the same maximum.
    """
    chapters, ids = _chapters_named(Path(path), cells)
    selected: dict[str, Exercise] = {}
    for chapter in sorted(chapters):
        for ex in exercises(chapter):
            selected[ex.id] = ex
    for exercise_id in ids:
        try:
            selected.setdefault(exercise_id, get_exercise(exercise_id))
        except ValueError:
            continue
    if selected:
        how = (f"exercises inferred from the chapter(s) {', '.join(map(str, sorted(chapters)))} "
               "named by the file name and its check() calls")
    else:
        selected = {ex.id: ex for ex in exercises() if ex.function in callables}
        how = ("exercises inferred from the functions the submission defines (no chapter in "
               "its file name or check() calls)")
    planned = sorted(selected.values(), key=lambda e: tuple(int(p) for p in e.id.split(".")))
    return planned, how + ": use --exercises to grade every submission on the same set."


def missing_report(ex: Exercise) -> Report:
    """Every check at 0 because the submission does not define the function."""
    what = f"`{ex.function}` is not defined as a function in the submission"
    hint = (f"define `{ex.function}` at the top level of a cell (keep the stub's name), and "
            "make sure the cell runs without an error.")
    return Report(ex.id, ex.title, ex.function,
                  [CheckResult(c.name, c.points, "not_implemented", what=what, hint=hint)
                   for c in ex.checks])


def _ungraded_report(ex: Exercise) -> Report:
    """Every check at 0 because the submission could not be graded."""
    return Report(ex.id, ex.title, ex.function,
                  [CheckResult(c.name, c.points, "error", what="not graded: the submission "
                               "broke the sandbox's protocol") for c in ex.checks])


@dataclass
class _Options:
    banks: tuple[str, ...]
    limits: Limits
    cell_timeout: float
    startup_timeout: float


class _Submission:
    """The sandboxes of one submission: the first executes the cells and records their
    errors; after a timeout or a crash the next one executes them again, without the cells
    that hung or ended the process."""

    def __init__(self, cells: list[Cell], options: _Options) -> None:
        self.cells = cells
        self.options = options
        self.errors: dict[int, str] = {}
        self.skipped: dict[int, str] = {}
        self.callables: set[str] = set()
        self.protections: list[str] = []
        self.restarts = 0
        self.peak_memory_kb = 0
        self._current: SpawnedSandbox | None = None
        self._prepared: set[str] = set()

    def sandbox(self) -> SpawnedSandbox:
        """A live sandbox that has executed the cells."""
        if self._current is not None and self._current.alive:
            return self._current
        self.discard()
        while True:
            sandbox = Sandbox.spawn(limits=self.options.limits, banks=self.options.banks,
                                    startup_timeout=self.options.startup_timeout)
            self.protections = sandbox.protections
            if self._run_cells(sandbox):
                self._current = sandbox
                self._prepared = set()
                return sandbox
            self._close(sandbox)

    def _run_cells(self, sandbox: Sandbox) -> bool:
        """Execute every cell not skipped; False when one hung or ended the sandbox (it is
        then skipped from now on; a sandbox that ends after the last cell, e.g. killed by a
        thread a cell started, has that cell skipped)."""
        last = None
        for cell in self.cells:
            if cell.number in self.skipped:
                continue
            try:
                reply = sandbox.request(RunCell(cell.source, cell.filename),
                                        timeout=self.options.cell_timeout)
            except CallTimeout:
                self.skipped[cell.number] = (f"the cell ran longer than "
                                             f"{self.options.cell_timeout:g} s; it was skipped")
                return False
            except SandboxDied as exc:
                self.skipped[cell.number] = f"{exc}; the cell was skipped"
                return False
            error = reply.header.get("error")
            if error is not None:
                self.errors[cell.number] = str(error)[:300]
            last = cell.number
        try:
            names = sandbox.request(ListCallables(), timeout=self.options.cell_timeout).header
        except (SandboxDied, CallTimeout) as exc:
            if last is None:
                raise
            self.skipped[last] = f"{exc or 'the sandbox stopped'} after it; the cell was skipped"
            return False
        if not (isinstance(names.get("names"), list)
                and all(isinstance(n, str) for n in names["names"])):
            raise ProtocolError("a malformed list of names")
        self.callables = set(names["names"])
        return True

    def prepare(self, ex: Exercise) -> None:
        """Run the exercise's set-up in the current sandbox, once."""
        sandbox = self.sandbox()
        if ex.preparations and ex.id not in self._prepared:
            sandbox.request(Prepare(tuple(ex.preparations)), timeout=PREPARE_TIMEOUT)
        self._prepared.add(ex.id)

    def discard(self) -> None:
        """End the current sandbox (after a timeout or a crash); the next one is fresh."""
        if self._current is not None:
            self._close(self._current)
            self._current = None
            self.restarts += 1

    def _close(self, sandbox: Sandbox) -> None:
        sandbox.close()
        self.peak_memory_kb = max(self.peak_memory_kb, sandbox.peak_memory_kb or 0)


    def close(self) -> None:
        """End everything."""
        if self._current is not None:
            self._close(self._current)
            self._current = None

    def cell_errors(self) -> list[tuple[str, str]]:
        """``(label, error)`` of the cells that failed, in order."""
        labels = {c.number: c.label for c in self.cells}
        found = self.errors | self.skipped
        return [(labels.get(n, f"cell {n}"), found[n]) for n in sorted(found)]


def _grade_exercise(submission: _Submission, ex: Exercise, ctx: CheckContext,
                    timeout: float | None) -> Report:
    if ex.function not in submission.callables:
        return missing_report(ex)
    with grader_state(0):
        ex.run_preparations()
    results = []
    for c in ex.checks:
        if submission.restarts > MAX_RESTARTS:
            results.append(CheckResult(
                c.name, c.points, "error",
                what=f"not run: the submission needed more than {MAX_RESTARTS} fresh sandboxes",
                hint="its functions time out or crash the process again and again."))
            continue
        try:
            submission.prepare(ex)
            sandbox = submission.sandbox()
            process = sandbox.fork_check()
        except (SandboxDied, CallTimeout) as exc:
            results.append(CheckResult(c.name, c.points, "error", what=str(exc) or
                                       "the sandbox stopped answering"))
            submission.discard()
            continue
        try:
            results.append(run_check(process, ex, c, ctx, timeout=timeout))
        finally:
            process.close()
        if not sandbox.alive:
            submission.discard()
    return Report(ex.id, ex.title, ex.function, results)


def grade_file(path: str | Path, *, exercises: list[Exercise] | None = None, seed: int = 0,
               timeout: float | None = None, cell_timeout: float = 60.0,
               banks: tuple[str, ...] | list[str] = (), limits: Limits | None = None,
               startup_timeout: float = STARTUP_TIMEOUT) -> SubmissionReport:
    """Grade a submitted notebook or Python file; its code runs in a confined sandbox.

    Parameters
    ----------
    path : str or Path
        A ``.ipynb`` or ``.py`` file.
    exercises : list of Exercise, optional
        What to grade (so that every student has the same maximum); default: inferred
        by :func:`plan_exercises` (the report says how).
    seed : int
        The instance of the checks' inputs (the command line draws a fresh one).
    timeout : float, optional
        Time limit of every check in seconds (default: each check's own limit).
    cell_timeout : float
        Time limit of each cell in seconds.
    banks : sequence of str
        Extra exercise definitions and hidden checks (module names or ``.py`` paths), see
        :func:`~ebmlab.exercises.load_bank`; they must already be loaded here too.
    limits : Limits, optional
        Resource limits of the sandbox.
    startup_timeout : float
        Seconds allowed for a sandbox to start.

    Returns
    -------
    SubmissionReport
        With ``error`` set when the submission broke the sandbox protocol (forged or
        malformed messages): it then scores 0.

    Raises
    ------
    GradingError
        If the file is missing or unreadable, or no sandbox can be started.
    """
    p = Path(path)
    try:
        cells = read_cells(p)
    except SubmissionError as exc:
        raise GradingError(str(exc)) from None
    for name, value in (("cell_timeout", cell_timeout), ("startup_timeout", startup_timeout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}.")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(
            timeout, (int, float)) or not timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0 or None, got {timeout!r}.")
    report = SubmissionReport(str(path), seed=seed)
    located = tuple(str(Path(b).resolve()) if b.endswith(".py") or "/" in b else b
                    for b in banks)
    submission = _Submission(cells, _Options(located, limits or Limits(), float(cell_timeout),
                                             float(startup_timeout)))
    ctx = CheckContext(seed=seed, device=torch.device(
        "cuda" if torch.cuda.is_available() else "meta"))
    planned = list(exercises) if exercises is not None else None
    try:
        submission.sandbox()
        if planned is None:
            planned, how = plan_exercises(p, cells, submission.callables)
            report.notes.append(how)
        for ex in planned:
            report.exercises.append(_grade_exercise(submission, ex, ctx, timeout))
    except ProtocolError as exc:
        report.error = (f"the submission broke the sandbox's protocol ({exc}): it wrote "
                        "forged or malformed messages, so nothing it reported can be trusted")
        graded = {e.exercise_id for e in report.exercises}
        report.exercises += [_ungraded_report(ex) for ex in planned or [] if ex.id not in graded]
    except RuntimeError as exc:
        raise GradingError(f"{p}: {exc}") from None
    finally:
        submission.close()
    report.cell_errors = submission.cell_errors()
    report.notes += [f"sandbox: {note}" for note in submission.protections]
    report.peak_memory_mb = round(submission.peak_memory_kb / 1024, 1)
    if not report.exercises and report.error is None:
        report.notes.append("no exercise found: name the file after its chapter (e.g. "
                            "ch02_score_langevin.ipynb), or grade with --exercises.")
    return report
