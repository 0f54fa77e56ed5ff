"""``python -m ebmlab grade``: hostile submissions are graded in bounded time with a valid
report; folders grade to JSON, a CSV gradebook and feedback files, in parallel; the set of
exercises can be fixed; hidden checks and fresh instances; every stub notebook scores 0 and
every reference solution full marks; files that cannot be graded exit non-zero."""

from __future__ import annotations

import csv
import importlib.util
import inspect
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ebmlab.__main__ import main
from ebmlab.exercises import GradingError, exercises, get_exercise, grade_file, load_bank
from ebmlab.exercises._cli import parse_exercises
from ebmlab.exercises._grade import plan_exercises, read_cells
from ebmlab.exercises._sandbox import RunCell, Session

from . import hostile_functions
from .conftest import ROOT

BANK = str(ROOT / "tests" / "autograder_bank.py")
FAST = ["--timeout", "2", "--cell-timeout", "2", "--bank", BANK]
SOLUTION = (ROOT / "solutions" / "ch02.py").read_text()
load_bank(BANK)  # exercises 99.x, for the in-process planning tests

#: The hostile answers of exercises 99.2-99.12 as a submission's text; double_nan (99.4) is
#: left out, to test a function that the submission does not define.
HOSTILE_FUNCTIONS = "\n" + "\n".join(
    ["import os, random, sys", "import numpy as np", "import torch", ""]
    + [inspect.getsource(getattr(hostile_functions, name))
       for name in ("double_raises", "double_loops", "double_shape", "double_dtype",
                    "double_device", "double_mutates", "double_floods", "double_exits",
                    "double_os_exit", "double_state")])

#: exercise id -> (points, status of its failed check or None, words in the message)
EXPECTED = {
    "99.1": (3.0, None, ""),
    "99.2": (0.0, "error", "ValueError: boom"),
    "99.3": (0.0, "timeout", "timed out after 2 s"),
    "99.5": (0.0, "failed", "shape"),
    "99.6": (0.0, "failed", "dtype"),
    "99.7": (0.0, "failed", "device"),
    "99.8": (0.0, "failed", "modified in place"),
    "99.9": (0.0, "error", "printed more than"),
    "99.10": (0.0, "error", "sys.exit(3)"),
    "99.11": (0.0, "error", "exit code 5"),
    "99.12": (1.0, None, ""),
}
REPORT_FIELDS = {"total", "max_total", "exercises", "cell_errors", "notes", "seed",
                 "peak_memory_mb"}
STATUSES = {"passed", "failed", "error", "timeout", "not_implemented", "forbidden"}


def _grade(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ebmlab", "grade", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def _notebook(path: Path, cells: list[str]) -> Path:
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "markdown", "metadata": {}, "source": "# A submission"}]
          + [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
              "source": src} for src in cells]}
    path.write_text(json.dumps(nb))
    return path


def _assert_schema(report: dict) -> None:
    assert set(report) == REPORT_FIELDS
    assert isinstance(report["total"], float) and isinstance(report["max_total"], float)
    assert isinstance(report["seed"], int) and all(isinstance(n, str) for n in report["notes"])
    for entry in report["cell_errors"]:
        assert set(entry) == {"cell", "error"}
    for ex in report["exercises"]:
        assert set(ex) == {"id", "points", "max_points", "checks"}
        assert isinstance(ex["id"], str)
        assert isinstance(ex["points"], float) and isinstance(ex["max_points"], float)
        for c in ex["checks"]:
            assert set(c) == {"name", "passed", "points", "max_points", "status", "message"}
            assert isinstance(c["name"], str) and isinstance(c["passed"], bool)
            assert isinstance(c["points"], float) and isinstance(c["message"], str)
            assert c["status"] in STATUSES and c["passed"] == (c["status"] == "passed")
            assert c["points"] == (c["max_points"] if c["passed"] else 0.0)
        assert ex["points"] == sum(c["points"] for c in ex["checks"])
        assert ex["max_points"] == sum(c["max_points"] for c in ex["checks"])
    assert report["total"] == sum(e["points"] for e in report["exercises"])


