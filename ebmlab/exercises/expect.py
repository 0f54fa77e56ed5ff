"""Assertion helpers for checks: a failure says what was expected, what came back, and a hint.

A check function receives the student's function (a proxy: the function runs in a
sandbox and its results come back as plain data) and the check's context, calls the
function on fresh inputs, and tests the result with these helpers. A helper that fails raises
:class:`CheckFailure`, which the report shows as

    <what>: expected <expected>; got <got>. Hint: <hint>

Every helper returns the (validated) value so checks can chain them::

    got = expect_tensor(score(energy, x), what="score(energy, x)", shape=x.shape, dtype=x.dtype)
    expect_close(got, reference, atol=1e-10, rtol=1e-8, what="score(energy, x)")
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NoReturn

import torch

__all__ = [
    "CheckFailure",
    "call_student",
    "describe",
    "expect_close",
    "expect_detached",
    "expect_device",
    "expect_dtype",
    "expect_finite",
    "expect_grad_mode",
    "expect_no_parameter_grads",
    "expect_shape",
    "expect_tensor",
    "expect_unchanged",
    "fail",
    "first_line",
]


class CheckFailure(AssertionError):
    """A check failed: ``what`` was wrong, with the ``expected`` and ``got`` values and a ``hint``.

    Parameters
    ----------
    what : str
        The quantity or property tested ("score(energy, x)", "x after the call").
    expected, got : str, optional
        Short descriptions of the expected and the returned values.
    hint : str, optional
        What the student can do about it.
    """

    def __init__(self, what: str, *, expected: object = None, got: object = None,
                 hint: str | None = None) -> None:
        self.what = str(what)
        self.expected = None if expected is None else str(expected)
        self.got = None if got is None else str(got)
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The one-line message: what, expected, got, hint."""
        return format_message(self.what, self.expected, self.got, self.hint)


def format_message(what: str, expected: str | None, got: str | None, hint: str | None) -> str:
    """``"<what>: expected <expected>; got <got>. Hint: <hint>"``, missing parts left out."""
    details = []
    if expected is not None:
        details.append(f"expected {expected}")
    if got is not None:
        details.append(f"got {got}")
    text = what
    if details:
        text += ": " + "; ".join(details)
    if hint:
        text = text.rstrip(".") + ". Hint: " + hint
    return text


def fail(what: str, *, expected: object = None, got: object = None,
         hint: str | None = None) -> NoReturn:
    """Raise :class:`CheckFailure` (for conditions the ``expect_*`` helpers do not cover)."""
    raise CheckFailure(what, expected=expected, got=got, hint=hint)


def _shape(shape: Sequence[int] | torch.Size) -> str:
    dims = tuple(int(s) for s in shape)
    return "(" + ", ".join(map(str, dims)) + ("," if len(dims) == 1 else "") + ")"


def describe(value: object) -> str:
    """A short description of a value: a tensor's shape, dtype and device, or the type and repr."""
    if isinstance(value, torch.Tensor):
        return (f"a tensor of shape {_shape(value.shape)}, dtype {value.dtype}, "
                f"device {value.device}")
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _number(x: float) -> str:
    return f"{x:.6g}"


def expect_tensor(got: object, *, what: str = "the result", shape: Sequence[int] | None = None,
                  dtype: torch.dtype | None = None, device: torch.device | str | None = None,
                  hint: str | None = None) -> torch.Tensor:
    """Check that ``got`` is a tensor, optionally of a given shape, dtype and device.

    Returns
    -------
    torch.Tensor
        ``got``.
    """
    if not isinstance(got, torch.Tensor):
        fail(what, expected="a torch.Tensor", got=describe(got),
             hint=hint or "return a torch.Tensor (not a number, list, tuple or NumPy array).")
    if shape is not None:
        expect_shape(got, shape, what=what, hint=hint)
    if dtype is not None:
        expect_dtype(got, dtype, what=what, hint=hint)
    if device is not None:
        expect_device(got, device, what=what, hint=hint)
    return got


