"""Speed of ebmlab's Langevin sampler against a hand-written loop and two libraries.

Cases (issue 3, "Speed"), each run side by side in one process:

* Langevin on an MLP energy 2 -> 128 -> 128 -> 1 (SiLU), 1024 chains x 500 steps,
  step 0.01: ``ebmlab.langevin`` vs a minimal hand-written torch loop vs
  torchebm's ``LangevinDynamics`` vs ebmkit's ``LangevinDynamics``.
  Targets: ratio to the hand loop <= 1.05; faster than both libraries.
* The MLP with 16 chains: per-step overhead (the regime of a launch-bound GPU step).
* The same on an 8-component Gaussian mixture: ``ebmlab.langevin`` (closed-form
  score) vs the hand loop (autograd). Target: ebmlab >= 2x faster.

Reported: median seconds over ``--repeats`` (after a warm-up; implementations are
interleaved so that load from other processes hits them alike), chain-steps per
second, the ratio to the hand loop and, for the MLP, the fraction of the
machine's measured matmul FLOP rate, counting forward + input-gradient FLOPs as
3 x the forward matmul FLOPs per chain-step. On CUDA the cases are repeated with
2^20 chains.

Usage::

    python benchmarks/bench_samplers.py [--device cpu|cuda] [--repeats 5] [--steps 500]
    python benchmarks/bench_samplers.py --device cpu --threads 1 --clock process  # shared CPU
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

import ebmlab
from ebmlab.energies import GaussianMixture
from ebmlab.samplers import langevin

STEP = 0.01


# ----------------------------------------------------------------------------- energies


class MLP(nn.Module):
    """E(x) = MLP(x), 2 -> 128 -> 128 -> 1 with SiLU: one module shared by every sampler."""

    def __init__(self, dim: int = 2, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                 nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def mlp_forward_flops(net: MLP) -> int:
    """Matmul FLOPs of one forward pass per input row (2 per multiply-add)."""
    return sum(2 * m.in_features * m.out_features for m in net.modules()
               if isinstance(m, nn.Linear))


def gaussian_mixture(device: torch.device) -> GaussianMixture:
    angles = torch.arange(8) * (2 * math.pi / 8)
    means = 4.0 * torch.stack([angles.cos(), angles.sin()], dim=1)
    return GaussianMixture(means, 0.5).to(device)


# ----------------------------------------------------------------------------- samplers


def hand_loop(energy: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor,
              n_steps: int) -> torch.Tensor:
    """The minimal Langevin loop a user would write by hand."""
    x = x0.clone()
    noise = math.sqrt(2 * STEP)
    for _ in range(n_steps):
        x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(energy(x).sum(), x)
        x = x.detach() - STEP * g + noise * torch.randn_like(x)
    return x.detach()


def hand_loop_frozen(energy: nn.Module, x0: torch.Tensor, n_steps: int) -> torch.Tensor:
    """The hand loop with the energy's parameters frozen (``requires_grad=False``)."""
    params = [p for p in energy.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        return hand_loop(energy, x0, n_steps)
    finally:
        for p in params:
            p.requires_grad_(True)


def run_ebmlab(energy, x0, n_steps):
    return langevin(energy, x0, step_size=STEP, n_steps=n_steps).samples


def make_torchebm(energy: nn.Module, x0: torch.Tensor):
    try:
        from torchebm.core import BaseModel
        from torchebm.samplers import LangevinDynamics
    except ImportError:
        return None

    class Wrapped(BaseModel):
        def __init__(self, inner: nn.Module):
            super().__init__(dtype=x0.dtype, device=x0.device)
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x)

    model = Wrapped(energy).to(x0.device)
    # torchebm: x += step * drift + sqrt(2 * noise_scale^2 * step) * xi, so noise_scale=1
    sampler = LangevinDynamics(model, step_size=STEP, noise_scale=1.0, dtype=x0.dtype,
                               device=x0.device)
    return lambda _energy, x, n: sampler.sample(x=x, n_steps=n)


def make_ebmkit():
    try:
        from ebm.samplers import LangevinDynamics
    except ImportError:
        return None
    # ebmkit: noise_scale=None means sqrt(2 * step_size)
    sampler = LangevinDynamics(step_size=STEP, steps=1)
    return lambda energy, x, n: sampler.sample(energy, x, steps=n)


# ----------------------------------------------------------------------------- timing


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_flop_rate(device: torch.device, repeats: int) -> float:
    """Measured float32 FLOP/s of a large square matmul."""
    n = 8192 if device.type == "cuda" else 2048
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    sync(device)
    times = []
    for _ in range(repeats):
        t = CLOCK()
        a @ b
        sync(device)
        times.append(CLOCK() - t)
    return 2 * n**3 / statistics.median(times)