def test_hostile_notebook_is_graded_in_bounded_time_with_a_valid_report(tmp_path):
    path = _notebook(tmp_path / "hostile_ch02.ipynb", [
        "%matplotlib inline\nimport os, sys, torch\nfrom ebmlab.exercises import check",
        'raise RuntimeError("an unrelated cell fails")',
        SOLUTION + "\n\ndef double(x):\n    return 2 * x\n",
        "while True:\n    pass",
        "for i in range(10**7):\n    print(i)",
        "sys.exit(1)",
        "torch.set_default_dtype(torch.float64)\ntorch.set_grad_enabled(False)\n"
        "torch.manual_seed(0)",
        'check("2.1", score)\ncheck("99.1", double)',
        "os._exit(3)",
        "def broken(:\n    pass",
        HOSTILE_FUNCTIONS,
    ])
    start = time.monotonic()
    proc = _grade(str(path), "--json", *FAST)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    _assert_schema(report)
    by_id = {e["id"]: e for e in report["exercises"]}
    # chapter 2 from the file name, chapter 99 from the check("99.1", ...) call
    assert by_id["2.1"]["points"] == by_id["2.1"]["max_points"] == 8.0
    assert all(c["passed"] for c in by_id["2.1"]["checks"])
    assert by_id["99.4"]["checks"][0]["message"].startswith("`double_nan` is not defined")
    for exercise_id, (points, _, words) in EXPECTED.items():
        ex = by_id[exercise_id]
        assert ex["points"] == points, (exercise_id, ex)
        assert words in " ".join(c["message"] for c in ex["checks"]), (exercise_id, ex)
    # every chapter-2 exercise is graded; the reference solution has full marks on each
    chapter2 = [e for e in report["exercises"] if e["id"].startswith("2.")]
    assert [e["id"] for e in chapter2] == [e.id for e in exercises(2)]
    assert all(e["points"] == e["max_points"] for e in chapter2)
    max_chapter2 = sum(e.max_points for e in exercises(2))
    assert report["total"] == max_chapter2 + 3.0 + 1.0
    assert report["max_total"] == max_chapter2 + 3.0 + 11.0
    assert elapsed < 200, f"grading took {elapsed:.0f} s"


def test_hostile_python_file_human_report(tmp_path):
    path = tmp_path / "hostile_ch99.py"
    path.write_text(
        "import sys\n"
        "for i in range(10**7):\n    print(i)\n"
        "raise ValueError('a failing top-level statement')\n"
        "def double(x):\n    return 2 * x\n"
        + HOSTILE_FUNCTIONS
        + "\nsys.exit(0)\n"
        + "if __name__ == '__main__':\n    while True:\n        pass\n")
    start = time.monotonic()
    proc = _grade(str(path), *FAST)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith(f"== {path}")
    assert "line 2: OutputLimitExceeded" in out and "line 4: ValueError" in out
    assert "SystemExit: 0" in out
    assert "PASS  doubles x" in out and "[timed out]" in out and "sys.exit(3)" in out
    assert "Exercise 99.1: 3 / 3 points" in out
    assert out.rstrip().endswith("Total: 4 / 14")
    assert "Traceback" not in out
    assert time.monotonic() - start < 200


def test_folder_of_submissions_to_json(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copy(ROOT / "tests" / "wrong_solutions" / "ch02.py", folder / "bob_ch02.py")
    shutil.copy(ROOT / "book" / "exercises" / "ch02_score_langevin.ipynb",
                folder / "carol_ch02_score_langevin.ipynb")
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "bob_ch02-checkpoint.py").write_text("oops(")
    proc = _grade(str(folder), "--json", "--timeout", "5")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"submissions", "summary"}
    subs = {Path(s["path"]).name: s for s in data["submissions"]}
    assert sorted(subs) == ["bob_ch02.py", "carol_ch02_score_langevin.ipynb"]
    for s in subs.values():
        assert s["error"] is None
        _assert_schema({k: v for k, v in s.items() if k not in ("path", "error")})
    summary = data["summary"]
    assert summary["submissions"] == summary["graded"] == 2 and summary["same_exercises"]
    assert [e["id"] for e in summary["exercises"]] == [e.id for e in exercises(2)]
    bob = subs["bob_ch02.py"]
    assert 0 < bob["total"] < bob["max_total"]
    assert any("MINUS the gradient" in c["message"] for c in bob["exercises"][0]["checks"])
    carol = subs["carol_ch02_score_langevin.ipynb"]
    assert carol["total"] == 0.0
    assert carol["max_total"] == sum(e.max_points for e in exercises(2))
    assert all(c["message"].startswith("not implemented yet")
               for e in carol["exercises"] for c in e["checks"])


