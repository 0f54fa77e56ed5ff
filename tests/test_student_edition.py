"""The student edition (``make student``): no model solution anywhere, hints kept.

The solution texts come from the instructor sources (the ``<details class="solution">``
blocks of the notebooks, and the cells tagged ``solution``). Each is cut into phrases of
plain words, found in the instructor site first (so the search can fail), then searched for
in every page, source, notebook and the search index of the student site, and in the
notebooks of its launch branch.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from .conftest import ROOT, in_ci

INSTRUCTOR = ROOT / "_build" / "html"
STUDENT = ROOT / "_build" / "student"
BRANCH = ROOT / "_build" / "student-branch"
NOTEBOOKS = sorted([*ROOT.glob("book/*.ipynb"), *ROOT.glob("book/exercises/*.ipynb")])
SOLUTION = re.compile(r'<details class="solution"[^>]*>\n<summary>.*?</summary>\n(.*?)^</details>',
                      re.M | re.S)
HINT = re.compile(r"\(Hint: (.*?)\)", re.S)

pytestmark = pytest.mark.book


def _markdown(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def _phrases(markdown: str, words: int = 5) -> set[str]:
    """Every run of ``words`` plain words in ``markdown`` (never across math, code or markup),
    and every formula of 20 characters or more."""
    formulas = {" ".join(m.split()) for m in re.findall(r"\$\$(.+?)\$\$|\$([^$]+)\$", markdown,
                                                        flags=re.S) for m in m if len(m) >= 20}
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`|\{[a-z:]+\}|\([^)]*\)|\[[^]]*\]", "|",
                  markdown, flags=re.S)
    phrases = set()
    for chunk in re.split(r"[^A-Za-z \n]+", text):
        tokens = chunk.split()
        phrases |= {" ".join(tokens[i:i + words]) for i in range(len(tokens) - words + 1)}
    return phrases | formulas


def _tagged(cell: dict) -> bool:
    return "solution" in cell.get("metadata", {}).get("tags", [])


def _public_text() -> str:
    """What the student edition may show: every cell of every notebook with its solution
    blocks and solution cells cut out, the Markdown pages, and the package's docstrings
    (the API page)."""
    texts = [SOLUTION.sub("|", "\n".join("".join(c["source"]) for c in
                                         json.loads(p.read_text(encoding="utf-8"))["cells"]
                                         if not _tagged(c)))
             for p in NOTEBOOKS]
    texts += [p.read_text(encoding="utf-8") for p in [*ROOT.glob("book/**/*.md"),
                                                      *ROOT.glob("ebmlab/**/*.py")]]
    return " ".join(" ".join(text.split()) for text in texts)


def _solution_phrases() -> dict[str, list[str]]:
    """The phrases and formulas of each model solution found nowhere else in the notebooks."""
    public = _public_text()
    bodies = [(p, body) for p in NOTEBOOKS for body in SOLUTION.findall(_markdown(p))]
    bodies += [(p, "".join(c["source"])) for p in NOTEBOOKS
               for c in json.loads(p.read_text(encoding="utf-8"))["cells"]
               if _tagged(c) and c["cell_type"] == "markdown"]
    return {f"{p.name}: {body[:60]!r}": sorted(ph for ph in _phrases(body) if ph not in public)
            for p, body in bodies}


def _plain(text: str) -> str:
    """Visible text of a page or a file: tags dropped, entities decoded, whitespace squeezed."""
    text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(html.unescape(text).split())


def _site_texts(site: Path) -> dict[str, str]:
    """The visible text of every page, source and notebook (cells, not JSON) of a site."""
    texts = {}
    for path in site.rglob("*"):
        rel = path.relative_to(site)
        if not path.is_file() or "_static" in rel.parts:
            continue
        if path.suffix == ".ipynb":
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            texts[rel.as_posix()] = " ".join(" ".join("".join(c["source"]).split())
                                             for c in cells)
        elif path.suffix in {".html", ".js"}:
            texts[rel.as_posix()] = _plain(path.read_text(encoding="utf-8", errors="replace"))
        elif path.suffix in {".md", ".txt"}:
            texts[rel.as_posix()] = " ".join(path.read_text(encoding="utf-8").split())
    return texts


@pytest.fixture(scope="module")
def student() -> dict[str, str]:
    if not (STUDENT / "index.html").exists():
        if in_ci():
            pytest.fail("the student edition is not built: run `make student` (make test does)")
        pytest.skip("the student edition is not built: run `make student`")
    return _site_texts(STUDENT)


@pytest.fixture(scope="module")
def fingerprints() -> dict[str, list[str]]:
    """Each solution's phrases and formulas, as the instructor site shows them."""
    if not (INSTRUCTOR / "index.html").exists():
        pytest.fail("the book is not built: run `make book` first (make test does)")
    pages = " ".join(_plain(p.read_text(encoding="utf-8"))
                     for p in (INSTRUCTOR / "book").rglob("*.html"))
    return {solution: [p for p in phrases if p in pages]
            for solution, phrases in _solution_phrases().items()}