CLOCK = time.perf_counter


def time_all(impls: dict[str, Callable], energy, x0: torch.Tensor, n_steps: int,
             repeats: int) -> dict[str, float]:
    """Median wall time of each implementation; runs are interleaved across implementations."""
    device = x0.device
    for fn in impls.values():  # warm-up (allocator, kernels, lazy imports)
        fn(energy, x0, max(2, n_steps // 20))
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in impls}
    for _ in range(repeats):
        for name, fn in impls.items():
            sync(device)
            t = CLOCK()
            out = fn(energy, x0, n_steps)
            sync(device)
            times[name].append(CLOCK() - t)
            assert torch.isfinite(out).all(), name
    return {name: statistics.median(ts) for name, ts in times.items()}


def report(title: str, medians: dict[str, float], chain_steps: int,
           flops_per_chain_step: float | None, peak: float) -> list[str]:
    base = medians["hand loop"]
    lines = [f"\n{title}",
             f"{'implementation':<22}{'median s':>10}{'chain-steps/s':>16}{'ratio to hand':>15}"
             + (f"{'% of matmul peak':>18}" if flops_per_chain_step else "")]
    for name, t in medians.items():
        rate = chain_steps / t
        line = f"{name:<22}{t:>10.3f}{rate:>16.3e}{t / base:>15.3f}"
        if flops_per_chain_step:
            line += f"{100 * rate * flops_per_chain_step / peak:>17.1f}%"
        lines.append(line)
    return lines


BASE_IMPLS: dict[str, Callable] = {"hand loop": hand_loop, "ebmlab.langevin": run_ebmlab,
                                   "hand loop, frozen": hand_loop_frozen}


def _with_libraries(net: nn.Module, x0: torch.Tensor) -> dict[str, Callable]:
    impls = dict(BASE_IMPLS)
    for name, impl in (("torchebm", make_torchebm(net, x0)), ("ebmkit", make_ebmkit())):
        if impl is not None:
            impls[name] = impl
    return impls


def bench(device: torch.device, n_chains: int, n_steps: int, repeats: int, peak: float,
          overhead: bool) -> list[str]:
    torch.manual_seed(0)
    lines: list[str] = []
    net = MLP().to(device)
    x0 = torch.randn(n_chains, 2, device=device)
    impls = _with_libraries(net, x0)
    medians = time_all(impls, net, x0, n_steps, repeats)
    flops = 3 * mlp_forward_flops(net)
    lines += report(f"Langevin, MLP 2-128-128-1 (SiLU), {n_chains} chains x {n_steps} steps, "
                    f"step {STEP}, {device}", medians, n_chains * n_steps, flops, peak)

    if overhead:  # 16 chains: overhead-bound, like a launch-bound GPU step
        small = x0[:16].clone()
        medians = time_all(_with_libraries(net, small), net, small, n_steps, repeats)
        lines += report(f"Per-step overhead: the same MLP, 16 chains x {n_steps} steps, {device}",
                        medians, 16 * n_steps, None, peak)

    gm = gaussian_mixture(device)
    medians = time_all({"hand loop": hand_loop, "ebmlab.langevin": run_ebmlab}, gm, x0,
                       n_steps, repeats)
    lines += report(f"Langevin, 8-component Gaussian mixture, {n_chains} chains x {n_steps} "
                    f"steps (ebmlab: closed-form score; hand loop: autograd)", medians,
                    n_chains * n_steps, None, peak)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--chains", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--clock", choices=("wall", "process"), default="wall",
                        help="'process' (CPU only, best with --threads 1) counts the CPU time "
                             "of this process, robust to other load on a shared machine")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.clock == "process":
        if device.type != "cpu":
            parser.error("--clock process measures CPU time; use it with --device cpu")
        global CLOCK
        CLOCK = time.process_time
    peak = matmul_flop_rate(device, args.repeats)
    lines = [f"ebmlab {ebmlab.__version__}, torch {torch.__version__}, device {device}, "
             f"threads {torch.get_num_threads()}, {args.clock} clock",
             f"measured float32 matmul rate: {peak / 1e9:.1f} GFLOP/s"]
    lines += bench(device, args.chains, args.steps, args.repeats, peak, overhead=True)
    if device.type == "cuda":
        lines += bench(device, 2**20, args.steps, max(3, args.repeats // 2), peak,
                       overhead=False)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
