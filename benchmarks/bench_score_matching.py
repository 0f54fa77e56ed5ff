"""Cost of exact vs sliced score matching as the dimension grows (chapter 5's measurement).

For an MLP energy on R^d, times one forward + backward pass of

* ``score_matching_loss`` -- Hyvärinen (2005), exact Hessian trace (d backward passes,
  batched into blocks), and
* ``sliced_score_matching_loss`` -- Song et al. (2019), one Hessian-vector product per
  projection (variance-reduced form, one projection),

for d = 2, 4, ..., 256. Prints a table (median milliseconds and the exact/sliced ratio)
and writes it as CSV to ``benchmarks/results/score_matching_cost.csv``.

Run: ``python benchmarks/bench_score_matching.py [--batch 128] [--repeats 5] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch

from ebmlab.benchmarking import time_loss
from ebmlab.energies import MLPEnergy
from ebmlab.objectives import score_matching_loss, sliced_score_matching_loss

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 4, 8, 16, 32, 64, 128, 256])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1: steadiest timings on a shared machine)")
    parser.add_argument("--out", type=Path, default=RESULTS / "score_matching_cost.csv")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    g = torch.Generator().manual_seed(0)
    sliced_g = torch.Generator().manual_seed(1)

    def sliced(e: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return sliced_score_matching_loss(e, x, 1, True, generator=sliced_g)

    rows = []
    print(f"MLP energy (hidden {args.hidden}x2, SiLU), batch {args.batch}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"{'d':>5} {'exact ms':>10} {'sliced ms':>10} {'exact/sliced':>13}")
    for d in args.dims:
        torch.manual_seed(d)
        energy = MLPEnergy(d, hidden=(args.hidden, args.hidden))
        x = torch.randn(args.batch, d, generator=g)
        t_exact = time_loss(score_matching_loss, energy, x, args.repeats)
        t_sliced = time_loss(sliced, energy, x, args.repeats)
        rows.append({"dim": d, "exact_ms": 1e3 * t_exact, "sliced_ms": 1e3 * t_sliced,
                     "ratio": t_exact / t_sliced})
        print(f"{d:>5} {1e3 * t_exact:>10.2f} {1e3 * t_sliced:>10.2f} "
              f"{t_exact / t_sliced:>13.1f}", flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["dim", "exact_ms", "sliced_ms", "ratio"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
