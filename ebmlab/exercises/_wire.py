r"""What crosses the boundary between the grader and a sandbox: one framing, one safe codec.

Framing
-------
Every message, in both directions, is one frame::

    [4 bytes: header length H][8 bytes: body length N][H bytes: JSON header][N bytes: body]

(lengths big-endian). The reader refuses a header over :data:`MAX_HEADER` bytes and a body
over its own ``max_body`` before it allocates anything, and every read and write has a
deadline, so a sandbox can neither flood nor stall the grader.

The codec
---------
Grader → sandbox messages carry a pickle in their body: the sandbox trusts the grader.
Sandbox → grader messages are never unpickled. Their values are *plain data* described in
the JSON header: ``None``, ``bool``, ``int``, ``float``, ``str``, and

* ``{"tuple": [...]}``, ``{"list": [...]}``, ``{"dict": [[key, value], ...]}`` (scalar keys);
* ``{"tensor": {"dtype", "shape", "device", "requires_grad", "offset", "nbytes"}}``: an
  exact :class:`torch.Tensor` whose raw bytes are ``body[offset:offset + nbytes]``, with a
  dtype from :data:`DTYPES` and a device the grader names.

:class:`Encoder` (sandbox side) turns a value into this form or raises :class:`Unencodable`
with the type it met (a NumPy array, a tensor subclass, a custom object); :func:`decode`
(grader side) rebuilds fresh tensors from the bytes and raises :class:`ProtocolError` for
anything malformed, oversized or nested too deeply.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "DTYPES",
    "MAX_HEADER",
    "Channel",
    "ChannelClosed",
    "ChannelTimeout",
    "Encoder",
    "Frame",
    "ProtocolError",
    "Unencodable",
    "decode",
]

#: Largest JSON header a reader accepts (bytes).
MAX_HEADER = 1 << 20
#: Default largest body a reader accepts (bytes).
DEFAULT_MAX_BODY = 64 << 20
#: Deepest nesting of containers in a value.
MAX_DEPTH = 32
#: Most values (containers, scalars, tensors) in one message.
MAX_NODES = 20_000
#: Most characters of the strings in one value.
MAX_TEXT = 256 << 10
#: Most dimensions of a tensor.
MAX_DIMS = 16

#: The dtypes a tensor may have on the wire, by name.
DTYPES: dict[str, torch.dtype] = {
    str(dtype).removeprefix("torch."): dtype for dtype in (
        torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64,
        torch.complex128, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
        torch.bool)
}

_PREFIX = struct.Struct(">IQ")
_CHUNK = 1 << 20


class ProtocolError(Exception):
    """A message broke the protocol: malformed, forged, or over a limit."""


class ChannelClosed(Exception):
    """The other end closed the channel (its process ended)."""


class ChannelTimeout(Exception):
    """A read or a write did not finish before its deadline."""


class Unencodable(Exception):
    """A value is not plain data; the message names what was found instead."""


@dataclass(frozen=True)
class Frame:
    """One message: a JSON object and raw bytes."""

    header: dict[str, Any]
    body: bytes = b""


def _wait(fd: int, *, write: bool, deadline: float | None) -> None:
    """Block until ``fd`` is ready, or raise :class:`ChannelTimeout` at the deadline."""
    timeout = None if deadline is None else deadline - time.monotonic()
    if timeout is not None and timeout <= 0:
        raise ChannelTimeout
    ready = select.select([], [fd], [], timeout) if write else select.select([fd], [], [], timeout)
    if not any(ready):
        raise ChannelTimeout


class Channel:
    """Frames over a pair of pipe file descriptors, each read and write with a deadline.

    Parameters
    ----------
    read_fd, write_fd : int
        The ends this side reads from and writes to.
    max_body : int
        Largest body :meth:`receive` accepts.
    """

    def __init__(self, read_fd: int, write_fd: int, *, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.max_body = max_body
        self._pending = bytearray()  # what arrived of a frame not yet complete
        for fd in (read_fd, write_fd):
            os.set_blocking(fd, False)

    def send(self, header: dict[str, Any], body: bytes = b"", *,
             deadline: float | None = None) -> None:
        """Write one frame; raise :class:`ChannelClosed` or :class:`ChannelTimeout`."""
        head = json.dumps(header, separators=(",", ":")).encode()
        view = memoryview(_PREFIX.pack(len(head), len(body)) + head + body)
        while view:
            _wait(self.write_fd, write=True, deadline=deadline)
            try:
                view = view[os.write(self.write_fd, view[:_CHUNK]):]
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                raise ChannelClosed from None

    def receive(self, *, deadline: float | None = None) -> Frame:
        """Read one frame; raise :class:`ProtocolError`, :class:`ChannelClosed` or a timeout.

        A frame that is not complete at the deadline stays pending for the next call.
        """
        self._fill(_PREFIX.size, deadline)
        head_size, body_size = _PREFIX.unpack(self._pending[:_PREFIX.size])
        if head_size > MAX_HEADER:
            raise ProtocolError(f"a message header of {head_size} bytes (limit {MAX_HEADER})")
        if body_size > self.max_body:
            raise ProtocolError(f"a message body of {body_size} bytes (limit {self.max_body})")
        end = _PREFIX.size + head_size + body_size
        self._fill(end, deadline)
        frame = bytes(self._pending[:end])
        del self._pending[:end]
        try:
            header = json.loads(frame[_PREFIX.size:_PREFIX.size + head_size].decode())
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ProtocolError(f"a message header that is not JSON ({exc})") from None
        if not isinstance(header, dict):
            raise ProtocolError("a message header that is not a JSON object")
        return Frame(header, frame[_PREFIX.size + head_size:])

    def _fill(self, size: int, deadline: float | None) -> None:
        """Read until at least ``size`` bytes are pending."""
        while len(self._pending) < size:
            _wait(self.read_fd, write=False, deadline=deadline)
            try:
                chunk = os.read(self.read_fd, min(size - len(self._pending), _CHUNK))
            except BlockingIOError:
                continue
            if not chunk:
                raise ChannelClosed
            self._pending += chunk

    def close(self) -> None:
        """Close both file descriptors."""
        for fd in {self.read_fd, self.write_fd}:
            try:
                os.close(fd)
            except OSError:
                pass


# --- the codec: sandbox side ----------------------------------------------------------
def type_name(value: object) -> str:
    """``"numpy.ndarray"``, ``"int"``: the name of a value's type, for messages."""
    kind = type(value)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


class Encoder:
    """Turns values into plain data (the JSON tree) and collects the tensors' bytes.

    Parameters
    ----------
    max_bytes : int
        Most tensor bytes in one message; more raises :class:`Unencodable`.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BODY) -> None:
        self.max_bytes = max_bytes
        self.chunks: list[bytes] = []
        self.size = 0
        self.nodes = 0
        self.text = 0

    @property
    def body(self) -> bytes:
        """The tensors' bytes, in the order the tree refers to them."""
        return b"".join(self.chunks)

    def encode(self, value: object, depth: int = 0) -> Any:
        """The JSON tree of ``value``; raises :class:`Unencodable`."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise Unencodable(f"more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise Unencodable(f"containers nested more than {MAX_DEPTH} deep")
        if isinstance(value, str):
            self.text += len(value)
            if self.text > MAX_TEXT:
                raise Unencodable(f"strings of more than {MAX_TEXT} characters in total")
            return str.__str__(value)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return int(value) if isinstance(value, int) else float(value)
        if isinstance(value, np.generic) and isinstance(value.item(), (bool, int, float)):
            return value.item()
        if type(value) is torch.Tensor:
            return {"tensor": self.tensor(value)}
        if isinstance(value, torch.Tensor):
            raise Unencodable(f"a {type_name(value)} (a subclass of torch.Tensor)")
        if isinstance(value, (tuple, list)):
            tag = "tuple" if isinstance(value, tuple) else "list"
            return {tag: [self.encode(item, depth + 1) for item in value]}
        if isinstance(value, dict):
            pairs = []
            for key, item in value.items():
                if not (key is None or isinstance(key, (bool, int, float, str))):
                    raise Unencodable(f"a dict with a key of type {type_name(key)}")
                pairs.append([self.encode(key, depth + 1), self.encode(item, depth + 1)])
            return {"dict": pairs}
        raise Unencodable(f"a {type_name(value)}")

    def tensor(self, value: torch.Tensor) -> dict[str, Any]:
        """The descriptor of an exact :class:`torch.Tensor`; its bytes join :attr:`body`."""
        if value.layout != torch.strided:
            raise Unencodable(f"a tensor with layout {value.layout} (only dense tensors)")
        name = str(value.dtype).removeprefix("torch.")
        if name not in DTYPES:
            raise Unencodable(f"a tensor of dtype {value.dtype}")
        data = b""
        if value.device.type != "meta":
            flat = value.detach().to("cpu").resolve_conj().resolve_neg().reshape(-1)
            nbytes = flat.numel() * flat.element_size()
            if self.size + nbytes > self.max_bytes:
                raise Unencodable(f"tensors of more than {self.max_bytes >> 20} MiB in total")
            data = flat.contiguous().view(torch.uint8).numpy().tobytes()
        descriptor = {"dtype": name, "shape": list(value.shape), "device": str(value.device),
                      "requires_grad": bool(value.requires_grad), "offset": self.size,
                      "nbytes": len(data)}
        self.chunks.append(data)
        self.size += len(data)
        return descriptor


# --- the codec: grader side -----------------------------------------------------------
_TENSOR_KEYS = {"dtype", "shape", "device", "requires_grad", "offset", "nbytes"}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def decode_tensor(descriptor: object, body: bytes,
                  device: Callable[[str], torch.device]) -> torch.Tensor:
    """A fresh tensor from its descriptor and the message body (see :func:`decode`)."""
    if not (isinstance(descriptor, dict) and set(descriptor) == _TENSOR_KEYS):
        raise ProtocolError(f"a malformed tensor descriptor {str(descriptor)[:200]}")
    name, shape = descriptor["dtype"], descriptor["shape"]
    offset, nbytes = descriptor["offset"], descriptor["nbytes"]
    if name not in DTYPES:
        raise ProtocolError(f"a tensor of unknown dtype {str(name)[:50]!r}")
    if not (isinstance(shape, list) and len(shape) <= MAX_DIMS
            and all(_is_int(n) and 0 <= n < 1 << 40 for n in shape)):
        raise ProtocolError(f"a tensor of malformed shape {str(shape)[:200]}")
    if not (_is_int(offset) and _is_int(nbytes) and isinstance(descriptor["requires_grad"], bool)
            and isinstance(descriptor["device"], str)):
        raise ProtocolError("a tensor descriptor with fields of the wrong type")
    dtype = DTYPES[name]
    target = device(descriptor["device"])
    numel = int(np.prod(shape, dtype=np.float64))
    if numel > 1 << 40:
        raise ProtocolError(f"a tensor of {numel} elements")
    expected = 0 if target.type == "meta" else numel * torch.empty((), dtype=dtype).element_size()
    if nbytes != expected or offset < 0 or offset + nbytes > len(body):
        raise ProtocolError(f"a tensor whose {nbytes} bytes at offset {offset} do not hold "
                            f"shape {shape} of {name} (body of {len(body)} bytes)")
    if target.type == "meta" or numel == 0:
        tensor = torch.empty(shape, dtype=dtype, device=target)
    else:
        raw = torch.frombuffer(bytearray(body[offset:offset + nbytes]), dtype=torch.uint8)
        tensor = raw.view(dtype).reshape(shape).to(target)
    if descriptor["requires_grad"] and (tensor.is_floating_point() or tensor.is_complex()):
        tensor.requires_grad_(True)
    return tensor


class _Decoder:
    def __init__(self, body: bytes, device: Callable[[str], torch.device]) -> None:
        self.body = body
        self.device = device
        self.nodes = 0

    def value(self, tree: object, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise ProtocolError("a value with too many parts or nested too deeply")
        if tree is None or isinstance(tree, (bool, int, float, str)):
            return tree
        if isinstance(tree, dict) and len(tree) == 1:
            ((tag, content),) = tree.items()
            if tag == "tensor":
                return decode_tensor(content, self.body, self.device)
            if tag in ("tuple", "list") and isinstance(content, list):
                items = [self.value(item, depth + 1) for item in content]
                return tuple(items) if tag == "tuple" else items
            if tag == "dict" and isinstance(content, list):
                out = {}
                for pair in content:
                    if not (isinstance(pair, list) and len(pair) == 2):
                        raise ProtocolError("a malformed dict entry")
                    key = self.value(pair[0], depth + 1)
                    if not (key is None or isinstance(key, (bool, int, float, str))):
                        raise ProtocolError("a dict key that is not a scalar")
                    out[key] = self.value(pair[1], depth + 1)
                return out
        raise ProtocolError(f"a value of unknown form {str(tree)[:200]}")


def decode(tree: object, body: bytes, device: Callable[[str], torch.device]) -> Any:
    """The value described by ``tree`` (see the module docstring), with fresh tensors.

    Parameters
    ----------
    tree : object
        The JSON tree made by :meth:`Encoder.encode`.
    body : bytes
        The message body holding the tensors' bytes.
    device : callable
        Maps a device name from the message to a device of the grader; raises
        :class:`ProtocolError` for a device the grader does not accept.

    Raises
    ------
    ProtocolError
        For anything that is not plain data within the limits.
    """
    return _Decoder(body, device).value(tree, 0)
