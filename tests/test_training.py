"""Tests of ebmlab.training: fit, the objective objects, history, callbacks, checkpoints.

References are independent of the code under test: brute-force enumeration of an
RBM's 2^9 visible states in NumPy, the known mixture weights of the data, a second
training run (straight vs resumed, same seed), and direct inspection of the files.
"""

from __future__ import annotations

import itertools
import json
import math
import os

import numpy as np
import pytest
import torch

from ebmlab.data import bars_and_stripes, two_gaussians
from ebmlab.energies import RBM, Energy, GaussianMixture, MLPEnergy, NoiseConditionalScoreNet
from ebmlab.metrics import mmd, mode_weights
from ebmlab.samplers import SamplerDivergedError, annealed_langevin, langevin
from ebmlab.training import (
    METHODS,
    AISLogLikelihood,
    ContrastiveDivergence,
    ExactLogLikelihood,
    ExactMLE,
    GridKL,
    History,
    Method,
    PersistentCD,
    TrainingDivergedError,
    fit,
    make_method,
)
from ebmlab.training.checkpoint import load_checkpoint, previous_checkpoint

# ---------------------------------------------------------------------------- helpers


def brute_force_log_likelihood(rbm: RBM, data: torch.Tensor) -> float:
    """Mean exact log-likelihood by enumerating all visible states (NumPy, float64)."""
    w = rbm.weight.detach().double().numpy()
    a = rbm.visible_bias.detach().double().numpy()
    b = rbm.hidden_bias.detach().double().numpy()

    def free_energy(v: np.ndarray) -> np.ndarray:
        return -(v @ a) - np.logaddexp(0.0, v @ w + b).sum(axis=1)

    states = np.array(list(itertools.product([0.0, 1.0], repeat=w.shape[0])))
    neg_f = -free_energy(states)
    log_z = neg_f.max() + np.log(np.exp(neg_f - neg_f.max()).sum())
    return float(np.mean(-free_energy(data.double().numpy())) - log_z)


def small_rbm(seed: int = 0, n_hidden: int = 8) -> RBM:
    return RBM(9, n_hidden, weight_std=0.1, generator=torch.Generator().manual_seed(seed)).double()


@pytest.fixture(autouse=True)
def _one_thread():
    # These models are tiny: on a shared machine, intra-op threads only add latency.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def bas() -> torch.Tensor:
    return bars_and_stripes(3, dtype=torch.float64)


# ---------------------------------------------------------------------------- CD bias (chapter 4)


@pytest.mark.slow
def test_exact_mle_beats_cd1_and_pcd_closes_part_of_the_gap(bas):
    # Same initial RBM (9 visible, 8 hidden), optimiser (SGD, lr 0.3), full-batch updates
    # and number of steps for every method; the likelihood is measured exactly
    # (ebmlab.metrics, cross-checked by brute-force enumeration) and averaged over the last
    # 5 evaluations (every 50 steps) to smooth the stochastic methods' fluctuations.
    # CD-1 starts each chain at a data point and takes one Gibbs step: its gradient is
    # biased (Hinton 2002; Carreira-Perpiñán & Hinton 2005) and it settles at a lower
    # likelihood than exact MLE; chains that run longer (PCD-5 with 100 persistent chains,
    # CD-10) reduce the bias. Over seeds 0-4 the gap was 0.39-0.59 nats, PCD-5 closed
    # 76-86% of it and CD-10 37-71%.
    results = {}
    for label, method, extra in [("mle", "mle", {}), ("cd1", "cd", {"k": 1}),
                                 ("pcd5", "pcd", {"n_chains": 100, "k": 5}),
                                 ("cd10", "cd", {"k": 10})]:
        rbm = small_rbm()
        hist = fit(rbm, bas, method, steps=1000, batch_size=14, lr=0.3, optimizer="sgd",
                   seed=0, progress=False, callbacks=[ExactLogLikelihood(bas, every=50)],
                   **extra)
        _, values = hist.metric("log_likelihood")
        assert values[-1] == pytest.approx(brute_force_log_likelihood(rbm, bas), abs=1e-9)
        results[label] = float(np.mean(values[-5:]))
    assert results["mle"] <= -math.log(14)  # at best uniform on the 14 patterns
    gap = results["mle"] - results["cd1"]
    assert gap > 0.2, results
    assert results["pcd5"] > results["cd1"] + 0.3 * gap, results
    assert results["cd10"] > results["cd1"] + 0.2 * gap, results


