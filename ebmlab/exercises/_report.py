"""Reports of graded exercises: per check, per exercise, per submission; text, HTML and JSON."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from .expect import format_message

__all__ = ["CheckResult", "Report", "SubmissionReport"]

#: Status of a check result -> the word shown in reports.
STATUS_LABELS = {
    "passed": "passed",
    "failed": "failed",
    "error": "error",
    "timeout": "timed out",
    "not_implemented": "not implemented yet",
    "forbidden": "library shortcut",
}


def _points(x: float) -> str:
    return f"{x:g}"


@dataclass
class CheckResult:
    """The outcome of one check.

    Attributes
    ----------
    name : str
        The check's name.
    max_points : float
        Its points when passed.
    status : str
        ``passed``; ``failed`` (a wrong result); ``error`` (the function raised, ended or
        crashed its process, or returned something the check could not use); ``timeout``;
        ``not_implemented`` (the stub, or no such function in the submission);
        ``forbidden`` (it called a library function that solves the exercise).
    what, expected, got, hint : str or None
        The parts of the failure message.
    traceback : str or None
        The traceback of an exception, shown with ``verbose=True`` only.
    output : str
        What the function printed (truncated), shown with ``verbose=True`` only.
    seconds : float
        Wall time of the check.
    """

    name: str
    max_points: float
    status: str
    what: str | None = None
    expected: str | None = None
    got: str | None = None
    hint: str | None = None
    traceback: str | None = None
    output: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """Whether the check passed."""
        return self.status == "passed"

    @property
    def points(self) -> float:
        """Points earned: all of them when passed, 0 otherwise."""
        return float(self.max_points) if self.passed else 0.0

    @property
    def message(self) -> str:
        """One line: "passed", or what failed, what was expected, what came back, and a hint."""
        if self.passed:
            return "passed"
        return format_message(self.what or STATUS_LABELS.get(self.status, self.status),
                              self.expected, self.got, self.hint)

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "passed", "points", "max_points", "status", "message"}``."""
        return {"name": self.name, "passed": self.passed, "points": self.points,
                "max_points": float(self.max_points), "status": self.status,
                "message": self.message}


