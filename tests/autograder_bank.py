"""Exercises used only by the autograder's own tests (chapter 99): "double a tensor".

Loaded with ``ebmlab.exercises.load_bank(path)`` in-process, and with ``python -m ebmlab
grade --bank tests/autograder_bank.py`` by the command-line tests. Exercise 99.1 has an
extra check that fails if a check does not start from the canonical global state (so a
state change made by the student's code in one check must not leak into the next).
Exercises 99.2-99.12 are the same task under other function names, so one hostile
submission can hold one misbehaving function per exercise.
"""

from __future__ import annotations

import zlib

import torch

from ebmlab.exercises import register
from ebmlab.exercises.expect import expect_close, expect_tensor, expect_unchanged, fail

#: Function names of exercises 99.2, 99.3, ...: one per hostile behaviour.
HOSTILE_FUNCTIONS = ("double_raises", "double_loops", "double_nan", "double_shape",
                     "double_dtype", "double_device", "double_mutates", "double_floods",
                     "double_exits", "double_os_exit", "double_state")


def _doubles(double) -> None:
    x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    snapshot = x.clone()
    got = expect_tensor(double(x), what="double(x)", shape=x.shape, dtype=x.dtype,
                        device=x.device)
    expect_close(got, 2 * snapshot, atol=1e-12, rtol=0, what="double(x)",
                 hint="multiply by two.")
    expect_unchanged(x, snapshot, what="x")


def _clean_state_then_doubles(double) -> None:
    seed = zlib.crc32(b"99.1/starts from the canonical global state")
    state = {"default dtype": (torch.get_default_dtype(), torch.float32),
             "grad mode": (torch.is_grad_enabled(), True),
             "torch seed": (torch.initial_seed(), seed)}
    for what, (got, expected) in state.items():
        if got != expected:
            fail(f"the {what} at the start of the check", expected=expected, got=got,
                 hint="the grader leaked state between checks.")
    _doubles(double)


def _register(exercise_id: str, function: str, *, canary: bool = False) -> None:
    ex = register(exercise_id, f"Double a tensor ({function})", function=function)
    ex.check("doubles x", points=1.0)(_doubles)
    if canary:
        ex.check("starts from the canonical global state", points=2.0)(_clean_state_then_doubles)


_register("99.1", "double", canary=True)
for _number, _name in enumerate(HOSTILE_FUNCTIONS, start=2):
    _register(f"99.{_number}", _name)
