"""The GPU benchmark's smoke run on the CPU: ``benchmarks/gpu.sh --device cpu --quick``."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_benchmark_runs_quick_on_the_cpu_and_prints_its_table() -> None:
    run = subprocess.run([str(ROOT / "benchmarks" / "gpu.sh"), "--device", "cpu", "--quick"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert "host syncs" in lines[1] and "% matmul" in lines[1]
    cases = [line for line in lines[3:] if line.strip()]
    assert [c.split()[0] for c in cases] == ["Langevin", "Langevin", "RBM", "AIS", "Image"]
    for case in cases:
        seconds = float(case[58:].split()[0])
        assert seconds > 0
