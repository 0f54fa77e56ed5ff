"""The book's Sphinx extension (``book/_ext/ebmlab_book.py``): the execution-time report."""

from __future__ import annotations

import importlib.util

import pytest

from .conftest import ROOT

pytest.importorskip("sphinx")


def _extension():
    spec = importlib.util.spec_from_file_location("ebmlab_book",
                                                  ROOT / "book" / "_ext" / "ebmlab_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_execution_report_lists_notebooks_slowest_first_with_the_total():
    report = _extension().execution_report(
        {"book/ch01_energy": 9.04, "book/ch06_diffusion": 312.2, "book/intro_nb": 0.5},
        budget=120)
    lines = report.splitlines()
    assert lines[0] == "notebook execution times (3 notebooks, slowest first):"
    assert [line.split()[0] for line in lines[1:]] == [
        "book/ch06_diffusion", "book/ch01_energy", "book/intro_nb", "total"]
    assert lines[1].endswith("312.2 s  <- over the 120 s budget")
    assert lines[2].endswith("9.0 s") and "budget" not in lines[2]
    assert lines[-1].endswith("321.7 s")


def test_the_extension_tells_notebooks_they_run_in_the_book_build(monkeypatch):
    from ebmlab.notebook import BOOK_BUILD_ENV, in_book_build

    monkeypatch.setenv(BOOK_BUILD_ENV, "0")  # restored after the test, whatever setup sets
    assert not in_book_build()
    connected, transforms = [], []

    class App:
        def connect(self, event, handler, priority=500):
            connected.append(event)

        def add_transform(self, transform):
            transforms.append(transform.__name__)

    _extension().setup(App())
    assert in_book_build()
    assert set(connected) == {"html-page-context", "build-finished"}
    assert transforms == ["NumberDisplayMath"]
