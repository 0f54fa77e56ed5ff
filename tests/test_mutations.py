"""The checks catch planted bugs: every mutant of the reference solutions (an arithmetic or
comparison operator swapped, a constant changed, a sign dropped) loses points.

A mutant is a reference solution with one change in its source. Mutants that cannot change
the function's behaviour (equivalent mutants) are listed with the reason; every other
mutant must lose points. This module covers every reference solution of chapters 1-4 and
holds the machinery (:func:`mutants`, :func:`loses_points`, :func:`run_case`) that
``tests/test_mutations_ch05_09.py`` imports for the later chapters.

The kill ratio over the behaviour-changing mutants is printed by::

    .venv/bin/python -m tests.test_mutations
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ebmlab.exercises import Exercise, get_exercise, grade_function

from .conftest import ROOT

#: One reference solution: (solution file, function, exercise, equivalent mutants and why).
Case = tuple[str, str, str, dict[str, str]]

_LAST_AXIS = "the last axis of the 2-d batches (B, n) the exercise takes: the same sum"
_DESIGN = ("another data set that makes CD-1 fail as well: the design task accepts every "
           "construction that works, so this mutant still solves it")
_RESHAPED = "the reshape makes the tensor 2-d, so axes 1 and -1 are the same"

CASES: list[Case] = [
    ("ch01.py", "log_partition", "1.1", {}),
    ("ch01.py", "importance_log_z", "1.2", {}),
    ("ch01.py", "rbm_free_energy", "1.3", {"dim=-1 -> dim=1": _LAST_AXIS}),
    ("ch02.py", "score", "2.1", {}),
    ("ch02.py", "langevin_step", "2.2", {}),
    ("ch02.py", "mala_log_acceptance", "2.3", {
        "(y - x + step_size * grad_x).reshape(x.shape[0], -1).square().sum(-1) -> "
        "(y - x + step_size * grad_x).reshape(x.shape[0], -1).square().sum(1)": _RESHAPED,
        "(x - y + step_size * grad_y).reshape(x.shape[0], -1).square().sum(-1) -> "
        "(x - y + step_size * grad_y).reshape(x.shape[0], -1).square().sum(1)": _RESHAPED}),
    ("ch02.py", "ula_stationary_covariance", "2.4", {}),
    ("ch03.py", "mle_gradient", "3.1", {}),
    ("ch03.py", "model_expectation", "3.2", {}),
    ("ch03.py", "bm_mle_step", "3.3", {
        "(states @ weight * states).sum(-1) -> (states @ weight * states).sum(1)":
            "the enumerated states are a 2-d (2^d, d) tensor: axes 1 and -1 are the same"}),
    ("ch04.py", "gibbs_sweep", "4.1", {}),
    ("ch04.py", "cd_k_gradient", "4.1", {}),
    ("ch04.py", "cd1_failure_data", "4.2", {
        "n = 200 -> n = 201": _DESIGN,
        "torch.rand(n, 1, generator=generator) < 0.2 -> "
        "torch.rand(n, 1, generator=generator) < 0.4": _DESIGN}),
    ("ch04.py", "ais_log_weight_step", "4.3", {
        "(F.softplus(beta * z) - F.softplus(beta_prev * z)).sum(-1) -> "
        "(F.softplus(beta * z) - F.softplus(beta_prev * z)).sum(1)": _LAST_AXIS}),
    ("ch04.py", "pcd_step", "4.4", {}),
]

_SWAPS: dict[type, type] = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div,
                            ast.Div: ast.Mult, ast.Pow: ast.Mult}
_FLIPS: dict[type, type] = {ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE,
                            ast.GtE: ast.LtE}


def _sites(tree: ast.AST) -> list[ast.AST]:
    """The nodes a mutant may change: binary operators, comparisons, negations, numbers."""
    return [node for node in ast.walk(tree)
            if (isinstance(node, ast.BinOp) and type(node.op) in _SWAPS)
            or (isinstance(node, ast.Compare) and len(node.ops) == 1
                and type(node.ops[0]) in _FLIPS)
            or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub))
            or (isinstance(node, ast.Constant) and type(node.value) in (int, float))]


def _mutate(node: ast.AST) -> ast.AST:
    if isinstance(node, ast.BinOp):
        return ast.BinOp(node.left, _SWAPS[type(node.op)](), node.right)
    if isinstance(node, ast.Compare):
        return ast.Compare(node.left, [_FLIPS[type(node.ops[0])]()], node.comparators)
    if isinstance(node, ast.UnaryOp):
        return node.operand
    assert isinstance(node, ast.Constant)
    value = node.value
    return ast.Constant(value + 1 if isinstance(value, int) else 2 * value + (value == 0))


def _body(fn: ast.FunctionDef) -> list[ast.stmt]:
    """The statements of ``fn`` without its docstring."""
    first = fn.body[0]
    docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    return fn.body[1:] if docstring else fn.body


def mutants(source: str, function: str) -> Iterator[tuple[str, str]]:
    """``(description, source)`` of every one-change mutant of ``function`` in ``source``.

    The description is the changed node's parent before and after, which names the mutant
    uniquely enough to list it as equivalent.
    """
    module = ast.parse(source)
    (target,) = [n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == function]
    for index in range(sum(len(_sites(statement)) for statement in _body(target))):
        tree = ast.parse(source)
        (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
        site = [site for statement in _body(fn) for site in _sites(statement)][index]
        parent, field, position = next(
            (node, name, value.index(site) if isinstance(value, list) else None)
            for node in ast.walk(fn) for name, value in ast.iter_fields(node)
            if value is site or (isinstance(value, list) and any(v is site for v in value)))
        before = ast.unparse(parent)
        if position is None:
            setattr(parent, field, _mutate(site))
        else:
            getattr(parent, field)[position] = _mutate(site)
        description = f"{before} -> {ast.unparse(parent)}"  # the change in its context
        yield description, ast.unparse(ast.fix_missing_locations(tree))


def load_mutant(source: str, function: str, description: str) -> Callable[..., Any] | None:
    """The mutated function (the whole solution module runs, so helpers stay available),
    or None when the mutant does not even define it."""
    spec = importlib.util.spec_from_loader("_mutant", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    try:
        exec(compile(source, f"<mutant {description}>", "exec"), module.__dict__)
    except Exception:  # a mutant that breaks the module is caught anyway
        return None
    return getattr(module, function)


def loses_points(exercise: Exercise, fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` scores less than full marks, running the checks one at a time, the
    quick ones first, and stopping at the first one it fails."""
    by_cost = sorted(exercise.checks, key=lambda check: check.timeout or 0.0)
    for check in by_cost:
        single = dataclasses.replace(exercise, checks=[check], preparations=list(
            exercise.preparations), _prepared=False)
        if grade_function(single, fn).points < check.points:
            return True
    return False


@dataclass
class CaseResult:
    """The mutants of one reference solution: how many, which survived, which are listed
    as equivalent."""

    exercise: str
    function: str
    mutants: int
    equivalent: list[str]
    survivors: list[str]

    @property
    def behaviour_changing(self) -> int:
        return self.mutants - len(self.equivalent)

    @property
    def killed(self) -> int:
        return self.behaviour_changing - len(self.survivors)


def run_case(file: str, function: str, exercise_id: str,
             equivalent: dict[str, str]) -> CaseResult:
    """Grade every mutant of ``function`` in ``solutions/<file>`` on its exercise."""
    source = (ROOT / "solutions" / file).read_text()
    exercise = get_exercise(exercise_id)
    seen, survivors, listed = 0, [], []
    for description, mutant in mutants(source, function):
        seen += 1
        if description in equivalent:
            listed.append(description)
            continue
        fn = load_mutant(mutant, function, description)
        if fn is not None and not loses_points(exercise, fn):
            survivors.append(description)
    missing = set(equivalent) - set(listed)
    assert not missing, f"listed as equivalent but no longer a mutant: {missing}"
    return CaseResult(exercise_id, function, seen, listed, survivors)


@pytest.mark.slow
@pytest.mark.parametrize(("file", "function", "exercise_id", "equivalent"), CASES,
                         ids=[f"{c[2]}-{c[1]}" for c in CASES])
def test_every_mutant_of_the_reference_solution_loses_points(file, function, exercise_id,
                                                             equivalent):
    result = run_case(file, function, exercise_id, equivalent)
    assert result.mutants >= 1
    assert result.survivors == [], result.survivors


def test_mutants_cover_operators_comparisons_signs_and_constants():
    source = ("def f(x, p):\n    'doc'\n    y = -x * 2.0 + 1\n    return y < p\n")
    found = dict(mutants(source, "f"))
    assert set(found) == {
        "y = -x * 2.0 + 1 -> y = -x * 2.0 - 1", "-x * 2.0 + 1 -> -x / 2.0 + 1",
        "-x * 2.0 + 1 -> -x * 2.0 + 2", "-x * 2.0 -> x * 2.0", "-x * 2.0 -> -x * 4.0",
        "return y < p -> return y > p"}
    for description, mutant in found.items():
        assert load_mutant(mutant, "f", description) is not None


def main(cases: list[Case] = CASES) -> float:
    """Print every case and the kill ratio over the behaviour-changing mutants."""
    results = [run_case(*case) for case in cases]
    for r in results:
        print(f"{r.exercise:>5} {r.function:<28} {r.mutants:3d} mutants, "
              f"{len(r.equivalent)} equivalent, {r.killed}/{r.behaviour_changing} killed"
              + (f"; SURVIVED: {r.survivors}" if r.survivors else ""))
    killed = sum(r.killed for r in results)
    total = sum(r.behaviour_changing for r in results)
    print(f"kill ratio: {killed}/{total} = {killed / total:.1%} of the behaviour-changing "
          f"mutants ({sum(len(r.equivalent) for r in results)} equivalent mutants listed)")
    return killed / total


if __name__ == "__main__":
    sys.exit(0 if main() == 1.0 else 1)