# ---------------------------------------------------------------------------- MCMC with replay


@pytest.mark.slow
def test_mcmc_replay_learns_two_mode_mixture():
    # Du & Mordatch (2019)-style training: short Langevin runs from a replay buffer.
    # Samples of the learned energy (long Langevin runs from uniform noise) must put
    # 1/2 of their mass on each mode (tolerance 0.06, about 5 binomial standard errors of
    # 2000 samples) and match held-out data in MMD below 0.005 -- a threshold that a
    # 0.6/0.4 mixture of the same components exceeds (checked below), so it would catch
    # a mode-weight error of 0.1.
    means = ((-2.0, 0.0), (2.0, 0.0))
    g = torch.Generator().manual_seed(0)

    def mixture(n, w=0.5):
        return two_gaussians(n, weights=(w, 1 - w), means=means, std=0.5, generator=g)

    data = mixture(2000)
    torch.manual_seed(0)
    energy = MLPEnergy(2, hidden=(64, 64))
    fit(energy, data, "mcmc", steps=600, batch_size=128, lr=1e-3, seed=0, progress=False,
        step_size=0.05, n_steps=20, buffer_size=2000, alpha=0.1)

    x0 = (torch.rand(2000, 2, generator=g) * 2 - 1) * 4
    samples = langevin(energy, x0, step_size=0.01, n_steps=500, generator=g).samples
    w, _ = mode_weights(samples, means)
    assert w.tolist() == pytest.approx([0.5, 0.5], abs=0.06)
    held_out = mixture(2000)
    threshold = 0.005
    assert float(mmd(samples, held_out)) < threshold
    assert float(mmd(mixture(2000, 0.6), held_out)) > threshold
    # the learned density (normalised on a grid) concentrates on the two modes: the true
    # mixture has 98.9% of its mass within 3 standard deviations (1.5) of a mean
    xs = torch.linspace(-5, 5, 201)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        p = torch.softmax(-energy(grid).double(), 0)
    dist = torch.cdist(grid, torch.tensor(means)).min(dim=1).values
    assert float(p[dist < 1.5].sum()) > 0.9


# ---------------------------------------------------------------------------- NCSN (chapter 6)


@pytest.mark.slow
def test_ncsn_then_annealed_langevin_recovers_mode_weights():
    # Song & Ermon's (2019) experiment: 0.8 N((5,5), I) + 0.2 N((-5,-5), I), noise ladder
    # 20 -> 1 (10 levels), annealed Langevin with eps = 0.1, T = 100 (with the exact scores
    # these settings give 0.79). Trained in two phases (learning rate 3e-3, then 3e-4).
    # Tolerance 0.05 on the weights (the binomial standard error of 2000 samples is 0.009);
    # plain Langevin from the same uniform start would give about 0.5.
    g = torch.Generator().manual_seed(0)
    data = two_gaussians(4000, generator=g)
    sigmas = torch.logspace(math.log10(20.0), 0.0, 10)
    torch.manual_seed(0)
    net = NoiseConditionalScoreNet(2, hidden=(64, 64))
    for lr, steps, seed in ((3e-3, 1000, 0), (3e-4, 500, 1)):
        fit(net, data, "ncsn", steps=steps, batch_size=512, lr=lr, seed=seed, progress=False,
            sigmas=sigmas)
    x0 = (torch.rand(2000, 2, generator=g) * 2 - 1) * 8
    with torch.no_grad():
        out = annealed_langevin(net, x0, sigmas, step_size=0.1, n_steps_per_level=100,
                                generator=g)
    w, _ = mode_weights(out.samples, [[5.0, 5.0], [-5.0, -5.0]])
    assert w.tolist() == pytest.approx([0.8, 0.2], abs=0.05)


# ---------------------------------------------------------------------------- score matching


