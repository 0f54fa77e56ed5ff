"""Numbers in the built book: per chapter, given by the toolchain.

Run after `make book` (``make test`` does both). ``_toc.yml`` numbers the chapters part,
and ``numfig``/``math_numfig`` in ``_config.yml`` (with the book's extension for display
equations without a label) number sections, theorems, definitions and equations from the
chapter: chapter 7's first theorem is "Theorem 7.1", not "Theorem 12", and an equation
of chapter 4 is "(4.k)". The exercise notebooks and the reference pages stay unnumbered.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from .conftest import ROOT

pytestmark = pytest.mark.book

HTML = ROOT / "_build" / "html" / "book"
CHAPTER_STEMS = sorted(p.stem for p in (ROOT / "book").glob("ch*.ipynb"))
UNNUMBERED_STEMS = sorted(
    [f"exercises/{p.stem}" for p in (ROOT / "book" / "exercises").glob("*.ipynb")]
    + ["exercises/index", "intro", "api", "bibliography"])
CAPTION = re.compile(r"^(?P<kind>[A-Z][a-z]+) (?P<number>\S+)$")
PER_CHAPTER = re.compile(r"^(?P<chapter>\d+)\.(?P<index>\d+)$")


def _article(stem: str):
    path = HTML / f"{stem}.html"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make book` first (make test does)")
    return _parse(path, path.stat().st_mtime_ns)


@functools.cache
def _parse(path: Path, mtime_ns: int):
    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    return soup.find("article") or soup.find("main") or soup


def _chapter(stem: str) -> int:
    return int(re.match(r"ch(\d+)", stem).group(1))


def _heading_numbers(article, tag: str) -> list[str]:
    return [span.get_text().strip() for heading in article.find_all(tag)
            for span in heading.find_all("span", class_="section-number")]


def _captions(article) -> list[tuple[str, str]]:
    """(kind, number) of every numbered theorem-like box, in page order."""
    found = []
    for span in article.find_all("span", class_="caption-number"):
        m = CAPTION.match(span.get_text().strip())
        assert m, f"unexpected caption {span.get_text()!r}"
        found.append((m["kind"], m["number"]))
    return found


def _equation_numbers(article) -> list[str]:
    return [span.get_text().strip().rstrip("#").strip("()")
            for span in article.find_all("span", class_="eqno")]


def _consecutive(numbers: list[str], chapter: int) -> bool:
    return numbers == [f"{chapter}.{k}" for k in range(1, len(numbers) + 1)]


@pytest.mark.parametrize("stem", CHAPTER_STEMS)
def test_chapter_and_sections_are_numbered(stem: str):
    article, n = _article(stem), _chapter(stem)
    assert _heading_numbers(article, "h1") == [f"{n}."], stem
    sections = [s.rstrip(".") for s in _heading_numbers(article, "h2")]
    assert sections and _consecutive(sections, n), (stem, sections)


@pytest.mark.parametrize("stem", CHAPTER_STEMS)
def test_theorems_and_definitions_are_numbered_per_chapter(stem: str):
    n = _chapter(stem)
    by_kind: dict[str, list[str]] = defaultdict(list)
    for kind, number in _captions(_article(stem)):
        by_kind[kind].append(number)
    assert by_kind, f"{stem}: no numbered theorem or definition"
    for kind, numbers in by_kind.items():
        assert _consecutive(numbers, n), (stem, kind, numbers)


@pytest.mark.parametrize("stem", CHAPTER_STEMS)
def test_display_equations_are_numbered_per_chapter(stem: str):
    numbers = _equation_numbers(_article(stem))
    assert numbers and _consecutive(numbers, _chapter(stem)), (stem, numbers)


def test_chapter_seven_opens_its_theorems_at_7_1():
    stem = next(s for s in CHAPTER_STEMS if s.startswith("ch07"))
    theorems = [number for kind, number in _captions(_article(stem)) if kind == "Theorem"]
    assert theorems[:1] == ["7.1"], theorems


@pytest.mark.parametrize("stem", CHAPTER_STEMS + UNNUMBERED_STEMS)
def test_references_name_the_target_chapter(stem: str):
    """A link to a theorem reads "Theorem 3.1", one to an equation "(4.2)"."""
    article = _article(stem)
    bad = []
    for link in article.find_all("a", class_="reference"):
        href, text = link.get("href", ""), link.get_text().strip()
        kind = CAPTION.match(text)
        if kind and not kind["number"][0].isdigit():
            kind = None  # a two-word title such as "Score matching", not "Theorem 3.1"
        if kind and kind["kind"] not in {"Chapter", "Section"} and "#" in href:
            if not PER_CHAPTER.match(kind["number"]):
                bad.append(text)
            elif (target := re.match(r"(?:.*/)?ch(\d+)_", href)) and \
                    int(target.group(1)) != int(kind["number"].split(".")[0]):
                bad.append(f"{text} -> {href}")
        if "#equation-" in href and not re.fullmatch(r"\(\d+\.\d+\)", text):
            bad.append(f"{text} -> {href}")
    assert not bad, (stem, bad)


@pytest.mark.parametrize("stem", UNNUMBERED_STEMS)
def test_pages_outside_the_chapters_stay_unnumbered(stem: str):
    article = _article(stem)
    assert not _equation_numbers(article), stem
    assert not _heading_numbers(article, "h1"), stem
    assert not _heading_numbers(article, "h2"), stem


EXERCISE_PAGES = [stem for stem in UNNUMBERED_STEMS if stem.startswith("exercises/ch")]


@pytest.mark.parametrize("stem", EXERCISE_PAGES)
def test_exercise_boxes_carry_no_book_wide_numbers(stem: str):
    """sphinx-exercise numbers every {exercise} box without :nonumber: across the whole
    exercises part ("Exercise 13" under the heading "Exercise 7.1"): each carries it."""
    assert not _captions(_article(stem)), stem
