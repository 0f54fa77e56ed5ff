"""The house style of the chapter pages, checked on the notebooks' sources.

A reader sees the code that teaches and opens a toggle for the rest. For every chapter
(``book/ch*.ipynb``):

* at most ``MAX_VISIBLE_LINES`` visible code lines, where a code cell is visible unless it
  carries ``hide-input``, ``remove-input`` or ``remove-cell``, and blank lines do not count;
* no visible code line longer than ``MAX_LINE_LENGTH`` characters (longer ones scroll
  sideways in the book's column);
* the chapter opens with its question and its figure: a markdown cell comes first, and
  every code cell up to and including the first one that shows a figure is hidden, so
  no code is visible before the first figure;
* numbers come from the toolchain (``_toc.yml`` numbers the chapters and their sections),
  so no title or heading carries a hand-written number such as "4." or "5.1".
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import ROOT

MAX_VISIBLE_LINES = 150
MAX_LINE_LENGTH = 88
HIDING_TAGS = frozenset({"hide-input", "remove-input", "remove-cell"})
# A cell shows a figure when it calls plt.show() (or fig.show()) or displays an animation.
SHOWS_FIGURE = re.compile(r"\b(?:plt|fig)\.show\(\)|\bdisplay\(HTML\(")
HAND_NUMBERED_HEADING = re.compile(r"^#{1,6}\s+\d+(?:\.\d+)*\.?\s", re.MULTILINE)

CHAPTERS = sorted((ROOT / "book").glob("ch*.ipynb"))


def _chapter_params() -> list:
    return [pytest.param(path, id=path.stem) for path in CHAPTERS]


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _is_visible_code(cell: dict) -> bool:
    tags = set(cell.get("metadata", {}).get("tags", []))
    return cell["cell_type"] == "code" and not tags & HIDING_TAGS


def _visible_lines(path: Path) -> list[tuple[str, str]]:
    """(cell id, line) for every non-blank line of every visible code cell."""
    return [(cell.get("id", "?"), line)
            for cell in _cells(path) if _is_visible_code(cell)
            for line in _source(cell).splitlines() if line.strip()]


def test_every_chapter_is_checked():
    assert len(CHAPTERS) >= 7, [p.name for p in CHAPTERS]


@pytest.mark.parametrize("path", _chapter_params())
def test_visible_code_fits_the_budget(path: Path):
    lines = _visible_lines(path)
    per_cell: dict[str, int] = {}
    for cell_id, _ in lines:
        per_cell[cell_id] = per_cell.get(cell_id, 0) + 1
    largest = sorted(per_cell.items(), key=lambda item: -item[1])[:5]
    assert len(lines) <= MAX_VISIBLE_LINES, (
        f"{path.name}: {len(lines)} visible code lines, at most {MAX_VISIBLE_LINES} "
        f"expected; hide plotting and plumbing with `hide-input`. Largest visible cells: "
        f"{largest}")


@pytest.mark.parametrize("path", _chapter_params())
def test_no_visible_line_scrolls_sideways(path: Path):
    long = [(cell_id, len(line), line.strip()[:60])
            for cell_id, line in _visible_lines(path) if len(line) > MAX_LINE_LENGTH]
    assert not long, (f"{path.name}: visible code lines over {MAX_LINE_LENGTH} "
                      f"characters (cell id, length, start): {long}")


@pytest.mark.parametrize("path", _chapter_params())
def test_the_question_and_its_figure_come_before_any_code(path: Path):
    cells = _cells(path)
    first_markdown = next(i for i, c in enumerate(cells) if c["cell_type"] == "markdown")
    first_figure = next((i for i, c in enumerate(cells)
                         if c["cell_type"] == "code" and SHOWS_FIGURE.search(_source(c))),
                        None)
    assert first_figure is not None, f"{path.name}: no cell shows a figure"
    assert first_markdown < first_figure, (
        f"{path.name}: the chapter's question (markdown) should come before its figure")
    visible = [c.get("id", "?") for c in cells[:first_figure + 1] if _is_visible_code(c)]
    assert not visible, (
        f"{path.name}: code is visible before the first figure (cells {visible}); "
        "tag them `hide-input` (or `remove-input`)")


@pytest.mark.parametrize("path", _chapter_params())
def test_headings_carry_no_hand_written_numbers(path: Path):
    headings = [m.group(0).strip() for c in _cells(path) if c["cell_type"] == "markdown"
                for m in HAND_NUMBERED_HEADING.finditer(_source(c))]
    assert not headings, (f"{path.name}: hand-written numbers in headings {headings}; "
                          "the toolchain numbers chapters and sections (_toc.yml)")
