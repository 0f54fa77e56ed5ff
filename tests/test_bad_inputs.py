"""Bad input to the public API gets a clear error: one row per mistake.

One rule everywhere: a ``TypeError`` when an argument has the wrong type, a ``ValueError``
when it has a wrong value, and a message that names the argument and what was expected
(each row checks a part of it). The rows cover the cases an adversarial review found
(silently wrong results, raw torch errors, a hang, unreadable checkpoint errors), then
the rest of the API, module by module.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import ebmlab as el
from ebmlab.training import ContrastiveDivergence, PersistentCD, TrainingDivergedError, fit
from ebmlab.training.checkpoint import FORMAT

X = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
MIXTURE = el.GaussianMixture([[0.0, 0.0], [2.0, 2.0]], 0.5)
GAUSSIAN = el.Gaussian(torch.zeros(2), torch.eye(2))

def quadratic(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (x ** 2).sum(1)

def rbm() -> el.RBM:
    return el.RBM(4, 3, generator=torch.Generator().manual_seed(0))

def mlp() -> el.MLPEnergy:
    torch.manual_seed(0)
    return el.MLPEnergy(2, hidden=(8,))

BITS = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])

def quick_fit(model: torch.nn.Module, data: torch.Tensor, method: object, **options: object
              ) -> el.training.History:
    return fit(model, data, method, steps=options.pop("steps", 2), progress=False,
               **options)  # type: ignore[arg-type]

def checkpoint(tmp: Path, **options: object) -> Path:
    """A checkpoint of 4 CD-1 steps on an RBM, written to ``tmp / "run.pt"``."""
    path = tmp / "run.pt"
    fit(rbm(), BITS, "cd", steps=4, checkpoint=path, seed=0, progress=False, **options)
    return path

def corrupt(tmp: Path, change: Callable[[bytes], bytes]) -> Path:
    path = checkpoint(tmp)
    path.write_bytes(change(path.read_bytes()))
    return path

def flip_a_payload_byte(blob: bytes) -> bytes:
    i = len(blob) - 200  # inside the last tensor's data, far from the header
    return blob[:i] + bytes([blob[i] ^ 0x01]) + blob[i + 1:]

def resume(path: Path, **options: object) -> el.training.History:
    return fit(rbm(), BITS, options.pop("method", "cd"), steps=options.pop("steps", 8),
               resume=path, progress=False, **options)  # type: ignore[arg-type]

def row(name: str, call: Callable[[Path], object], error: type[Exception],
        match: str) -> object:
    return pytest.param(call, error, match, id=name)

CASES = [
    # --- the cases of the review: silently wrong results ------------------------------------
    row("langevin on an RBM's binary states",
        lambda _: el.langevin(rbm(), BITS, step_size=0.1, n_steps=2),
        ValueError, "does not apply to RBM.*discrete model.*ebmlab.gibbs"),
    row("mala on an Ising model",
        lambda _: el.mala(el.Ising(3), torch.ones(2, 3, 3), step_size=0.1, n_steps=2),
        ValueError, "does not apply to Ising"),
    row("fisher_divergence with a score of the wrong shape",
        lambda _: el.fisher_divergence(lambda x: -x, lambda x: -x[:, :1], X),
        ValueError, r"score_q returned shape \(6, 1\) for input \(6, 2\)"),
    row("binarized_digits with a threshold above every grey level",
        lambda _: el.binarized_digits(threshold=2), ValueError, "threshold must be >= 0 and <= 1"),
    row("binarized_digits with threshold 1: every image blank",
        lambda _: el.binarized_digits(threshold=1), ValueError, "every image would be blank"),
    row("Gaussian with a complex covariance",
        lambda _: el.Gaussian(torch.zeros(2), torch.eye(2, dtype=torch.complex64)),
        TypeError, "covariance must hold real numbers"),
    row("effective_sample_size of log-weights with NaN",
        lambda _: el.partition.effective_sample_size(torch.tensor([0.0, math.nan])),
        ValueError, "log_weights must not hold NaN"),
    row("fit an RBM at lr=1e37 with a bound on the parameters' norm",
        lambda _: quick_fit(rbm(), BITS, "cd", lr=1e37, optimizer="sgd", steps=3, seed=0,
                            max_param_norm=1e6),
        TrainingDivergedError, r"norm reached .* beyond max_param_norm=1e\+06"),
    # --- ... raw torch errors ----------------------------------------------------------------
    row("mala on an empty batch",
        lambda _: el.mala(quadratic, torch.zeros(0, 2), step_size=0.1, n_steps=2),
        ValueError, "x0 must hold at least one example"),
    row("mmd of an empty sample",
        lambda _: el.mmd(torch.zeros(0, 2), X), ValueError, "x must hold at least one example"),
    row("langevin in float16 on a mixture",
        lambda _: el.langevin(MIXTURE, X.half(), step_size=0.1, n_steps=2),
        TypeError, "x0 must be float32 or float64, got torch.float16"),
    row("langevin with generator='seed'",
        lambda _: el.langevin(quadratic, X, step_size=0.1, n_steps=2, generator="seed"),
        TypeError, "generator must be a torch.Generator or None, got 'seed'"),
    row("mala with generator='seed'",
        lambda _: el.mala(quadratic, X, step_size=0.1, n_steps=2, generator="seed"),
        TypeError, "generator must be a torch.Generator"),
    row("fit with generator='seed'",
        lambda _: quick_fit(mlp(), X, "dsm", sigma=0.1, generator="seed"),
        TypeError, "generator must be a torch.Generator"),
    row("two_moons with generator='seed'",
        lambda _: el.two_moons(10, generator="seed"), TypeError, "generator must be"),
    row("fit(mlp, data, 'ncsn'): a model of x alone",
        lambda _: quick_fit(mlp(), X, "ncsn", sigmas=[1.0, 0.1]),
        ValueError, r"model must be noise-conditional, called as model\(x, sigma\)"),
    row("langevin: float32 states, float64 parameters",
        lambda _: el.langevin(mlp().double(), X, step_size=0.1, n_steps=2),
        TypeError, "x has dtype torch.float32 but the parameters of MLPEnergy are torch.float64"),
    row("mala: float32 states, float64 parameters",
        lambda _: el.mala(mlp().double(), X, step_size=0.1, n_steps=2),
        TypeError, "x has dtype torch.float32 but the parameters"),
    row("contrastive_loss: float32 data, float64 parameters",
        lambda _: el.contrastive_loss(mlp().double(), X, X),
        TypeError, "x has dtype torch.float32 but the parameters"),
    row("score_matching_loss: float32 data, float64 parameters",
        lambda _: el.score_matching_loss(mlp().double(), X),
        TypeError, "x has dtype torch.float32 but the parameters"),
    row("denoising_score_matching_loss: float32 data, float64 parameters",
        lambda _: el.denoising_score_matching_loss(mlp().double(), X, 0.1),
        TypeError, "x has dtype torch.float32 but the parameters"),
    row("fit: float64 data, float32 parameters",
        lambda _: quick_fit(mlp(), X.double(), "dsm", sigma=0.1),
        TypeError, "data has dtype torch.float64 but the parameters of MLPEnergy"),
    row("two_moons on device='cuda:7' of a machine without it",
        lambda _: el.two_moons(10, device="cuda:7"),
        ValueError, "device='cuda:7' is not available"),
    row("make_generator on device='cuda:7'",
        lambda _: el.make_generator(0, device="cuda:7"), ValueError, "'cuda:7' is not available"),
    row("grid_log_partition on device='cuda:7'",
        lambda _: el.grid_log_partition(quadratic, ((-1, 1), (-1, 1)), 8, device="cuda:7"),
        ValueError, "'cuda:7' is not available"),
    row("a device name that is none",
        lambda _: el.make_generator(0, device="gpu"), ValueError, "'gpu' is not a device name"),
    row("seed_everything(2**70)",
        lambda _: el.seed_everything(2**70), ValueError, r"seed must lie between -2\*\*63"),
    row("make_generator(2**70)",
        lambda _: el.make_generator(2**70), ValueError, "seed must lie between"),
    # --- ... a hang ---------------------------------------------------------------------------
    row("fit(..., 'cd', k=10**9)",
        lambda _: quick_fit(rbm(), BITS, "cd", k=10**9),
        ValueError, "k must be an int between 1 and 10000, got 1000000000"),
    row("fit(..., 'mcmc', n_steps=10**9)",
        lambda _: quick_fit(mlp(), X, "mcmc", n_steps=10**9),
        ValueError, "n_steps must be an int between 1 and 10000"),
    # --- ... one rule: TypeError for a wrong type ---------------------------------------------
    row("langevin(n_steps=2.5)",
        lambda _: el.langevin(quadratic, X, step_size=0.1, n_steps=2.5),
        TypeError, "n_steps must be an int >= 0, got 2.5"),
    row("fit(steps=2.5)",
        lambda _: quick_fit(mlp(), X, "dsm", sigma=0.1, steps=2.5),
        TypeError, "steps must be an int >= 0, got 2.5"),
    row("fit(epochs='3')",
        lambda _: fit(mlp(), X, "dsm", sigma=0.1, epochs="3", progress=False),
        TypeError, "epochs must be an int"),
    # --- ... checkpoints ----------------------------------------------------------------------
    row("resume from an empty file",
        lambda tmp: resume(corrupt(tmp, lambda b: b"")),
        ValueError, r"run\.pt' is not a checkpoint written by ebmlab\.training\.fit"),
    row("resume from a truncated file",
        lambda tmp: resume(corrupt(tmp, lambda b: b[: len(b) // 2])),
        ValueError, r"checkpoint '.*run\.pt' is corrupt"),
    row("resume from random bytes",
        lambda tmp: resume(corrupt(tmp, lambda b: bytes(range(256)) * 8)),
        ValueError, r"run\.pt' is not a checkpoint"),
    row("resume from a file whose tensor data has a flipped byte",
        lambda tmp: resume(corrupt(tmp, flip_a_payload_byte)),
        ValueError, r"run\.pt' is corrupt: the SHA-256 .* does not match"),
    row("resume from a plain torch.save file",
        lambda tmp: (torch.save({"model": {}}, tmp / "run.pt"), resume(tmp / "run.pt")),
        ValueError, f"not a checkpoint written by ebmlab.training.fit.*{FORMAT}"),
    row("resume from a checkpoint without 'model'",
        lambda tmp: (el.training.checkpoint.save_checkpoint({"step": 1}, tmp / "run.pt"),
                     resume(tmp / "run.pt")),
        ValueError, r"run\.pt' lacks method, method_options, model"),
    row("resume from a missing file",
        lambda tmp: resume(tmp / "nope.pt"), FileNotFoundError, "no such checkpoint file"),
    row("resume with another k",
        lambda tmp: resume(checkpoint(tmp), k=3),
        ValueError, r"other options of method 'cd': k=1 in the checkpoint but k=3 now"),
    row("resume with another method",
        lambda tmp: resume(checkpoint(tmp), method="pcd"),
        ValueError, "was written by method 'cd', not 'pcd'"),
    row("resume with fewer steps than the checkpoint's",
        lambda tmp: resume(checkpoint(tmp), steps=2),
        ValueError, "is at step 4, beyond the 2 steps asked for"),
    row("resume with another batch size",
        lambda tmp: resume(checkpoint(tmp, batch_size=2), batch_size=3),
        ValueError, "in batches of 2; got 3 examples in batches of 3"),
    # --- samplers ---------------------------------------------------------------------------
    row("langevin energy not callable",
        lambda _: el.langevin("quadratic", X, step_size=0.1, n_steps=2),
        TypeError, "energy must be callable"),
    row("langevin energy of the wrong output shape",
        lambda _: el.langevin(lambda x: x, X, step_size=0.1, n_steps=2),
        ValueError, r"energy must map a batch of shape \(6, 2\) to energies of shape \(6,\)"),
    row("langevin energy not differentiable",
        lambda _: el.langevin(lambda x: torch.zeros(len(x)), X, step_size=0.1, n_steps=2),
        TypeError, "does not depend differentiably on x"),
    row("langevin x0 a list",
        lambda _: el.langevin(quadratic, [[0.0, 0.0]], step_size=0.1, n_steps=2),
        TypeError, r"x0 must be a torch\.Tensor"),
    row("langevin x0 of integers",
        lambda _: el.langevin(quadratic, X.long(), step_size=0.1, n_steps=2),
        TypeError, "x0 must be a floating-point tensor"),
    row("langevin x0 with NaN",
        lambda _: el.langevin(quadratic, X * math.nan, step_size=0.1, n_steps=2),
        ValueError, "x0 contains 12 non-finite"),
    row("langevin step_size 0",
        lambda _: el.langevin(quadratic, X, step_size=0.0, n_steps=2),
        ValueError, "step_size must be > 0"),
    row("langevin step_size a string",
        lambda _: el.langevin(quadratic, X, step_size="0.1", n_steps=2),
        TypeError, "step_size must be a number"),
    row("langevin noise_scale < 0",
        lambda _: el.langevin(quadratic, X, step_size=0.1, n_steps=2, noise_scale=-1),
        ValueError, "noise_scale must be >= 0"),
    row("langevin bounds low > high",
        lambda _: el.langevin(quadratic, X, step_size=0.1, n_steps=2, bounds=(1.0, -1.0)),
        ValueError, "bounds must satisfy low < high"),
    row("langevin check_divergence=1",
        lambda _: el.langevin(quadratic, X, step_size=0.1, n_steps=2, check_divergence=1),
        TypeError, r"check_divergence must be a bool \(True or False\), got 1"),
    row("langevin record_every 0",
        lambda _: el.langevin(quadratic, X, step_size=0.1, n_steps=2, record_every=0),
        ValueError, "record_every must be an int >= 1"),
    row("annealed_langevin sigmas increasing",
        lambda _: el.annealed_langevin(lambda x, s: -x, X, [0.1, 1.0], step_size=0.1,
                                       n_steps_per_level=1),
        ValueError, "sigmas must be non-increasing"),
    row("annealed_langevin score of the wrong shape",
        lambda _: el.annealed_langevin(lambda x, s: x.sum(1), X, [1.0], step_size=0.1,
                                       n_steps_per_level=1),
        ValueError, r"score\(x, sigma\) must return the shape of x"),
    row("gibbs on a model without a sweep",
        lambda _: el.gibbs(mlp(), X, 2), TypeError, "gibbs needs a model with a gibbs_step"),
    row("gibbs from states outside the support",
        lambda _: el.gibbs(rbm(), BITS * 0.5, 2), ValueError, "only the values 0 and 1 of RBM"),
    row("gibbs from states of the wrong shape",
        lambda _: el.gibbs(rbm(), torch.ones(2, 5), 2), ValueError, r"x0 must have shape \(B, 4\)"),
    row("ReplayBuffer capacity 2.5",
        lambda _: el.ReplayBuffer(2.5, torch.zeros(2, 2)), TypeError, "capacity must be an int"),
    row("ReplayBuffer reinit_prob 1.5",
        lambda _: el.ReplayBuffer(2, torch.zeros(2, 2), reinit_prob=1.5),
        ValueError, "reinit_prob must be >= 0 and <= 1"),
    row("ReplayBuffer.update of slots outside the buffer",
        lambda _: el.ReplayBuffer(2, torch.zeros(2, 2)).update(torch.tensor([5]), X[:1]),
        ValueError, "idx must name slots 0 to 1"),
    # --- training -----------------------------------------------------------------------------
    row("fit a plain function",
        lambda _: quick_fit(quadratic, X, "dsm", sigma=0.1),
        TypeError, r"model must be a torch\.nn\.Module"),
    row("fit an unknown method", lambda _: quick_fit(rbm(), BITS, "cdd"),
        ValueError, r"unknown method 'cdd'; expected one of mle, cd, pcd"),
    row("fit a method given as a number", lambda _: quick_fit(rbm(), BITS, 3),
        TypeError, "method must be one of 'mle'"),
    row("fit with an option the method does not take",
        lambda _: quick_fit(rbm(), BITS, "cd", sigma=1.0),
        TypeError, "method 'cd' takes no option 'sigma'; its options are: k, sampler"),
    row("fit a method object with options",
        lambda _: quick_fit(rbm(), BITS, ContrastiveDivergence(), k=2),
        TypeError, r"options \['k'\] apply to method names only"),
    row("ContrastiveDivergence(5): options are keyword-only",
        lambda _: ContrastiveDivergence(5), TypeError, r"ContrastiveDivergence\(k=\.\.\.\)"),
    row("PersistentCD(5): options are keyword-only",
        lambda _: PersistentCD(5), TypeError, "PersistentCD takes its options by keyword"),
    row("fit 'dsm' without sigma", lambda _: quick_fit(mlp(), X, "dsm"),
        TypeError, r"method 'dsm' needs the option\(s\) sigma=\.\.\."),
    row("fit 'sm' on an RBM", lambda _: quick_fit(rbm(), BITS, "sm"),
        ValueError, "method 'sm' does not apply to RBM"),
    row("fit 'mle' without a tractable log Z", lambda _: quick_fit(mlp(), X, "mle"),
        ValueError, "'mle' needs a tractable log Z"),
    row("fit data outside the support", lambda _: quick_fit(rbm(), BITS * 0.5, "cd"),
        ValueError, "data must take only the values 0 and 1"),
    row("fit data with NaN", lambda _: quick_fit(mlp(), X * math.nan, "dsm", sigma=0.1),
        ValueError, "data contains 12 non-finite"),
    row("fit data of the wrong event shape", lambda _: quick_fit(rbm(), BITS[:, :3], "cd"),
        ValueError, r"data must have shape \(B, 4\)"),
    row("fit empty data", lambda _: quick_fit(rbm(), BITS[:0], "cd"),
        ValueError, "data must hold at least one example"),
    row("fit with both epochs and steps",
        lambda _: fit(rbm(), BITS, "cd", epochs=1, steps=1, progress=False),
        ValueError, "pass exactly one of epochs= or steps="),
    row("fit with both seed and generator",
        lambda _: quick_fit(rbm(), BITS, "cd", seed=0, generator=torch.Generator()),
        ValueError, "either seed= or generator="),
    row("fit with seed 1.5", lambda _: quick_fit(rbm(), BITS, "cd", seed=1.5),
        TypeError, r"seed must be an int, got 1\.5"),
    row("fit lr with an optimiser instance",
        lambda _: (m := mlp(), quick_fit(m, X, "dsm", sigma=0.1, lr=0.1,
                                         optimizer=torch.optim.SGD(m.parameters(), lr=0.1))),
        ValueError, "lr=0.1 applies to an optimiser built by name"),
    row("fit with an optimiser of another model",
        lambda _: quick_fit(mlp(), X, "dsm", sigma=0.1,
                            optimizer=torch.optim.SGD(mlp().parameters(), lr=0.1)),
        ValueError, "optimizer optimises none of the parameters of MLPEnergy"),
    row("fit with an unknown optimiser name",
        lambda _: quick_fit(mlp(), X, "dsm", sigma=0.1, optimizer="rmsprop"),
        ValueError, "optimizer must be one of"),
    row("fit checkpoint_every without checkpoint",
        lambda _: quick_fit(mlp(), X, "dsm", sigma=0.1, checkpoint_every=1),
        ValueError, "checkpoint_every needs checkpoint="),
    row("fit max_energy of a score network",
        lambda _: quick_fit(el.NoiseConditionalScoreNet(2, hidden=(8,)), X, "ncsn",
                            sigmas=[1.0], max_energy=10.0),
        ValueError, r"max_energy applies to an energy model\(x\)"),
    row("fit a callback that is not callable",
        lambda _: quick_fit(mlp(), X, "dsm", sigma=0.1, callbacks=[3]),
        TypeError, r"each callback must be callable as cb\(model\)"),
    row("fit progress='no'",
        lambda _: fit(mlp(), X, "dsm", sigma=0.1, steps=1, progress="no"),
        TypeError, "progress must be a bool"),
    # --- objectives and metrics -------------------------------------------------------------
    row("exact_nll of integer data", lambda _: el.exact_nll(rbm(), BITS.long()),
        TypeError, "x must be a floating-point tensor"),
    row("exact_nll without a known log Z", lambda _: el.exact_nll(mlp(), X),
        ValueError, r"log Z of MLPEnergy is unknown"),
    row("contrastive_loss alpha < 0", lambda _: el.contrastive_loss(mlp(), X, X, alpha=-1.0),
        ValueError, "alpha must be >= 0"),
    row("contrastive_loss of batches on two devices",
        lambda _: el.contrastive_loss(mlp(), X, X.to("meta")),
        ValueError, "x_data and x_model must be on the same device, got cpu and meta"),
    row("sliced_score_matching_loss with 0 projections",
        lambda _: el.sliced_score_matching_loss(mlp(), X, 0),
        ValueError, "n_projections must be an int >= 1"),
    row("denoising_score_matching_loss sigma 0",
        lambda _: el.denoising_score_matching_loss(mlp(), X, 0.0),
        ValueError, "sigma must be > 0"),
    row("multiscale_dsm_loss without noise levels",
        lambda _: el.multiscale_dsm_loss(lambda x, s: -x, X, []),
        ValueError, "sigmas must be a non-empty 1-d sequence"),
    row("multiscale_dsm_loss of a model of x alone",
        lambda _: el.multiscale_dsm_loss(mlp(), X, [1.0]),
        ValueError, "score_model must be noise-conditional"),
    row("log_likelihood reduction='sum'", lambda _: el.log_likelihood(rbm(), BITS, reduction="sum"),
        ValueError, "reduction must be 'mean' or 'none'"),
    row("kl_divergence_grid over one axis",
        lambda _: el.kl_divergence_grid(quadratic, quadratic, ((0.0, 1.0),)),
        ValueError, r"bounds must be 2 \(min, max\) pair"),
    row("mmd of samples of different shapes", lambda _: el.mmd(X, torch.zeros(4, 3)),
        ValueError, "x and y must have the same event shape"),
    row("mmd of complex samples",
        lambda _: el.mmd(X.to(torch.complex64), X), TypeError, "x must hold real numbers"),
    row("mode_weights centers of another dimension",
        lambda _: el.mode_weights(X, [[0.0, 0.0, 0.0]]), ValueError, r"centers must have shape"),
    # --- partition functions ------------------------------------------------------------------
    row("exact_log_partition of a continuous energy", lambda _: el.exact_log_partition(mlp()),
        TypeError, "needs the values each unit takes"),
    row("exact_log_partition beyond max_states",
        lambda _: el.exact_log_partition(el.Ising(6)), ValueError, r"2\*\*36 = .* states"),
    row("grid_log_partition in 4 dimensions",
        lambda _: el.grid_log_partition(quadratic, [(-1, 1)] * 4),
        ValueError, "grid quadrature handles 1 to 3 dimensions"),
    row("importance_log_partition with a proposal that cannot sample",
        lambda _: el.importance_log_partition(quadratic, object(), 10),
        TypeError, "proposal must be a normalised distribution"),
    row("importance_log_partition of an energy returning NaN",
        lambda _: el.importance_log_partition(lambda x: x.sum(1) * math.nan, GAUSSIAN, 10),
        ValueError, "returned NaN at 10 of the 10 samples"),
    row("ais of an RBM with MALA transitions", lambda _: el.ais(rbm(), 10, 10, transition="mala"),
        ValueError, "transition must be 'gibbs' or None"),
    row("ais with n_temperatures 2.5", lambda _: el.ais(rbm(), 2.5, 10),
        TypeError, "n_temperatures must be an int >= 2"),
    row("ising_log_partition in a field",
        lambda _: el.ising_log_partition(4, 4, 0.4, field=1.0), ValueError, "zero field only"),
    # --- energies and data --------------------------------------------------------------------
    row("RBM with 0 visible units", lambda _: el.RBM(0, 3),
        ValueError, "n_visible must be an int >= 1"),
    row("Gaussian covariance not positive definite",
        lambda _: el.Gaussian(torch.zeros(2), -torch.eye(2)),
        ValueError, "covariance must be positive definite"),
    row("MLPEnergy activation relu", lambda _: el.MLPEnergy(2, activation="relu"),
        ValueError, "activation must be one of"),
    row("MLPEnergy spectral_norm='yes'", lambda _: el.MLPEnergy(2, spectral_norm="yes"),
        TypeError, "spectral_norm must be a bool"),
    row("Ising of side 1", lambda _: el.Ising(1), ValueError, "size must be an int >= 2"),
    row("score_of a non-differentiable energy",
        lambda _: el.score_of(lambda x: torch.zeros(len(x)), X),
        TypeError, "does not depend differentiably on x"),
    row("two_moons with n 2.5", lambda _: el.two_moons(2.5), TypeError, "n must be an int >= 1"),
    row("eight_gaussians dtype int64", lambda _: el.eight_gaussians(10, dtype=torch.int64),
        TypeError, "dtype must be a floating dtype"),
    row("rings with radii 'abc'", lambda _: el.rings(10, radii="abc"),
        TypeError, "radii must be a sequence of positive numbers"),
    row("seed_everything('0')", lambda _: el.seed_everything("0"),
        TypeError, "seed must be an int"),
    row("plot_energy without bounds", lambda _: el.plotting.plot_energy(quadratic),
        ValueError, "bounds is required"),
]

@pytest.mark.parametrize("call, error, match", CASES)
def test_bad_input_gets_a_clear_error(call: Callable[[Path], object], error: type[Exception],
                                      match: str, tmp_path: Path) -> None:
    with pytest.raises(error, match=match):
        call(tmp_path)
