"""Run every benchmark of ``benchmarks/`` one after the other (``make bench``).

Each benchmark is a standalone script that prints its own table of ratios against
named baselines; this runner only sequences them and reports which ones failed.
Extra arguments are passed to every script (e.g. ``--device cuda``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ("bench_samplers.py", "bench_ais.py", "bench_rbm.py", "bench_score_matching.py")


def main(argv: list[str]) -> int:
    failed = []
    for name in SCRIPTS:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        rc = subprocess.call([sys.executable, str(HERE / name), *argv])
        print(f"--- {name}: exit {rc} in {time.perf_counter() - start:.1f} s", flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"\nFailed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
