"""One-shot GPU benchmark of ebmlab: the workloads of a course that outgrew the CPU.

Run by ``benchmarks/gpu.sh`` (within 5 minutes on one GPU)::

    benchmarks/gpu.sh                        # --device cuda, full sizes
    benchmarks/gpu.sh --device cpu --quick   # the CI smoke run (well under a minute)

Cases, each timed after a warm-up, with the device synchronised around the timed region:

* **Langevin, 2^20 chains** (``--quick``: 2^10 x 10) x 100 steps on the benchmark MLP
  2 -> 128 -> 128 -> 1 (SiLU) of ``bench_samplers.py``: ``ebmlab.langevin`` against the
  hand-written loop, and the hand-written step compiled by ``torch.compile`` (skipped
  with ``--quick``, or reported as unavailable where the compiler is missing).
* **RBM PCD epoch**: ``fit(rbm, data, "pcd")`` for one epoch, a 784 x 500 RBM on 60 000
  random binary images (``--quick``: 500), batch 1 000 (``--quick``: 100).
* **AIS** on the 784 x 500 RBM: 100 runs x 1 000 temperatures (``--quick``: 8 x 20).
* **Image recipe**: two epochs of ``ebmlab.recipes.digits_ebm`` (``--quick``: 2 steps).

The table gives the time, the throughput, the fraction of the device's measured float32
matmul rate (a square matmul of 8192, 2048 on the CPU) that the case's matmul FLOPs
reach, and the host synchronisations seen in the timed region: on CUDA those reported by
``torch.cuda.set_sync_debug_mode("warn")`` (every one, wherever it comes from); on the
CPU, where nothing waits for a device, the calls that would sync (``item``, ``__bool__``,
``tolist``, ``cpu``, ``numpy``, ``float``, ``int``) made outside torch.

No GPU was available when this benchmark was written (issue 16): the script is tested on
the CPU only (``--device cpu --quick`` runs in ``make test``), and its GPU table is still
to be recorded here by whoever first runs it on one.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from ebmlab.energies import RBM
from ebmlab.partition import ais
from ebmlab.recipes import digits_ebm
from ebmlab.samplers import langevin
from ebmlab.training import fit

sys.path.insert(0, os.path.dirname(__file__))
from bench_samplers import MLP, STEP, hand_loop_frozen, mlp_forward_flops

SYNCING = ("item", "__bool__", "tolist", "cpu", "numpy", "__float__", "__int__")
TORCH_DIR = os.path.dirname(torch.__file__)


@dataclass
class Row:
    case: str
    seconds: float
    throughput: str
    flops: float | None  # matmul FLOPs of the timed region
    syncs: int | None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def count_syncs(device: torch.device) -> Iterator[list[int]]:
    """Count host synchronisations in the body: CUDA's sync debug mode on a GPU, the
    syncing tensor calls made outside torch on the CPU."""
    box = [0]
    if device.type == "cuda":
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                yield box
        finally:
            torch.cuda.set_sync_debug_mode("default")
        box[0] = sum("synchroniz" in str(w.message) for w in caught)
        return
    originals = {name: getattr(torch.Tensor, name) for name in SYNCING}

    def counting(original: Callable[..., object]) -> Callable[..., object]:
        def call(self: torch.Tensor, *args: object, **kwargs: object) -> object:
            if not traceback.extract_stack(limit=2)[0].filename.startswith(TORCH_DIR):
                box[0] += 1
            return original(self, *args, **kwargs)
        return call

    try:
        for name, original in originals.items():
            setattr(torch.Tensor, name, counting(original))
        yield box
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def timed(device: torch.device, fn: Callable[[], object]) -> tuple[float, int]:
    """Seconds and host syncs of one call of ``fn`` (after the caller's warm-up)."""
    synchronize(device)
    with count_syncs(device) as syncs:
        start = time.perf_counter()
        fn()
        synchronize(device)
        seconds = time.perf_counter() - start
    return seconds, syncs[0]


def matmul_rate(device: torch.device) -> float:
    """Measured float32 FLOP/s of a large square matmul (median of 5)."""
    n = 8192 if device.type == "cuda" else 2048
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    times = []
    for _ in range(5):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


# ----------------------------------------------------------------------------- cases


def langevin_rows(device: torch.device, quick: bool) -> list[Row]:
    n_chains, n_steps = (2**10, 10) if quick else (2**20, 100)
    net = MLP().to(device)
    x0 = torch.randn(n_chains, 2, device=device)
    flops = 3 * mlp_forward_flops(net) * n_chains * n_steps  # forward + input gradient
    g = torch.Generator(device=device).manual_seed(0)
    impls: dict[str, Callable[[], object]] = {
        "ebmlab.langevin": lambda: langevin(net, x0, step_size=STEP, n_steps=n_steps,
                                            generator=g),
        "hand-written loop": lambda: hand_loop_frozen(net, x0, n_steps),
    }
    if not quick:
        compiled = compiled_hand_loop(net)
        if compiled is not None:
            impls["hand loop, torch.compile"] = lambda: compiled(x0, n_steps)
    rows = []
    for name, fn in impls.items():
        try:
            fn()  # warm-up (and compilation)
        except Exception as err:
            print(f"  {name}: unavailable ({type(err).__name__}: {str(err)[:80]})")
            continue
        seconds, syncs = timed(device, fn)
        rows.append(Row(f"Langevin {n_chains} chains x {n_steps}: {name}", seconds,
                        f"{n_chains * n_steps / seconds:.3g} chain-steps/s", flops, syncs))
    return rows


def compiled_hand_loop(net: torch.nn.Module) -> Callable[[torch.Tensor, int], torch.Tensor] | None:
    """The hand-written Langevin step (energy gradient + update), compiled."""
    noise = math.sqrt(2 * STEP)
    for p in net.parameters():
        p.requires_grad_(False)

    def score(x: torch.Tensor) -> torch.Tensor:
        return -torch.func.grad(lambda y: net(y).sum())(x)

    try:
        step = torch.compile(lambda x: x + STEP * score(x) + noise * torch.randn_like(x))
    except Exception:
        return None

    def run(x0: torch.Tensor, n_steps: int) -> torch.Tensor:
        x = x0
        for _ in range(n_steps):
            x = step(x)
        return x

    return run


def rbm_pcd_row(device: torch.device, quick: bool) -> Row:
    n, batch = (500, 100) if quick else (60_000, 1000)
    g = torch.Generator().manual_seed(0)
    data = torch.bernoulli(torch.full((n, 784), 0.3), generator=g).to(device)
    rbm = RBM(784, 500, generator=torch.Generator().manual_seed(0)).to(device)

    def epoch() -> None:
        fit(rbm, data, "pcd", epochs=1, batch_size=batch, optimizer="sgd", lr=0.01,
            n_chains=batch, seed=0, progress=False)

    fit(rbm, data[:batch * 2], "pcd", steps=2, batch_size=batch, optimizer="sgd", lr=0.01,
        seed=0, progress=False)  # warm-up
    seconds, syncs = timed(device, epoch)
    flops = 5 * 2 * 784 * 500 * n * 2  # data and chain halves: ~5 matmuls of 784x500 each
    return Row(f"RBM 784x500 PCD-1 epoch, {n} images, batch {batch}", seconds,
               f"{n / seconds:.3g} images/s", flops, syncs)


def ais_row(device: torch.device, quick: bool) -> Row:
    runs, temperatures = (8, 20) if quick else (100, 1000)
    rbm = RBM(784, 500, weight_std=0.01, generator=torch.Generator().manual_seed(1)).to(device)
    g = torch.Generator(device=device).manual_seed(0)
    ais(rbm, 5, 4, generator=g)  # warm-up
    seconds, syncs = timed(device, lambda: ais(rbm, temperatures, runs, generator=g))
    flops = 3 * 2 * 784 * 500 * runs * temperatures  # a sweep (2) + the energy (1)
    return Row(f"AIS 784x500 RBM, {runs} runs x {temperatures} temperatures", seconds,
               f"{runs * temperatures / seconds:.3g} run-temperatures/s", flops, syncs)


def recipe_row(device: torch.device, quick: bool) -> Row:
    per_epoch = math.ceil(len(digits_ebm.make_data()) / digits_ebm.CONFIG["batch_size"])
    steps = 2 if quick else 2 * per_epoch
    seconds, syncs = timed(device, lambda: digits_ebm.train(steps=steps, device=device))
    return Row(f"Image recipe digits_ebm, {steps} steps"
               + ("" if quick else " (2 epochs)"), seconds, f"{steps / seconds:.3g} steps/s",
               None, syncs)


# ----------------------------------------------------------------------------- table


def table(rows: list[Row], rate: float, device: torch.device) -> str:
    syncs = "sync debug mode" if device.type == "cuda" else "syncing tensor calls"
    head = f"{'case':<58} {'time s':>8} {'throughput':>30} {'% matmul':>9} {'host syncs':>10}"
    lines = [f"ebmlab GPU benchmark on {describe(device)}; float32 matmul rate "
             f"{rate / 1e12:.3g} TFLOP/s; host syncs: {syncs}", head, "-" * len(head)]
    for row in rows:
        share = "-" if row.flops is None else f"{100 * row.flops / row.seconds / rate:.1f}"
        count = "-" if row.syncs is None else str(row.syncs)
        lines.append(f"{row.case:<58} {row.seconds:>8.3f} {row.throughput:>30} {share:>9} "
                     f"{count:>10}")
    return "\n".join(lines)


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: a smoke run of every case (CI)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here; pass --device cpu (with --quick "
                     "for the smoke run).")
    device = torch.device(args.device)
    torch.manual_seed(0)
    rate = matmul_rate(device)
    rows = langevin_rows(device, args.quick)
    rows += [rbm_pcd_row(device, args.quick), ais_row(device, args.quick),
             recipe_row(device, args.quick)]
    text = table(rows, rate, device)
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main()
