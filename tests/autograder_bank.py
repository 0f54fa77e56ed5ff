"""Exercises used only by the autograder's own tests (chapter 99): "double a tensor".

Loaded with ``ebmlab.exercises.load_bank(path)`` in-process, and with ``python -m ebmlab
grade --bank tests/autograder_bank.py`` by the command-line tests. Exercise 99.1 has an
extra check that fails if the sandbox does not start a check from the canonical global
state (so a state change made by the student's code in one check must not leak into the
next). Exercises 99.2-99.12 are the same task under other function names, so one hostile
submission can hold one misbehaving function per exercise.
"""

from __future__ import annotations

import zlib

import torch

from ebmlab.exercises import InSandbox, register
from ebmlab.exercises.expect import expect_close, expect_tensor, expect_unchanged

#: Function names of exercises 99.2, 99.3, ...: one per hostile behaviour.
HOSTILE_FUNCTIONS = ("double_raises", "double_loops", "double_nan", "double_shape",
                     "double_dtype", "double_device", "double_mutates", "double_floods",
                     "double_exits", "double_os_exit", "double_state")
CANARY = "starts from the canonical global state"


def _doubles(double, ctx) -> None:
    x = torch.randn(4, 3, dtype=torch.float64, generator=ctx.generator(0))
    snapshot = x.clone()
    got = expect_tensor(double(x), what="double(x)", shape=x.shape, dtype=x.dtype,
                        device=x.device)
    expect_close(got, 2 * snapshot, atol=1e-12, rtol=0, what="double(x)",
                 hint="multiply by two.")
    expect_unchanged(x, snapshot, what="x")


def sandbox_state(seed: int) -> torch.Tensor:
    """Built in the sandbox before the student's call: 1 for each canonical setting."""
    return torch.tensor([float(torch.get_default_dtype() == torch.float32),
                         float(torch.is_grad_enabled()),
                         float(torch.initial_seed() == seed),
                         float(torch.get_num_threads() == 1)], dtype=torch.float64)


def _clean_state_then_doubles(double, ctx) -> None:
    seed = zlib.crc32(f"99.1/{CANARY}".encode()) ^ ctx.seed
    got = double(InSandbox(sandbox_state, (seed,)))
    expect_close(got, torch.full((4,), 2.0, dtype=torch.float64), atol=0, rtol=0,
                 what="2 × (default dtype float32, grad mode on, torch seed of the check, "
                      "one thread) in the sandbox at the start of the check",
                 hint="the grader leaked state between checks.")
    _doubles(double, ctx)


def _register(exercise_id: str, function: str, *, canary: bool = False) -> None:
    ex = register(exercise_id, f"Double a tensor ({function})", function=function)
    ex.check("doubles x", points=1.0)(_doubles)
    if canary:
        ex.check(CANARY, points=2.0)(_clean_state_then_doubles)


_register("99.1", "double", canary=True)
for _number, _name in enumerate(HOSTILE_FUNCTIONS, start=2):
    _register(f"99.{_number}", _name)
