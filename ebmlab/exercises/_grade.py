"""Grade a submitted file in a separate worker process, in bounded time, whatever it contains."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._report import CheckResult, Report, SubmissionReport
from ._submission import SubmissionError, read_cells

__all__ = ["GradingError", "grade_file"]

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
#: Seconds allowed between two events outside cells and checks (planning, bookkeeping).
_GAP = 60.0


class GradingError(Exception):
    """The submission could not be graded (missing or unreadable file, grader failure)."""


@dataclass
class _Attempt:
    """What one run of the worker reported before it finished or died."""

    started: bool = False
    done: bool = False
    fatal: str | None = None
    plan: list[dict[str, Any]] | None = None
    reports: dict[str, Report] = field(default_factory=dict)
    cell_errors: dict[int, str] = field(default_factory=dict)
    open_cell: int | None = None
    last_cell: int | None = None
    open_exercise: str | None = None
    death: str | None = None


class _Lines:
    """JSON lines from a pipe, each awaited until a deadline."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.eof = False

    def next(self, deadline: float) -> dict[str, Any] | None:
        """The next event; None at end of file; raises TimeoutError past the deadline."""
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                try:
                    event = json.loads(line.decode())
                except (UnicodeDecodeError, json.JSONDecodeError):
                    continue
                if isinstance(event, dict) and isinstance(event.get("event"), str):
                    return event
            if self.eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.fd], [], [], min(remaining, 1.0))
            if ready:
                chunk = os.read(self.fd, 1 << 16)
                if chunk:
                    self.buffer += chunk
                else:
                    self.eof = True


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "was still running"
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"ended the process (exit code {code})"


def _handle(event: dict[str, Any], att: _Attempt, budgets: dict[str, float], deadline: float,
            cell_timeout: float) -> float:
    """Record one event of the worker in ``att``; return the deadline of the next one."""
    kind = event["event"]
    now = time.monotonic()
    if kind == "ready":
        att.started = True
        return now + _GAP
    if kind == "fatal":
        att.fatal = str(event.get("message", "the grader failed"))
    elif kind == "cell_start":
        att.open_cell = att.last_cell = int(event["number"])
        return now + cell_timeout
    elif kind == "cell_end":
        if event.get("error"):
            att.cell_errors[int(event["number"])] = str(event["error"])
        att.open_cell = None
        return now + _GAP
    elif kind == "plan":
        plan = [dict(e) for e in event["exercises"]]
        budgets.update({str(e["id"]): float(e["budget"]) for e in plan})
        att.plan = plan
        return now + _GAP
    elif kind == "exercise_start":
        att.open_exercise = str(event["id"])
        return now + budgets.get(att.open_exercise, 600.0)
    elif kind == "exercise":
        report = Report.from_record(event["report"])
        att.reports[report.exercise_id] = report
        att.open_exercise = None
        return now + _GAP
    elif kind == "done":
        att.done = True
    return deadline


def _run_worker(path: Path, *, skip_cells: set[int], skip_exercises: set[str],
                timeout: float | None, cell_timeout: float, banks: tuple[str, ...],
                startup_timeout: float) -> _Attempt:
    att = _Attempt()
    read_fd, write_fd = os.pipe()
    cmd = [sys.executable, "-m", "ebmlab.exercises._worker", str(path.resolve()),
           "--events-fd", str(write_fd),
           "--skip-cells", ",".join(map(str, sorted(skip_cells))),
           "--skip-exercises", ",".join(sorted(skip_exercises))]
    if timeout is not None:
        cmd += ["--timeout", repr(float(timeout))]
    for bank in banks:
        cmd += ["--bank", str(Path(bank).resolve()) if bank.endswith(".py") else bank]
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = os.pathsep.join([_PACKAGE_ROOT, *filter(None, [env.get("PYTHONPATH")])])
    stderr = tempfile.TemporaryFile()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=stderr, pass_fds=(write_fd,), cwd=str(path.parent),
                                env=env, start_new_session=True)
    except OSError as exc:
        os.close(read_fd)
        os.close(write_fd)
        stderr.close()
        raise GradingError(f"cannot start the grading process: {exc}") from None
    os.close(write_fd)
    lines = _Lines(read_fd)
    budgets: dict[str, float] = {}
    deadline = time.monotonic() + startup_timeout
    try:
        while True:
            try:
                event = lines.next(deadline)
            except TimeoutError:
                if att.open_cell is not None:
                    att.death = f"ran longer than {cell_timeout:g} s"
                else:
                    att.death = "stopped responding"
                break
            if event is None:
                try:
                    code = proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    code = None
                att.death = _describe_exit(code)
                break
            try:
                deadline = _handle(event, att, budgets, deadline, cell_timeout)
            except (KeyError, TypeError, ValueError):
                continue  # a malformed event: ignore it
            if att.fatal is not None or att.done:
                break
        if not att.started and att.fatal is None and not att.done:
            stderr.seek(0)
            tail = stderr.read()[-4000:].decode(errors="replace").strip()
            att.fatal = (f"the grading process failed to start ({att.death})"
                         + (f":\n{tail}" if tail else "."))
    finally:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        os.close(read_fd)
        stderr.close()
    return att


def _crashed_report(entry: dict[str, Any], reason: str) -> Report:
    what = f"the grading process {reason} while this exercise was graded"
    hint = ("the function (or code it started) ended or blocked the whole process; "
            "run check() on it in the notebook to see which check.")
    results = [CheckResult(str(name), float(points), "crashed", what=what, hint=hint)
               for name, points in entry["checks"]]
    return Report(entry["id"], entry["title"], entry["function"], results)


def grade_file(path: str | Path, *, timeout: float | None = None, cell_timeout: float = 60.0,
               banks: tuple[str, ...] | list[str] = (),
               startup_timeout: float = 180.0) -> SubmissionReport:
    """Grade a submitted notebook or Python file in a separate process.

    The worker process executes the code cells in order (cells that raise are skipped),
    looks up the function of every exercise of the submission's chapter(s), and runs
    each exercise's checks in forked children with time limits. A cell that runs longer
    than ``cell_timeout`` or ends the process is skipped on a fresh worker; an exercise
    during which the worker dies scores 0 ("crashed"). So grading ends in bounded time
    whatever the submission does.

    Parameters
    ----------
    path : str or Path
        A ``.ipynb`` or ``.py`` file.
    timeout : float, optional
        Time limit of every check in seconds (default: each check's own limit).
    cell_timeout : float
        Time limit of each cell in seconds.
    banks : sequence of str
        Extra exercise definitions (module names or ``.py`` paths), see
        :func:`~ebmlab.exercises.load_bank`.
    startup_timeout : float
        Seconds allowed for the worker to import its libraries.

    Returns
    -------
    SubmissionReport

    Raises
    ------
    GradingError
        If the file is missing or unreadable, or the grader itself cannot run.
    """
    p = Path(path)
    try:
        cells = read_cells(p)
    except SubmissionError as exc:
        raise GradingError(str(exc)) from None
    for name, value in (("cell_timeout", cell_timeout), ("startup_timeout", startup_timeout)):
        if not (isinstance(value, (int, float)) and value > 0):
            raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}.")
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0 or None, got {timeout!r}.")
    labels = {c.number: c.label for c in cells}
    skipped: dict[int, str] = {}
    cell_errors: dict[int, str] = {}
    reports: dict[str, Report] = {}
    crashed: dict[str, str] = {}
    plan: list[dict[str, Any]] | None = None
    for _ in range(len(cells) + 64):
        att = _run_worker(p, skip_cells=set(skipped), skip_exercises=set(reports) | set(crashed),
                          timeout=timeout, cell_timeout=float(cell_timeout), banks=tuple(banks),
                          startup_timeout=float(startup_timeout))
        if att.fatal is not None:
            raise GradingError(f"{p}: {att.fatal}")
        cell_errors.update(att.cell_errors)
        if plan is None and att.plan is not None:
            plan = att.plan
        reports.update(att.reports)
        if att.done:
            break
        reason = att.death or "stopped"
        if att.open_exercise is not None:
            crashed[att.open_exercise] = reason
        elif att.open_cell is not None:
            skipped[att.open_cell] = reason
        elif att.last_cell is not None and att.last_cell not in skipped and att.plan is None:
            skipped[att.last_cell] = reason  # e.g. a thread the cell started ended the process
        elif plan is not None:
            for entry in plan:  # no unit to blame: give up on what is left
                if entry["id"] not in reports:
                    crashed.setdefault(entry["id"], reason)
            break
        else:
            raise GradingError(f"{p}: the grading process {reason} before it could grade.")
    for number, reason in skipped.items():
        cell_errors[number] = f"the cell {reason}; it was skipped"
    result = SubmissionReport(str(path), cell_errors=[
        (labels.get(n, f"cell {n}"), msg) for n, msg in sorted(cell_errors.items())])
    for entry in plan or []:
        if entry["id"] in reports:
            result.exercises.append(reports[entry["id"]])
        else:
            result.exercises.append(_crashed_report(entry, crashed.get(entry["id"], "stopped")))
    if not result.exercises:
        result.note = ("no exercise found: name the file after its chapter (e.g. "
                       "ch02_score_langevin.ipynb) or keep the exercise functions' names.")
    return result
