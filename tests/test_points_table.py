"""The points table of the exercises page agrees with the grader's registry.

Every registered exercise of chapters 1-9 has a row whose points are its maximum, each
chapter's total row is the sum of its exercises, chapters carry similar totals, and at
least three exercises per chapter, 24 in all, are graded.
"""

from __future__ import annotations

import re

from ebmlab.exercises import exercises

from .conftest import ROOT

ROW = re.compile(r"^\| (\d+\.\d+) \| .+? \| (\w+) \| (\d+(?:\.\d+)?) \| (\d+(?:\.\d+)?) \|$", re.M)
TOTAL = re.compile(r"^\| \*\*Chapter (\d+)\*\* \| \| \| \*\*(\d+)\*\* \|", re.M)
CHAPTERS = range(1, 10)


def _table() -> tuple[dict[str, tuple[str, float, float]], dict[int, float]]:
    text = (ROOT / "book" / "exercises" / "index.md").read_text(encoding="utf-8")
    rows = {m[1]: (m[2], float(m[3]), float(m[4])) for m in ROW.finditer(text)}
    totals = {int(m[1]): float(m[2]) for m in TOTAL.finditer(text)}
    return rows, totals


def test_the_table_lists_every_exercise_with_its_maximum():
    rows, totals = _table()
    registered = {ex.id: ex for c in CHAPTERS for ex in exercises(c)}
    assert sorted(rows) == sorted(registered)
    for ex_id, (kind, points, contract) in rows.items():
        assert points == registered[ex_id].max_points, ex_id
        assert kind in {"implementation", "derivation", "training", "design"}, ex_id
        assert contract <= 0.2 * points + 1e-9, ex_id  # contracts: at most a fifth
    for chapter in CHAPTERS:
        assert totals[chapter] == sum(ex.max_points for ex in exercises(chapter)), chapter


def test_every_chapter_has_three_exercises_and_similar_totals():
    counts = {c: len(exercises(c)) for c in CHAPTERS}
    assert min(counts.values()) >= 3 and sum(counts.values()) >= 24, counts
    totals = [sum(ex.max_points for ex in exercises(c)) for c in CHAPTERS]
    assert max(totals) - min(totals) <= 0.1 * max(totals), totals
    kinds = {c: {kind for ex_id, (kind, _, _) in _table()[0].items()
                 if ex_id.split(".")[0] == str(c)} for c in CHAPTERS}
    for c in range(3, 8):
        assert "training" in kinds[c], c  # a training exercise in chapters 3-7
    assert all("derivation" in k for k in kinds.values()), kinds
