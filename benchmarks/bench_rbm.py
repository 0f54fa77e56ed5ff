"""RBM training on the binarized digits: ebmlab PCD-1 vs scikit-learn's BernoulliRBM.

Same data (scikit-learn's 1797 8x8 digits, pixel > 8 -> 1), same model (64 visible,
64 hidden Bernoulli units), same algorithm (PCD-1 with plain SGD, learning rate 0.05,
20 epochs), at batch sizes 10 and 100. For each batch size it prints

* the training time of both (best of ``--repeats`` runs) and their ratio;
* both models' mean log-likelihood on the data, with log Z estimated by the same
  AIS run settings of ebmlab (scikit-learn's ``components_``, ``intercept_visible_``
  and ``intercept_hidden_`` loaded into an ``ebmlab.RBM``: it is the same model);
* the log-likelihood ebmlab reaches when trained for scikit-learn's wall time
  (as many epochs as fit in it), i.e. the likelihood at equal time.

Run: ``python benchmarks/bench_rbm.py [--repeats 3] [--ais-temperatures 10000]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.neural_network import BernoulliRBM

import ebmlab
from ebmlab.data import binarized_digits
from ebmlab.energies import RBM
from ebmlab.metrics import ais_log_likelihood
from ebmlab.training import fit

N_HIDDEN = 64
LR = 0.05
EPOCHS = 20


def train_ebmlab(x: torch.Tensor, batch_size: int, epochs: int, seed: int) -> tuple[RBM, float]:
    rbm = RBM(x.shape[1], N_HIDDEN, generator=torch.Generator().manual_seed(seed))
    t0 = time.perf_counter()
    fit(rbm, x, "pcd", epochs=epochs, batch_size=batch_size, lr=LR, optimizer="sgd",
        seed=seed, progress=False, sync_every=100)
    return rbm, time.perf_counter() - t0


def train_sklearn(x: np.ndarray, batch_size: int, seed: int) -> tuple[BernoulliRBM, float]:
    sk = BernoulliRBM(n_components=N_HIDDEN, learning_rate=LR, n_iter=EPOCHS,
                      batch_size=batch_size, random_state=seed)
    t0 = time.perf_counter()
    sk.fit(x)
    return sk, time.perf_counter() - t0


def sklearn_to_ebmlab(sk: BernoulliRBM) -> RBM:
    """The same RBM in ebmlab: W = components_.T, a = intercept_visible_, b = intercept_hidden_."""
    rbm = RBM(sk.components_.shape[1], sk.components_.shape[0])
    with torch.no_grad():
        rbm.weight.copy_(torch.from_numpy(sk.components_.T.copy()))
        rbm.visible_bias.copy_(torch.from_numpy(sk.intercept_visible_))
        rbm.hidden_bias.copy_(torch.from_numpy(sk.intercept_hidden_))
    return rbm


def ais_ll(rbm: RBM, x: torch.Tensor, args: argparse.Namespace) -> tuple[float, float]:
    """AIS log-likelihood (float64), base RBM with the data's log-odds as visible bias."""
    g = torch.Generator().manual_seed(args.seed)
    x64 = x.double()
    base_bias = torch.logit(x64.mean(0).clamp(1e-3, 1 - 1e-3))
    est = ais_log_likelihood(rbm.double(), x64, n_temperatures=args.ais_temperatures,
                             n_runs=args.ais_runs, base_visible_bias=base_bias, generator=g)
    return float(est.log_likelihood), float(est.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ais-temperatures", type=int, default=10000)
    parser.add_argument("--ais-runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (the matrices are 64x64: one is fastest)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    x = binarized_digits()
    x_np = x.numpy().astype(np.float64)
    print(f"ebmlab {ebmlab.__version__}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); data {tuple(x.shape)}; RBM 64x{N_HIDDEN}, "
          f"PCD-1, SGD lr {LR}, {EPOCHS} epochs; AIS {args.ais_temperatures} temperatures x "
          f"{args.ais_runs} runs")
    header = (f"{'batch':>5} {'ebmlab s':>9} {'sklearn s':>10} {'sk/ebmlab':>9} "
              f"{'LL ebmlab':>16} {'LL sklearn':>16} {'epochs@sk time':>14} "
              f"{'LL ebmlab@sk time':>18}")
    print(header)
    for bs in args.batch_sizes:
        ours_t = min(train_ebmlab(x, bs, EPOCHS, args.seed)[1] for _ in range(args.repeats))
        sk_t = min(train_sklearn(x_np, bs, args.seed)[1] for _ in range(args.repeats))
        ours, _ = train_ebmlab(x, bs, EPOCHS, args.seed)
        sk, _ = train_sklearn(x_np, bs, args.seed)
        ll_ours = ais_ll(ours, x, args)
        ll_sk = ais_ll(sklearn_to_ebmlab(sk), x, args)
        epochs_eq = max(1, int(EPOCHS * sk_t / ours_t))
        equal, _ = train_ebmlab(x, bs, epochs_eq, args.seed)
        ll_eq = ais_ll(equal, x, args)
        print(
            f"{bs:>5} {ours_t:>9.3f} {sk_t:>10.3f} {sk_t / ours_t:>9.2f} "
            f"{ll_ours[0]:>9.2f} ± {ll_ours[1]:.2f} {ll_sk[0]:>9.2f} ± {ll_sk[1]:.2f} "
            f"{epochs_eq:>14d} {ll_eq[0]:>11.2f} ± {ll_eq[1]:.2f}", flush=True)
    print("sk/ebmlab > 1: ebmlab is faster. LL: mean log-likelihood of the training data "
          "(nats per image), AIS estimate ± standard error.")


if __name__ == "__main__":
    main()