def expect_shape(got: torch.Tensor, shape: Sequence[int], *, what: str = "the result",
                 hint: str | None = None) -> torch.Tensor:
    """Check ``got.shape == shape``."""
    expect_tensor(got, what=what)
    if tuple(got.shape) != tuple(int(s) for s in shape):
        fail(what, expected=f"shape {_shape(shape)}", got=f"shape {_shape(got.shape)}",
             hint=hint or "check which axes your computation keeps and which it sums over.")
    return got


def expect_dtype(got: torch.Tensor, dtype: torch.dtype, *, what: str = "the result",
                 hint: str | None = None) -> torch.Tensor:
    """Check ``got.dtype == dtype``."""
    expect_tensor(got, what=what)
    if got.dtype != dtype:
        fail(what, expected=f"dtype {dtype}", got=f"dtype {got.dtype}",
             hint=hint or "keep the input's dtype: create new tensors with dtype=x.dtype "
                          "(or torch.zeros_like(x)) instead of the default dtype.")
    return got


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    return a.index is None or b.index is None or a.index == b.index


def expect_device(got: torch.Tensor, device: torch.device | str, *, what: str = "the result",
                  hint: str | None = None) -> torch.Tensor:
    """Check that ``got`` lives on ``device`` (``"cuda"`` matches any CUDA index)."""
    expect_tensor(got, what=what)
    if not _same_device(got.device, torch.device(device)):
        fail(what, expected=f"a tensor on device {torch.device(device)}",
             got=f"a tensor on device {got.device}",
             hint=hint or "create new tensors on the input's device (device=x.device, or "
                          "torch.zeros_like(x)); never hard-code 'cpu' or call .cpu().")
    return got


def expect_finite(got: torch.Tensor, *, what: str = "the result",
                  hint: str | None = None) -> torch.Tensor:
    """Check that a floating tensor holds no NaN or infinity."""
    expect_tensor(got, what=what)
    if got.is_floating_point() or got.is_complex():
        bad = ~torch.isfinite(got.detach())
        if bool(bad.any()):
            first = tuple(int(i) for i in bad.nonzero()[0].tolist())
            value = got.detach().reshape(-1)[bad.reshape(-1)][0].item()
            fail(what, expected="finite values",
                 got=f"{int(bad.sum())} non-finite value(s), the first {value} at index {first}",
                 hint=hint or "look for a division by zero, a log of 0 or of a negative number, "
                              "or an exp that overflows (use torch.logsumexp).")
    return got


def expect_close(got: object, expected: object, *, atol: float = 1e-6, rtol: float = 1e-5,
                 what: str = "the result", hint: str | None = None) -> torch.Tensor:
    r"""Check :math:`|got - expected| \le atol + rtol\,|expected|` elementwise.

    ``got`` must be a tensor of ``expected``'s shape (a Python number is accepted when
    ``expected`` is a scalar). NaN or infinite values where ``expected`` is finite fail
    with their own message. The message names the worst entry, its expected and
    returned values and the largest absolute error.

    Returns
    -------
    torch.Tensor
        ``got`` (as a tensor).
    """
    exp = expected if isinstance(expected, torch.Tensor) else torch.as_tensor(expected)
    if isinstance(got, (int, float)) and not isinstance(got, bool) and exp.dim() == 0:
        got = torch.tensor(float(got), dtype=torch.float64)
    got_t = expect_tensor(got, what=what, hint=hint)
    expect_shape(got_t, exp.shape, what=what, hint=hint)
    if got_t.is_complex() or not (got_t.is_floating_point() or got_t.dtype in (
            torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool)):
        fail(what, expected="a real tensor", got=describe(got_t), hint=hint)
    g = got_t.detach().to(device="cpu", dtype=torch.float64)
    e = exp.detach().to(device="cpu", dtype=torch.float64)
    where = (lambda idx: f" at index {idx}") if e.dim() > 0 else (lambda idx: "")
    nonfinite = ~torch.isfinite(g) & torch.isfinite(e)
    if bool(nonfinite.any()):
        idx = tuple(int(i) for i in nonfinite.nonzero()[0].tolist())
        fail(what, expected=f"{_number(e[idx].item())}{where(idx)}",
             got=f"{g[idx].item()} ({int(nonfinite.sum())} non-finite value(s))",
             hint=hint or "look for a division by zero, a log of 0 or of a negative number, "
                          "or an exp that overflows (use torch.logsumexp).")
    err = (g - e).abs()
    err = torch.where(torch.isfinite(e) | (g != e), err, torch.zeros_like(err))
    excess = err - (atol + rtol * e.abs())
    excess = torch.nan_to_num(excess, nan=math.inf)
    if bool((excess > 0).any()):
        flat = int(torch.argmax(excess).item())
        idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), e.shape)) \
            if e.dim() > 0 else ()
        n_bad = int((excess > 0).sum())
        count = f", {n_bad} of {e.numel()} entries off" if e.dim() > 0 else ""
        fail(what, expected=f"{_number(e[idx].item())}{where(idx)} (atol={atol:g}, rtol={rtol:g})",
             got=f"{_number(g[idx].item())} (max abs error {_number(err.max().item())}{count})",
             hint=hint)
    return got_t