class LearnableGaussian(Energy):
    r""":math:`E(x) = \tfrac12 (x-\mu)^\top L L^\top (x-\mu)`, precision :math:`P = LL^\top`."""

    def __init__(self, dim: int):
        super().__init__()
        self.mean = torch.nn.Parameter(torch.zeros(dim, dtype=torch.float64))
        self.chol = torch.nn.Parameter(torch.eye(dim, dtype=torch.float64))
        self.event_shape = (dim,)

    @property
    def precision(self) -> torch.Tensor:
        low = torch.tril(self.chol)
        return low @ low.T

    def forward(self, x):
        z = (x - self.mean) @ torch.tril(self.chol)
        return 0.5 * (z ** 2).sum(1)


@pytest.mark.parametrize("method,options,noise,lr,tol", [
    ("sm", {}, 0.0, 0.03, 1e-6),
    # stochastic methods: over seeds 0-2 the relative error was < 0.008 (ssm), < 0.022 (dsm)
    ("ssm", {"n_projections": 4}, 0.0, 0.01, 0.03),
    ("dsm", {"sigma": 0.5}, 0.5, 0.01, 0.05),
])
def test_score_matching_methods_recover_the_gaussian_mle(method, options, noise, lr, tol):
    # Closed-form references: score matching on Gaussian data is minimised by the sample
    # mean and the inverse (1/N) sample covariance (Hyvärinen 2005); DSM at noise sigma by
    # the precision of the noised data, (S + sigma^2 I)^{-1} (Vincent 2011).
    g = torch.Generator().manual_seed(0)
    cov = torch.tensor([[1.0, 0.5], [0.5, 2.0]], dtype=torch.float64)
    x = torch.randn(2000, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    x = x + torch.tensor([1.0, -1.0], dtype=torch.float64)
    mean = x.mean(0)
    sample_cov = (x - mean).T @ (x - mean) / len(x)
    target = torch.linalg.inv(sample_cov + noise ** 2 * torch.eye(2, dtype=torch.float64))
    model = LearnableGaussian(2)
    fit(model, x, method, steps=600, batch_size=2000, lr=lr, seed=0, progress=False, **options)
    assert model.mean.detach() == pytest.approx(mean, abs=max(tol, 1e-9))
    rel = torch.linalg.matrix_norm(model.precision.detach() - target) / torch.linalg.matrix_norm(
        target)
    assert float(rel) < tol


# ---------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("method,options", [
    ("pcd", {"n_chains": 16}),
    ("mcmc", {"buffer_size": 64, "n_steps": 3}),
])
def test_resume_continues_exactly(tmp_path, bas, method, options):
    if method == "pcd":
        def make():
            return small_rbm(1)
        data = bas
    else:
        def make():
            torch.manual_seed(3)
            return MLPEnergy(2, hidden=(16,)).double()
        data = two_gaussians(64, generator=torch.Generator().manual_seed(2),
                             dtype=torch.float64)
    n = 7  # mid-epoch: the checkpoint must also hold the epoch's batch order
    straight = make()
    h_straight = fit(straight, data, method, steps=2 * n, batch_size=5, seed=7, progress=False,
                     **options)
    path = tmp_path / "run.pt"
    first = make()
    fit(first, data, method, steps=n, batch_size=5, seed=7, progress=False, checkpoint=path,
        **options)
    resumed = make()  # a fresh model: everything comes from the checkpoint
    h_resumed = fit(resumed, data, method, steps=2 * n, batch_size=5, progress=False,
                    resume=path, **options)
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)
    assert h_resumed.loss == h_straight.loss
    assert h_resumed.steps == 2 * n


def test_checkpoint_every_and_atomic_write(tmp_path, bas, monkeypatch):
    path = tmp_path / "ckpt.pt"
    fit(small_rbm(), bas, "cd", steps=6, checkpoint=path, checkpoint_every=3, progress=False,
        seed=0)
    state = load_checkpoint(path)
    assert state["step"] == 6
    assert load_checkpoint(previous_checkpoint(path))["step"] == 3  # the previous one is kept
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        fit(small_rbm(), bas, "cd", steps=4, checkpoint=path, checkpoint_every=2,
            progress=False, seed=0)
    assert path.read_bytes() == before  # the previous checkpoint is intact
    # and no temporary file is left behind
    assert sorted(os.listdir(tmp_path)) == ["ckpt.prev.pt", "ckpt.pt"]


