"""The autograder (ebmlab.exercises): registry, check helpers, the sandbox of ``check()``
(a fork per check, or a thread), reports, ``check()`` in a Jupyter kernel, and the proofs
for every chapter's exercises (the reference solution scores full marks, the wrong
solution loses points with a message; the stub notebooks score 0 in test_grade_cli.py)."""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import random
import re
import subprocess
import sys
import time
import zlib
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from ebmlab.exercises import (
    CheckFailure,
    Report,
    StudentRaised,
    check,
    exercises,
    get_exercise,
    grade_function,
    load_bank,
    register,
)
from ebmlab.exercises._registry import bank_chapters
from ebmlab.exercises.expect import (
    call_student,
    expect_close,
    expect_detached,
    expect_device,
    expect_dtype,
    expect_finite,
    expect_grad_mode,
    expect_no_parameter_grads,
    expect_tensor,
    expect_unchanged,
)

from .conftest import ROOT
from .hostile_functions import (
    double_device,
    double_dtype,
    double_exits,
    double_floods,
    double_loops,
    double_mutates,
    double_nan,
    double_os_exit,
    double_raises,
    double_shape,
    double_state,
)

BANK = ROOT / "tests" / "autograder_bank.py"
load_bank(BANK)  # exercises 99.1 ("double", with a state canary) and 99.2-99.12
TIMEOUT = 3.0
ISOLATIONS = ["fork", "inprocess"] if sys.platform.startswith("linux") else ["inprocess"]
CHAPTERS = bank_chapters()


def _module(path: Path) -> ModuleType:
    name = f"_ebmlab_test_{path.parent.name}_{path.stem}_{zlib.crc32(str(path).encode())}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _global_state() -> dict:
    return {"dtype": torch.get_default_dtype(), "grad": torch.is_grad_enabled(),
            "rng": torch.get_rng_state().clone(), "np": np.random.get_state()[1].copy(),  # noqa: NPY002
            "py": random.getstate(), "threads": torch.get_num_threads(),
            "stdout": sys.stdout, "stderr": sys.stderr, "exit": os._exit}


def _assert_same_state(before: dict) -> None:
    after = _global_state()
    for key, value in before.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, after[key]), key
        elif isinstance(value, np.ndarray):
            assert np.array_equal(value, after[key]), key
        else:
            assert value is after[key] or value == after[key], key


# --- student functions ------------------------------------------------------------------
def double(x):
    return 2 * x


def double_slowly(x):
    time.sleep(1.5)
    return 2 * x


def double_stub(x):
    raise NotImplementedError


def double_segfaults(x):
    ctypes.string_at(0)
    return 2 * x


def double_asks(x):
    return 2 * x * float(input("factor? "))


def double_closes_pipes_and_loops(x):
    os.closerange(3, 1024)  # the result pipe too: the grader sees end-of-file early
    while True:
        pass


def double_prints(x):
    print("hello from the student")
    return 3 * x


def double_numpy(x):
    return (2 * x).numpy()


