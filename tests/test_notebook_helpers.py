"""The notebook helpers: ``ebmlab.notebook.glue`` and ``ebmlab.benchmarking.time_loss``."""

from __future__ import annotations

import os

import pytest
import torch

import ebmlab as el
from ebmlab.benchmarking import time_loss
from ebmlab.notebook import BOOK_BUILD_ENV, glue, in_book_build

# Outside an IPython kernel, IPython's display() prints what it would display: what these
# tests read from stdout is what a notebook would show.


def test_glue_outside_the_book_shows_the_value_or_nothing(monkeypatch, capsys):
    monkeypatch.delenv(BOOK_BUILD_ENV, raising=False)
    assert not in_book_build()
    glue("answer", 42)
    assert capsys.readouterr().out == "42\n"
    glue("answer", 42, display=False)
    assert capsys.readouterr().out == ""


def _run_glue_cells(env: dict[str, str]) -> list[list[dict]]:
    """Outputs of glue cells executed in a real kernel with ``env`` added to its environment."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from ebmlab.notebook import glue"),
                nbformat.v4.new_code_cell('glue("hidden", 41, display=False)'),
                nbformat.v4.new_code_cell('glue("shown", 42)')]
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute(env=env)
    return [cell.outputs for cell in nb.cells[1:]]


@pytest.mark.slow
def test_glue_hands_values_to_myst_nb_in_the_book_build_only(monkeypatch):
    pytest.importorskip("myst_nb")
    monkeypatch.delenv(BOOK_BUILD_ENV, raising=False)
    hidden, shown = _run_glue_cells({**os.environ, BOOK_BUILD_ENV: "1"})
    # myst-nb's glue: the value under its record mime type (hidden) or its own (shown),
    # named in the scrapbook metadata that the book's {glue:} roles look up.
    (out,) = hidden
    assert out["data"] == {"application/papermill.record/text/plain": "41"}
    assert out["metadata"]["scrapbook"]["name"] == "hidden"
    (out,) = shown
    assert out["data"]["text/plain"] == "42" and out["metadata"]["scrapbook"]["name"] == "shown"
    # Elsewhere (Colab, Jupyter): nothing for a hidden glue, the plain value for a shown one.
    hidden, shown = _run_glue_cells(dict(os.environ))
    assert hidden == []
    (out,) = shown
    assert out["data"] == {"text/plain": "42"} and "scrapbook" not in out["metadata"]


def test_glue_rejects_a_name_that_is_not_a_string():
    with pytest.raises(TypeError, match="glue name must be a str, got int"):
        glue(3, 42)


def test_time_loss_is_the_median_of_timed_forward_and_backward_passes(monkeypatch):
    """With a fake clock: one warm-up call is not counted, the median of the rest is."""
    energy = el.MLPEnergy(2, hidden=(4,))
    x = torch.randn(5, 2)
    ticks = iter([0.0, 100.0,            # warm-up: not counted
                  0.0, 3.0, 0.0, 1.0, 0.0, 2.0])
    monkeypatch.setattr("ebmlab.benchmarking.time.perf_counter", lambda: next(ticks))
    calls = []

    def loss(e, batch):
        calls.append(batch)
        return e(batch).sum()

    assert time_loss(loss, energy, x, repeats=3) == 2.0
    assert len(calls) == 4
    assert all(p.grad is not None for p in energy.parameters())  # backward ran


def test_time_loss_clears_gradients_between_repeats():
    energy = el.MLPEnergy(2, hidden=(4,))
    x = torch.randn(5, 2)
    time_loss(lambda e, b: e(b).sum(), energy, x, repeats=2)
    once = [p.grad.clone() for p in energy.parameters()]
    energy.zero_grad()
    energy(x).sum().backward()
    for a, b in zip(once, (p.grad for p in energy.parameters()), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(("repeats", "error"), [(0, ValueError), (2.5, TypeError),
                                                (True, TypeError)])
def test_time_loss_rejects_bad_repeats(repeats, error):
    with pytest.raises(error, match="repeats"):
        time_loss(el.score_matching_loss, el.MLPEnergy(2), torch.randn(3, 2), repeats)
