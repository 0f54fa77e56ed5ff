"""Data-parallel ``fit`` under ``torchrun --nproc_per_node=2`` (gloo, CPU).

One launch of ``tests/distributed_fit.py`` runs every two-process training of these
tests (about 20 s); a second checks that a hung process ends in a clear error. The
references are independent of the code under test: the same runs in this (single)
process, a run straight against one checkpointed and resumed, brute-force enumeration
of an RBM's likelihood, and the files themselves.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from ebmlab.training import fit
from ebmlab.training.checkpoint import load_checkpoint
from ebmlab.training.distributed import share_bounds

from . import distributed_fit as worker
from .test_training import brute_force_log_likelihood

pytestmark = pytest.mark.distributed

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(worker.__file__)
#: Float64 runs: two processes match one to this (they reach about 1e-16).
TOLERANCE = 1e-12


def torchrun(scenario: str, out: Path, *, timeout: float) -> subprocess.CompletedProcess[str]:
    """Launch the worker on two gloo processes (``--standalone``: on a free port), the whole
    run under a timeout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               "--standalone", str(WORKER), scenario, str(out)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=ROOT, check=False)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("torchrun")
    run = torchrun("train", out, timeout=180)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out, [torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


@pytest.mark.parametrize("name", list(worker.DETERMINISTIC))
def test_two_processes_match_one_with_the_same_global_batch(two_ranks, name: str) -> None:
    _, ranks = two_ranks
    case = worker.DETERMINISTIC[name]
    model = case["model"]()
    history = fit(model, case["data"](), name, seed=0, progress=False, **case["options"])
    for seen in ranks:
        for got, want in zip(seen[name]["params"], model.parameters(), strict=True):
            torch.testing.assert_close(got, want.detach(), rtol=0, atol=TOLERANCE)
        assert seen[name]["loss"] == pytest.approx(history.loss, rel=0, abs=TOLERANCE)


@pytest.mark.parametrize("name", list(worker.STOCHASTIC))
def test_stochastic_methods_resume_exactly_under_torchrun(two_ranks, name: str) -> None:
    _, ranks = two_ranks
    for seen in ranks:
        for straight, resumed in zip(seen[name]["straight"], seen[name]["resumed"], strict=True):
            assert torch.equal(straight, resumed)
        assert seen[name]["loss"] == seen[name]["resumed_loss"]
    for a, b in zip(ranks[0][name]["straight"], ranks[1][name]["straight"], strict=True):
        assert torch.equal(a, b)  # one model
    assert ranks[0][name]["loss"] == ranks[1][name]["loss"]  # one history


def test_pcd_learns_under_torchrun(two_ranks) -> None:
    _, ranks = two_ranks
    rbm, trained = worker.rbm(), worker.rbm()
    for p, value in zip(trained.parameters(), ranks[0]["pcd"]["straight"], strict=True):
        p.data.copy_(value)
    data = worker.rbm_data()
    # 80 steps gain about 0.3 nats over the initial -6.25 (a uniform model: -6.24)
    assert brute_force_log_likelihood(trained, data) > brute_force_log_likelihood(rbm, data) + 0.15


@pytest.mark.parametrize("name", ["mcmc", "dsm"])
def test_continuous_methods_learn_under_torchrun(two_ranks, name: str) -> None:
    _, ranks = two_ranks
    model = worker.mlp()
    for p, value in zip(model.parameters(), ranks[0][name]["straight"], strict=True):
        p.data.copy_(value)
    data = worker.gaussian_data()
    far = data + torch.tensor([3.0, 3.0], dtype=torch.float64)
    with torch.no_grad():
        assert model(data).mean() < model(far).mean()  # the data's region became likelier


def test_the_checkpoint_holds_every_process_chains_and_generator(two_ranks) -> None:
    out, _ = two_ranks
    pcd = load_checkpoint(out / "pcd.pt")
    assert pcd["ranks"]["world_size"] == 2 and len(pcd["ranks"]["generators"]) == 2
    assert pcd["method_state"]["chains"].shape == (11, 9)  # n_chains is the total
    assert not torch.equal(*pcd["ranks"]["generators"])  # each process its own noise
    mcmc = load_checkpoint(out / "mcmc.pt")
    assert mcmc["method_state"]["buffer"]["data"].shape == (101, 2)
    assert mcmc["method_state"]["buffer"]["capacity"] == 101


def test_a_two_process_checkpoint_resumes_in_one_process_with_a_message(two_ranks) -> None:
    out, _ = two_ranks
    case = worker.STOCHASTIC["pcd"]
    model = case["model"]()
    with pytest.warns(UserWarning, match=r"written by 2 process\(es\) and is resumed by 1: "
                                         r"the persistent chains were redistributed"):
        history = fit(model, case["data"](), "pcd", steps=worker.HALF + 5,
                      resume=out / "pcd.pt", seed=3, progress=False, **case["options"])
    assert history.steps == worker.HALF + 5
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_the_divergence_guard_stops_every_process_at_the_same_step(two_ranks) -> None:
    _, ranks = two_ranks
    first, second = ranks[0]["diverged"], ranks[1]["diverged"]
    assert first is not None and second is not None
    assert first["step"] == second["step"] == 7  # NaN on process 1 only, at its 7th step
    assert first["restored_step"] == second["restored_step"] == 5  # sync_every=5
    for a, b in zip(first["params"], second["params"], strict=True):
        assert torch.equal(a, b) and torch.isfinite(a).all()
    assert "diverged at step 7: the loss was nan" in first["message"]


def test_a_method_that_cannot_be_distributed_is_named(two_ranks) -> None:
    _, ranks = two_ranks
    message = ranks[0]["not_distributable"]
    assert message is not None
    assert "method 'keeps-count' (KeepsCount) cannot be distributed" in message
    assert "keep_share" in message


def test_a_hung_process_ends_in_a_clear_error(tmp_path: Path) -> None:
    run = torchrun("hang", tmp_path, timeout=90)
    assert run.returncode != 0
    log = run.stdout + run.stderr
    assert "DistributedTimeoutError: process 0 of 2: the other processes did not take part " \
           "in the start of training" in log, log[-3000:]


@pytest.mark.parametrize("n", [1, 2, 7, 10, 11])
@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_shares_cover_every_row_once(n: int, world_size: int) -> None:
    bounds = [share_bounds(n, r, world_size) for r in range(world_size)]
    rows = [i for start, stop in bounds for i in range(start, stop)]
    assert rows == list(range(n))
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1