class Doubled(torch.Tensor):
    """A tensor subclass whose arithmetic always gives zeros (the comparison attack)."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        return torch.zeros_like(out) if isinstance(out, torch.Tensor) else out


def double_subclass(x):
    return (2 * x).as_subclass(Doubled)


HOSTILE = [
    # (function, isolations, status, words in the message)
    (double_raises, ISOLATIONS, "error", ["ValueError: boom", "double_raises", "line"]),
    (double_nan, ISOLATIONS, "failed", ["non-finite", "nan"]),
    (double_shape, ISOLATIONS, "failed", ["expected shape (4, 3)", "got shape (4,)"]),
    (double_dtype, ISOLATIONS, "failed", ["dtype torch.float64", "dtype torch.float32"]),
    (double_device, ISOLATIONS, "failed", ["device cpu", "device meta"]),
    (double_mutates, ISOLATIONS, "failed", ["modified in place"]),
    (double_floods, ISOLATIONS, "error", ["printed more than"]),
    (double_exits, ISOLATIONS, "error", ["sys.exit(3)"]),
    (double_os_exit, ["fork"], "error", ["exit code 5"]),
    (double_os_exit, ["inprocess"], "error", ["sys.exit(5)"]),
    (double_asks, ISOLATIONS, "error", ["EOFError"]),
    (double_numpy, ISOLATIONS, "failed", ["plain data", "numpy.ndarray", "torch.Tensor"]),
    (double_subclass, ISOLATIONS, "failed", ["Doubled (a subclass of torch.Tensor)"]),
    (double_loops, ["fork"], "timeout", [f"timed out after {TIMEOUT:g} s"]),
    (double_segfaults, ["fork"], "error", ["SIGSEGV"]),
    (double_closes_pipes_and_loops, ["fork"], "timeout", ["timed out"]),
]


# --- registry ---------------------------------------------------------------------------
def test_register_and_check_validate_their_arguments():
    for bad in ("2", "2.0", "a.b", 2.1, "02.1"):
        with pytest.raises(ValueError, match=r"'N\.M'"):
            register(bad, "t", function="f")
    with pytest.raises(ValueError, match="identifier"):
        register("98.1", "t", function="not a name")
    with pytest.raises(ValueError, match="title"):
        register("98.1", "", function="f")
    with pytest.raises(ValueError, match="already registered"):
        register("99.1", "again", function="double")
    with pytest.raises(ValueError, match="forbidden"):
        register("98.2", "t", function="f", forbidden="ebmlab.score_of")
    ex = register("98.1", "Validation", function="f")
    with pytest.raises(ValueError, match="points"):
        ex.check("c", points=0)
    with pytest.raises(ValueError, match="timeout"):
        ex.check("c", timeout=-1)
    ex.check("c")(lambda f, ctx: None)
    with pytest.raises(ValueError, match="already has a check named 'c'"):
        ex.check("c")
    assert ex.max_points == 1.0 and ex.chapter == 98


def test_unknown_exercise_lists_the_chapter():
    with pytest.raises(ValueError, match=r"no exercise '2\.99'.*2\.1"):
        get_exercise("2.99")
    with pytest.raises(ValueError, match=r"'N\.M'"):
        check("two", double)


def test_importing_ebmlab_does_not_load_the_autograder_and_banks_load_lazily():
    code = ("import sys, ebmlab\n"
            "assert 'ebmlab.exercises' not in sys.modules\n"
            "import ebmlab.exercises as ex\n"
            "assert 'ebmlab.exercises.bank.ch02' not in sys.modules\n"
            "assert ex.get_exercise('2.1').function == 'score'\n"
            "assert 'ebmlab.exercises.bank.ch02' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_exercises_are_sorted_by_chapter_and_number():
    ids = [e.id for e in exercises(99)]
    assert ids == [f"99.{i}" for i in range(1, 13)]
    assert "2.1" in [e.id for e in exercises()]


# --- check helpers ----------------------------------------------------------------------
def test_expect_close_names_the_worst_entry():
    expected = torch.zeros(3, 4, dtype=torch.float64)
    got = expected.clone()
    got[1, 2] = 0.5
    got[0, 0] = 0.1
    with pytest.raises(CheckFailure) as info:
        expect_close(got, expected, atol=1e-3, rtol=0, what="f(x)", hint="try harder")
    msg = info.value.message
    assert msg.startswith("f(x): expected 0 at index (1, 2)")
    assert "got 0.5 (max abs error 0.5, 2 of 12 entries off)" in msg
    assert msg.endswith("Hint: try harder")
    expect_close(got, expected, atol=0.6, rtol=0)  # within tolerance: passes
    expect_close(2.0, torch.tensor(2.0))  # a Python number for a scalar
    with pytest.raises(CheckFailure, match="non-finite"):
        expect_close(torch.tensor([1.0, float("nan")]), torch.tensor([1.0, 2.0]))
    with pytest.raises(CheckFailure, match=r"expected shape \(3, 4\); got shape \(4, 3\)"):
        expect_close(got.T, expected)
    with pytest.raises(CheckFailure, match=r"expected a torch\.Tensor; got list"):
        expect_close([0.0], expected)


def test_expect_helpers_messages():
    x = torch.ones(2, 3)
    assert expect_tensor(x, shape=(2, 3), dtype=torch.float32, device="cpu") is x
    with pytest.raises(CheckFailure, match=r"dtype torch\.float64; got dtype torch\.float32"):
        expect_dtype(x, torch.float64)
    with pytest.raises(CheckFailure, match="expected a tensor on device meta; got a tensor on"):
        expect_device(x, "meta")
    with pytest.raises(CheckFailure,
                       match=r"1 non-finite value\(s\), the first inf at index \(1, 0\)"):
        expect_finite(torch.tensor([[1.0, 2.0], [float("inf"), 0.0]]))
    snapshot = x.clone()
    x[0, 0] = 5
    with pytest.raises(CheckFailure, match="x after the call: expected the input left unchanged"):
        expect_unchanged(x, snapshot, what="x")


def _raised(kind: str, *types: str, message: str = "") -> StudentRaised:
    """What the proxy raises when the student's function raised in the sandbox."""
    return StudentRaised({"kind": kind, "type": types[0], "types": list(types),
                          "message": message, "where": None, "traceback": "",
                          "exit_code": None, "output_flood": False})


