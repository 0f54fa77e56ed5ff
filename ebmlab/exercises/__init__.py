r"""The autograder of the graded exercises: ``check()`` in notebooks, ``python -m ebmlab grade``.

Students
--------
In an exercise notebook (``book/exercises/chNN_*.ipynb``)::

    from ebmlab.exercises import check
    check("2.1", score)                 # table: each check, pass/fail, points, message
    check("2.1", score, verbose=True)   # ... plus tracebacks and printed output

A stub (still raising ``NotImplementedError``) shows "not implemented yet" and scores 0.

Instructors
-----------
``python -m ebmlab grade PATH [PATH ...] [--json] [--timeout S] [--cell-timeout S]``
grades notebooks, ``.py`` files or folders of them. For each file it executes the code
cells in a separate process (cells that fail are skipped; ``check()`` does nothing
there), grades every exercise of the file's chapter (from its name, ``chNN_...``, or
from its ``check("N.M", ...)`` calls; else every exercise whose function it defines),
and prints the report and the total. ``--json`` with one file prints
``{"total", "max_total", "exercises": [{"id", "points", "max_points", "checks":
[{"name", "passed", "points", "message"}]}]}``; with several files or a folder,
``{"submissions": [...]}`` with ``"path"`` and ``"error"`` added to each. Exit status 0
when every file was graded, 1 when one could not be (missing, unreadable), 2 on a usage
error. From Python: :func:`grade_file`.

Isolation
---------
Every check runs in a forked child process (Linux; elsewhere in-process with the global
state saved and restored) with a time limit, from a canonical state (float32 default
dtype, gradients on, one thread, seeded RNGs), with its output captured and capped. The
command-line grader executes a submission in a separate worker process; cells that fail
are skipped, and a cell that hangs or ends the process is skipped on a fresh worker. It
is robust against buggy code, not a security sandbox: run untrusted submissions in a
container.

How to add an exercise (the pattern; exercise 2.1 is the worked example)
------------------------------------------------------------------------
1. **Checks** — ``ebmlab/exercises/bank/chNN.py`` (one module per chapter; ``NN`` two
   digits; it is imported lazily the first time an exercise ``"N.M"`` is asked for)::

       import torch

       from .._registry import register
       from ..expect import expect_close, expect_tensor, fail

       ex = register("3.2", "The MLE gradient estimator", function="mle_gradient")

       @ex.check("matches the exact gradient by enumeration", points=2)
       def _exact(mle_gradient):
           x = ...                           # fresh inputs, built here, seeded generators
           got = expect_tensor(mle_gradient(...), what="mle_gradient(...)", shape=...)
           expect_close(got, reference, atol=1e-8, rtol=1e-6, what="mle_gradient(...)",
                        hint="push down the data's energy, push up the samples'.")

   * One student function per exercise (``function=`` is its name, also the stub's name).
   * A check receives the student's function, calls it, and raises
     :class:`~ebmlab.exercises.expect.CheckFailure` (via the ``expect_*`` helpers or
     :func:`~ebmlab.exercises.expect.fail`) with what was tested, the expected and the
     returned values, and a hint a student can act on. Anything else the student's
     function raises is reported for you ("your function raised ValueError: ... in
     `f`, line 4"), ``NotImplementedError`` as "not implemented yet".
   * References are independent of the student's method: closed forms, enumeration,
     autograd, finite differences, seeded statistical tests with a tolerance derived from
     the standard error. Never compare with the reference solution's output.
   * Build inputs inside the check (each check gets fresh ones, so in-place mutation is
     detectable with :func:`~ebmlab.exercises.expect.expect_unchanged`). Seed with a
     ``torch.Generator``; the global RNGs are also seeded per check.
   * Points are per check (partial credit); ``timeout=`` per check (default
     :data:`DEFAULT_TIMEOUT` = 10 s) for the slow ones. Keep the reference solution well
     under 1 s per check.
   * Heavy one-time set-up (imports, warming up the ``meta`` device) goes in an
     ``@ex.prepare`` function: it runs once in the grading process before the checks fork.
   * Test the contract a library function needs where it matters: dtype/device follow the
     input, batch of one, no mutation, works under ``torch.no_grad()``.
2. **Stub** — in ``book/exercises/chNN_<chapter-notebook-name>.ipynb`` (one notebook per
   chapter): a markdown cell with the statement and the math, a code cell with the stub
   (signature, numpydoc docstring with the math, body ``raise NotImplementedError``), and
   a code cell ``check("N.M", function_name)``. Derivations: a MyST ``{exercise}``
   directive with a ``{solution}`` directive (``:class: dropdown``). Commit without outputs.
3. **Reference solution** — ``solutions/chNN.py`` defines the function (same name and
   signature). The tests prove it scores full marks.
4. **Wrong solution** — ``tests/wrong_solutions/chNN.py`` defines the same function with a
   typical mistake (one per exercise); the tests prove it loses points and that every
   failed check says why.
5. Run ``pytest tests/test_autograder.py -q``: its generic tests pick up every chapter
   with a bank module (stub notebook scores exactly 0, solution full marks, wrong solution
   loses points with messages). Then ``python -m ebmlab grade solutions/chNN.py``.
"""

from ._api import check
from ._grade import GradingError, grade_file
from ._registry import (
    DEFAULT_TIMEOUT,
    Check,
    Exercise,
    exercises,
    get_exercise,
    load_bank,
    register,
)
from ._report import CheckResult, Report, SubmissionReport
from ._runner import grade_function
from .expect import CheckFailure

__all__ = [
    "DEFAULT_TIMEOUT",
    "Check",
    "CheckFailure",
    "CheckResult",
    "Exercise",
    "GradingError",
    "Report",
    "SubmissionReport",
    "check",
    "exercises",
    "get_exercise",
    "grade_file",
    "grade_function",
    "load_bank",
    "register",
]