def test_the_solution_texts_are_found_in_the_instructor_edition(fingerprints):
    """The search can fail: the solutions' own phrases are on the instructor site's pages."""
    assert len(fingerprints) >= 7
    few = {solution: len(found) for solution, found in fingerprints.items() if len(found) < 5}
    assert not few, f"solutions with fewer than 5 phrases on the instructor site: {few}"
    found = sum(map(len, fingerprints.values()))
    assert found >= 0.9 * sum(map(len, _solution_phrases().values()))


def test_no_solution_text_anywhere_in_the_student_edition(student, fingerprints):
    leaks = [f"{where}: {phrase!r} (from {solution})"
             for solution, phrases in fingerprints.items() for phrase in phrases
             for where, text in student.items() if phrase in text]
    assert not leaks, "solution text in the student edition:\n" + "\n".join(leaks[:20])


def test_no_solution_block_or_file_in_the_student_edition(student):
    rendered = re.compile(r'<div class="solution[ "]|-solution-\d+"')
    authored = re.compile(r'<details class="solution"|^\s*(`{3,}|:{3,})\s*\{solution\}', re.M)
    for rel in student:
        path = STUDENT / rel
        if rel.endswith(".html"):
            assert not rendered.search(path.read_text(encoding="utf-8")), rel
        elif rel.endswith((".ipynb", ".md")):
            text = _markdown(path) if rel.endswith(".ipynb") else path.read_text()
            assert not authored.search(text), rel
    assert not [p for p in STUDENT.rglob("*") if "solutions" in p.relative_to(STUDENT).parts]


def test_the_student_edition_keeps_exercises_hints_and_downloads(student):
    hints = [_plain(h) for p in NOTEBOOKS for h in HINT.findall(_markdown(p))]
    assert hints, "no hint found in the sources"
    pages = " ".join(text for rel, text in student.items() if rel.endswith(".html"))
    for hint in hints:
        assert all(phrase in pages for phrase in _phrases(hint, words=2)), f"hint lost: {hint!r}"
    for nb in NOTEBOOKS:
        rel = nb.relative_to(ROOT).as_posix()
        assert f"_sources/{rel}" in student, f"the download of {rel} is missing"
        assert "Exercise" in student[f"_sources/{rel}"] or "exercises" not in rel


def test_the_launch_buttons_open_the_stripped_notebooks_of_the_student_branch(student,
                                                                              fingerprints):
    page = (STUDENT / "book" / "exercises" / "ch01_energy.html").read_text(encoding="utf-8")
    launches = re.findall(r'href="(https://(?:mybinder\.org|colab\.research)[^"]+)"', page)
    assert len(launches) == 2, launches
    assert all("/student" in url and "/main" not in url for url in launches), launches
    for nb in NOTEBOOKS:
        rel = nb.relative_to(ROOT).as_posix()
        assert (BRANCH / rel).read_bytes() == (STUDENT / "_sources" / rel).read_bytes()
    assert (BRANCH / "binder" / "requirements.txt").exists()
    assert not (BRANCH / "solutions").exists()
    branch = " ".join(_site_texts(BRANCH / "book").values())
    leaks = [p for ps in fingerprints.values() for p in ps if p in branch]
    assert not leaks, leaks[:5]
