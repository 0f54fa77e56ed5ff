"""The checks catch planted bugs: every mutant of a few reference solutions (an arithmetic
operator swapped, a constant changed, a sign dropped) loses points.

A mutant is the reference solution with one change in its source; mutants that cannot change
the function's behaviour (equivalent mutants) are listed with the reason. Issue 15 extends
the list of solutions.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator

import pytest

from ebmlab.exercises import get_exercise, grade_function

from .conftest import ROOT

#: (solution file, function, exercise, mutants that cannot change its behaviour, and why)
CASES = [
    ("ch06.py", "smoothed_mixture_score", "6.2", {
        "2 * math.pi -> 3 * math.pi": "a constant of every component, cancelled by softmax",
        "2 * math.pi * var -> 2 / math.pi * var": "the same: log(2/π) cancels in the softmax",
    }),
    ("ch02.py", "langevin_step", "2.2", {}),
]
_SWAPS: dict[type, type] = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div,
                            ast.Div: ast.Mult, ast.Pow: ast.Mult}


def _sites(tree: ast.AST) -> list[ast.AST]:
    """The nodes a mutant may change: binary operators, negations and numbers."""
    return [node for node in ast.walk(tree)
            if (isinstance(node, ast.BinOp) and type(node.op) in _SWAPS)
            or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub))
            or (isinstance(node, ast.Constant) and type(node.value) in (int, float))]


def _mutate(node: ast.AST) -> ast.AST:
    if isinstance(node, ast.BinOp):
        return ast.BinOp(node.left, _SWAPS[type(node.op)](), node.right)
    if isinstance(node, ast.UnaryOp):
        return node.operand
    assert isinstance(node, ast.Constant)
    value = node.value
    return ast.Constant(value + 1 if isinstance(value, int) else 2 * value + (value == 0))


def mutants(source: str, function: str) -> Iterator[tuple[str, str]]:
    """``(description, source)`` of every one-change mutant of ``function`` in ``source``."""
    module = ast.parse(source)
    (target,) = [n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == function]
    body = target.body[1:] if isinstance(target.body[0], ast.Expr) else target.body  # docstring
    for index in range(sum(len(_sites(statement)) for statement in body)):
        tree = ast.parse(source)
        (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
        statements = fn.body[1:] if isinstance(fn.body[0], ast.Expr) else fn.body
        sites = [site for statement in statements for site in _sites(statement)]
        site = sites[index]
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


@pytest.mark.parametrize(("file", "function", "exercise_id", "equivalent"), CASES,
                         ids=[c[2] for c in CASES])
def test_every_mutant_of_the_reference_solution_loses_points(file, function, exercise_id,
                                                             equivalent):
    source = (ROOT / "solutions" / file).read_text()
    ex = get_exercise(exercise_id)
    survivors, seen = [], set()
    for description, mutant in mutants(source, function):
        seen.add(description)
        spec = importlib.util.spec_from_loader(f"_mutant_{exercise_id}", loader=None)
        module = importlib.util.module_from_spec(spec)
        try:
            exec(compile(mutant, f"<mutant {description}>", "exec"), module.__dict__)
        except Exception:  # a mutant that does not even define the function: caught anyway
            continue
        report = grade_function(ex, getattr(module, function))
        if report.points == report.max_points and description not in equivalent:
            survivors.append(description)
    assert len(seen) >= 3, seen
    assert set(equivalent) <= seen, "an equivalent mutant listed here no longer exists"
    assert survivors == [], survivors