def expect_detached(got: torch.Tensor, *, what: str = "the result",
                    hint: str | None = None) -> torch.Tensor:
    """Check that ``got`` carries no autograd graph (``requires_grad`` False)."""
    if got.requires_grad or got.grad_fn is not None:
        fail(what, expected="a tensor without a graph (requires_grad False)",
             got="a tensor that requires grad",
             hint=hint or "return the values themselves: .detach() the result, or compute "
                          "it under torch.no_grad().")
    return got


def expect_unchanged(tensor: torch.Tensor, snapshot: torch.Tensor, *, what: str = "the input",
                     hint: str | None = None) -> torch.Tensor:
    """Check that ``tensor`` still equals ``snapshot`` (a clone taken before the student's call)."""
    same = tensor.shape == snapshot.shape and bool(
        torch.equal(tensor.detach().nan_to_num(), snapshot.detach().nan_to_num()))
    if not same:
        fail(f"{what} after the call", expected="the input left unchanged",
             got="its values were modified in place",
             hint=hint or "do not modify the function's inputs in place (no x += ..., x[...] = "
                          "..., x.add_(...)); work on a copy or build a new tensor.")
    return tensor


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, at most 200 characters."""
    return (str(exc).strip().splitlines() or [""])[0][:200]


def call_student(fn: Callable[..., object], *args: object, what: str, expected: str,
                 hint: str, errors: tuple[type[Exception], ...] = (RuntimeError,),
                 **kwargs: object) -> object:
    """Call the student's ``fn(*args, **kwargs)``; an error of a type in ``errors`` fails.

    The failure names ``what`` was called, the ``expected`` result, the error's type and
    first line, and the ``hint``. Other errors, and :class:`NotImplementedError` (the
    unsolved stub), pass through, so the report says "your function raised" or "not
    implemented yet". ``fn`` is the student's function, or a helper of the check that
    calls it.
    """
    from ._student import StudentRaised

    try:
        return fn(*args, **kwargs)
    except StudentRaised as exc:
        names = {e.__name__ for e in errors}
        if exc.kind == "error" and names.intersection(exc.types):
            fail(what, expected=expected, got=exc.headline, hint=hint)
        raise


def expect_grad_mode(enabled: bool, *, what: str, hint: str | None = None) -> None:
    """Check that autograd's grad mode is still ``enabled`` after the call ``what``."""
    if torch.is_grad_enabled() != enabled:
        fail(f"the grad mode after {what}",
             expected="still enabled" if enabled else "still disabled",
             got="disabled" if enabled else "enabled", hint=hint)


def expect_no_parameter_grads(module: torch.nn.Module, *,
                              what: str = "the energy's parameters",
                              hint: str | None = None) -> None:
    """Check that the call left no gradient in ``module``'s parameters' ``.grad``."""
    touched = [name for name, p in module.named_parameters() if p.grad is not None]
    if touched:
        fail(f"{what} after the call", expected="no .grad (None)",
             got=f"gradients accumulated in {len(touched)} parameter(s) ({', '.join(touched)})",
             hint=hint or "energy(x).sum().backward() also accumulates gradients into the "
                          "model's parameters and would corrupt a training step; "
                          "torch.autograd.grad(energy(x).sum(), x) returns the gradient with "
                          "respect to x only.")