def test_files_that_cannot_be_graded_exit_nonzero_with_a_message(tmp_path, capsys):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{ this is not json")
    no_cells = tmp_path / "no_cells.ipynb"
    no_cells.write_text('{"metadata": {}}')
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert main(["grade", str(tmp_path / "missing.ipynb")]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "missing.ipynb: no such file" in err
    assert main(["grade", str(bad), str(no_cells), str(text), "--json"]) == 1
    out, err = capsys.readouterr()
    assert "not a readable Jupyter notebook (invalid JSON at line 1" in err
    assert "not a Jupyter notebook (no list of cells)" in err
    assert "expected a Jupyter notebook (.ipynb) or a Python file (.py)" in err
    subs = json.loads(out)["submissions"]
    assert [s["total"] for s in subs] == [0.0, 0.0, 0.0]
    assert all(s["error"] for s in subs)


def test_plan_without_a_chapter_grades_the_functions_it_defines(tmp_path):
    path = tmp_path / "submission.py"
    path.write_text(SOLUTION)
    planned, how = plan_exercises(path, read_cells(path), {"score", "print"})
    assert [e.id for e in planned] == ["2.1"] and "functions the submission defines" in how
    named = tmp_path / "alice_ch2.py"
    named.write_text("x = 1\n")
    planned, how = plan_exercises(named, read_cells(named), set())
    assert [e.id for e in planned] == [e.id for e in exercises(2)]  # from the file name
    assert "chapter(s) 2" in how and "--exercises" in how
    called = tmp_path / "work.py"
    called.write_text('check("99.3", f)\n')
    planned, _ = plan_exercises(called, read_cells(called), set())
    assert [e.id for e in planned] == [f"99.{i}" for i in range(1, 13)]  # its whole chapter


def test_exercise_specs():
    assert [e.id for e in parse_exercises("2")] == [e.id for e in exercises(2)]
    assert [e.id for e in parse_exercises("2.3, 1.1,2.3")] == ["1.1", "2.3"]
    assert [e.id for e in parse_exercises("3,2.1")][:1] == ["2.1"]
    for bad in ("2.99", "two", "0", "97"):
        with pytest.raises(ValueError):
            parse_exercises(bad)


def _run_cells(cells) -> tuple[list[str | None], dict]:
    """Execute cells in-process, the way a sandbox does (``RunCell``)."""
    session = Session({}, max_bytes=1 << 20)
    errors = [RunCell(c.source, c.filename).handle(session)[0]["error"] for c in cells]
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    return errors, session.namespace


def test_python_file_split_keeps_functions_apart_from_syntax_errors(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("import torch\n\ndef good(x):\n    return x\n\n@staticmethod\n"
                    "def bad(x:\n    return x\n\ndef also_good(x):\n    return 2 * x\n")
    cells = read_cells(path)
    assert [c.label for c in cells] == ["line 1", "line 3", "line 6", "line 10"]
    errors, namespace = _run_cells(cells)
    assert errors[0] is None and errors[1] is None and errors[3] is None
    assert errors[2].startswith("SyntaxError")
    assert callable(namespace["good"]) and callable(namespace["also_good"])


def test_notebook_magics_become_pass(tmp_path):
    path = _notebook(tmp_path / "magic.ipynb", [
        "%matplotlib inline\n!pip install nothing\nx = 1",
        "%%bash\necho hi", "%%time\ny = x + 1"])
    errors, namespace = _run_cells(read_cells(path))
    assert errors == [None, None, None] and namespace["y"] == 2


def test_grade_file_api_errors(tmp_path):
    with pytest.raises(GradingError, match="no such file"):
        grade_file(tmp_path / "nope.py")
    (tmp_path / "empty.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="cell_timeout"):
        grade_file(tmp_path / "empty.py", cell_timeout=0)
    with pytest.raises(GradingError, match="not a file"):
        grade_file(tmp_path)


def test_command_line_usage(capsys, tmp_path):
    assert main([]) == 2
    assert "usage: python -m ebmlab COMMAND" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("ebmlab ")
    with pytest.raises(SystemExit) as info:
        main(["grade", "--help"])
    assert info.value.code == 0
    assert "--json" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["grade", str(tmp_path), "--timeout", "-1"])
    assert info.value.code == 2
    assert "--timeout must be > 0" in capsys.readouterr().err
    for args, words in ((["--exercises", "2.99"], "no exercise '2.99'"),
                        (["--jobs", "0"], "--jobs must be >= 1"),
                        (["--bank", str(tmp_path / "nope.py")], "does not exist")):
        with pytest.raises(SystemExit) as info:
            main(["grade", str(tmp_path), *args])
        assert info.value.code == 2 and words in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["grade", str(empty)]) == 1
    assert "no .ipynb or .py files" in capsys.readouterr().err


def _cli(*args: str, cwd: Path = ROOT, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-P", "-m", "ebmlab", "grade", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_class_of_stub_notebooks_and_reference_solutions(tmp_path):
    """Every stub notebook scores exactly 0 (out of its chapter's maximum) and reference
    solutions full marks, graded as a class two at a time, on an instance the notebooks
    never saw; the gradebook, the feedback files and the summary agree with the reports.
    (Every reference solution on a fresh instance: test_autograder.py.)"""
    folder = tmp_path / "class"
    folder.mkdir()
    notebooks = sorted((ROOT / "book" / "exercises").glob("ch*.ipynb"))
    for notebook in notebooks:
        shutil.copy(notebook, folder / f"stub_{notebook.name}")
    for chapter in ("ch06", "ch07"):
        shutil.copy(ROOT / "solutions" / f"{chapter}.py", folder / f"reference_{chapter}.py")
    proc = _cli(str(folder), "--json", "-j", "2", "--csv", str(tmp_path / "grades.csv"),
                "--feedback", str(tmp_path / "feedback"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    chapters = range(1, len(notebooks) + 1)
    maxima = {c: sum(e.max_points for e in exercises(c)) for c in chapters}
    seeds = set()
    for sub in data["submissions"]:
        name = Path(sub["path"]).name
        chapter = int(name.split("_ch")[1][:2])
        _assert_schema({k: v for k, v in sub.items() if k not in ("path", "error")})
        assert sub["error"] is None and sub["max_total"] == maxima[chapter], name
        expected = 0.0 if name.startswith("stub_") else maxima[chapter]
        assert sub["total"] == expected, json.dumps(sub, indent=1)[:3000]
        seeds.add(sub["seed"])
    assert len(seeds) == 1 and seeds != {0}
    with open(tmp_path / "grades.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [Path(r["submission"]).name for r in rows] == sorted(
        Path(s["path"]).name for s in data["submissions"])
    for row, sub in zip(rows, data["submissions"], strict=True):
        assert float(row["total"]) == sub["total"] and float(row["max_total"]) == sub["max_total"]
        for ex in sub["exercises"]:
            assert float(row[ex["id"]]) == ex["points"]
        text = (tmp_path / "feedback" / f"{Path(sub['path']).name}.txt").read_text()
        assert text.startswith(f"== {sub['path']}")
        assert f"Total: {sub['total']:g} / {sub['max_total']:g}" in text
    summary = data["summary"]
    assert summary["graded"] == summary["submissions"] == len(notebooks) + 2
    assert not summary["same_exercises"]
    means = {e["id"]: e["mean_points"] / e["max_points"] for e in summary["exercises"]}
    assert means == {ex.id: 0.5 if ex.chapter in (6, 7) else 0.0
                     for c in chapters for ex in exercises(c)}
    assert summary["most_failed_checks"][0]["failed"] == 1


def test_parallel_and_sequential_grading_agree_with_the_in_process_grader(tmp_path):
    from ebmlab.exercises import grade_function

    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copy(ROOT / "tests" / "wrong_solutions" / "ch02.py", folder / "bob_ch02.py")
    (folder / "carol_ch02.py").write_text("def score(energy, x):\n    return -x\n")
    runs = {}
    for jobs in ("1", "2"):
        proc = _cli(str(folder), "--json", "-j", jobs, "--seed", "31337")
        assert proc.returncode == 0, proc.stderr
        runs[jobs] = json.loads(proc.stdout)
        for sub in runs[jobs]["submissions"]:
            sub.pop("peak_memory_mb")  # measured, not graded
    assert runs["1"] == runs["2"]
    spec = importlib.util.spec_from_file_location("_bob", folder / "bob_ch02.py")
    bob = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bob)
    known = {ex.id: grade_function(ex, getattr(bob, ex.function), seed=31337)
             for ex in exercises(2)}
    (graded_bob, graded_carol) = runs["2"]["submissions"]
    for ex in graded_bob["exercises"]:
        assert ex["points"] == known[ex["id"]].points
        assert [c["status"] for c in ex["checks"]] == [r.status for r in known[ex["id"]].results]
    carol_score = grade_function(exercises(2)[0], lambda energy, x: -x, seed=31337)
    assert graded_carol["exercises"][0]["points"] == carol_score.points  # right on ½‖x‖² only
    assert 0 < carol_score.points < carol_score.max_points
    assert graded_carol["exercises"][1]["checks"][0]["status"] == "not_implemented"


def test_exercises_fix_the_maximum_of_every_student(tmp_path):
    homework = tmp_path / "homework.ipynb"
    shutil.copy(ROOT / "book" / "exercises" / "ch02_score_langevin.ipynb", homework)
    one = tmp_path / "one.py"
    one.write_text((ROOT / "solutions" / "ch02.py").read_text().split("\ndef langevin_step")[0])
    chapter2 = sum(e.max_points for e in exercises(2))
    inferred = json.loads(_cli(str(homework), str(one), "--json", "-j", "1").stdout)
    inferred = inferred["submissions"]
    score_max = get_exercise("2.1").max_points
    assert [s["max_total"] for s in inferred] == [chapter2, score_max]  # one.py: only 2.1
    assert inferred[1]["total"] == score_max  # the old "10 out of 10"
    assert "chapter(s) 2" in inferred[0]["notes"][0]
    assert "functions the submission defines" in inferred[1]["notes"][0]
    fixed = json.loads(_cli(str(homework), str(one), "--json", "-j", "1", "--exercises", "1,2",
                            ).stdout)["submissions"]
    maximum = chapter2 + sum(e.max_points for e in exercises(1))
    assert [s["max_total"] for s in fixed] == [maximum, maximum]
    assert [s["total"] for s in fixed] == [0.0, score_max]
    assert [e["id"] for e in fixed[1]["exercises"]] == [e.id for c in (1, 2)
                                                         for e in exercises(c)]


def test_hidden_checks_of_the_instructors_page_grade_with_the_course_checks(tmp_path):
    page = (ROOT / "book" / "exercises" / "index.md").read_text()
    (block,) = [b for b in page.split("```python")[1:] if "get_exercise(\"2.1\").check" in b]
    bank = tmp_path / "hidden.py"
    bank.write_text(textwrap.dedent(block.split("```")[0]))
    shutil.copy(ROOT / "solutions" / "ch02.py", tmp_path / "alice.py")
    (tmp_path / "bob.py").write_text("def score(energy, x):\n    return -x\n")
    proc = _cli(str(tmp_path / "alice.py"), str(tmp_path / "bob.py"), "--exercises", "2.1",
                "--bank", str(bank), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    alice, bob = json.loads(proc.stdout)["submissions"]
    names = [c["name"] for c in alice["exercises"][0]["checks"]]
    course = get_exercise("2.1")
    assert names[-1] == "hidden: the score of a cubic energy"
    assert len(names) == len([c for c in course.checks if not c.name.startswith("hidden:")]) + 1
    with_hidden = sum(c.points for c in course.checks if not c.name.startswith("hidden:")) + 2.0
    assert alice["total"] == alice["max_total"] == with_hidden
    assert bob["max_total"] == with_hidden
    assert bob["exercises"][0]["checks"][-1]["status"] == "failed"
