"""Read a submission (a notebook or a Python file) as cells, execute them, and plan the grading."""

from __future__ import annotations

import ast
import codeop
import json
import linecache
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._registry import Exercise, exercises, get_exercise

__all__ = ["Cell", "SubmissionError", "execute_cell", "new_namespace", "plan_exercises",
           "read_cells"]

#: Suffixes the grader reads.
SUFFIXES = (".ipynb", ".py")
_CHECK_CALL = re.compile(r"""\bcheck\(\s*["']([1-9][0-9]*\.[1-9][0-9]*)["']""")
_CHAPTER_IN_NAME = re.compile(r"(?:^|[^a-z0-9])ch(?:apter)?[ _-]?0*([1-9][0-9]*)", re.I)
_KEEP_CELL_MAGICS = ("%%time", "%%timeit", "%%capture")


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
        cells = []
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


def new_namespace(name: str = "__submission__") -> dict[str, Any]:
    """A fresh module namespace (registered in ``sys.modules`` so dataclasses and pickling work)."""
    module = types.ModuleType(name)
    module.__dict__["display"] = lambda *args, **kwargs: None
    sys.modules[name] = module
    return module.__dict__


def execute_cell(cell: Cell, namespace: dict[str, Any], compiler: codeop.Compile) -> str | None:
    """Execute one cell in ``namespace``; return None, or the error it raised (one line).

    ``compiler`` (a :class:`codeop.Compile`) carries ``from __future__`` imports from cell to
    cell, as in Jupyter.
    """
    if cell.filename.startswith("<"):
        linecache.cache[cell.filename] = (len(cell.source), None,
                                          cell.source.splitlines(keepends=True), cell.filename)
    try:
        code = compiler(cell.source, cell.filename, "exec")
        exec(code, namespace)
    except BaseException as exc:  # a cell may raise anything, even SystemExit
        lines = str(exc).strip().splitlines()
        text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
        return text if len(text) <= 300 else text[:297] + "..."
    return None


def _chapters(path: Path, cells: list[Cell]) -> tuple[set[int], set[str]]:
    chapters = {int(m) for m in _CHAPTER_IN_NAME.findall(path.stem)}
    ids = {i for c in cells for i in _CHECK_CALL.findall(c.source)}
    chapters |= {int(i.split(".")[0]) for i in ids}
    return chapters, ids


def plan_exercises(path: str | Path, cells: list[Cell],
                   namespace: dict[str, Any]) -> list[Exercise]:
    """The exercises to grade in a submission.

    Every exercise of the chapters the submission belongs to: the chapter in its file
    name (``ch02_...``, ``alice_ch2.py``) and the chapters of the exercises its
    ``check("N.M", ...)`` calls name. A submission with neither is graded on every
    registered exercise whose function it defines.
    """
    chapters, ids = _chapters(Path(path), cells)
    selected: dict[str, Exercise] = {}
    for chapter in sorted(chapters):
        for ex in exercises(chapter):
            selected[ex.id] = ex
    for exercise_id in ids:
        try:
            selected.setdefault(exercise_id, get_exercise(exercise_id))
        except ValueError:
            continue
    if not selected:
        for ex in exercises():
            if callable(namespace.get(ex.function)):
                selected[ex.id] = ex
    return sorted(selected.values(), key=lambda e: tuple(int(p) for p in e.id.split(".")))