@dataclass
class Report:
    """The result of grading one exercise; displays as a table in Jupyter.

    Attributes
    ----------
    exercise_id, title, function : str
        The exercise graded.
    results : list of CheckResult
        One per check, in order.
    note : str or None
        A line shown under the table.
    verbose : bool
        Show tracebacks and printed output of failed checks.
    """

    exercise_id: str
    title: str
    function: str
    results: list[CheckResult] = field(default_factory=list)
    note: str | None = None
    verbose: bool = False

    @property
    def points(self) -> float:
        """Points earned."""
        return float(sum(r.points for r in self.results))

    @property
    def max_points(self) -> float:
        """Points available."""
        return float(sum(r.max_points for r in self.results))

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def not_implemented(self) -> bool:
        """True when the function is still the stub (every check says "not implemented yet")."""
        return bool(self.results) and all(r.status == "not_implemented" for r in self.results)

    def summary(self) -> str:
        """The score line under the table."""
        head = (f"Exercise {self.exercise_id}: {_points(self.points)} / "
                f"{_points(self.max_points)} points")
        if not self.results:
            return head + (f" — {self.note}" if self.note else "")
        if self.not_implemented and self.results[0].what != "not implemented yet":
            return head + f" — {self.results[0].what}."
        if self.not_implemented:
            return (head + f" — not implemented yet: replace `raise NotImplementedError` in "
                           f"`{self.function}` with your code and run the check again.")
        n_pass = sum(r.passed for r in self.results)
        if self.passed:
            return head + f" — all {n_pass} checks passed."
        tail = f" — {n_pass} of {len(self.results)} checks passed."
        if not self.verbose and any(r.traceback or r.output for r in self.results if not r.passed):
            tail += (" Run check(..., verbose=True) (or grade --verbose) to see tracebacks "
                     "and printed output.")
        return head + tail

    def to_dict(self) -> dict[str, Any]:
        """``{"id", "points", "max_points", "checks": [...]}``: the JSON report's exercise."""
        return {"id": self.exercise_id, "points": self.points, "max_points": self.max_points,
                "checks": [r.to_dict() for r in self.results]}

    # --- text ---------------------------------------------------------------------------
    def to_text(self, *, verbose: bool | None = None, indent: str = "") -> str:
        """The report as plain text (what ``print(report)`` shows)."""
        verbose = self.verbose if verbose is None else verbose
        lines = [f"{indent}Exercise {self.exercise_id} — {self.title} (function `{self.function}`)"]
        width = max([len(r.name) for r in self.results] + [10])
        for r in self.results:
            mark = "PASS" if r.passed else "FAIL"
            pts = f"{_points(r.points)}/{_points(r.max_points)}"
            label = "" if r.passed else f"  [{STATUS_LABELS.get(r.status, r.status)}]"
            lines.append(f"{indent}  {mark}  {r.name:<{width}}  {pts:>7}{label}")
            if not r.passed:
                lines.append(f"{indent}        {r.message}")
                if verbose and r.traceback:
                    lines += [f"{indent}        | {t}" for t in r.traceback.rstrip().splitlines()]
                if verbose and r.output:
                    lines.append(f"{indent}        printed output:")
                    lines += [f"{indent}        > {t}" for t in r.output.rstrip().splitlines()]
        lines.append(f"{indent}{self.summary()}")
        if self.note and self.results:
            lines.append(f"{indent}{self.note}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return self.to_text()

    # --- HTML ---------------------------------------------------------------------------
    def _repr_html_(self) -> str:
        esc = html.escape
        rows = []
        for r in self.results:
            colour = "#1a7f37" if r.passed else "#cf222e"
            label = "✓ passed" if r.passed else "✗ " + STATUS_LABELS.get(r.status, r.status)
            if r.passed:
                detail = ""
            else:
                parts = [f"<b>{esc(r.what or STATUS_LABELS.get(r.status, r.status))}</b>"]
                if r.expected is not None:
                    parts.append(f"expected: <code>{esc(r.expected)}</code>")
                if r.got is not None:
                    parts.append(f"got: <code>{esc(r.got)}</code>")
                if r.hint:
                    parts.append(f"<i>hint:</i> {esc(r.hint)}")
                detail = "<br>".join(parts)
                if self.verbose and r.traceback:
                    detail += (f"<details open><summary>traceback</summary><pre>"
                               f"{esc(r.traceback)}</pre></details>")
                if self.verbose and r.output:
                    detail += (f"<details open><summary>printed output</summary><pre>"
                               f"{esc(r.output)}</pre></details>")
            rows.append(
                f"<tr><td style='text-align:left'>{esc(r.name)}</td>"
                f"<td style='color:{colour};white-space:nowrap;text-align:left'>{esc(label)}</td>"
                f"<td style='text-align:right'>{_points(r.points)} / {_points(r.max_points)}</td>"
                f"<td style='text-align:left'>{detail}</td></tr>")
        note = f"<p>{esc(self.note)}</p>" if self.note and self.results else ""
        return (
            f"<div class='ebmlab-report'><p><b>Exercise {esc(self.exercise_id)}</b> — "
            f"{esc(self.title)} (function <code>{esc(self.function)}</code>)</p>"
            "<table><thead><tr><th style='text-align:left'>check</th>"
            "<th style='text-align:left'>result</th><th>points</th>"
            "<th style='text-align:left'>message</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
            f"<p><b>{esc(self.summary())}</b></p>{note}</div>")


@dataclass
class SubmissionReport:
    """The result of grading one submitted file (``python -m ebmlab grade``).

    Attributes
    ----------
    path : str
        The file graded.
    exercises : list of Report
        One per exercise graded.
    cell_errors : list of (str, str)
        Cells that raised (or hung, or ended the process) and were skipped: their label
        ("cell 3" for the third code cell of a notebook, "line 12" for the statement or
        ``# %%`` block of a ``.py`` starting there) and the error.
    notes : list of str
        Remarks: how the exercises were chosen, what the sandbox enforced, no exercise found.
    seed : int
        The instance of the checks' inputs.
    error : str or None
        Why the file could not be graded (then every exercise scores 0).
    peak_memory_mb : float or None
        The largest resident memory of its sandbox processes.
    """

    path: str
    exercises: list[Report] = field(default_factory=list)
    cell_errors: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seed: int = 0
    error: str | None = None
    peak_memory_mb: float | None = None

    @property
    def total(self) -> float:
        """Points earned over all exercises."""
        return 0.0 if self.error else float(sum(e.points for e in self.exercises))

    @property
    def max_total(self) -> float:
        """Points available over all exercises."""
        return float(sum(e.max_points for e in self.exercises))

    def to_dict(self) -> dict[str, Any]:
        """The JSON report: ``{"total", "max_total", "exercises", "cell_errors", "notes",
        "seed", "peak_memory_mb"}``."""
        return {"total": self.total, "max_total": self.max_total,
                "exercises": [e.to_dict() for e in self.exercises],
                "cell_errors": [{"cell": label, "error": msg} for label, msg in self.cell_errors],
                "notes": list(self.notes), "seed": self.seed,
                "peak_memory_mb": self.peak_memory_mb}

    def to_text(self, *, verbose: bool = False) -> str:
        """The human-readable report (``verbose``: with tracebacks and printed output)."""
        lines = [f"== {self.path}"]
        if self.error:
            lines.append(f"  could not be graded: {self.error}")
        if self.cell_errors:
            lines.append(f"  {len(self.cell_errors)} part(s) of the file failed and were "
                         "skipped (the rest was graded):")
            lines += [f"    {label}: {msg}" for label, msg in self.cell_errors]
        for ex in self.exercises:
            lines.append(ex.to_text(verbose=verbose, indent="  "))
        lines += [f"  note: {note}" for note in self.notes]
        lines.append(f"Total: {_points(self.total)} / {_points(self.max_total)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()
