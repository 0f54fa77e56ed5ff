"""The checks of chapters 5-9 catch planted bugs: every mutant of their reference solutions
(an arithmetic operator swapped, a constant changed, a sign dropped) loses points.

The mutants come from :func:`tests.test_mutations.mutants`; mutants that cannot change the
function's behaviour (equivalent mutants) are listed with the reason. Training exercises
are graded with their full checks, so their cases are marked ``slow``.
"""

from __future__ import annotations

import importlib.util

import pytest

from ebmlab.exercises import get_exercise, grade_function

from .conftest import ROOT
from .test_mutations import mutants

#: (solution file, function, exercise, mutants that cannot change its behaviour, and why)
CASES = [
    ("ch05.py", "score_matching_fit", "5.3", {}),
    ("ch06.py", "design_schedule", "6.3", {
        "0.1 * sigma_min ** 2 -> 0.2 * sigma_min ** 2": "another working schedule (a base "
        "step twice as large is still stable and accurate): the design task accepts it",
        "0.1 * sigma_min ** 2 -> 0.1 * (sigma_min * 2)": "the same: ε/(2σ_L²) = 0.55 < 1 is "
        "still stable, and its bias stays inside the tolerance",
    }),
    ("ch07.py", "gb_rbm_log_partition", "7.4", {}),
    ("ch08.py", "nce_posterior", "8.1", {}),
    ("ch08.py", "nce_objective", "8.2", {}),
    ("ch08.py", "design_noise", "8.3", {
        "1.2 * data.std(0) -> 2.4 * data.std(0)": "a broader noise works too: the design "
        "task accepts any noise with which NCE succeeds",
    }),
    ("ch09.py", "jem_energies", "9.1", {}),
    ("ch09.py", "class_conditional_langevin", "9.2", {}),
    ("ch09.py", "reshape_density", "9.3", {}),
]


def survivors(file: str, function: str, exercise_id: str) -> tuple[list[str], set[str]]:
    """The mutants of ``function`` that keep full marks, and every mutant's description."""
    source = (ROOT / "solutions" / file).read_text()
    ex = get_exercise(exercise_id)
    alive, seen = [], set()
    for description, mutant in mutants(source, function):
        seen.add(description)
        spec = importlib.util.spec_from_loader(f"_mutant_{exercise_id}", loader=None)
        module = importlib.util.module_from_spec(spec)
        try:
            exec(compile(mutant, f"<mutant {description}>", "exec"), module.__dict__)
        except Exception:  # a mutant that does not even define the function: caught anyway
            continue
        report = grade_function(ex, getattr(module, function))
        if report.points == report.max_points:
            alive.append(description)
    return alive, seen


@pytest.mark.parametrize(("file", "function", "exercise_id", "equivalent"), CASES,
                         ids=[c[2] for c in CASES])
def test_every_mutant_of_the_reference_solution_loses_points(file, function, exercise_id,
                                                             equivalent):
    alive, seen = survivors(file, function, exercise_id)
    assert set(equivalent) <= seen, "an equivalent mutant listed here no longer exists"
    assert [d for d in alive if d not in equivalent] == [], alive