def test_call_student_turns_errors_into_failures_and_lets_the_stub_through():
    def raises(error: StudentRaised):
        def student(*args, **kwargs):
            raise error
        return student

    assert call_student(lambda x, *, scale: scale * x, 2, scale=3, what="f(2)", expected="6",
                        hint="h") == 6
    broken = raises(_raised("error", "RuntimeError", "Exception",
                            message="element 0 of tensors does not require grad"))
    with pytest.raises(CheckFailure, match=r"^f\(x\): expected a number; got RuntimeError: "
                                           r"element 0 of tensors does not require grad\. "
                                           r"Hint: use enable_grad"):
        call_student(broken, 1, scale=2, what="f(x)", expected="a number",
                     hint="use enable_grad")
    with pytest.raises(StudentRaised):  # the stub: "not implemented yet"
        call_student(raises(_raised("not_implemented", "NotImplementedError", "RuntimeError")),
                     1, what="f(x)", expected="a number", hint="h")
    value_error = raises(_raised("error", "ValueError", "Exception", message="invalid literal"))
    with pytest.raises(StudentRaised):  # not among `errors`: "your function raised"
        call_student(value_error, 1, what="f(x)", expected="a number", hint="h")
    with pytest.raises(CheckFailure, match="got ValueError: invalid literal"):
        call_student(value_error, 1, what="f(x)", expected="a number", hint="h",
                     errors=(ValueError,))


def test_expect_no_parameter_grads():
    net = torch.nn.Linear(2, 1)
    expect_no_parameter_grads(net)
    net(torch.ones(1, 2)).sum().backward()
    with pytest.raises(CheckFailure, match=r"the energy's parameters after the call: expected "
                                           r"no \.grad \(None\); got gradients accumulated in "
                                           r"2 parameter\(s\) \(weight, bias\)"):
        expect_no_parameter_grads(net)


def test_expect_detached():
    x = torch.ones(2)
    assert expect_detached(x) is x
    with pytest.raises(CheckFailure, match=r"f\(x\): expected a tensor without a graph "
                                           r"\(requires_grad False\); got a tensor that "
                                           r"requires grad\. Hint: detach it"):
        expect_detached(x.requires_grad_(True) * 2, what="f(x)", hint="detach it")


