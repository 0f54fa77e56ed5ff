"""Every chapter and exercise notebook is written to run on its own (Colab, Binder, a download).

Each notebook opens with the same tagged set-up cell, which installs the pinned release of
``ebmlab`` (without replacing the reader's torch) when it is missing; no notebook reads a
path of this repository or imports myst-nb. ``test_standalone_notebooks.py`` runs them so.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

import ebmlab

from .conftest import ROOT

NOTEBOOKS = sorted((ROOT / "book").glob("ch*.ipynb")) + sorted(
    (ROOT / "book" / "exercises").glob("ch*.ipynb"))
_URL = re.compile(r'"(https://[^"]+/archive/refs/tags/v([^"/]+)\.zip)"')


def _code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _setup_source() -> str:
    return _source(_code_cells(NOTEBOOKS[0])[0])


def test_the_notebooks_are_all_there():
    """The notebooks tested here are exactly the notebooks of the book's table of contents."""
    toc = (ROOT / "_toc.yml").read_text()
    listed = {ROOT / f"{name}.ipynb" for name in re.findall(r"file:\s*(\S+)", toc)
              if (ROOT / f"{name}.ipynb").exists()}
    assert listed == set(NOTEBOOKS)
    assert any(p.parent.name == "exercises" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_first_cell_is_the_same_tagged_setup_cell(path):
    first = json.loads(path.read_text())["cells"][0]
    assert first["cell_type"] == "code" and first["id"] == "install-ebmlab"
    assert first["metadata"].get("tags") == ["remove-cell"]  # hidden in the book only
    assert _source(first) == _setup_source()


def test_setup_cell_installs_the_pinned_release_from_the_book_repository():
    source = _setup_source()
    (url, tag), = _URL.findall(source)
    config = (ROOT / "_config.yml").read_text()
    repository = re.search(r"^repository:\n\s+url:\s*(\S+)", config, re.M).group(1)
    assert url == f"{repository}/archive/refs/tags/v{tag}.zip"
    # The pin is the release of this book: the package version it documents.
    assert Version(tag) == Version(ebmlab.__version__), (tag, ebmlab.__version__)
    assert 'importlib.util.find_spec("ebmlab") is None' in source
    assert "--no-deps" in source


def test_setup_cell_adds_the_package_dependencies_with_torch_left_as_it_is():
    """The cell installs ebmlab without dependencies, then pyproject's dependencies with
    torch's upper bound dropped: pip keeps any torch >= the minimum (Colab's may be newer
    than our pin) instead of replacing it with a multi-GB download."""
    listed = {Requirement(r).name: Requirement(r) for r in
              re.findall(r'"([A-Za-z][\w.-]*[<>=!~][^"]*)"', _setup_source())}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for req in map(Requirement, project["dependencies"]):
        assert req.name in listed, f"the set-up cell does not install {req.name}"
        minimum = {s for s in req.specifier if s.operator == ">="}
        expected = minimum if req.name == "torch" else set(req.specifier)
        assert set(listed.pop(req.name).specifier) == expected, req.name
    assert not listed, f"the set-up cell installs more than ebmlab needs: {sorted(listed)}"


_REPOSITORY_PATHS = re.compile(r"book/|checkpoints|scripts|benchmarks|Path\(|sys\.path|"
                               r"__file__|\bopen\(|myst_nb")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_notebook_reads_the_repository_or_needs_the_book_tooling(path):
    for number, cell in enumerate(_code_cells(path)[1:], start=2):
        for line in _source(cell).splitlines():
            code = line.split("#")[0]
            assert not _REPOSITORY_PATHS.search(code), f"code cell {number}: {line.strip()}"


_LIVE_WIDGET = re.compile(r"\binteractive\(|\binteract\(|\bOutput\(|_explorer\(")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_live_widgets_are_left_to_live_notebooks(path):
    """A cell that shows a live widget is tagged ``skip-execution`` and does nothing else.

    The book hides widget outputs and shows a static figure instead, so its build need not run
    them; and running them there can stall: nbclient's stand-in for an ipywidgets ``Output``
    widget answers each captured output on the kernel's shell socket while it waits for the
    cell's reply on that socket, and the reply's wake-up can be lost until the cell timeout.
    Jupyter, Colab and nbval run these cells as usual.
    """
    for number, cell in enumerate(_code_cells(path), start=1):
        source = _source(cell)
        if not _LIVE_WIDGET.search(source):
            continue
        assert "skip-execution" in cell["metadata"].get("tags", []), f"code cell {number}"
        statements = ast.parse(source).body
        assert len(statements) == 1 and isinstance(statements[0], ast.Expr), (
            f"code cell {number}: a skipped widget cell must hold only the widget expression")
