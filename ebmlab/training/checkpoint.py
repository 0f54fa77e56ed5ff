"""Checkpoint files of :func:`ebmlab.training.fit`: checksummed, atomic, the previous one kept.

A checkpoint file is one header line -- the format tag and the SHA-256 of the payload --
followed by the payload, a :func:`torch.save` of the run's state: model, optimiser,
method (state and options), batch order, step, RNG states and history. Writing goes to a
temporary file that replaces the checkpoint only once complete, and the checkpoint it
replaces is kept as ``<name>.prev<suffix>``. Reading checks the header and the checksum
before loading (``weights_only``), and a resume checks that the run's settings are
those of the checkpoint.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .batches import Batches
from .history import History
from .methods import Method
from .optimizer import OptimizerLike

__all__ = ["FORMAT", "load_checkpoint", "previous_checkpoint", "read_checkpoint",
           "save_checkpoint", "write_checkpoint"]

FORMAT = "ebmlab.fit/2"
"""Format tag in the header line of every checkpoint."""

_KEYS = ("step", "method", "method_options", "model", "optimizer", "method_state", "batches",
         "rng", "history")


def previous_checkpoint(path: str | os.PathLike[str]) -> Path:
    """Where the checkpoint that ``path`` replaced is kept: ``run.pt`` -> ``run.prev.pt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``state`` to ``path`` atomically, with a checksum, keeping the previous file.

    The file is written to a temporary file in the same directory and flushed to disk;
    then an existing ``path`` becomes :func:`previous_checkpoint` and the new file takes
    its place (:func:`os.replace`). A crash at any point leaves the previous checkpoint
    intact.
    """
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    payload = buffer.getvalue()
    header = f"{FORMAT} sha256={hashlib.sha256(payload).hexdigest()}\n".encode()
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header + payload)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.replace(path, previous_checkpoint(path))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors on the CPU).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a checkpoint of :func:`ebmlab.training.fit`, or is damaged
        (its checksum does not match, or it cannot be read); the message names the file
        and the previous checkpoint, when there is one.
    """
    path = Path(path)
    previous = previous_checkpoint(path)
    fallback = (f" The previous checkpoint, {str(previous)!r}, can be resumed instead."
                if previous.is_file() else "")
    if not path.is_file():
        raise FileNotFoundError(f"resume={str(path)!r}: no such checkpoint file.{fallback}")
    blob = path.read_bytes()
    header, _, payload = blob.partition(b"\n")
    tag, _, checksum = header.decode("utf-8", errors="replace").partition(" sha256=")
    if tag != FORMAT:
        raise ValueError(f"{str(path)!r} is not a checkpoint written by ebmlab.training.fit "
                         f"(expected a first line starting with {FORMAT!r}).{fallback}")
    if hashlib.sha256(payload).hexdigest() != checksum:
        raise ValueError(f"checkpoint {str(path)!r} is corrupt: the SHA-256 of its contents does "
                         f"not match the one recorded when it was written.{fallback}")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError,
            IndexError) as err:
        raise ValueError(f"checkpoint {str(path)!r} cannot be read: {err}.{fallback}") from None
    missing = [key for key in _KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise ValueError(f"checkpoint {str(path)!r} lacks {', '.join(missing)}.{fallback}")
    return state


def write_checkpoint(path: str | os.PathLike[str], *, step: int, model: nn.Module,
                     optimizer: OptimizerLike, method: Method, batches: Batches,
                     history: History, generator: torch.Generator | None) -> None:
    """Save everything a resumed run needs to continue exactly (see :func:`read_checkpoint`)."""
    save_checkpoint({
        "step": step, "method": method.name, "method_options": method.options(),
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "method_state": method.state_dict(), "batches": batches.state_dict(),
        "rng": _capture_rng(generator), "history": history.to_dict(),
    }, path)


def read_checkpoint(path: str | os.PathLike[str], *, model: nn.Module,
                    optimizer: OptimizerLike, method: Method, batches: Batches,
                    history: History, generator: torch.Generator | None
                    ) -> torch.Generator | None:
    """Load checkpoint ``path`` into a run set up like the one that wrote it.

    Checks that the method and its options are those of the checkpoint, then restores
    the model, optimiser, method state, batch order and history (in place) and the RNG
    states. Returns the generator to continue with (``generator`` with the saved state,
    a new one if the run had none, or None if the checkpointed run drew from torch's
    global RNG).

    Raises
    ------
    ValueError
        If the checkpoint was written by another method, with other options (named in
        the message) or another batch size, or cannot be read.
    """
    state = load_checkpoint(path)
    if state["method"] != method.name:
        raise ValueError(f"resume={str(path)!r} was written by method {state['method']!r}, "
                         f"not {method.name!r}.")
    saved, now = state["method_options"], method.options()
    changed = [f"{key}={saved.get(key)!r} in the checkpoint but {key}={now.get(key)!r} now"
               for key in sorted(set(saved) | set(now)) if saved.get(key) != now.get(key)]
    if changed:
        raise ValueError(f"resume={str(path)!r} was written with other options of method "
                         f"{method.name!r}: {'; '.join(changed)}. Resume with the same options.")
    batches.load_state_dict(state["batches"])
    device = batches.data.device
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    method.load_state_dict(_to_device(state["method_state"], device))
    restored = History.from_dict(state["history"])
    history.loss[:], history.metrics, history.wall_time = (restored.loss, restored.metrics,
                                                           restored.wall_time)
    return _restore_rng(state["rng"], generator)


def _capture_rng(generator: torch.Generator | None) -> dict[str, Any]:
    """States of torch's global RNGs (CPU, and CUDA when in use) and of ``generator``."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "cuda": None,
                             "generator": None, "generator_device": None}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        state["generator"] = generator.get_state()
        state["generator_device"] = str(generator.device)
    return state


def _restore_rng(state: Mapping[str, Any], generator: torch.Generator | None
                 ) -> torch.Generator | None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    saved = state.get("generator")
    if saved is None:
        return None
    if generator is None:
        generator = torch.Generator(device=state.get("generator_device") or "cpu")
    generator.set_state(saved)
    return generator


def _to_device(obj: Any, device: torch.device) -> Any:
    """Move every tensor of a nested dict/list/tuple to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj
