#!/usr/bin/env bash
# One-shot GPU benchmark of ebmlab (benchmarks/bench_gpu.py): within 5 minutes on one GPU,
# Langevin at 2^20 chains, a batched RBM PCD epoch, AIS on a 784x500 RBM and two epochs of
# the image recipe, printed as one table (time, throughput, share of the measured matmul
# rate, host syncs).
#
#   benchmarks/gpu.sh                        # on the GPU
#   benchmarks/gpu.sh --device cpu --quick   # the smoke run of make test
#
# No GPU was available when it was written: its GPU numbers are still to be recorded.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-$here/../.venv/bin/python}"
[ -x "$python" ] || python="$(command -v python3)"
exec "$python" "$here/bench_gpu.py" "$@"