def test_resume_rejects_other_method_and_missing_file(tmp_path, bas):
    path = tmp_path / "c.pt"
    fit(small_rbm(), bas, "cd", steps=2, checkpoint=path, progress=False, seed=0)
    with pytest.raises(ValueError, match="written by method 'cd'"):
        fit(small_rbm(), bas, "pcd", steps=4, resume=path, progress=False)
    with pytest.raises(ValueError, match="in batches of 14; got 14 examples in batches of 4"):
        fit(small_rbm(), bas, "cd", steps=4, batch_size=4, resume=path, progress=False)
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        fit(small_rbm(), bas, "cd", steps=4, resume=tmp_path / "nope.pt", progress=False)


def test_batches_are_the_same_whether_gathered_per_epoch_or_per_step(monkeypatch):
    # Small data sets are copied in shuffled order once per epoch and sliced; larger ones
    # are gathered batch by batch. Both must give the permutation's batches, also across
    # a mid-epoch state_dict round trip. Reference: data[perm] sliced by hand.
    from ebmlab.training import batches as batches_module

    data = torch.arange(23 * 2, dtype=torch.float64).reshape(23, 2)
    seen = {}
    for limit in (batches_module.GATHER_EPOCH_BYTES, 0):
        monkeypatch.setattr(batches_module, "GATHER_EPOCH_BYTES", limit)
        g = torch.Generator().manual_seed(0)
        b = batches_module.Batches(data, 5)
        out = [b.next(g) for _ in range(7)]           # an epoch of 5 batches, then 2 more
        resumed = batches_module.Batches(data, 5)
        resumed.load_state_dict(b.state_dict())
        out += [resumed.next(g) for _ in range(4)]   # the rest of epoch 2, then epoch 3
        seen[limit] = out
    g = torch.Generator().manual_seed(0)
    expected = []
    for _ in range(3):
        shuffled = data[torch.randperm(23, generator=g)]
        expected += [shuffled[i:i + 5] for i in range(0, 23, 5)]
    for out in seen.values():
        assert [x.shape[0] for x in out] == [5, 5, 5, 5, 3, 5, 5, 5, 5, 3, 5]
        for got, want in zip(out, expected, strict=False):
            assert torch.equal(got, want)


# ---------------------------------------------------------------------------- seeds


