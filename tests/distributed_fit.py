"""Worker of tests/test_distributed.py, launched by ``torchrun --nproc_per_node=2`` (gloo, CPU).

``python -m torch.distributed.run --nproc_per_node=2 tests/distributed_fit.py SCENARIO OUT``

* ``train``: the runs the test compares with one process (``"mle"`` and ``"sm"``), the
  stochastic methods straight and checkpointed-then-resumed, a divergence on one process,
  and a method that cannot be distributed; each process saves what it saw to
  ``OUT/rank<r>.pt``.
* ``hang``: process 1 never reaches ``fit``; process 0 must fail with a clear error after
  the process group's timeout.
"""

from __future__ import annotations

import datetime
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ebmlab.data import bars_and_stripes
from ebmlab.energies import RBM, MLPEnergy
from ebmlab.training import DenoisingScoreMatching, Method, TrainingDivergedError, fit

torch.set_num_threads(1)


def rbm() -> RBM:
    return RBM(9, 6, weight_std=0.1, generator=torch.Generator().manual_seed(0)).double()


def rbm_data() -> torch.Tensor:
    return bars_and_stripes(3).double().repeat(4, 1)  # 56 examples


def mlp() -> MLPEnergy:
    torch.manual_seed(1)
    return MLPEnergy(2, hidden=(16,)).double()


def gaussian_data() -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    return (torch.randn(120, 2, generator=g, dtype=torch.float64)
            * torch.tensor([1.0, 0.5], dtype=torch.float64) + torch.tensor([2.0, -1.0],
                                                                           dtype=torch.float64))


#: The deterministic runs compared with one process (the test runs the same in-process).
DETERMINISTIC: dict[str, dict[str, Any]] = {
    "mle": {"model": rbm, "data": rbm_data, "options": {"batch_size": 14, "steps": 30,
                                                         "optimizer": "sgd", "lr": 0.1}},
    "sm": {"model": mlp, "data": gaussian_data, "options": {"batch_size": 13, "steps": 30,
                                                           "optimizer": "sgd", "lr": 0.05}},
}

#: The stochastic runs: straight for 2n steps, and n steps + a resume to 2n.
STOCHASTIC: dict[str, dict[str, Any]] = {
    "pcd": {"model": rbm, "data": rbm_data,
            "options": {"batch_size": 14, "n_chains": 11, "k": 2, "lr": 0.1}},
    "mcmc": {"model": mlp, "data": gaussian_data,
             "options": {"batch_size": 24, "buffer_size": 101, "n_steps": 10,
                         "step_size": 0.05, "lr": 1e-2, "bounds": (-4.0, 4.0)}},
    "dsm": {"model": mlp, "data": gaussian_data,
            "options": {"batch_size": 24, "sigma": 0.3, "lr": 1e-2}},
}
HALF = 40


def params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


class KeepsCount(Method):
    """A custom method with persistent state and no way to split it."""

    name = "keeps-count"

    def __init__(self) -> None:
        self.count = 0

    def loss(self, model: torch.nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        self.count += 1
        return model(batch).mean()

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count}


class FailsOnRankOne(DenoisingScoreMatching):
    """DSM whose loss is NaN at one step, on process 1 only."""

    def __init__(self, fail_at: int) -> None:
        super().__init__(sigma=0.3)
        self.fail_at = fail_at
        self.calls = 0

    def loss(self, model: torch.nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        self.calls += 1
        loss = super().loss(model, batch, generator)
        if dist.get_rank() == 1 and self.calls == self.fail_at:
            return loss * float("nan")
        return loss


def train(out: Path) -> None:
    rank = dist.get_rank()
    seen: dict[str, Any] = {}
    for name, case in DETERMINISTIC.items():
        model = case["model"]()
        history = fit(model, case["data"](), name, seed=0, progress=False, **case["options"])
        seen[name] = {"params": params(model), "loss": history.loss}
    for name, case in STOCHASTIC.items():
        options = {**case["options"], "seed": 3, "progress": False}
        straight = case["model"]()
        history = fit(straight, case["data"](), name, steps=2 * HALF, **options)
        path = out / f"{name}.pt"
        first = case["model"]()
        fit(first, case["data"](), name, steps=HALF, checkpoint=path, **options)
        resumed = case["model"]()
        resumed_history = fit(resumed, case["data"](), name, steps=2 * HALF, resume=path,
                              checkpoint=out / f"{name}-resumed.pt", **options)
        seen[name] = {"straight": params(straight), "resumed": params(resumed),
                      "loss": history.loss, "resumed_loss": resumed_history.loss}
    model = mlp()
    try:
        fit(model, gaussian_data(), FailsOnRankOne(fail_at=7), steps=30, batch_size=24,
            seed=0, progress=False, sync_every=5)
        seen["diverged"] = None
    except TrainingDivergedError as err:
        seen["diverged"] = {"step": err.step, "restored_step": err.restored_step,
                            "message": str(err), "params": params(model)}
    try:
        fit(mlp(), gaussian_data(), KeepsCount(), steps=2, progress=False)
        seen["not_distributable"] = None
    except ValueError as err:
        seen["not_distributable"] = str(err)
    torch.save(seen, out / f"rank{rank}.pt")


def hang() -> None:
    if dist.get_rank() == 1:
        time.sleep(120)  # never reaches fit; torchrun stops it when process 0 fails
        return
    fit(mlp(), gaussian_data(), "dsm", sigma=0.3, steps=5, progress=False)


def main() -> None:
    scenario, out = sys.argv[1], Path(sys.argv[2])
    timeout = datetime.timedelta(seconds=5 if scenario == "hang" else 60)
    dist.init_process_group("gloo", timeout=timeout)
    try:
        if scenario == "train":
            train(out)
        else:
            hang()
    finally:
        if scenario == "train":
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
