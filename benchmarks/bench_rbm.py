"""RBM training on the binarized digits: ebmlab PCD-1 vs scikit-learn's BernoulliRBM.

Same data (scikit-learn's 1797 8x8 digits, pixel > 8 -> 1), same model (64 visible,
64 hidden Bernoulli units, weights N(0, 0.01^2), zero biases), same algorithm (PCD-1:
one Gibbs sweep per update of ``batch_size`` persistent chains, plain SGD on the
free-energy gradient with learning rate 0.05, 20 epochs), same floating-point precision
(``--dtype``, float32 by default: ebmlab's default, and scikit-learn keeps float32
input in float32) and one thread each (torch's intra-op threads and, through
threadpoolctl, NumPy's BLAS), at batch sizes 10 and 100. For each batch size it prints

* the training time of both (best of ``--repeats`` interleaved runs) and their ratio,
  on the ``--clock`` (``process``: CPU time of this process, which other load on a
  shared machine does not inflate; ``wall``: elapsed time); the ratio on the other
  clock is printed too;
* scikit-learn's time when given float64 data (``load_digits`` returns float64, so
  this is its time out of the box), for reference;
* both models' mean log-likelihood of the data, with log Z estimated by the same
  AIS settings (scikit-learn's ``components_``, ``intercept_visible_`` and
  ``intercept_hidden_`` loaded into an ``ebmlab.RBM``: it is the same model), averaged
  over ``--seeds`` training runs: at batch 10 the likelihood after 20 epochs varies by
  about 1.5 nats from seed to seed, far more than the AIS error;
* the log-likelihood ebmlab reaches in scikit-learn's training time (as many whole
  epochs as fit in it, rounded down), i.e. the likelihood at equal time, to compare
  with scikit-learn's.

Run: ``python benchmarks/bench_rbm.py [--repeats 5] [--seeds 4] [--clock process|wall]
[--dtype float32|float64] [--ais-temperatures 10000] [--batch-sizes 10 100]``.

Result (2-core VM shared with other work, torch 2.13 CPU, float32, process clock, best of 5,
1 seed; five runs interleaved with runs of the code before the readability rework of issue
13): at batch 100 ebmlab trains in 0.086-0.102 s against scikit-learn's 0.091-0.103 s,
1.05x faster (median of the runs' ratios; 0.99-1.06). Before the rework (sampling and
gradient fused in one function, an SGD step that bypassed torch.optim through its private
API) the same runs gave 1.15x (1.03-1.24); timed in one process against that code, best of
9, the rework costs 4-10%. Both reach the same likelihood, -24.09 against scikit-learn's
-24.15, as the same algorithm should (the rework changes no number: the parameters are
equal bit for bit). Why: per update ``fit`` does what scikit-learn does -- the second half
of a Gibbs sweep of the persistent chains, drawn from the hidden probabilities the last
update stored (scikit-learn keeps its chains the same way); the data's and the negatives'
p(h | v); the textbook gradient ``ebmlab.energies.contrastive_divergence_gradient`` as
matrix products -- plus the free energies of the loss that ``History`` records (a softplus
over 2 x 100 x 64 pre-activations, about 15% of a step), the argument checks of the public
functions it calls, and the step of ``optimizer="sgd"``, ``ebmlab.training.PlainSGD``
(``torch.optim.SGD.step``'s bookkeeping alone would cost about 20% of a step here). At
batch 10 (measured before the rework) ebmlab is slower: 0.395 s against 0.208 s. Each of
the ~30 tensor operations of an update costs a few microseconds of PyTorch dispatch, more
than its 10x64 arithmetic, while a NumPy call costs about one: a bare PyTorch loop takes
0.216 s there, no faster than scikit-learn, so no eager PyTorch implementation of this
update wins at that size.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from sklearn.neural_network import BernoulliRBM
from threadpoolctl import threadpool_limits

import ebmlab
from ebmlab.data import binarized_digits
from ebmlab.energies import RBM
from ebmlab.metrics import ais_log_likelihood
from ebmlab.training import fit

N_HIDDEN = 64
LR = 0.05
EPOCHS = 20
CLOCKS: dict[str, Callable[[], float]] = {"process": time.process_time,
                                          "wall": time.perf_counter}


def _timed(fn: Callable[[], object]) -> tuple[object, dict[str, float]]:
    start = {name: clock() for name, clock in CLOCKS.items()}
    out = fn()
    return out, {name: clock() - start[name] for name, clock in CLOCKS.items()}


def train_ebmlab(x: torch.Tensor, batch_size: int, epochs: int, seed: int
                 ) -> tuple[RBM, dict[str, float]]:
    rbm = RBM(x.shape[1], N_HIDDEN, generator=torch.Generator().manual_seed(seed))
    rbm = rbm.to(device=x.device, dtype=x.dtype)
    _, times = _timed(lambda: fit(rbm, x, "pcd", epochs=epochs, batch_size=batch_size, lr=LR,
                                  optimizer="sgd", seed=seed, progress=False, sync_every=100))
    return rbm, times


def train_torch_loop(x: torch.Tensor, batch_size: int, seed: int) -> dict[str, float]:
    """The same PCD-1 update written as a bare PyTorch loop: no loss, no checks, no history.

    This is the floor of an eager PyTorch implementation; ``fit`` adds the loss that
    ``History`` records, its checks and bookkeeping.
    """
    g = torch.Generator().manual_seed(seed)
    n, n_visible = x.shape
    w = torch.randn(n_visible, N_HIDDEN, generator=g, dtype=x.dtype) * 0.01
    a = torch.zeros(n_visible, dtype=x.dtype)
    b = torch.zeros(N_HIDDEN, dtype=x.dtype)

    def run() -> None:
        hidden = torch.sigmoid(torch.addmm(b, x[:batch_size], w))  # chains start at data
        for _ in range(EPOCHS):
            shuffled = x[torch.randperm(n, generator=g)]
            for start in range(0, n, batch_size):
                v_pos = shuffled[start:start + batch_size]
                h = torch.rand(hidden.shape, generator=g, dtype=x.dtype).lt_(hidden)
                p_v = torch.sigmoid_(torch.addmm(a, h, w.T))
                v_neg = torch.rand(p_v.shape, generator=g, dtype=x.dtype).lt_(p_v)
                p_pos = torch.sigmoid_(torch.addmm(b, v_pos, w))
                hidden = torch.sigmoid_(torch.addmm(b, v_neg, w))
                step = LR / len(v_pos)
                w.addmm_(v_pos.T, p_pos, alpha=step).addmm_(v_neg.T, hidden, alpha=-LR / len(v_neg))
                a.add_(v_pos.sum(0), alpha=step).sub_(v_neg.sum(0), alpha=LR / len(v_neg))
                b.add_(p_pos.sum(0), alpha=step).sub_(hidden.sum(0), alpha=LR / len(v_neg))

    return _timed(run)[1]


def train_sklearn(x: np.ndarray, batch_size: int, seed: int
                  ) -> tuple[BernoulliRBM, dict[str, float]]:
    sk = BernoulliRBM(n_components=N_HIDDEN, learning_rate=LR, n_iter=EPOCHS,
                      batch_size=batch_size, random_state=seed)
    _, times = _timed(lambda: sk.fit(x))
    return sk, times


def sklearn_to_ebmlab(sk: BernoulliRBM) -> RBM:
    """The same RBM in ebmlab: W = components_.T, a = intercept_visible_, b = intercept_hidden_."""
    rbm = RBM(sk.components_.shape[1], sk.components_.shape[0]).double()
    with torch.no_grad():
        rbm.weight.copy_(torch.from_numpy(sk.components_.T.astype(np.float64)))
        rbm.visible_bias.copy_(torch.from_numpy(sk.intercept_visible_.astype(np.float64)))
        rbm.hidden_bias.copy_(torch.from_numpy(sk.intercept_hidden_.astype(np.float64)))
    return rbm


def ais_ll(rbm: RBM, x: torch.Tensor, args: argparse.Namespace) -> tuple[float, float]:
    """AIS log-likelihood (float64, CPU), base RBM with the data's log-odds as visible bias."""
    g = torch.Generator().manual_seed(args.seed)
    x64 = x.detach().cpu().double()
    base_bias = torch.logit(x64.mean(0).clamp(1e-3, 1 - 1e-3))
    est = ais_log_likelihood(rbm.cpu().double(), x64, n_temperatures=args.ais_temperatures,
                             n_runs=args.ais_runs, base_visible_bias=base_bias, generator=g)
    return float(est.log_likelihood), float(est.stderr)


def best_times(x: torch.Tensor, x_np: np.ndarray, x_np64: np.ndarray, batch_size: int,
               args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Best time of each contender on each clock, runs interleaved so that a change of
    load on the machine affects all of them alike."""
    best: dict[str, dict[str, float]] = {
        who: dict.fromkeys(CLOCKS, float("inf"))
        for who in ("ebmlab", "sklearn", "sklearn64", "torch loop")}
    train_ebmlab(x, batch_size, 1, args.seed)  # warm-up: first-call costs of torch and NumPy
    train_sklearn(x_np, batch_size, args.seed)
    for _ in range(args.repeats):
        for who, run in (("ebmlab", lambda: train_ebmlab(x, batch_size, EPOCHS, args.seed)[1]),
                         ("sklearn", lambda: train_sklearn(x_np, batch_size, args.seed)[1]),
                         ("sklearn64", lambda: train_sklearn(x_np64, batch_size, args.seed)[1]),
                         ("torch loop", lambda: train_torch_loop(x.cpu(), batch_size, args.seed))):
            times = run()
            for clock, t in times.items():
                best[who][clock] = min(best[who][clock], t)
    return best


def mean_se(estimates: list[tuple[float, float]]) -> tuple[float, float]:
    """Mean over training seeds and its standard error (seed-to-seed spread plus AIS error)."""
    values = np.array([v for v, _ in estimates])
    ais_var = np.mean([se**2 for _, se in estimates])
    spread = values.var(ddof=1) if len(values) > 1 else 0.0
    return float(values.mean()), float(np.sqrt((spread + ais_var) / len(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=4,
                        help="training runs (seeds 0, 1, ...) whose likelihoods are averaged")
    parser.add_argument("--ais-temperatures", type=int, default=10000)
    parser.add_argument("--ais-runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="seed of the timed runs and of AIS")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op and BLAS threads of both (64x64 matrices: one "
                             "is fastest)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="floating-point precision of both libraries")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default=None,
                        help="'process' (default on the CPU): CPU time of this process, robust "
                             "to other load on a shared machine (both run single-threaded); "
                             "'wall' (default on other devices): elapsed time")
    parser.add_argument("--device", default="cpu",
                        help="ebmlab's device (scikit-learn runs on the CPU; 'process' clock "
                             "needs cpu)")
    args = parser.parse_args()
    if args.clock is None:
        args.clock = "process" if torch.device(args.device).type == "cpu" else "wall"
    if args.clock == "process" and torch.device(args.device).type != "cpu":
        parser.error("--clock process measures CPU time; use --clock wall with --device "
                     f"{args.device}")
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    other = next(c for c in CLOCKS if c != args.clock)

    x = binarized_digits(dtype=dtype, device=args.device)
    x_np = x.cpu().numpy()
    x_np64 = x_np.astype(np.float64)
    print(f"ebmlab {ebmlab.__version__}, torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads, {args.device}); data {tuple(x.shape)} {args.dtype}; RBM 64x{N_HIDDEN}, "
          f"PCD-1, SGD lr {LR}, {EPOCHS} epochs; {args.clock} clock, best of {args.repeats}; "
          f"LL: mean of {args.seeds} seeds, AIS {args.ais_temperatures} temperatures x "
          f"{args.ais_runs} runs")
    header = (f"{'batch':>5} {'ebmlab s':>9} {'sklearn s':>10} {'sk/ebmlab':>9} "
              f"{'(' + other + ')':>9} {'sk f64 s':>9} {'loop s':>7} {'LL ebmlab':>16} "
              f"{'LL sklearn':>16} {'epochs@sk time':>14} {'LL ebmlab@sk time':>18}")
    print(header)
    with threadpool_limits(limits=args.threads):
        for bs in args.batch_sizes:
            best = best_times(x, x_np, x_np64, bs, args)
            ours_t, sk_t = best["ebmlab"][args.clock], best["sklearn"][args.clock]
            ratio_other = best["sklearn"][other] / best["ebmlab"][other]
            epochs_eq = max(1, int(EPOCHS * sk_t / ours_t))
            ll: dict[str, list[tuple[float, float]]] = {"ours": [], "sk": [], "eq": []}
            for seed in range(args.seeds):
                ll["ours"].append(ais_ll(train_ebmlab(x, bs, EPOCHS, seed)[0], x, args))
                ll["sk"].append(ais_ll(sklearn_to_ebmlab(train_sklearn(x_np, bs, seed)[0]), x,
                                       args))
                ll["eq"].append(ais_ll(train_ebmlab(x, bs, epochs_eq, seed)[0], x, args))
            (ours_m, ours_se), (sk_m, sk_se), (eq_m, eq_se) = (
                mean_se(ll[k]) for k in ("ours", "sk", "eq"))
            print(
                f"{bs:>5} {ours_t:>9.3f} {sk_t:>10.3f} {sk_t / ours_t:>9.2f} "
                f"{ratio_other:>9.2f} {best['sklearn64'][args.clock]:>9.3f} "
                f"{best['torch loop'][args.clock]:>7.3f} {ours_m:>9.2f} ± {ours_se:.2f} "
                f"{sk_m:>9.2f} ± {sk_se:.2f} "
                f"{epochs_eq:>14d} {eq_m:>11.2f} ± {eq_se:.2f}", flush=True)
    print(f"sk/ebmlab > 1: ebmlab is faster ({args.clock} clock; in parentheses the ratio on the "
          f"{other} clock). 'sk f64 s': scikit-learn given float64 data (its default); 'loop s': "
          "the same update as a bare PyTorch loop (no loss, checks or history: the floor of "
          "eager PyTorch). LL: mean "
          f"log-likelihood of the training data (nats per image), AIS estimates averaged over "
          f"{args.seeds} training seeds ± standard error; 'LL ebmlab@sk time': ebmlab trained for "
          "the whole epochs that fit in scikit-learn's time.")
    print("\nThe result recorded in this script's docstring, and why:")
    print(__doc__.strip().split("\n\n")[-1])


if __name__ == "__main__":
    main()