def test_same_seed_same_history(bas):
    runs = [fit(small_rbm(), bas, "pcd", steps=30, batch_size=4, seed=s, progress=False).loss
            for s in (5, 5, 6)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    a = fit(small_rbm(), bas, "cd", steps=10, batch_size=4, generator=g1, progress=False)
    b = fit(small_rbm(), bas, "cd", steps=10, batch_size=4, generator=g2, progress=False)
    assert a.loss == b.loss


# ---------------------------------------------------------------------------- divergence guard


@pytest.mark.parametrize("sync_every", [1, 4])
def test_divergence_guard_restores_last_good_parameters(sync_every):
    # SGD with lr=100 on DSM blows the loss up within a few steps (inf at step 6).
    g = torch.Generator().manual_seed(0)
    data = two_gaussians(256, generator=g, dtype=torch.float64)

    def make():
        torch.manual_seed(0)
        return MLPEnergy(2, hidden=(16,)).double()

    settings = dict(sigma=0.5, lr=100.0, optimizer="sgd", seed=1, progress=False)
    model = make()
    with pytest.raises(TrainingDivergedError, match=r"diverged at step \d+: the loss was") as info:
        fit(model, data, "dsm", steps=200, sync_every=sync_every, **settings)
    err = info.value
    assert "were restored" in str(err) and "smaller learning rate (lr=100)" in str(err)
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    # the history so far is attached; its losses are finite up to the failing step
    assert not math.isfinite(err.history.loss[err.step - 1])
    assert all(math.isfinite(v) for v in err.history.loss[:err.step - 1])
    # the restored parameters are those after step `restored_step` of the same run, a step
    # whose parameters produced a finite loss (at step restored_step + 1)
    assert err.restored_step <= err.step - 2
    if sync_every == 1:
        assert err.restored_step == err.step - 2  # the last good parameters exactly
    reference = make()
    fit(reference, data, "dsm", steps=err.restored_step, **settings)
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(p, q)


class FailingSampler(ExactMLE):
    """Exact MLE whose 'sampler' diverges at one step (a SamplerDivergedError)."""

    name = "mle"

    def __init__(self, fail_at: int):
        super().__init__()
        self.fail_at, self.calls = fail_at, 0

    def loss(self, model, batch, generator):
        self.calls += 1
        if self.calls == self.fail_at:
            raise SamplerDivergedError("langevin diverged", 3, 4)
        return super().loss(model, batch, generator)


@pytest.mark.parametrize("sync_every", [1, 3])
def test_guard_restores_parameters_known_good_when_the_sampler_fails(bas, sync_every):
    # The sampler of step 6 fails: it ran at the parameters of step 5, which are bad; the
    # last parameters known good are those of step 4 (step 5's sampler and loss were
    # finite at them), or of the last sync before, never those of step 5.
    settings = dict(batch_size=14, lr=0.1, optimizer="sgd", progress=False,
                    sync_every=sync_every)
    model = small_rbm()
    with pytest.raises(TrainingDivergedError, match=r"diverged at step 6: the sampler's chains "
                       r"became non-finite between its steps 3 and 4") as info:
        fit(model, bas, FailingSampler(fail_at=6), steps=10, **settings)
    err = info.value
    assert err.step == 6 and err.restored_step == (4 if sync_every == 1 else 3)
    assert len(err.history.loss) == 5  # the losses of steps 1-5, all finite
    reference = small_rbm()
    fit(reference, bas, "mle", steps=err.restored_step, **settings)
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(p, q)
    # a retry from the restored parameters trains
    hist = fit(model, bas, "mle", steps=5, **{**settings, "lr": 1e-4})
    assert all(math.isfinite(v) for v in hist.loss)


def test_guard_bounds_stop_a_blow_up_before_it_reaches_inf(bas):
    # Plain SGD at lr=1e37 on an RBM: the parameters stay finite (|W| ~ 1e36), so only a
    # bound notices. The guard restores parameters within the bound.
    rbm = small_rbm()
    with pytest.raises(TrainingDivergedError, match="norm reached") as info:
        fit(rbm, bas, "cd", steps=20, lr=1e37, optimizer="sgd", seed=0, progress=False,
            max_param_norm=1e3, sync_every=1)
    norm = torch.linalg.vector_norm(torch.cat([p.detach().reshape(-1) for p in rbm.parameters()]))
    assert float(norm) <= 1e3 and info.value.restored_step == info.value.step - 2
    with pytest.raises(TrainingDivergedError, match="an energy of the minibatch reached"):
        fit(small_rbm(), bas, "cd", steps=20, lr=1e37, optimizer="sgd", seed=0,
            progress=False, max_energy=1e6)


def test_resume_at_the_total_step_count_returns_the_history(tmp_path, bas):
    path = tmp_path / "c.pt"
    done = fit(small_rbm(), bas, "cd", steps=4, checkpoint=path, progress=False, seed=0)
    again = fit(small_rbm(), bas, "cd", steps=4, resume=path, progress=False)
    assert again.loss == done.loss  # steps counts every step: nothing left to do


# ---------------------------------------------------------------------------- history, callbacks


def test_history_and_exact_log_likelihood_callback(bas):
    rbm = small_rbm()
    cb = ExactLogLikelihood(bas, every=10)
    hist = fit(rbm, bas, "pcd", steps=25, batch_size=7, lr=0.05, optimizer="sgd", seed=0,
               callbacks=[cb], progress=False)
    steps, values = hist.metric("log_likelihood")
    assert steps.tolist() == [0, 10, 20, 25]
    assert values[-1] == pytest.approx(brute_force_log_likelihood(rbm, bas), abs=1e-9)
    assert len(hist.loss) == 25 and hist.steps == 25
    assert History.from_dict(json.loads(json.dumps(hist.to_dict()))) == hist
    with pytest.raises(KeyError, match="recorded: 'log_likelihood'"):
        hist.metric("kl")


def test_epochs_count_steps_and_plain_callable_callback(bas):
    calls = []

    def n_params(model):
        calls.append(1)
        return sum(p.numel() for p in model.parameters())

    hist = fit(small_rbm(), bas, "cd", epochs=3, batch_size=4, callbacks=[n_params],
               eval_every=4, progress=False, seed=0)
    assert hist.steps == 3 * math.ceil(14 / 4)
    steps, values = hist.metric("n_params")
    assert steps.tolist() == [0, 4, 8, 12]
    assert set(values.tolist()) == {9 * 8 + 9 + 8}


def test_grid_kl_and_ais_callbacks():
    target = GaussianMixture(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), 0.5,
                             torch.tensor([0.5, 0.5]))
    data = target.sample(512, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    energy = MLPEnergy(2, hidden=(32,))
    bounds = ((-4.0, 4.0), (-4.0, 4.0))
    hist = fit(energy, data, "dsm", sigma=0.3, steps=200, lr=3e-3, seed=0, progress=False,
               callbacks=[GridKL(target, bounds, resolution=60, every=100)])
    steps, kl = hist.metric("kl")
    assert steps.tolist() == [0, 100, 200]
    assert kl[-1] < kl[0]

    rbm = small_rbm(2)
    bas = bars_and_stripes(3, dtype=torch.float64)
    ais_cb = AISLogLikelihood(bas, n_temperatures=300, n_runs=200, every=5)
    hist = fit(rbm, bas, "cd", steps=5, lr=0.1, optimizer="sgd", seed=0, progress=False,
               callbacks=[ais_cb])
    _, est = hist.metric("ais_log_likelihood")
    _, se = hist.metric("ais_log_likelihood_stderr")
    exact = brute_force_log_likelihood(rbm, bas)
    assert abs(est[-1] - exact) < 4 * se[-1] + 0.02


def test_pcd_chains_default_to_batch_size_and_persist(bas):
    objective = PersistentCD(k=1)  # n_chains=None: one chain per example of the first batch
    hist = fit(small_rbm(), bas, objective, steps=3, batch_size=6, seed=0, progress=False)
    assert objective.chains.shape == (6, 9)
    assert set(objective.chains.unique().tolist()) <= {0.0, 1.0}
    assert hist.method == "pcd"
    built = make_method("pcd", k=2, n_chains=20)
    assert isinstance(built, PersistentCD) and (built.n_chains, built.k) == (20, 2)
    fit(small_rbm(), bas, built, steps=2, batch_size=6, seed=0, progress=False)
    assert built.chains.shape == (20, 9)


@pytest.mark.parametrize("route", ["compute_gradient", "loss"])
def test_pcd_hidden_layer_chains_sample_the_rbm(route):
    # An RBM's persistent chains keep their hidden layer: each update is a sweep
    # h -> v -> h' of the block-Gibbs kernel. With the parameters frozen the chains
    # must therefore sample the RBM; reference: p(v) by enumerating the 2^4 states.
    rbm = RBM(4, 3, weight_std=1.5, generator=torch.Generator().manual_seed(30)).double()
    with torch.no_grad():
        rbm.visible_bias.copy_(torch.tensor([1.0, -1.0, 0.5, 0.0]))
    n = 20000
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)), dtype=torch.float64)
    data = states[torch.arange(n) % 16]
    g = torch.Generator().manual_seed(31)
    objective = PersistentCD(n_chains=n)
    objective.init(rbm, data, g)
    for _ in range(30):
        getattr(objective, route)(rbm, data[:2], g)
        for p in rbm.parameters():
            p.grad = None
    with torch.no_grad():
        p_exact = torch.softmax(-rbm(states), 0)
        torch.testing.assert_close(objective.hidden_probs, rbm.prob_h(objective.chains))
    index = (objective.chains * 2 ** torch.arange(3, -1, -1, dtype=torch.float64)).sum(1).long()
    freq = torch.bincount(index, minlength=16).double() / n
    se = (p_exact * (1 - p_exact) / n).sqrt()
    assert bool(((freq - p_exact).abs() < 5 * se + 1e-12).all()), (freq, p_exact)


def test_pcd_fast_and_autograd_routes_run_the_same_chains(bas):
    # The closed-form route (compute_gradient) and the general one (loss, then autograd)
    # must draw the same negatives from the same state: same hidden-layer chains.
    states = []
    for route in ("compute_gradient", "loss"):
        rbm = small_rbm(4)
        g = torch.Generator().manual_seed(32)
        objective = PersistentCD(n_chains=12, k=2)
        objective.init(rbm, bas, g)
        for _ in range(5):
            getattr(objective, route)(rbm, bas[:6], g)
        states.append((objective.chains, objective.hidden_probs))
    assert torch.equal(states[0][0], states[1][0])
    torch.testing.assert_close(states[0][1], states[1][1], rtol=1e-12, atol=1e-15)


def test_pcd_state_dict_keeps_the_hidden_probabilities(bas):
    objective = PersistentCD(n_chains=5)
    fit(small_rbm(), bas, objective, steps=3, batch_size=7, seed=0, progress=False)
    state = objective.state_dict()
    assert state["hidden"].shape == (5, 8)
    restored = PersistentCD(n_chains=5)
    restored.load_state_dict(state)
    assert torch.equal(restored.hidden_probs, objective.hidden_probs)
    assert restored.hidden_probs is not state["hidden"]  # a copy
    older = PersistentCD(n_chains=5)  # a checkpoint without them: chains only
    older.load_state_dict({"chains": state["chains"]})
    assert older.hidden_probs is None and torch.equal(older.chains, objective.chains)


