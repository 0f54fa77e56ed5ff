"""The recipes under ``torchrun`` on the CPU: a few steps on two processes.

``digits_ebm`` (trained by ``fit``): the references are the files the two launches write,
the recipe's checkpoint (its loss history must extend the first run's exactly) and ``fit``'s
training state (two processes' generators, the whole replay buffer). ``digits_jem`` (its own
loop): with deterministic negatives (``tests/distributed_jem.py``) two processes give the
network of one process with the same global batch; the command line writes one checkpoint.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ebmlab.recipes import digits_ebm, digits_jem, eight_gaussians_ncsn
from ebmlab.training.checkpoint import load_checkpoint

from . import distributed_jem

ROOT = Path(__file__).resolve().parents[1]


def torchrun(*arguments: str, cwd: Path) -> str:
    """``torchrun --standalone --nproc_per_node=2 <arguments>``: its output, once it succeeded."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", *arguments]
    run = subprocess.run(command, capture_output=True, text=True, timeout=150, cwd=cwd,
                         env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
                         check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return run.stdout


def torchrun_recipe(name: str, out: Path, *options: str) -> str:
    """Run recipe ``name`` on two CPU processes, writing its checkpoint to ``out``."""
    return torchrun("-m", f"ebmlab.recipes.{name}", "--device", "cpu", "--out", str(out),
                    *options, cwd=out.parent)


@pytest.mark.distributed
def test_digits_ebm_trains_on_two_processes_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "ebm.pt"
    assert "trained on cpu x 2 processes" in torchrun_recipe("digits_ebm", out, "--steps", "3")
    first = torch.load(out, weights_only=True)
    state = load_checkpoint(tmp_path / "ebm.fit.pt")
    assert state["step"] == 3 and state["ranks"]["world_size"] == 2
    buffer = state["method_state"]["buffer"]["data"]
    assert buffer.shape == (digits_ebm.CONFIG["buffer_size"], 64)  # both processes' slots

    torchrun_recipe("digits_ebm", out, "--steps", "6", "--resume")
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


@pytest.mark.distributed
def test_digits_jem_on_two_processes_matches_one_with_the_same_global_batch(
        tmp_path: Path) -> None:
    torchrun(str(ROOT / "tests" / "distributed_jem.py"), str(tmp_path), cwd=ROOT)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    one = distributed_jem.deterministic_train()
    assert one["history"].shape == (distributed_jem.STEPS, 3)
    for rank in ranks:
        for name, value in one["state_dict"].items():
            torch.testing.assert_close(rank["state_dict"][name], value, rtol=0, atol=1e-12)
        # the history is the global batch's: float32, as train stores it
        torch.testing.assert_close(rank["history"], one["history"], rtol=1e-6, atol=1e-6)
    assert not torch.equal(one["history"][0], one["history"][-1])  # the steps changed it


@pytest.mark.distributed
def test_digits_jem_command_line_trains_on_two_processes(tmp_path: Path) -> None:
    out = tmp_path / "jem.pt"
    stdout = torchrun_recipe("digits_jem", out, "--steps", "4")
    assert stdout.count("wrote") == 1 and "on cpu x 2 processes" in stdout
    model, stored = digits_jem.load_checkpoint(out)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert stored["history"].shape == (4, 3) and torch.isfinite(stored["history"]).all()
    assert stored["buffer"].shape == (digits_jem.CONFIG["n_saved"], 1, 8, 8)
    assert 0.0 <= stored["buffer"].min() and stored["buffer"].max() <= 1.0
    assert set(stored["metrics"]) >= {"accuracy", "auroc_noise"}  # rank 0 evaluated


def test_digits_jem_ablation_refuses_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit):
        digits_jem.main(["--ablation"])


@pytest.mark.distributed
def test_eight_gaussians_ncsn_command_line_trains_on_two_processes(tmp_path: Path) -> None:
    out = tmp_path / "ncsn.pt"
    stdout = torchrun_recipe("eight_gaussians_ncsn", out, "--steps", "4")
    assert stdout.count("wrote") == 1 and "on cpu x 2 processes" in stdout
    net, stored = eight_gaussians_ncsn.load_checkpoint(out)
    assert len(stored["losses"]) == 4 and torch.isfinite(stored["losses"]).all()
    assert all(torch.isfinite(p).all() for p in net.parameters())
