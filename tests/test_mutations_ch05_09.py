"""The checks of chapters 5-9 catch planted bugs: every mutant of their reference solutions
(an arithmetic operator swapped, a constant changed, a sign dropped) loses points.

The mutants come from :func:`tests.test_mutations.mutants`; mutants that cannot change the
function's behaviour (equivalent mutants) are listed with the reason. Training exercises
are graded with their full checks, so their cases are marked ``slow``.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from ebmlab.exercises import get_exercise, grade_function

from .conftest import ROOT
from .test_mutations import mutants

#: (solution file, function, exercise, mutants that cannot change its behaviour, and why)
CASES = [
    ("ch05.py", "score_matching", "5.1", {}),
    ("ch05.py", "denoising_score_matching", "5.2", {}),
    ("ch05.py", "score_matching_fit", "5.3", {}),
    ("ch06.py", "annealed_step_sizes", "6.1", {}),
    ("ch06.py", "smoothed_mixture_score", "6.2", {
        "2 * math.pi -> 3 * math.pi": "a constant of every component, cancelled by softmax",
        "2 * math.pi * var -> 2 / math.pi * var": "the same: log(2/π) cancels in the softmax",
    }),
    ("ch06.py", "design_schedule", "6.3", {
        "0.1 * sigma_min ** 2 -> 0.2 * sigma_min ** 2": "another working schedule (a base "
        "step twice as large is still stable and accurate): the design task accepts it",
        "0.1 * sigma_min ** 2 -> 0.1 * (sigma_min * 2)": "the same: ε/(2σ_L²) = 0.55 < 1 is "
        "still stable, and its bias stays inside the tolerance",
    }),
    ("ch07.py", "replay_negatives", "7.2", {}),
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


#: The training exercises: each mutant trains a network in every check (minutes for all),
#: so they run on request (``EBMLAB_MUTATE_TRAINING=1``). Their learning rates, batch
#: sizes and sampler settings are the student's free choices, not bugs: a mutant that only
#: changes one of them to another value that works keeps full marks, as it should.
TRAINING_CASES = [
    ("ch05.py", "train_sliced_score_matching", "5.4", {
        "lr=0.003 -> lr=0.006": "a free choice: another learning rate that works",
        "(256,) -> (257,)": "a free choice: another batch size",
    }),
    ("ch06.py", "train_ncsn", "6.4", {
        "lr=0.003 -> lr=0.006": "a free choice: another learning rate that works",
        "(256,) -> (257,)": "a free choice: another batch size",
        "0.5 * (sigma[:, None] * model(x_noisy, sigma) + eps).square().sum(1).mean() -> 1.0 * "
        "(sigma[:, None] * model(x_noisy, sigma) + eps).square().sum(1).mean()":
            "equivalent: Adam's steps do not change when the loss is scaled",
    }),
    ("ch07.py", "train_replay_ebm", "7.3", {
        "(data.min(0).values - 0.5, data.max(0).values + 0.5) -> "
        "(data.min(0).values + 0.5, data.max(0).values + 0.5)":
            'a free choice: the restart box (a shifted one still covers the data)',
        "(data.min(0).values - 0.5, data.max(0).values + 0.5) -> "
        "(data.min(0).values - 0.5, data.max(0).values - 0.5)":
            'the same',
        'data.min(0).values - 0.5 -> data.min(0).values - 1.0':
            'a free choice: a wider restart box',
        'data.max(0).values + 0.5 -> data.max(0).values + 1.0':
            'the same',
        'uniform(1000) -> uniform(1001)':
            "a free choice: the buffer's size",
        'lr=0.002 -> lr=0.004':
            'a free choice: another learning rate that works',
        'torch.rand(128, generator=generator) < 0.05 -> torch.rand(128, generator=generator) < 0.1':
            'a free choice: the restart probability',
        'range(20) -> range(21)':
            'a free choice: the number of Langevin steps',
        '(128,) -> (129,)':
            'a free choice: the batch size',
        "0.1 * (e_data.square().mean() + e_model.square().mean()) -> "
        "0.2 * (e_data.square().mean() + e_model.square().mean())":
            "a free choice: the regulariser's weight",
        "(x - 0.01 * grad.clamp(-3.0, 3.0) + 0.05 * noise).detach -> "
        "(x - 0.01 * grad.clamp(-3.0, 3.0) - 0.05 * noise).detach":
            'equivalent: the noise is symmetric',
        '0.05 * noise -> 0.1 * noise':
            "a free choice: the sampler's noise scale",
        '0.01 * grad.clamp(-3.0, 3.0) -> 0.02 * grad.clamp(-3.0, 3.0)':
            "a free choice: the sampler's step size",
        'grad.clamp(-3.0, 3.0) -> grad.clamp(-3.0, 6.0)':
            'a free choice: the clipping threshold',
        '-3.0 -> -6.0':
            'a free choice: the clipping threshold',
        # A real bug that survives: a constant "gradient" of 3 drives the negatives away
        # from the data, and the energy still learns the data's shape from them (as it
        # would from uniform noise). 7.3 grades the trained energy; the sampler itself is
        # graded exactly by exercise 7.2.
        "grad.clamp(-3.0, 3.0) -> grad.clamp(3.0, 3.0)":
            "a known gap of outcome-based grading, caught by exercise 7.2",
    }),
]


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("EBMLAB_MUTATE_TRAINING"),
                    reason="minutes of training: set EBMLAB_MUTATE_TRAINING=1")
@pytest.mark.parametrize(("file", "function", "exercise_id", "free_choices"), TRAINING_CASES,
                         ids=[c[2] for c in TRAINING_CASES])
def test_every_mutant_of_a_training_loop_that_is_a_bug_loses_points(file, function,
                                                                    exercise_id, free_choices):
    alive, seen = survivors(file, function, exercise_id)
    assert set(free_choices) <= seen, "a free choice listed here no longer exists"
    assert [d for d in alive if d not in free_choices] == [], alive
