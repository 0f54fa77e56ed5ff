"""AIS on a 64 x 64-unit RBM: speed, and the forward/reverse sandwich of log Z.

The RBM (64 visible, 64 hidden units) is trained for a few epochs of CD-1 on scikit-learn's
8x8 digits binarised (no download), so its distribution has real structure. Then:

* forward AIS (Neal 2001; Salakhutdinov & Murray 2008), ``--runs`` runs x ``--temperatures``
  inverse temperatures, from a base RBM whose visible biases are the data's log-odds:
  seconds, the estimate and its standard error. Its log Z is a stochastic lower bound.
* reverse AIS from model samples: a stochastic upper bound. 2^64 states cannot be
  enumerated, so exact model samples are not available: the reverse runs start from the
  end of a long block-Gibbs run (``--gibbs-steps`` sweeps from the data), which are
  *approximate* samples, and the upper bound is approximate accordingly.
* the sandwich width (reverse - forward): the true log Z lies in between (up to noise), so
  half of it bounds the error of the midpoint; a larger ladder shows it closing.
* a check against an exact log Z: the same experiment on a 64 x 16 RBM, whose log Z is exact
  by enumerating its 2^16 hidden states.

Run: ``python benchmarks/bench_ais.py [--device cuda] [--runs 100] [--temperatures 1000]
[--threads 1]``.
The whole script takes well under two minutes on a laptop CPU; on CUDA it also times a
large batch of runs.
"""

from __future__ import annotations

import argparse
import time

import torch

from ebmlab.data import binarized_digits
from ebmlab.energies import RBM
from ebmlab.partition import LogPartitionEstimate, ais, exact_log_partition


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_rbm(x: torch.Tensor, n_hidden: int, epochs: int, seed: int) -> RBM:
    """A few epochs of CD-1 with plain SGD (Hinton 2002), written out so the benchmark
    depends on the RBM's sampling methods only."""
    g = torch.Generator(device=x.device).manual_seed(seed)
    rbm = RBM(x.shape[1], n_hidden, generator=torch.Generator().manual_seed(seed)).to(x.device)
    lr, batch = 0.05, 20
    with torch.no_grad():
        for _ in range(epochs):
            order = torch.randperm(x.shape[0], generator=g, device=x.device)
            for start in range(0, x.shape[0], batch):
                v0 = x[order[start:start + batch]]
                ph0 = rbm.prob_h(v0)
                v1 = rbm.sample_v(rbm.sample_h(v0, generator=g), generator=g)
                ph1 = rbm.prob_h(v1)
                n = v0.shape[0]
                rbm.weight += lr * (v0.T @ ph0 - v1.T @ ph1) / n
                rbm.visible_bias += lr * (v0 - v1).mean(0)
                rbm.hidden_bias += lr * (ph0 - ph1).mean(0)
    return rbm


def data_log_odds(x: torch.Tensor) -> torch.Tensor:
    p = x.mean(0).clamp(1e-3, 1 - 1e-3)
    return torch.log(p) - torch.log1p(-p)


def timed_ais(rbm: RBM, device: torch.device, **kwargs: object
              ) -> tuple[LogPartitionEstimate, float]:
    sync(device)
    t0 = time.perf_counter()
    est = ais(rbm, **kwargs)
    sync(device)
    return est, time.perf_counter() - t0


def fmt(est: LogPartitionEstimate) -> str:
    return f"{float(est.log_z):10.4f} ± {float(est.stderr):.4f}"


def sandwich(rbm: RBM, x: torch.Tensor, device: torch.device, temperatures: int, runs: int,
             gibbs_steps: int, seed: int, exact: float | None = None) -> None:
    g = torch.Generator(device=device).manual_seed(seed)
    base = data_log_odds(x)
    fwd, t_fwd = timed_ais(rbm, device, n_temperatures=temperatures, n_runs=runs,
                           base_visible_bias=base, generator=g)
    with torch.no_grad():
        start = x[torch.randint(0, x.shape[0], (runs,), generator=g, device=device)]
        init = rbm.gibbs(start, gibbs_steps, generator=g)
    rev, t_rev = timed_ais(rbm, device, n_temperatures=temperatures, reverse=True, init=init,
                           base_visible_bias=base, generator=g)
    width = float(rev.log_z) - float(fwd.log_z)
    mid = 0.5 * (float(rev.log_z) + float(fwd.log_z))
    print(f"  K = {temperatures:6d}  forward {fmt(fwd)} ({t_fwd:6.2f} s, ESS "
          f"{float(fwd.ess):5.1f}/{runs})   reverse {fmt(rev)} ({t_rev:6.2f} s)   "
          f"sandwich width {width:+.4f}")
    if exact is not None:
        print(f"  {'':10s}  exact {exact:.4f}: forward error {float(fwd.log_z) - exact:+.4f}, "
              f"reverse error {float(rev.log_z) - exact:+.4f}, midpoint error {mid - exact:+.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default_device)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--temperatures", type=int, default=1000)
    parser.add_argument("--gibbs-steps", type=int, default=5000,
                        help="block-Gibbs sweeps that produce the reverse runs' start states")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default 1 on CPU: fastest for these "
                             "small matrices, and immune to oversubscription)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads is not None or device.type == "cpu":
        torch.set_num_threads(args.threads or 1)
    torch.manual_seed(args.seed)
    x = binarized_digits(device=device)

    t0 = time.perf_counter()
    rbm = train_rbm(x, 64, args.epochs, args.seed)
    sync(device)
    print(f"device {device}; trained a 64 x 64 RBM by CD-1 on {x.shape[0]} binarized digits "
          f"({args.epochs} epochs, {time.perf_counter() - t0:.1f} s)")

    print(f"\nAIS on the 64 x 64 RBM, {args.runs} runs (reverse runs start after "
          f"{args.gibbs_steps} Gibbs sweeps: approximate model samples, approximate upper bound)")
    sandwich(rbm, x, device, args.temperatures, args.runs, args.gibbs_steps, args.seed)
    sandwich(rbm, x, device, 10 * args.temperatures, args.runs, args.gibbs_steps, args.seed + 1)

    small = train_rbm(x, 16, args.epochs, args.seed)
    with torch.no_grad():
        exact = float(exact_log_partition(small))
    print(f"\nCheck against an exact log Z: a 64 x 16 RBM (2^16 hidden states enumerated), "
          f"{args.runs} runs")
    sandwich(small, x, device, args.temperatures, args.runs, args.gibbs_steps, args.seed,
             exact=exact)

    if device.type == "cuda":
        many = 100 * args.runs
        est, seconds = timed_ais(rbm, device, n_temperatures=args.temperatures, n_runs=many,
                                 base_visible_bias=data_log_odds(x),
                                 generator=torch.Generator(device=device).manual_seed(7))
        print(f"\nCUDA: {many} runs x {args.temperatures} temperatures in {seconds:.2f} s "
              f"({many * args.temperatures / seconds:.3g} run-steps/s): {fmt(est)}")


if __name__ == "__main__":
    main()