def test_progress_bar_shows_running_loss(bas, capsys):
    fit(small_rbm(), bas, "cd", steps=10, progress=True, seed=0, sync_every=5)
    err = capsys.readouterr().err
    assert "fit[cd]" in err and "loss=" in err


def test_custom_objective_object_matches_builtin(bas):
    class ExactNLL(Method):
        name = "my-mle"

        def loss(self, model, batch, generator):
            return ExactMLE().loss(model, batch, generator)

    a, b = small_rbm(), small_rbm()
    ha = fit(a, bas, ExactNLL(), steps=5, batch_size=14, lr=0.1, optimizer="sgd",
             progress=False)
    hb = fit(b, bas, "mle", steps=5, batch_size=14, lr=0.1, optimizer="sgd", progress=False)
    assert ha.method == "my-mle"
    assert ha.loss == hb.loss
    # the loss of a full-batch exact MLE step is minus the exact log-likelihood
    fresh = small_rbm()
    assert ha.loss[0] == pytest.approx(-brute_force_log_likelihood(fresh, bas), abs=1e-9)


# ---------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clear_errors(bas):
    rbm = small_rbm()
    with pytest.raises(ValueError, match=r"unknown method 'cdd'.*mle, cd, pcd"):
        fit(rbm, bas, "cdd", steps=1, progress=False)
    assert set(METHODS) == {"mle", "cd", "pcd", "sm", "ssm", "dsm", "ncsn", "mcmc", "nce"}
    with pytest.raises(ValueError, match=r"shape \(B, 9\)"):
        fit(rbm, bas[:, :8], "cd", steps=1, progress=False)
    with pytest.raises(TypeError, match="floating-point"):
        fit(rbm, bas.long(), "cd", steps=1, progress=False)
    with pytest.raises(TypeError, match=r"seed must be an int, got 1\.5"):
        fit(rbm, bas, "cd", steps=1, seed=1.5, progress=False)
    with pytest.raises(TypeError, match="float32 but the parameters"):
        fit(rbm, bas.float(), "cd", steps=1, progress=False)
    with pytest.raises(ValueError, match="data contains 1 non-finite value"):
        nan_row = torch.cat([bas[:1, :8], torch.tensor([[math.nan]], dtype=torch.float64)], 1)
        fit(rbm, nan_row, "cd", steps=1, progress=False)
    with pytest.raises(ValueError, match="only the values 0 and 1"):
        fit(rbm, bas * 0.5, "cd", steps=1, progress=False)
    for method in ("sm", "ssm", "mcmc"):
        with pytest.raises(ValueError, match=f"method '{method}' does not apply to RBM"):
            fit(rbm, bas, method, steps=1, progress=False)
    with pytest.raises(ValueError, match="does not apply to RBM"):
        fit(rbm, bas, "dsm", sigma=0.1, steps=1, progress=False)
    with pytest.raises(TypeError, match=r"needs the option\(s\) sigma=\.\.\."):
        fit(MLPEnergy(2).double(), bas[:, :2], "dsm", steps=1, progress=False)
    with pytest.raises(TypeError, match=r"takes no option 'sigmaa'; its options are: k, "):
        fit(rbm, bas, "cd", sigmaa=1.0, steps=1, progress=False)
    with pytest.raises(TypeError, match="method 'sm' takes no option 'k'"):
        fit(MLPEnergy(2).double(), bas[:, :2], "sm", k=3, steps=1, progress=False)
    with pytest.raises(ValueError, match="exactly one of epochs= or steps="):
        fit(rbm, bas, "cd", progress=False)
    with pytest.raises(ValueError, match="either seed= or generator="):
        fit(rbm, bas, "cd", steps=1, seed=0, generator=torch.Generator(), progress=False)
    with pytest.raises(ValueError, match="'mle' needs a tractable log Z"):
        fit(MLPEnergy(2).double(), bas[:, :2], "mle", steps=1, progress=False)

    class Discrete(Energy):
        support = (0.0, 1.0)

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))

        def forward(self, x):
            return x @ self.w

    with pytest.raises(ValueError, match="needs either a model with gibbs_step"):
        fit(Discrete(), bas[:, :3], "cd", steps=1, progress=False)


# ---------------------------------------------------------------------------- closed-form path


class AutogradPCD(PersistentCD):
    """PCD trained through its loss and autograd, the route of every other method."""

    compute_gradient = Method.compute_gradient


class AutogradCD(ContrastiveDivergence):
    compute_gradient = Method.compute_gradient


@pytest.mark.parametrize("fast, slow, options", [
    (PersistentCD(n_chains=6, k=2), AutogradPCD(n_chains=6, k=2), {"optimizer": "sgd"}),
    (ContrastiveDivergence(), AutogradCD(),
     {"optimizer": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), "grad_clip": 0.5}),
])
def test_closed_form_rbm_gradient_trains_like_autograd(bas, fast, slow, options):
    # For an RBM, CD and PCD use the textbook gradient (contrastive_divergence_gradient);
    # autograd on contrastive_loss is the reference. Same seed, same chains: the same run.
    models = [small_rbm(), small_rbm()]
    lr = {} if callable(options["optimizer"]) else {"lr": 0.1}
    runs = [fit(m, bas, method, steps=40, batch_size=5, seed=3, progress=False, **lr, **options)
            for m, method in zip(models, (fast, slow), strict=True)]
    assert runs[0].loss == pytest.approx(runs[1].loss, rel=1e-9, abs=1e-12)
    for p, q in zip(*(m.parameters() for m in models), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-12)
    assert not torch.equal(models[0].weight, small_rbm().weight)  # it did train


def test_closed_form_gradient_leaves_frozen_parameters_alone(bas):
    rbm = small_rbm()
    rbm.weight.requires_grad_(False)
    w0, b0 = rbm.weight.detach().clone(), rbm.hidden_bias.detach().clone()
    fit(rbm, bas, "pcd", steps=5, batch_size=7, lr=0.1, optimizer="sgd", seed=0, progress=False)
    assert torch.equal(rbm.weight, w0)
    assert not torch.equal(rbm.hidden_bias, b0)


def test_a_loss_that_does_not_depend_on_the_parameters_is_refused(bas):
    class Idle(Method):
        name = "idle"

        def loss(self, model, batch, generator):
            return model(batch).mean().detach()

    with pytest.raises(ValueError, match="loss of method 'idle' does not depend on any parameter"):
        fit(small_rbm(), bas, Idle(), steps=2, progress=False)


def test_fit_sgd_by_name_is_torch_sgd(bas):
    # optimizer="sgd" is PlainSGD: torch.optim.SGD's update without its bookkeeping.
    models = [small_rbm(), small_rbm()]
    fit(models[0], bas, "pcd", steps=30, batch_size=5, lr=0.1, optimizer="sgd", seed=2,
        progress=False)
    fit(models[1], bas, "pcd", steps=30, batch_size=5, seed=2, progress=False,
        optimizer=lambda ps: torch.optim.SGD(ps, lr=0.1))
    for p, q in zip(*(m.parameters() for m in models), strict=True):
        assert torch.equal(p, q)
