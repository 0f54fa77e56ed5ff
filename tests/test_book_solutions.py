"""Model solutions authored as ``<details>`` (book/_ext/ebmlab_solutions.py)."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

from .conftest import ROOT

_spec = importlib.util.spec_from_file_location(
    "ebmlab_solutions", ROOT / "book" / "_ext" / "ebmlab_solutions.py")
solutions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(solutions)

BOOK_NOTEBOOKS = sorted([*ROOT.glob("book/*.ipynb"), *ROOT.glob("book/exercises/*.ipynb")])

CELL = """Prove it.

<details class="solution" data-exercise="ex-2-1">
<summary>Solution</summary>

Take logs: $\\log p = -E - \\log Z$.

```python
print("a fenced block inside the solution")
```

</details>

### Your code
"""


def test_a_solution_becomes_a_dropdown_solution_directive():
    out = solutions.solutions_to_directives(CELL)
    assert "<details" not in out and "</details>" not in out
    # The inner ``` fence is preserved, so the directive takes a longer fence.
    m = re.search(r"^(`{4,})\{solution\} ex-2-1\n:class: dropdown\n\n(.*?)\n\1$", out, re.M | re.S)
    assert m, out
    assert m.group(2).startswith("Take logs: $\\log p = -E - \\log Z$.")
    assert 'print("a fenced block inside the solution")\n```' in m.group(2)
    assert out.startswith("Prove it.\n\n") and out.endswith("\n### Your code\n")


def test_the_student_edition_removes_the_whole_block_and_nothing_else():
    out = solutions.strip_solutions(CELL)
    assert out == "Prove it.\n\n### Your code\n"


@pytest.mark.parametrize("bad, message", [
    ("```{solution} ex-1\n:class: dropdown\n\nIt is 1.\n```\n", "directive"),
    (":::{solution} ex-1\nIt is 1.\n:::\n", "directive"),
    ('<details class="solution">\n<summary>Solution</summary>\n\nIt is 1.\n\n</details>\n',
     "malformed"),
    ('<details class="solution" data-exercise="ex-1">\n<summary>Solution</summary>\n\nIt is 1.\n',
     "malformed"),
    ('<details class="solution" data-exercise="ex-1">\n<summary>Solution</summary>\nIt is 1.\n'
     "\n</details>\n", "blank line"),
])
def test_a_solution_off_the_convention_is_an_error_that_names_the_fix(bad, message):
    for transform in (solutions.solutions_to_directives, solutions.strip_solutions):
        with pytest.raises(solutions.SolutionSyntaxError, match=message) as info:
            transform(bad, "book/x.ipynb, cell 3")
        assert "book/x.ipynb, cell 3" in str(info.value)


def test_stripping_a_notebook_drops_cells_left_empty_and_keeps_the_rest():
    notebook = {"cells": [
        {"cell_type": "markdown", "id": "a", "metadata": {}, "source": CELL.splitlines(True)},
        {"cell_type": "markdown", "id": "b", "metadata": {},
         "source": ['<details class="solution" data-exercise="ex-2-2">\n',
                    "<summary>Solution</summary>\n", "\n", "Only this.\n", "\n", "</details>\n"]},
        {"cell_type": "code", "id": "c", "metadata": {}, "source": ["x = 1\n"],
         "outputs": [], "execution_count": None},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    out = json.loads(solutions.transform_notebook(json.dumps(notebook),
                                                  solutions.strip_solutions, "nb"))
    assert [c["id"] for c in out["cells"]] == ["a", "c"]
    assert "".join(out["cells"][0]["source"]) == "Prove it.\n\n### Your code\n"


def test_cells_tagged_solution_are_dropped_in_the_student_edition_only():
    def cell(ident: str, kind: str, tags: list[str]) -> dict:
        extra = {"outputs": [], "execution_count": None} if kind == "code" else {}
        return {"cell_type": kind, "id": ident, "metadata": {"tags": tags},
                "source": [f"{ident}\n"], **extra}

    notebook = json.dumps({"cells": [cell("a", "markdown", []),
                                     cell("b", "markdown", ["solution"]),
                                     cell("c", "code", ["solution", "hide-input"]),
                                     cell("d", "code", [])],
                           "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    student = json.loads(solutions.transform_notebook(notebook, solutions.strip_solutions, "nb",
                                                      drop_solution_cells=True))
    instructor = json.loads(solutions.transform_notebook(
        notebook, solutions.solutions_to_directives, "nb"))
    assert [c["id"] for c in student["cells"]] == ["a", "d"]
    assert [c["id"] for c in instructor["cells"]] == ["a", "b", "c", "d"]


@pytest.mark.parametrize("path", BOOK_NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_solution_in_the_book_follows_the_convention_and_answers_an_exercise(path):
    text = path.read_text(encoding="utf-8")
    notebook = json.loads(text)
    markdown = "\n".join("".join(c["source"]) for c in notebook["cells"]
                         if c["cell_type"] == "markdown")
    labels = set(re.findall(r"^:label: (\S+)", markdown, re.M))
    answered = re.findall(r'data-exercise="([^"]+)"', markdown)
    assert set(answered) <= labels, f"solutions to unknown exercises: {set(answered) - labels}"
    assert len(answered) == len(set(answered)), "an exercise with two solutions"
    # The notebook as Jupyter writes it, and both editions transform it without error.
    assert solutions.transform_notebook(text, lambda md, where: md, str(path)) == text
    for transform in (solutions.solutions_to_directives, solutions.strip_solutions):
        solutions.transform_notebook(text, transform, str(path))


def test_every_exercise_notebook_has_written_parts_with_model_solutions():
    for path in sorted(ROOT.glob("book/exercises/*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
        assert any('<details class="solution"' in s for s in sources), path.name
