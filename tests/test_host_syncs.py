"""Host synchronisations of the training loop: ``fit`` reads the device only at its syncs.

On an accelerator every call that brings a tensor's value to Python (``item``,
``__bool__``, ``tolist``, ``cpu``, ``numpy``, ``float``, ``int``) stalls the host until the
device has finished its queue. ``fit`` reads the losses, the divergence checks and the
metrics together once every ``sync_every`` steps; nothing in a step reads the device.
These tests count those calls by patching :class:`torch.Tensor`'s methods (an independent
observer of the code under test) while ``fit`` runs on the CPU.

Calls made by torch itself on its own host-side bookkeeping are not counted: the
optimisers of ``torch.optim`` keep their step counter as a CPU tensor (unless
``capturable=True``), so ``Adam`` reads it with ``.item()`` without touching the device.
The GPU benchmark (``benchmarks/gpu.sh``) checks the same loop with
``torch.cuda.set_sync_debug_mode``, which sees every real synchronisation.
"""

from __future__ import annotations

import collections
import os
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import torch

from ebmlab.data import bars_and_stripes
from ebmlab.energies import RBM, MLPEnergy, NoiseConditionalScoreNet
from ebmlab.samplers import langevin
from ebmlab.training import fit

SYNCING = ("item", "__bool__", "tolist", "cpu", "numpy", "__float__", "__int__", "__index__")
TORCH_DIR = os.path.dirname(torch.__file__)
STEPS = 100


@contextmanager
def count_host_reads() -> Iterator[collections.Counter[str]]:
    """Count the syncing tensor calls made outside torch, by ``file:line`` of the caller."""
    counts: collections.Counter[str] = collections.Counter()
    originals = {name: getattr(torch.Tensor, name) for name in SYNCING}

    def counting(name: str) -> Callable[..., object]:
        original = originals[name]

        def call(self: torch.Tensor, *args: object, **kwargs: object) -> object:
            caller = traceback.extract_stack(limit=2)[0]
            if not caller.filename.startswith(TORCH_DIR):
                counts[f"{name} at {caller.filename}:{caller.lineno}"] += 1
            return original(self, *args, **kwargs)

        return call

    try:
        for name in SYNCING:
            setattr(torch.Tensor, name, counting(name))
        yield counts
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def _continuous_data() -> torch.Tensor:
    return torch.randn(256, 2, generator=torch.Generator().manual_seed(0))


CASES = {
    "mle": (lambda: RBM(9, 4), lambda: bars_and_stripes(3), {"optimizer": "sgd", "lr": 0.1}),
    "cd": (lambda: RBM(9, 8), lambda: bars_and_stripes(3), {"k": 2}),
    "pcd": (lambda: RBM(9, 8), lambda: bars_and_stripes(3), {"n_chains": 16}),
    "pcd-langevin": (lambda: MLPEnergy(2, hidden=(16,)), _continuous_data,
                     {"n_chains": 32, "k": 3}),
    "mcmc": (lambda: MLPEnergy(2, hidden=(16,)), _continuous_data,
             {"n_steps": 5, "buffer_size": 200, "bounds": (-4.0, 4.0)}),
    "sm": (lambda: MLPEnergy(2, hidden=(16,)), _continuous_data, {}),
    "ssm": (lambda: MLPEnergy(2, hidden=(16,)), _continuous_data, {}),
    "dsm": (lambda: MLPEnergy(2, hidden=(16,)), _continuous_data, {"sigma": 0.3}),
    "ncsn": (lambda: NoiseConditionalScoreNet(2, hidden=(16,)), _continuous_data,
             {"sigmas": torch.logspace(0, -1, 4)}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fit_reads_the_device_at_most_once_every_five_steps(case: str) -> None:
    make_model, make_data, options = CASES[case]
    method = case.split("-")[0]
    model, data = make_model(), make_data()
    with count_host_reads() as counts:
        history = fit(model, data, method, steps=STEPS, batch_size=64, seed=0, progress=False,
                      sync_every=25, **options)
    assert history.steps == STEPS
    total = sum(counts.values())
    assert total <= STEPS / 5, f"{total} host reads in {STEPS} steps: {dict(counts)}"
    # One read per sync (4 here), plus the checks of the data and options before training.
    assert total <= STEPS // 25 + 3, dict(counts)


def test_the_counter_sees_a_read_in_the_loop() -> None:
    """The observer is not blind: a metric callback that reads the device every step is
    counted once per step."""
    model = MLPEnergy(2, hidden=(8,))

    def mean_energy(m: torch.nn.Module) -> float:
        return float(m(torch.zeros(1, 2)).detach().mean())

    mean_energy.every = 1  # type: ignore[attr-defined]
    with count_host_reads() as counts:
        fit(model, _continuous_data(), "dsm", sigma=0.3, steps=20, seed=0, progress=False,
            callbacks=[mean_energy])
    assert sum(v for k, v in counts.items() if k.startswith("__float__")) >= 20


def test_langevin_reads_the_device_once_every_ten_steps_on_the_cpu() -> None:
    """The standalone sampler's divergence check: one flag read every ten steps."""
    model = MLPEnergy(2, hidden=(8,))
    with count_host_reads() as counts:
        langevin(model, torch.zeros(64, 2), step_size=0.01, n_steps=100,
                 generator=torch.Generator().manual_seed(0))
    assert sum(counts.values()) <= 100 / 10 + 3, dict(counts)
