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
``ebmlab grade PATH [PATH ...]`` (or ``python -P -m ebmlab grade``) grades notebooks,
``.py`` files or folders of them: ``--exercises SPEC`` fixes what is graded (``2`` or
``2.1,2.3``), ``-j N`` grades N files at a time, ``--json``, ``--csv FILE`` (a gradebook),
``--feedback DIR`` (a report per student), ``--bank FILE`` (extra exercises and hidden
checks), ``--seed N`` (the instance of the inputs; fresh by default). The instructors' page
of the book describes the workflow and the threat model. From Python: :func:`grade_file`.

How student code is isolated
----------------------------
Student code never runs in the process that decides points. The checks run in the grading
process and call the student's function through a proxy (:class:`Student`): the arguments
go to a sandbox process as a pickle, the function runs there, and only plain data comes
back (an exact ``torch.Tensor``, numbers, strings, tuples, lists and dicts of these),
decoded without unpickling anything; points, maxima and the exercises graded come from the
registry alone. ``check()`` forks the notebook's kernel once per check. The command-line
grader runs each submission in a fresh isolated interpreter in a temporary directory, with
resource limits, Landlock (where the kernel has it) and a keeper that kills everything it
started; it executes the cells, then forks one process per check.

Writing a check
---------------
An exercise lives in ``ebmlab/exercises/bank/chNN.py`` (one module per chapter, imported
the first time one of its exercises is asked for)::

    import torch

    from .._registry import register
    from .._student import CheckContext, Student
    from ..expect import expect_close, expect_tensor
    from ._common import Plain

    ex = register("2.1", "The score does not depend on Z", function="score",
                  forbidden=("ebmlab.score_of",))

    @ex.check("matches the closed-form score of a Gaussian mixture", points=2)
    def _mixture(score: Student, ctx: CheckContext) -> None:
        x = 2.0 * torch.randn(8, 2, dtype=torch.float64, generator=ctx.generator(1))
        got = expect_tensor(score(Plain(mixture), x), what="score(E, x)", shape=x.shape)
        expect_close(got, mixture.score(x), atol=1e-10, rtol=1e-8, what="score(E, x)",
                     hint="the score is minus the gradient of the energy.")

* **The call.** ``score(...)`` runs the student's function in the sandbox and returns
  plain data; any other result fails the check with a wrong-type message. If the function
  raises, the report says "your function raised ..." (or "not implemented yet" for the
  stub); :func:`~ebmlab.exercises.expect.call_student` turns an expected kind of error into
  a failure with a hint. Check with the ``expect_*`` helpers of
  :mod:`ebmlab.exercises.expect`, or :func:`~ebmlab.exercises.expect.fail`: what was
  tested, expected, returned, and a hint a student can act on.
* **Fresh instances.** Build every input from ``ctx.generator(k)`` (``k`` numbers the
  input stream). It is seeded with ``k`` in notebooks and with a fresh instance in the
  command-line grader, so outputs hard-coded from the notebook fail; a statistical
  tolerance must hold for every instance (5 standard errors). Keep a fixed
  ``torch.Generator().manual_seed(...)`` only where a property must hold (chains that
  mix). ``ctx.device`` is the device of a "follows the input's device" check (CUDA, or
  the data-free ``meta`` device).
* **Arguments travel by pickle**: tensors, modules, generators, module-level functions
  and instances of module-level classes; never a lambda or a closure. The energies of
  ``ebmlab/exercises/bank/_common.py`` cover the usual cases (``Plain(module)`` hides
  a module's methods, ``Quadratic()``, ``ScaledQuadratic(s)``, ``Shifted(E, c)``).
* **Side effects come back.** In-place changes of tensor arguments (and of modules'
  parameters and buffers), ``requires_grad``, ``.grad``, generator states and the grad
  mode after the call are applied to the check's own objects, so
  :func:`~ebmlab.exercises.expect.expect_unchanged`,
  :func:`~ebmlab.exercises.expect.expect_no_parameter_grads` and
  :func:`~ebmlab.exercises.expect.expect_grad_mode` work as with a direct call. An argument
  whose class lists attribute names in ``__mirror__`` gets those attributes back (an
  energy that records the batches it sees).
* **What only the sandbox can compute**, such as the gradient of the student's result (a
  graph does not cross processes), comes from a probe:
  ``loss, grads = fn.with_probe(parameter_gradients)(energy, x)``. An argument that must
  carry a graph to another one is built there: ``InSandbox(builder, (energy, eps))``.
* **Untrusted replies.** Whatever comes back can fail a student; never use it as a
  reference. References are independent of the student's method: closed forms,
  enumeration, autograd, finite differences, seeded statistical tests.
* **Library shortcuts.** ``forbidden=`` names the library functions that would solve the
  exercise; inside the student's function they raise "write it yourself" and the check's
  status is ``forbidden``. Library code that calls them fails too, so forbid only what the
  exercise's inputs do not use. A function's code is swapped, so references bound before
  the call are caught; a copy of its code made in advance is not.
* **Points and time.** Points are per check (partial credit); ``timeout=`` bounds the
  student's calls in one check (default :data:`DEFAULT_TIMEOUT` = 10 s). Set-up shared by
  the checks goes in an ``@ex.prepare`` module-level function, run outside the limits.

Then add the stub to ``book/exercises/chNN_<chapter>.ipynb`` (statement, signature,
numpydoc docstring with the math, ``raise NotImplementedError``, and a ``check("N.M",
function_name)`` cell), the reference solution to ``solutions/chNN.py`` and a typical
mistake to ``tests/wrong_solutions/chNN.py``; the generic tests prove that the stub scores
0, the solution full marks (also on fresh instances) and the mistake loses points with
messages. Hidden checks for an existing exercise go in an instructor's bank file:
``get_exercise("2.1").check("...", points=2)(a_check)``, loaded with ``--bank``.
CONTRIBUTING.md walks through a new exercise end to end: the written part's model solution
(a ``<details class="solution">`` block), the points table of the exercises page and the
mutation cases.
"""

from ._confine import Limits
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
from ._runner import check, grade_function
from ._sandbox import InSandbox
from ._student import CheckContext, ProbeError, Student, StudentRaised
from .expect import CheckFailure

__all__ = [
    "DEFAULT_TIMEOUT",
    "Check",
    "CheckContext",
    "CheckFailure",
    "CheckResult",
    "Exercise",
    "GradingError",
    "InSandbox",
    "Limits",
    "ProbeError",
    "Report",
    "Student",
    "StudentRaised",
    "SubmissionReport",
    "check",
    "exercises",
    "get_exercise",
    "grade_file",
    "grade_function",
    "load_bank",
    "register",
]
