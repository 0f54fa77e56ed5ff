"""The grading worker: ``python -m ebmlab.exercises._worker --events-fd FD [...] PATH``.

Started by :func:`ebmlab.exercises.grade_file` (and so by ``python -m ebmlab grade``) in
its own process and session. It executes the submission's cells one by one (a cell that
fails is skipped), finds the exercise functions, grades each exercise with the fork
runner, and reports JSON lines on the file descriptor ``FD``:

``ready`` → (``cell_start``, ``cell_end``)* → ``plan`` → (``exercise_start``, ``exercise``)*
→ ``done``; or ``fatal`` when the submission cannot be read. Its stdout and stderr point
at /dev/null once the submission starts running, so nothing a submission prints can
reach the grader. The parent enforces the time limits and restarts the worker without
a cell (or exercise) that killed it.
"""

from __future__ import annotations

import argparse
import codeop
import json
import os
import sys
import traceback
from typing import Any

from . import _state
from ._isolation import (
    Capture,
    die_with_parent,
    exit_process,
    redirect_process_io,
    reset_global_state,
)
from ._registry import DEFAULT_TIMEOUT, Exercise, exercises, load_bank
from ._report import CheckResult, Report
from ._runner import grade_function
from ._submission import SubmissionError, execute_cell, new_namespace, plan_exercises, read_cells

#: Seconds the parent allows, per exercise, beyond the checks' own limits.
EXERCISE_SLACK = 30.0


class _Events:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, event: str, **fields: Any) -> None:
        data = (json.dumps({"event": event, **fields}) + "\n").encode()
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError:  # the parent is gone: nothing left to do
            exit_process(1)


def exercise_budget(ex: Exercise, timeout: float | None) -> float:
    """Seconds the parent waits for one exercise before declaring the worker stuck."""
    limits = [timeout if timeout is not None else (c.timeout or DEFAULT_TIMEOUT)
              for c in ex.checks]
    return float(sum(limits) + 2.0 * len(limits) + EXERCISE_SLACK)


def missing_report(ex: Exercise, value: object) -> Report:
    """Every check at 0 because the submission does not define the function."""
    if value is None:
        what = f"`{ex.function}` is not defined in the submission"
    else:
        what = f"`{ex.function}` is a {type(value).__name__}, not a function"
    hint = (f"define `{ex.function}` at the top level of a cell (keep the stub's name), and "
            "make sure the cell runs without an error.")
    results = [CheckResult(c.name, c.points, "missing", what=what, hint=hint) for c in ex.checks]
    return Report(ex.id, ex.title, ex.function, results)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ebmlab.exercises._worker")
    parser.add_argument("path")
    parser.add_argument("--events-fd", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=None)
    parser.add_argument("--skip-cells", default="")
    parser.add_argument("--skip-exercises", default="")
    parser.add_argument("--bank", action="append", default=[])
    return parser.parse_args(argv)


def run(args: argparse.Namespace, events: _Events) -> None:
    """Execute and grade; see the module docstring for the events."""
    skip_cells = {int(s) for s in args.skip_cells.split(",") if s}
    skip_exercises = {s for s in args.skip_exercises.split(",") if s}
    try:
        exercises()  # import every bank module before any student code runs
        for bank in args.bank:
            load_bank(bank)
        cells = read_cells(args.path)
    except (SubmissionError, ValueError) as exc:
        events.send("fatal", message=str(exc))
        return
    events.send("ready", cells=len(cells))
    _state.GRADING = True
    _state.CLOSE_IN_CHILD.add(events.fd)
    redirect_process_io()
    namespace = new_namespace()
    compiler = codeop.Compile()
    for cell in cells:
        if cell.number in skip_cells:
            continue
        events.send("cell_start", number=cell.number)
        sys.stdout = sys.stderr = Capture()  # a fresh output limit per cell
        error = execute_cell(cell, namespace, compiler)
        events.send("cell_end", number=cell.number, error=error)
    sys.stdout = sys.stderr = Capture()
    reset_global_state(0)  # undo what the cells set (dtype, grad mode, seeds) before grading
    planned = plan_exercises(args.path, cells, namespace)
    events.send("plan", exercises=[
        {"id": ex.id, "title": ex.title, "function": ex.function,
         "checks": [[c.name, c.points] for c in ex.checks],
         "budget": exercise_budget(ex, args.timeout)} for ex in planned])
    for ex in planned:
        if ex.id in skip_exercises:
            continue
        events.send("exercise_start", id=ex.id)
        fn = namespace.get(ex.function)
        if callable(fn):
            report = grade_function(ex, fn, timeout=args.timeout, isolation="fork")
        else:
            report = missing_report(ex, fn)
        events.send("exercise", report=report.to_record())
    events.send("done")


def main(argv: list[str] | None = None) -> None:
    """Entry point; never returns (ends with ``os._exit``)."""
    die_with_parent()
    args = _parse(sys.argv[1:] if argv is None else argv)
    events = _Events(args.events_fd)
    try:
        run(args, events)
    except BaseException:  # report the grader's own failure, then end
        events.send("fatal", message="internal error of the grader:\n" + traceback.format_exc())
        exit_process(2)
    exit_process(0)


if __name__ == "__main__":
    main()
