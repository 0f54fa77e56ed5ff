"""Side effects on the arguments of a call, mirrored from the sandbox back to the grader.

A check passes tensors, modules and generators to the student's function and may look at
them afterwards (``expect_unchanged(x, snapshot)``, ``p.grad is None``, ``x.requires_grad``).
The function runs in the sandbox on copies, so after the call the sandbox reports what
changed and the grader applies it to its own objects:

* a tensor (also a module's parameters and buffers): new values, ``requires_grad``, ``.grad``;
* a :class:`torch.Generator`: its new state;
* an object whose class lists attribute names in ``__mirror__`` (e.g. an energy that
  records the states it was called with): those attributes, as plain data.

Both sides find these objects with the same traversal of the arguments
(:func:`watched`), so an entry is addressed by its position in that list. What the sandbox
reports is untrusted: it can only make a check see side effects (and fail), and malformed
entries raise :class:`~ebmlab.exercises._wire.ProtocolError`.
"""

from __future__ import annotations

import itertools
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ._wire import Encoder, ProtocolError, decode, decode_tensor

__all__ = ["Snapshot", "apply_changes", "watched"]

_MAX_DEPTH = 8
_OPAQUE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
           types.MethodType)


def watched(roots: Iterable[object], *, skip: tuple[type, ...] = ()) -> list[object]:
    """The tensors, generators and ``__mirror__`` objects reachable from ``roots``, in order.

    Containers (tuple, list, dict values), modules (parameters, then buffers) and the
    attributes of plain objects are visited depth first, each object once; instances of
    ``skip`` are not entered.
    """
    found: list[object] = []
    seen: set[int] = set()

    def visit(obj: object, depth: int) -> None:
        if depth > _MAX_DEPTH or id(obj) in seen or isinstance(obj, skip):
            return
        seen.add(id(obj))
        if isinstance(obj, (torch.Tensor, torch.Generator)):
            found.append(obj)
            return
        if isinstance(obj, nn.Module):
            children: Iterable[object] = itertools.chain(obj.parameters(), obj.buffers())
        elif isinstance(obj, (tuple, list)):
            children = obj
        elif isinstance(obj, dict):
            children = obj.values()
        elif hasattr(obj, "__dict__") and not isinstance(obj, _OPAQUE):
            children = vars(obj).values()
        else:
            children = ()
        for child in children:
            visit(child, depth + 1)
        if getattr(type(obj), "__mirror__", ()):
            found.append(obj)

    for root in roots:
        visit(root, 0)
    return found


def _raw(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's bytes as a flat uint8 CPU tensor (bitwise comparison, NaN included)."""
    if tensor.device.type == "meta":
        return torch.empty(0, dtype=torch.uint8)
    flat = tensor.detach().to("cpu").resolve_conj().resolve_neg().reshape(-1).contiguous()
    return flat.view(torch.uint8).clone()


@dataclass
class _TensorState:
    shape: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device
    raw: torch.Tensor
    requires_grad: bool

    @classmethod
    def of(cls, tensor: torch.Tensor) -> _TensorState:
        return cls(tuple(tensor.shape), tensor.dtype, tensor.device, _raw(tensor),
                   tensor.requires_grad)

    def same_values(self, tensor: torch.Tensor) -> bool:
        return (self.shape == tuple(tensor.shape) and self.dtype == tensor.dtype
                and self.device == tensor.device and torch.equal(self.raw, _raw(tensor)))


class Snapshot:
    """Sandbox side: the state of the watched objects before a call, to report changes."""

    def __init__(self, objects: list[object]) -> None:
        self.objects = objects
        self.before: list[object] = []
        for obj in objects:
            if isinstance(obj, torch.Tensor):
                self.before.append(_TensorState.of(obj))
            elif isinstance(obj, torch.Generator):
                self.before.append(obj.get_state().clone())
            else:
                self.before.append(None)

    def changes(self, encoder: Encoder) -> list[dict[str, Any]]:
        """One JSON entry per object with something to report (see the module docstring)."""
        entries: list[dict[str, Any]] = []
        for index, (obj, before) in enumerate(zip(self.objects, self.before, strict=True)):
            entry: dict[str, Any] = {"index": index}
            if isinstance(obj, torch.Tensor) and isinstance(before, _TensorState):
                if not before.same_values(obj):
                    entry["value"] = encoder.tensor(obj.detach())
                if obj.requires_grad != before.requires_grad:
                    entry["requires_grad"] = bool(obj.requires_grad)
                if obj.grad is not None:
                    entry["grad"] = encoder.tensor(obj.grad.detach())
            elif isinstance(obj, torch.Generator) and isinstance(before, torch.Tensor):
                state = obj.get_state()
                if not torch.equal(state, before):
                    entry["state"] = encoder.tensor(state)
            else:
                names = getattr(type(obj), "__mirror__", ())
                entry["attrs"] = [[name, encoder.encode(getattr(obj, name, None))]
                                  for name in names]
            if len(entry) > 1:
                entries.append(entry)
        return entries


def _apply_tensor(target: torch.Tensor, entry: dict[str, Any], body: bytes,
                  device: Callable[[str], torch.device]) -> None:
    if "value" in entry:
        value = decode_tensor(entry["value"], body, device).detach()
        with torch.no_grad():
            if (value.shape, value.dtype, value.device) == (target.shape, target.dtype,
                                                            target.device):
                target.copy_(value)
            else:
                target.data = value
    if "requires_grad" in entry:
        flag = entry["requires_grad"]
        if not isinstance(flag, bool):
            raise ProtocolError("a malformed requires_grad flag")
        if target.is_leaf and (target.is_floating_point() or target.is_complex()):
            target.requires_grad_(flag)
    if "grad" in entry:
        grad = decode_tensor(entry["grad"], body, device).detach()
        if (grad.shape, grad.dtype, grad.device) != (target.shape, target.dtype, target.device):
            grad = torch.zeros_like(target)  # a gradient was written, of another kind
        target.grad = grad


def apply_changes(objects: list[object], entries: object, body: bytes,
                  device: Callable[[str], torch.device]) -> None:
    """Grader side: apply the sandbox's reported changes to the grader's own objects.

    Raises
    ------
    ProtocolError
        When an entry is malformed or addresses an object that does not exist.
    """
    if not isinstance(entries, list):
        raise ProtocolError("a malformed list of side effects")
    for entry in entries:
        index = entry.get("index") if isinstance(entry, dict) else None
        if not (isinstance(index, int) and not isinstance(index, bool)
                and 0 <= index < len(objects)):
            raise ProtocolError(f"a side effect on an unknown argument {str(entry)[:100]}")
        target = objects[index]
        if isinstance(target, torch.Tensor):
            _apply_tensor(target, entry, body, device)
        elif isinstance(target, torch.Generator):
            state = decode_tensor(entry.get("state"), body, device)
            if state.dtype != torch.uint8 or state.shape != target.get_state().shape:
                raise ProtocolError("a generator state of the wrong shape or dtype")
            target.set_state(state.cpu())
        else:
            names = getattr(type(target), "__mirror__", ())
            attrs = entry.get("attrs")
            if not (isinstance(attrs, list) and all(
                    isinstance(a, list) and len(a) == 2 and a[0] in names for a in attrs)):
                raise ProtocolError("malformed recorded attributes")
            for name, tree in attrs:
                setattr(target, name, decode(tree, body, device))
