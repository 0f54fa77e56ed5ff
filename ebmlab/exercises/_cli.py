"""``python -m ebmlab grade PATH [PATH ...]``: grade a class's notebooks and scripts.

Every file runs in its own confined sandbox (see :mod:`ebmlab.exercises._grade`); ``-j N``
grades N files at a time. A submission that breaks the sandbox's protocol, or a file that
cannot be read, is reported as "could not be graded" and the others go on.

Output
------
Human-readable (default): per file, each exercise's checks with points and messages, the
total, then (for several files) a class summary: the mean per exercise and the checks
failed most often. ``--json`` with a single file prints its report::

    {"total", "max_total", "seed", "peak_memory_mb",
     "exercises": [{"id", "points", "max_points",
                    "checks": [{"name", "passed", "points", "max_points", "status",
                                "message"}]}],
     "cell_errors": [{"cell", "error"}], "notes": [str]}

with several files or a folder ``{"submissions": [...], "summary": {...}}``, each
submission with ``"path"`` and ``"error"`` added. ``--csv FILE`` writes a gradebook (a row
per submission, a column per exercise, the total); ``--feedback DIR`` one readable report
per submission, named after it.

Exit status: 0 when every file was graded, whatever the scores; 1 when one could not be;
2 on a usage error.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import json
import multiprocessing
import os
import secrets
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._confine import Limits
from ._grade import SUFFIXES, GradingError, grade_file
from ._registry import Exercise, exercises, get_exercise, load_bank
from ._report import SubmissionReport

__all__ = ["main", "parse_exercises"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ebmlab grade",
        description="Grade exercise notebooks (.ipynb) or Python files (.py), or folders of "
                    "them: each runs in a confined sandbox process, every check of its "
                    "exercises runs against its functions, and the report, the total and a "
                    "class summary are printed.")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="a .ipynb or .py file, or a folder of them")
    parser.add_argument("--exercises", metavar="SPEC", default=None,
                        help="what to grade, the same for every file: chapters and exercise "
                             "ids, comma-separated (e.g. '2' or '2.1,2.3' or '2,3.1'); "
                             "default: inferred per file from its name and check() calls")
    parser.add_argument("--json", action="store_true", help="print a JSON report")
    parser.add_argument("--csv", metavar="FILE", default=None,
                        help="write a gradebook: a row per file, a column per exercise")
    parser.add_argument("--feedback", metavar="DIR", default=None,
                        help="write one readable report per file into DIR")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="files graded in parallel (default: the number of cores)")
    parser.add_argument("--seed", type=int, default=None,
                        help="the instance of the checks' inputs (default: a fresh random one, "
                             "so outputs hard-coded from the notebooks fail; it is reported)")
    parser.add_argument("--bank", action="append", default=[], metavar="MODULE",
                        help="extra exercises or hidden checks for existing ones: a module "
                             "name or a .py file (repeatable)")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="time limit of every check in seconds (default: each check's own)")
    parser.add_argument("--cell-timeout", type=float, default=60.0, metavar="S",
                        help="time limit of each cell of a submission in seconds (default: 60)")
    parser.add_argument("--memory", type=int, default=4096, metavar="MB",
                        help="memory limit of each sandbox in MiB (default: 4096)")
    parser.add_argument("--verbose", action="store_true",
                        help="show tracebacks and printed output in the human report")
    return parser


def parse_exercises(spec: str) -> list[Exercise]:
    """The exercises named by ``SPEC``: chapters (``2``) and ids (``2.1``), comma-separated.

    Raises
    ------
    ValueError
        For a malformed item, an unknown exercise or a chapter without exercises.
    """
    chosen: dict[str, Exercise] = {}
    for item in (part.strip() for part in spec.split(",")):
        if item.isdigit() and int(item) > 0:
            found = exercises(int(item))
            if not found:
                raise ValueError(f"chapter {item} has no exercises.")
            chosen |= {ex.id: ex for ex in found}
        else:
            ex = get_exercise(item)
            chosen[ex.id] = ex
    return sorted(chosen.values(), key=lambda e: tuple(int(p) for p in e.id.split(".")))


def _expand(paths: list[str]) -> list[tuple[str, str | None]]:
    """``(path, error)`` pairs: files as given, folders expanded to their submissions."""
    out: list[tuple[str, str | None]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*")
                if f.is_file() and f.suffix in SUFFIXES
                and not any(part.startswith(".") or part == "__pycache__"
                            for part in f.relative_to(p).parts))
            if not found:
                out.append((raw, f"{raw}: no .ipynb or .py files in this folder."))
            out += [(str(f), None) for f in found]
        elif p.exists():
            out.append((raw, None))
        else:
            out.append((raw, f"{raw}: no such file."))
    return out


@dataclass(frozen=True)
class _Job:
    """What a grading process needs to grade one file."""

    path: str
    ids: tuple[str, ...] | None
    seed: int
    timeout: float | None
    cell_timeout: float
    banks: tuple[str, ...]
    memory_mb: int


@dataclass
class _Graded:
    path: str
    report: SubmissionReport | None = None
    error: str | None = None


def _load_banks(banks: tuple[str, ...]) -> None:
    for bank in banks:
        load_bank(bank)


def _grade(job: _Job) -> _Graded:
    """Grade one file (in a worker process or in this one)."""
    _load_banks(job.banks)
    chosen = [get_exercise(i) for i in job.ids] if job.ids is not None else None
    try:
        report = grade_file(job.path, exercises=chosen, seed=job.seed, timeout=job.timeout,
                            cell_timeout=job.cell_timeout, banks=job.banks,
                            limits=Limits(memory_bytes=job.memory_mb << 20))
    except GradingError as exc:
        return _Graded(job.path, error=str(exc))
    except Exception as exc:  # never stop the batch: this file is "not graded"
        return _Graded(job.path, error=f"the grader failed on this file ({type(exc).__name__}: "
                                       f"{str(exc)[:300]})")
    return _Graded(job.path, report=report, error=report.error)


def _grade_all(jobs: list[_Job], workers: int, *, quiet: bool) -> dict[str, _Graded]:
    """Grade every job, ``workers`` at a time; a grading process that dies is replaced and
    its files graded again once, then reported as not graded."""
    done: dict[str, _Graded] = {}
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            if not quiet:
                print(f"grading {job.path} ...", file=sys.stderr, flush=True)
            done[job.path] = _grade(job)
        return done
    pending = {job.path: job for job in jobs}
    for attempt in range(2):
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers,
                                                    mp_context=context) as pool:
            futures = {pool.submit(_grade, job): path for path, job in pending.items()}
            for future in concurrent.futures.as_completed(futures):
                path = futures[future]
                try:
                    done[path] = future.result()
                except concurrent.futures.process.BrokenProcessPool:
                    if attempt == 1:
                        done[path] = _Graded(path, error="the grading process died")
                    continue
                pending.pop(path)
                if not quiet:
                    print(f"graded {path}", file=sys.stderr, flush=True)
        if not pending:
            break
    return done


def _summary(graded: list[_Graded], seed: int) -> dict[str, Any]:
    """The class summary: mean points per exercise, the checks failed most often."""
    reports = [g.report for g in graded if g.report is not None and g.error is None]
    sets = {tuple(ex.exercise_id for ex in report.exercises) for report in reports}
    per_exercise: dict[str, list[float]] = {}
    maxima: dict[str, float] = {}
    failed: Counter[tuple[str, str]] = Counter()
    attempts: Counter[tuple[str, str]] = Counter()
    for report in reports:
        for ex in report.exercises:
            per_exercise.setdefault(ex.exercise_id, []).append(ex.points)
            maxima[ex.exercise_id] = ex.max_points
            for r in ex.results:
                attempts[ex.exercise_id, r.name] += 1
                failed[ex.exercise_id, r.name] += not r.passed
    order = sorted(per_exercise, key=lambda i: tuple(int(p) for p in i.split(".")))
    worst = sorted((k for k in failed if failed[k]), key=lambda k: (-failed[k], k))[:10]
    return {
        "seed": seed, "submissions": len(graded), "graded": len(reports),
        "exercises": [{"id": i, "max_points": maxima[i], "graded": len(per_exercise[i]),
                       "mean_points": sum(per_exercise[i]) / len(per_exercise[i])}
                      for i in order],
        "most_failed_checks": [{"exercise": e, "check": c, "failed": failed[e, c],
                                "of": attempts[e, c]} for e, c in worst],
        "same_exercises": len(sets) <= 1,
    }


def _summary_text(summary: dict[str, Any]) -> str:
    lines = [f"Class summary: {summary['graded']} of {summary['submissions']} file(s) graded, "
             f"seed {summary['seed']} (--seed {summary['seed']} grades the same instance)."]
    if summary["exercises"]:
        lines.append("  exercise   mean / max   files")
        lines += [f"  {e['id']:<9}  {e['mean_points']:5.2f} / {e['max_points']:<5g}  "
                  f"{e['graded']}" for e in summary["exercises"]]
    if not summary["same_exercises"]:
        lines.append("Note: the files were graded on different sets of exercises (inferred "
                     "from each file); use --exercises to give every student the same maximum.")
    if summary["most_failed_checks"]:
        lines.append("Checks failed most often:")
        lines += [f"  {c['failed']} of {c['of']}  {c['exercise']}  {c['check']}"
                  for c in summary["most_failed_checks"]]
    return "\n".join(lines)


def _write_csv(path: str, graded: list[_Graded]) -> None:
    ids: list[str] = []
    for g in graded:
        for ex in g.report.exercises if g.report else []:
            if ex.exercise_id not in ids:
                ids.append(ex.exercise_id)
    ids.sort(key=lambda i: tuple(int(p) for p in i.split(".")))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["submission", *ids, "total", "max_total", "error"])
        for g in graded:
            points = {ex.exercise_id: f"{ex.points:g}"
                      for ex in (g.report.exercises if g.report and not g.error else [])}
            total = g.report.total if g.report and not g.error else 0.0
            maximum = g.report.max_total if g.report else 0.0
            writer.writerow([g.path, *(points.get(i, "") for i in ids), f"{total:g}",
                             f"{maximum:g}", g.error or ""])


def _write_feedback(folder: str, graded: list[_Graded]) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for g in graded:
        name = Path(g.path).name
        stem, number = name, 2
        while name in used:
            name, number = f"{stem}-{number}", number + 1
        used.add(name)
        if g.report is not None:
            text = g.report.to_text(verbose=True)
        else:
            text = f"== {g.path}\n  could not be graded: {g.error}"
        (out / f"{name}.txt").write_text(text + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run the ``grade`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    for stream in (sys.stdout, sys.stderr):  # never fail on a terminal that cannot show "½"
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    for name in ("timeout", "cell_timeout"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            parser.error(f"--{name.replace('_', '-')} must be > 0, got {value!r}")
    if args.jobs < 1 or args.memory < 64:
        parser.error("--jobs must be >= 1 and --memory >= 64 MiB")
    banks = tuple(str(Path(b).resolve()) if b.endswith(".py") else b for b in args.bank)
    try:
        _load_banks(banks)
        chosen = parse_exercises(args.exercises) if args.exercises else None
    except ValueError as exc:
        parser.error(str(exc))
    seed = args.seed if args.seed is not None else 1 + secrets.randbelow(2**31 - 1)
    targets = _expand(args.paths)
    jobs = [_Job(path, tuple(e.id for e in chosen) if chosen else None, seed, args.timeout,
                 args.cell_timeout, banks, args.memory) for path, error in targets if not error]
    results = _grade_all(jobs, args.jobs, quiet=args.json or len(jobs) <= 1)
    graded = [results[path] if error is None else _Graded(path, error=error)
              for path, error in targets]
    for g in graded:
        if g.error:
            print(f"error: {g.path}: {g.error}" if not g.error.startswith(g.path) else
                  f"error: {g.error}", file=sys.stderr)
    if args.csv:
        _write_csv(args.csv, graded)
    if args.feedback:
        _write_feedback(args.feedback, graded)
    single = len(args.paths) == 1 and len(targets) == 1 and not Path(args.paths[0]).is_dir()
    failed = any(g.error for g in graded)
    if single:
        (g,) = graded
        if g.report is None:
            return 1
        print(json.dumps(g.report.to_dict(), indent=2) if args.json
              else g.report.to_text(verbose=args.verbose))
        return 1 if failed else 0
    summary = _summary(graded, seed)
    if args.json:
        entries = [{"path": g.path, **(g.report.to_dict() if g.report else {
            "total": 0.0, "max_total": 0.0, "exercises": [], "cell_errors": [], "notes": [],
            "seed": seed, "peak_memory_mb": None}), "error": g.error} for g in graded]
        print(json.dumps({"submissions": entries, "summary": summary}, indent=2))
    else:
        print("\n\n".join(g.report.to_text(verbose=args.verbose) if g.report else
                          f"== {g.path}\n  could not be graded: {g.error}" for g in graded))
        print("\n" + _summary_text(summary))
    return 1 if failed else 0
