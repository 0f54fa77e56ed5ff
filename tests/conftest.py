"""Shared pytest fixtures and configuration of the ebmlab test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# The suite runs on 2 shared cores: tiny tensors are much faster single-threaded.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _restore_torch_global_state():
    """Keep tests independent: restore the default dtype, grad mode and global RNG."""
    dtype = torch.get_default_dtype()
    grad = torch.is_grad_enabled()
    rng = torch.get_rng_state()
    yield
    torch.set_default_dtype(dtype)
    torch.set_grad_enabled(grad)
    torch.set_rng_state(rng)


@pytest.fixture
def generator() -> torch.Generator:
    """A seeded CPU generator."""
    g = torch.Generator()
    g.manual_seed(1234)
    return g


def running(marker: str) -> list[str]:
    """Command lines of the live processes (not zombies, not pytest) that hold ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if marker in text and state != "Z" and "pytest" not in text:
                found.append(text)
    return found


def in_ci() -> bool:
    """True when running under CI (``CI=true``)."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}
