"""Checkpoint files of :func:`ebmlab.training.fit`: atomic writes and device-aware loads."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["FORMAT", "capture_rng", "load_checkpoint", "restore_rng", "save_checkpoint"]

FORMAT = "ebmlab.fit/1"
"""Format tag stored in every checkpoint."""


def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``state`` to ``path`` atomically.

    The file is written to a temporary file in the same directory, flushed to
    disk, then renamed over ``path`` with :func:`os.replace`; a crash at any
    point leaves the previous checkpoint intact.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(dict(state), f)
            f.flush()
            os.fsync(f.fileno())
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
        If the file is not a checkpoint of :func:`ebmlab.training.fit`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"resume={str(path)!r}: no such checkpoint file.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"resume={str(path)!r} is not a checkpoint written by "
                         f"ebmlab.training.fit (expected format {FORMAT!r}).")
    return state


def capture_rng(generator: torch.Generator | None) -> dict[str, Any]:
    """States of torch's global RNGs (CPU, and CUDA when in use) and of ``generator``."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "cuda": None,
                             "generator": None, "generator_device": None}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        state["generator"] = generator.get_state()
        state["generator_device"] = str(generator.device)
    return state


def restore_rng(state: Mapping[str, Any], generator: torch.Generator | None
                ) -> torch.Generator | None:
    """Restore the RNG states of :func:`capture_rng`.

    Returns the generator to continue with, following the checkpoint so that a
    resumed run continues exactly: ``generator`` with the saved state (a new
    generator if the caller passed none), or ``None`` when the checkpointed run
    drew from torch's global RNG.
    """
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


def to_device(obj: Any, device: torch.device) -> Any:
    """Move every tensor of a nested dict/list/tuple to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj
