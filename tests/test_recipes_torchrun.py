"""The image recipe under ``torchrun`` on the CPU: a few steps on two processes, then a resume.

The references are the files the two launches write: the recipe's checkpoint (its loss
history must extend the first run's exactly) and ``fit``'s training state (two processes'
generators, the whole replay buffer).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ebmlab.recipes import digits_ebm
from ebmlab.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def torchrun_recipe(out: Path, *options: str) -> str:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", "-m", "ebmlab.recipes.digits_ebm", "--device", "cpu",
               "--out", str(out), *options]
    run = subprocess.run(command, capture_output=True, text=True, timeout=150, cwd=out.parent,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return run.stdout


@pytest.mark.distributed
def test_digits_ebm_trains_on_two_processes_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "ebm.pt"
    assert "trained on cpu x 2 processes" in torchrun_recipe(out, "--steps", "3")
    first = torch.load(out, weights_only=True)
    state = load_checkpoint(tmp_path / "ebm.fit.pt")
    assert state["step"] == 3 and state["ranks"]["world_size"] == 2
    buffer = state["method_state"]["buffer"]["data"]
    assert buffer.shape == (digits_ebm.CONFIG["buffer_size"], 64)  # both processes' slots

    torchrun_recipe(out, "--steps", "6", "--resume")
    resumed = torch.load(out, weights_only=True)
    assert len(resumed["loss"]) == 6
    assert torch.equal(resumed["loss"][:3], first["loss"])  # the same run, continued
    assert load_checkpoint(tmp_path / "ebm.fit.pt")["step"] == 6
    model, _ = digits_ebm.load_checkpoint(out)
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None,
                    reason="torchvision is installed: --full would download MNIST")
def test_full_without_torchvision_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(ModuleNotFoundError, match="pip install torchvision"):
        digits_ebm.main(["--full", "--steps", "1", "--out", str(tmp_path / "x.pt"),
                         "--data-dir", str(tmp_path)])