def test_expect_grad_mode():
    expect_grad_mode(True, what="f(x)")
    with torch.no_grad():
        expect_grad_mode(False, what="f(x)")
        with pytest.raises(CheckFailure, match="the grad mode after f\\(x\\): expected still "
                                               "enabled; got disabled"):
            expect_grad_mode(True, what="f(x)")
    with pytest.raises(CheckFailure, match="expected still disabled; got enabled"):
        expect_grad_mode(False, what="f(x)")


# --- runners ----------------------------------------------------------------------------
@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_correct_function_scores_full_marks_and_stub_scores_zero(isolation):
    report = grade_function("99.1", double, timeout=TIMEOUT, isolation=isolation)
    assert report.passed and report.points == report.max_points == 3.0
    stub = grade_function("99.1", double_stub, timeout=TIMEOUT, isolation=isolation)
    assert stub.points == 0.0 and stub.not_implemented
    assert all(r.message.startswith("not implemented yet") for r in stub.results)
    assert "not implemented yet" in stub.summary()


HOSTILE_CASES = [(fn, isolation, status, words) for fn, isolations, status, words in HOSTILE
                 for isolation in isolations if isolation in ISOLATIONS]


@pytest.mark.parametrize(("fn", "isolation", "status", "words"), HOSTILE_CASES,
                         ids=[f"{c[0].__name__}-{c[1]}" for c in HOSTILE_CASES])
def test_hostile_function_is_contained(fn, isolation, status, words):
    before = _global_state()
    start = time.monotonic()
    report = grade_function("99.2", fn, timeout=TIMEOUT, isolation=isolation)
    assert time.monotonic() - start < TIMEOUT + 10
    _assert_same_state(before)
    (result,) = report.results
    assert result.status == status, result.message
    assert result.points == 0.0 and report.points == 0.0
    for word in words:
        assert word in result.message, (word, result.message)
    assert "Traceback" not in result.message


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_state_changes_do_not_leak_into_other_checks_or_the_caller(isolation):
    torch.set_num_threads(2)
    try:
        before = _global_state()
        report = grade_function("99.1", double_state, timeout=TIMEOUT, isolation=isolation)
        _assert_same_state(before)
    finally:
        torch.set_num_threads(2)
    # the canary check verifies the canonical state at its start, after check 1's call
    assert report.points == report.max_points == 3.0, report.to_text()
    # and another exercise graded afterwards is unaffected
    solution = _module(ROOT / "solutions" / "ch02.py")
    assert grade_function("2.1", solution.score, timeout=TIMEOUT,
                          isolation=isolation).passed


def test_fork_after_parallel_torch_work_does_not_hang():
    torch.set_num_threads(2)
    a = torch.randn(700, 700)
    (a @ a).sum()  # the parent's intra-op thread pool is now in use

    def heavy_double(x):
        b = torch.randn(400, 400, dtype=torch.float64)
        (b @ b).exp().sum()
        return 2 * x

    start = time.monotonic()
    report = grade_function("99.1", heavy_double, timeout=TIMEOUT, isolation=ISOLATIONS[0])
    assert report.passed, report.to_text()
    assert time.monotonic() - start < 3 * TIMEOUT


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_check_own_timeout_is_used_unless_overridden(isolation):
    ex = register("98.3", "Slow doubling", function="double_slowly")
    ex.check("doubles x slowly", timeout=0.4)(get_exercise("99.1").checks[0].function)
    (result,) = grade_function(ex, double_slowly, isolation=isolation).results
    assert result.status == "timeout" and "timed out after 0.4 s" in result.message
    assert grade_function(ex, double_slowly, timeout=TIMEOUT, isolation=isolation).passed


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_verbose_report_shows_traceback_and_printed_output(isolation):
    report = grade_function("99.2", double_prints, timeout=TIMEOUT, isolation=isolation)
    (result,) = report.results
    assert result.status == "failed" and "hello from the student" in result.output
    assert "hello from the student" not in report.to_text()
    assert "verbose=True" in report.summary()
    loud = grade_function("99.2", double_prints, timeout=TIMEOUT, isolation=isolation,
                          verbose=True)
    assert "hello from the student" in loud.to_text()
    assert "hello from the student" in loud._repr_html_()
    error = grade_function("99.2", double_raises, timeout=TIMEOUT, isolation=isolation,
                           verbose=True)
    assert "Traceback (most recent call last)" in error.to_text()
    assert "Traceback" not in grade_function("99.2", double_raises, timeout=TIMEOUT,
                                             isolation=isolation).to_text()


def test_check_prints_outside_jupyter_and_returns_the_report(capsys):
    report = check("99.1", double, timeout=TIMEOUT)
    assert isinstance(report, Report) and report.points == 3.0
    out = capsys.readouterr().out
    assert "Exercise 99.1: 3 / 3 points — all 2 checks passed." in out
    with pytest.raises(TypeError, match="pass your function `double` itself"):
        check("99.1", double(torch.ones(1)), timeout=TIMEOUT)


def test_check_does_nothing_while_grading(monkeypatch, capsys):
    monkeypatch.setenv("EBMLAB_SANDBOX", "1")  # set in every sandbox of the grader
    report = check("99.1", double_loops)  # would time out if it ran
    assert report.results == [] and "does nothing" in (report.note or "")
    assert capsys.readouterr().out == ""


def test_report_json_schema_and_html():
    report = grade_function("99.1", double_shape, timeout=TIMEOUT)
    data = report.to_dict()
    assert set(data) == {"id", "points", "max_points", "checks"}
    assert data["id"] == "99.1" and isinstance(data["points"], float)
    assert data["max_points"] == 3.0
    for c in data["checks"]:
        assert set(c) == {"name", "passed", "points", "max_points", "status", "message"}
        assert isinstance(c["passed"], bool) and isinstance(c["points"], float)
        assert isinstance(c["message"], str) and c["message"]
        assert c["status"] in ("passed", "failed") and isinstance(c["max_points"], float)
    json.dumps(data)
    html = report._repr_html_()
    assert "<table>" in html and "✗ failed" in html and "expected: <code>shape (4, 3)" in html
    ok = grade_function("99.1", double, timeout=TIMEOUT)._repr_html_()
    assert "✓ passed" in ok and "3 / 3 points" in ok
    weird = grade_function("99.2", lambda x: "<script>", timeout=TIMEOUT)._repr_html_()
    assert "<script>" not in weird and "&lt;script&gt;" in weird


# --- every chapter: stub 0, reference full marks, wrong solution loses points -------------
def _exercise_notebook(chapter: int) -> Path:
    found = sorted((ROOT / "book" / "exercises").glob(f"ch{chapter:02d}_*.ipynb"))
    assert len(found) == 1, f"chapter {chapter}: expected one exercise notebook, got {found}"
    return found[0]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_has_notebook_solution_and_wrong_solution(chapter):
    nb = json.loads(_exercise_notebook(chapter).read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    markdown = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert any("from ebmlab.exercises import check" in c for c in code)
    for ex in exercises(chapter):
        stub = [c for c in code if re.search(rf"^def {ex.function}\(", c, re.M)]
        assert len(stub) == 1 and "raise NotImplementedError" in stub[0], ex.id
        assert any(re.search(rf"""check\(["']{re.escape(ex.id)}["'], {ex.function}\)""", c)
                   for c in code), f"no check cell for {ex.id}"
        for folder in ("solutions", "tests/wrong_solutions"):
            source = (ROOT / folder / f"ch{chapter:02d}.py").read_text()
            assert re.search(rf"^def {ex.function}\(", source, re.M), (folder, ex.id)
    for solution in re.findall(r"```\{solution\}[^\n]*\n((?::[^\n]*\n)*)", markdown):
        assert ":class: dropdown" in solution


#: A fresh instance per test run (like the command line's), reported when a check fails.
FRESH_SEED = 1 + random.SystemRandom().randrange(2**31 - 1)


@pytest.mark.parametrize("seed", [0, FRESH_SEED], ids=["notebook", "fresh"])
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_reference_solution_scores_full_marks(chapter, seed):
    solution = _module(ROOT / "solutions" / f"ch{chapter:02d}.py")
    for ex in exercises(chapter):
        report = grade_function(ex, getattr(solution, ex.function), seed=seed)
        assert report.passed and report.points == ex.max_points, (seed, report.to_text())


def test_library_shortcuts_are_forbidden_inside_the_exercise():
    import ebmlab as el

    def borrowed(energy, x):
        return el.score_of(energy, x)

    report = grade_function("2.1", borrowed)
    assert report.points == 0.0 and {r.status for r in report.results} == {"forbidden"}
    assert "ebmlab.score_of solves exercise 2.1 for you" in report.results[0].message
    assert "write the computation yourself" in report.results[0].message


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_wrong_solution_loses_points_with_a_message(chapter):
    wrong = _module(ROOT / "tests" / "wrong_solutions" / f"ch{chapter:02d}.py")
    for ex in exercises(chapter):
        report = grade_function(ex, getattr(wrong, ex.function))
        assert report.points < ex.max_points, report.to_text()
        failed = [r for r in report.results if not r.passed]
        for r in failed:
            assert r.status in ("failed", "error"), r.message
            assert r.hint and (r.expected or r.got or "raised" in r.message), r.message


def test_wrong_score_explains_the_sign_and_the_side_effect():
    wrong = _module(ROOT / "tests" / "wrong_solutions" / "ch02.py")
    report = grade_function("2.1", wrong.score)
    messages = {r.name: r.message for r in report.results if not r.passed}
    assert "MINUS the gradient" in messages["matches the closed-form score of a Gaussian mixture"]
    assert "x.requires_grad_() changes the caller's tensor" in messages[
        "leaves x and the energy's parameters untouched"]
    assert "torch.enable_grad()" in messages[
        "works under torch.no_grad() and leaves the grad mode as it was"]
    assert report.points == 0  # the contract checks hold only for the right values


def test_score_checks_catch_typical_mistakes():
    def via_backward(energy, x):  # accumulates into the energy's parameters
        x = x.detach().requires_grad_(True)
        energy(x).sum().backward()
        return -x.grad

    def via_density(energy, x):  # differentiates exp(-E): underflows for a large constant
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(torch.exp(-energy(x)).sum(), x)
            return (g / torch.exp(-energy(x))[:, None]).detach()

    def squeezes(energy, x):
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(energy(x).sum(), x)
        return -g.squeeze()

    failed = {name: {r.name for r in grade_function("2.1", fn).results if not r.passed}
              for name, fn in [("backward", via_backward), ("density", via_density),
                               ("squeeze", squeezes)]}
    assert "leaves x and the energy's parameters untouched" in failed["backward"]
    assert "adding a constant to the energy leaves the score unchanged" in failed["density"]
    assert ("returns a tensor of x's shape and dtype, without a graph (float32 and float64, "
            "batch of one)") in failed["squeeze"]


# --- a real Jupyter kernel: check() forks the kernel safely -------------------------------
def test_check_in_a_jupyter_kernel_shows_the_table():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(_exercise_notebook(2), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "a = torch.randn(600, 600); (a @ a).sum()  # use the intra-op thread pool first\n"
        f"exec(open({str(ROOT / 'solutions' / 'ch02.py')!r}).read())\n"
        'check("2.1", score)'))
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    outputs = [c.outputs for c in nb.cells if c.cell_type == "code"]
    stub_html = outputs[-2][0]["data"]["text/html"]
    last = exercises(2)[-1]  # the notebook's last check cell: its stub
    assert "not implemented yet" in stub_html and f"0 / {last.max_points:g} points" in stub_html
    solved = outputs[-1][0]["data"]
    assert "8 / 8 points" in solved["text/html"] and "all 10 checks passed" in solved["text/plain"]
