"""``python -m ebmlab grade PATH [PATH ...] [--json]``: grade submitted notebooks and scripts.

Output
------
Human-readable (default): per file, each exercise's checks with points and messages,
then the total.

``--json`` with a single file argument prints exactly::

    {"total": float, "max_total": float,
     "exercises": [{"id": str, "points": float, "max_points": float,
                    "checks": [{"name": str, "passed": bool, "points": float,
                                "message": str}]}]}

With several arguments or a folder (graded file by file: every ``.ipynb`` and ``.py``
below it, hidden folders and ``.ipynb_checkpoints`` excluded) it prints
``{"submissions": [...]}``, one object per file: the fields above plus ``"path"`` (str)
and ``"error"`` (null, or why the file could not be graded, with zero totals).

Exit status: 0 when every file was graded, whatever the scores; 1 when a file could not
be graded (missing, unreadable, not a notebook), with a message on stderr; 2 on a usage
error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ._grade import GradingError, grade_file
from ._submission import SUFFIXES

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ebmlab grade",
        description="Grade exercise notebooks (.ipynb) or Python files (.py): execute their "
                    "cells in a separate process, find the exercise functions, run every "
                    "check, and print the report and the total.")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="a .ipynb or .py file, or a folder of them")
    parser.add_argument("--json", action="store_true",
                        help="print a machine-readable JSON report")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="time limit of every check in seconds (default: each check's own)")
    parser.add_argument("--cell-timeout", type=float, default=60.0, metavar="S",
                        help="time limit of each cell of the submission in seconds "
                             "(default: 60)")
    parser.add_argument("--bank", action="append", default=[], metavar="MODULE",
                        help="extra exercise definitions: a module name or a .py file "
                             "(repeatable)")
    parser.add_argument("--verbose", action="store_true",
                        help="show tracebacks of failed checks in the human report")
    return parser


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
    targets = _expand(args.paths)
    single = len(args.paths) == 1 and len(targets) == 1 and not Path(args.paths[0]).is_dir()
    entries: list[dict[str, Any]] = []
    texts: list[str] = []
    failed = False
    for path, error in targets:
        if error is None:
            if not single and not args.json:
                print(f"grading {path} ...", file=sys.stderr, flush=True)
            try:
                report = grade_file(path, timeout=args.timeout, cell_timeout=args.cell_timeout,
                                    banks=args.bank)
            except GradingError as exc:
                error = str(exc)
            else:
                entries.append({"path": path, **report.to_dict(), "error": None})
                texts.append(report.to_text(verbose=args.verbose))
                continue
        failed = True
        print(f"error: {error}", file=sys.stderr)
        entries.append({"path": path, "total": 0.0, "max_total": 0.0, "exercises": [],
                        "error": error})
        texts.append(f"== {path}\n  could not be graded: {error}")
    if single:
        if failed:
            return 1
        entry = {k: v for k, v in entries[0].items() if k not in ("path", "error")}
        print(json.dumps(entry, indent=2) if args.json else texts[0])
        return 0
    if args.json:
        print(json.dumps({"submissions": entries}, indent=2))
    else:
        print("\n\n".join(texts))
        graded = [e for e in entries if e["error"] is None]
        print(f"\n{len(graded)} of {len(entries)} file(s) graded.")
    return 1 if failed else 0
