"""The recipes of ``ebmlab.recipes`` reproduce the checkpoints that ship with the package.

Each chapter that loads a trained model has a recipe; these tests rerun the recipe's
``train`` (the full configuration when it is fast, otherwise a short run from the command
line, which must be bit-identical to a short run in-process and match the start of the
shipped loss history) and check that the shipped model has the properties the chapters
state, against independent references (exact densities, exact scores, the
independent-pixel model).
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path
from typing import ClassVar

import pytest
import torch

import ebmlab as el
from ebmlab import recipes
from ebmlab.recipes import (
    digits_ebm,
    digits_jem,
    digits_rbm,
    eight_gaussians_ncsn,
    moons_score_matching,
)


def _shipped_size(name: str) -> int:
    with recipes.shipped_checkpoint(name).open("rb") as f:
        return len(f.read())


def _run_from_shell(module: str, out: Path, *options: str) -> dict:
    subprocess.run([sys.executable, "-m", f"ebmlab.recipes.{module}", *options, "--out",
                    str(out)], check=True, capture_output=True, timeout=300)
    return torch.load(out, map_location="cpu", weights_only=True)


# --- the loading API --------------------------------------------------------------------------
# The joint energy model's convolutional network (90,000 weights) is the largest.
_MAX_SIZE = {"digits_jem": 450_000}


@pytest.mark.parametrize("name", recipes.RECIPES)
def test_every_recipe_ships_a_small_checkpoint_that_load_reads(name):
    assert 10_000 < _shipped_size(name) < _MAX_SIZE.get(name, 300_000)
    model, checkpoint = recipes.load(name)
    assert isinstance(model, torch.nn.Module) and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    module = getattr(recipes, name)
    assert checkpoint["config"] == module.CONFIG
    again = module.load_checkpoint()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 again.model.state_dict().values(), strict=True))


def test_load_reads_a_checkpoint_written_by_the_recipe(tmp_path):
    out = tmp_path / "short.pt"
    written = digits_rbm.main(["--epochs", "2", "--seed", "3", "--out", str(out)])
    rbm, checkpoint = recipes.load("digits_rbm", out)
    assert checkpoint["config"] == {**digits_rbm.CONFIG, "epochs": 2, "seed": 3}
    assert checkpoint["train_seconds"] == written["train_seconds"] > 0
    torch.testing.assert_close(rbm.weight, written["state_dict"]["weight"], rtol=0, atol=0)
    shipped, _ = recipes.load("digits_rbm")
    assert not torch.allclose(rbm.weight, shipped.weight)


def test_load_rejects_what_is_not_a_recipe_or_a_checkpoint(tmp_path):
    with pytest.raises(ValueError, match=r"unknown recipe 'digits'.*digits_rbm"):
        recipes.load("digits")
    with pytest.raises(TypeError, match="recipe name must be a str"):
        recipes.load(4)
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        recipes.load("digits_rbm", tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a checkpoint of recipe 'digits_rbm'"):
        recipes.load("digits_rbm", tmp_path / "other.pt")
    written = tmp_path / "written.pt"
    digits_rbm.main(["--epochs", "1", "--out", str(written)])
    for name, damage in (("garbage", lambda b: b"not a checkpoint at all"),
                         ("truncated", lambda b: b[: len(b) // 2]),
                         ("empty", lambda b: b"")):
        broken = tmp_path / f"{name}.pt"
        broken.write_bytes(damage(written.read_bytes()))
        with pytest.raises(ValueError, match=rf"'{broken}' cannot be read as a checkpoint"):
            recipes.load("digits_rbm", broken)


def test_command_line_rejects_bad_options_and_documents_them(capsys):
    for argv in (["--epochs", "0"], ["--epochs", "two"], ["--device", "abacus"],
                 ["--steps", "3"]):
        with pytest.raises(SystemExit) as exc:
            digits_rbm.main(argv)
        assert exc.value.code == 2, argv
    with pytest.raises(SystemExit):
        moons_score_matching.main(["--help"])
    usage = capsys.readouterr().out
    assert "python -m ebmlab.recipes.moons_score_matching" in usage
    for option in ("--steps", "--seed", "--out", "--device", "--progress"):
        assert option in usage


def test_short_runs_are_prefixes_recorded_in_their_config():
    """A short run's config says what was run; training that config again repeats it."""
    short = eight_gaussians_ncsn.train(steps=7)
    assert short["config"] == {**eight_gaussians_ncsn.CONFIG, "steps": 7, "fine_steps": 0}
    again = eight_gaussians_ncsn.train(short["config"])
    assert torch.equal(short["losses"], again["losses"])
    # Across the drop of the learning rate: 3 + 2 steps are the start of 3 + 4 steps.
    config = {**eight_gaussians_ncsn.CONFIG, "steps": 3, "fine_steps": 4}
    longer = eight_gaussians_ncsn.train(config)
    prefix = eight_gaussians_ncsn.train(config, steps=5)
    assert prefix["config"] == {**config, "fine_steps": 2}
    assert torch.equal(prefix["losses"], longer["losses"][:5])


# --- chapter 4: the RBM on binarized digits ---------------------------------------------------
@pytest.mark.slow
def test_digits_rbm_checkpoint_is_reproduced_by_its_recipe():
    """The full CD-1 run (about 10 s single-threaded) gives the shipped parameters."""
    _, stored = recipes.load("digits_rbm")
    fresh = digits_rbm.train()
    assert fresh["config"] == stored["config"] == digits_rbm.CONFIG
    assert set(fresh["state_dict"]) == set(stored["state_dict"]) == {
        "weight", "visible_bias", "hidden_bias"}
    for name, value in stored["state_dict"].items():
        assert value.dtype == torch.float64, name
        torch.testing.assert_close(fresh["state_dict"][name], value, rtol=0.0, atol=1e-9,
                                   msg=lambda m, name=name: f"{name}: {m}")


def test_digits_rbm_checkpoint_is_better_than_independent_pixels():
    """What chapter 4 relies on: an RBM that beats the independent-pixel model (its AIS
    base) on the training digits."""
    rbm, _ = recipes.load("digits_rbm")
    assert rbm.n_visible == 64 and rbm.weight.dtype == torch.float64
    data = digits_rbm.make_data()
    base = digits_rbm.data_log_odds(data)
    m = torch.sigmoid(base)
    independent = (data * torch.log(m) + (1 - data) * torch.log1p(-m)).sum(1).mean()
    g = torch.Generator().manual_seed(0)
    est = el.metrics.ais_log_likelihood(rbm, data, n_temperatures=300, n_runs=50,
                                        base_visible_bias=base, generator=g)
    assert float(est.stderr) < 0.2
    assert float(est.log_likelihood) > float(independent) + 5.0


# --- chapter 7: the deep EBM on 8x8 digits ----------------------------------------------------
# The full run (6000 steps, about 3 CPU minutes) is too long for a test: a short run of the
# recipe from the shell must be bit-identical to a short run of its ``train`` function, and
# its first losses must match the start of the shipped loss history.
_SHORT = 12


@pytest.mark.slow
def test_digits_ebm_short_run_from_the_shell_is_bit_identical(tmp_path):
    from_shell = _run_from_shell("digits_ebm", tmp_path / "short.pt", "--steps", str(_SHORT))
    in_process = digits_ebm.train(steps=_SHORT)
    assert from_shell["config"] == in_process["config"] == {**digits_ebm.CONFIG,
                                                            "steps": _SHORT}
    assert set(from_shell["state_dict"]) == set(in_process["state_dict"])
    for name, value in in_process["state_dict"].items():
        assert torch.equal(from_shell["state_dict"][name], value), name
    assert torch.equal(from_shell["buffer"], in_process["buffer"])
    assert torch.equal(from_shell["loss"], in_process["loss"])
    _, stored = recipes.load("digits_ebm")
    torch.testing.assert_close(in_process["loss"], stored["loss"][:_SHORT], rtol=0.0,
                               atol=1e-4)


def test_digits_ebm_checkpoint_is_made_with_the_recipe_settings():
    _, stored = recipes.load("digits_ebm")
    assert stored["loss"].shape == (digits_ebm.CONFIG["steps"],)
    assert bool(torch.isfinite(stored["loss"]).all())
    assert set(stored["state_dict"]) == set(digits_ebm.make_model().state_dict())
    buffer = stored["buffer"]
    assert buffer.shape == (digits_ebm.CONFIG["n_saved"], 64)
    assert float(buffer.min()) >= 0.0 and float(buffer.max()) <= 1.0


def test_digits_ebm_checkpoint_has_the_properties_chapter_7_states():
    """Noise far above the data, samples (buffer and fresh chains) at the data's level."""
    model, checkpoint = recipes.load("digits_ebm")
    config, buffer = checkpoint["config"], checkpoint["buffer"]
    g = torch.Generator().manual_seed(0)
    data = digits_ebm.make_data()
    noise = torch.rand(len(data), 64, generator=g)
    chain_life = round(config["n_steps"] / config["reinit_prob"])   # as long as in training
    fresh = el.langevin(model, torch.rand(36, 64, generator=g), step_size=config["step_size"],
                        noise_scale=config["noise_scale"], n_steps=chain_life,
                        bounds=tuple(config["bounds"]), generator=g).samples
    with torch.no_grad():
        e_data, e_noise = model(data), model(noise)
        e_buffer, e_fresh = model(buffer), model(fresh)
    gap = float(e_noise.mean() - e_data.mean())
    assert gap > 3.0                                  # the opening figure's claim
    assert gap > 20 * float(e_data.std())
    for e in (e_buffer, e_fresh):
        assert abs(float(e.mean() - e_data.mean())) < 0.1 * gap
    assert float(e_fresh.mean()) < float(e_data.mean())   # cold Langevin: valley floors
    mmd_buffer = float(el.mmd(buffer, data[:1000]))
    mmd_noise = float(el.mmd(noise[:256], data[:1000]))
    assert mmd_buffer < 0.05 * mmd_noise


def test_digits_ebm_fresh_chains_end_on_every_class():
    """Chapter 7: fresh chains from noise, run as long as a chain lived in training, cover
    all ten digit classes (label of the nearest training image), none with more than 25%."""
    model, checkpoint = recipes.load("digits_ebm")
    config = checkpoint["config"]
    data, labels = el.digits(return_labels=True)
    g = torch.Generator().manual_seed(1)
    fresh = el.langevin(model, torch.rand(500, 64, generator=g), step_size=config["step_size"],
                        noise_scale=config["noise_scale"],
                        n_steps=round(config["n_steps"] / config["reinit_prob"]),
                        bounds=tuple(config["bounds"]), generator=g).samples
    share = torch.bincount(labels[torch.cdist(fresh, data).argmin(1)], minlength=10) / 500
    entropy = float(-(share * share.clamp_min(1e-12).log()).sum())
    assert float(share.min()) >= 0.02 and float(share.max()) <= 0.25, share
    assert entropy > 2.1, entropy


# --- chapters 5 and 6: score matching on two moons, the NCSN on eight Gaussians ---------------
# Both full runs take minutes: a short run of each recipe from the shell must be bit-identical
# to a short run of its ``train`` function and match the start of the shipped loss histories;
# the shipped networks must have the properties the chapters state.
_SCORE_SHORT = 10
_MOONS_BOUNDS = ((-1.75, 2.75), (-1.25, 1.75))


@pytest.mark.slow
def test_moons_score_matching_short_run_from_the_shell_is_bit_identical(tmp_path):
    from_shell = _run_from_shell("moons_score_matching", tmp_path / "short.pt",
                                 "--steps", str(_SCORE_SHORT))
    _, stored = recipes.load("moons_score_matching")
    assert from_shell["config"] == {**stored["config"], "steps": _SCORE_SHORT,
                                    "fine_steps": 0}
    for method in moons_score_matching.METHODS:
        model, losses = moons_score_matching.train_method(method, from_shell["config"])
        shell_state = from_shell["models"][method]
        assert set(shell_state) == set(model.state_dict()), method
        for name, value in model.state_dict().items():
            assert torch.equal(shell_state[name], value), (method, name)
        assert torch.equal(from_shell["losses"][method], losses), method
        torch.testing.assert_close(losses, stored["losses"][method][:_SCORE_SHORT], rtol=1e-5,
                                   atol=1e-5, msg=lambda m, method=method: f"{method}: {m}")


def test_moons_score_matching_checkpoint_has_the_properties_chapter_5_states():
    """Full loss histories; every fit within 0.2 nats (KL on a grid) of the true two-moons
    density and less than half as far as the best single Gaussian."""
    models, stored = recipes.load("moons_score_matching")
    config = stored["config"]
    total = config["steps"] + config["fine_steps"]
    true_density = moons_score_matching.moons_density(config["noise"])
    data = moons_score_matching.make_data().double()
    gauss = el.Gaussian(data.mean(0), torch.cov(data.T, correction=0))
    kl_gauss = float(el.kl_divergence_grid(true_density, gauss, _MOONS_BOUNDS, resolution=120))
    assert list(models) == list(moons_score_matching.METHODS)
    for method, model in models.items():
        assert stored["losses"][method].shape == (total,), method
        assert bool(torch.isfinite(stored["losses"][method]).all()), method
        kl = float(el.kl_divergence_grid(true_density, model, _MOONS_BOUNDS, resolution=120))
        assert kl < 0.2 and kl < 0.5 * kl_gauss, (method, kl, kl_gauss)


@pytest.mark.slow
def test_eight_gaussians_ncsn_short_run_from_the_shell_is_bit_identical(tmp_path):
    from_shell = _run_from_shell("eight_gaussians_ncsn", tmp_path / "short.pt",
                                 "--steps", str(_SCORE_SHORT))
    in_process = eight_gaussians_ncsn.train(steps=_SCORE_SHORT)
    assert from_shell["config"] == in_process["config"]
    assert set(from_shell["model"]) == set(in_process["model"])
    for name, value in in_process["model"].items():
        assert torch.equal(from_shell["model"][name], value), name
    assert torch.equal(from_shell["losses"], in_process["losses"])
    _, stored = recipes.load("eight_gaussians_ncsn")
    torch.testing.assert_close(in_process["losses"], stored["losses"][:_SCORE_SHORT],
                               rtol=1e-5, atol=1e-5)


def test_eight_gaussians_ncsn_checkpoint_has_the_properties_chapter_6_states():
    """The learned score is within 8% (relative squared error) of the exact smoothed score
    -∇E_σ at every level of the ladder, on points drawn from each smoothed density."""
    net, stored = recipes.load("eight_gaussians_ncsn")
    config = stored["config"]
    assert stored["losses"].shape == (config["steps"] + config["fine_steps"],)
    target = eight_gaussians_ncsn.target_mixture()
    g = torch.Generator().manual_seed(0)
    for sigma in eight_gaussians_ncsn.sigmas():
        smoothed = target.smoothed(sigma)
        x = smoothed.sample(1000, generator=g)
        exact = smoothed.score(x)
        with torch.no_grad():
            learned = net(x.float(), sigma).double()
        rel = float((learned - exact).square().sum(1).mean() / exact.square().sum(1).mean())
        assert rel < 0.08, (sigma, rel)


# --- chapter 9: the joint energy model on 8x8 digits ------------------------------------------
# The full run (3000 steps, several CPU minutes) is too long for a test: a short run from the
# shell must be bit-identical to a short run of ``train`` and match the start of the shipped
# history, and the shipped network must have the properties chapter 9 states, recomputed
# from the network alone. The MNIST path is checked with a small fake data set (torchvision
# and the download are not available offline).
@pytest.mark.slow
def test_digits_jem_short_run_from_the_shell_is_bit_identical(tmp_path):
    from_shell = _run_from_shell("digits_jem", tmp_path / "short.pt", "--steps", str(_SHORT))
    in_process = digits_jem.train(steps=_SHORT)
    assert from_shell["config"] == in_process["config"] == {**digits_jem.CONFIG,
                                                            "steps": _SHORT}
    assert set(from_shell["state_dict"]) == set(in_process["state_dict"])
    for name, value in in_process["state_dict"].items():
        assert torch.equal(from_shell["state_dict"][name], value), name
    assert torch.equal(from_shell["buffer"], in_process["buffer"])
    assert torch.equal(from_shell["history"], in_process["history"])
    assert from_shell["metrics"] == in_process["metrics"]
    _, stored = recipes.load("digits_jem")
    torch.testing.assert_close(in_process["history"], stored["history"][:_SHORT], rtol=0.0,
                               atol=1e-5)


def test_digits_jem_checkpoint_is_made_with_the_recipe_settings():
    _, stored = recipes.load("digits_jem")
    config = stored["config"]
    assert stored["history"].shape == (config["steps"], 3)
    assert bool(torch.isfinite(stored["history"]).all())
    assert set(stored["state_dict"]) == set(digits_jem.make_model().state_dict())
    buffer = stored["buffer"]
    assert buffer.shape == (config["n_saved"], 1, 8, 8)
    assert float(buffer.min()) >= 0.0 and float(buffer.max()) <= 1.0
    assert stored["train_seconds"] > 0


@pytest.mark.slow
def test_digits_jem_shipped_metrics_are_those_of_the_shipped_network():
    """evaluate() on the loaded network gives the metrics stored at the end of training."""
    model, stored = recipes.load("digits_jem")
    fresh = digits_jem.evaluate(model, digits_jem.make_data(stored["config"]), stored["config"])
    assert fresh.keys() == stored["metrics"].keys()
    for name, value in stored["metrics"].items():
        assert abs(fresh[name] - value) < 1e-6, (name, fresh[name], value)


@pytest.mark.slow
def test_digits_jem_checkpoint_has_the_properties_chapter_9_states():
    """Accurate on held-out digits; -E(x) flags noise, negatives and rotated digits but not
    upside-down ones; Langevin inpainting (8 chains averaged) beats the mean-image fill."""
    model, stored = recipes.load("digits_jem")
    config, metrics = stored["config"], stored["metrics"]
    assert metrics["accuracy"] > 0.97
    assert metrics["auroc_noise"] > 0.99 and metrics["auroc_negative"] > 0.99
    assert metrics["auroc_rotated"] > 0.9
    assert metrics["auroc_upside_down"] < 0.7
    data = digits_jem.make_data(config)
    x = data.x_test[:120]
    g = torch.Generator().manual_seed(0)
    missing = torch.rand(x.shape, generator=g) < 0.5
    chains, holes = x.repeat(8, 1, 1, 1), missing.repeat(8, 1, 1, 1)
    z = el.langevin(lambda z: model(torch.where(holes, z, chains)),
                    torch.rand(chains.shape, generator=g), step_size=config["step_size"],
                    n_steps=200, noise_scale=config["noise_scale"], bounds=(0.0, 1.0),
                    generator=g).samples
    filled = torch.where(holes, z, chains).view(8, *x.shape).mean(0)
    mean_fill = torch.where(missing, data.x_train.mean(0), x)

    def rmse(y: torch.Tensor) -> float:
        return float(((y - x) ** 2 * missing).sum() / missing.sum()) ** 0.5

    assert rmse(filled) < 0.95 * rmse(mean_fill), (rmse(filled), rmse(mean_fill))


def test_digits_jem_split_is_fixed_and_covers_every_digit_once():
    data = digits_jem.make_data()
    assert data.x_train.shape == (1797 - 360, 1, 8, 8) and data.x_test.shape == (360, 1, 8, 8)
    everything, labels = el.digits(as_images=True, return_labels=True)
    pooled = torch.cat([data.x_train, data.x_test]).flatten(1)
    for a, b in zip(torch.unique(pooled, dim=0, return_counts=True),
                    torch.unique(everything.flatten(1), dim=0, return_counts=True), strict=True):
        assert torch.equal(a, b)                  # the same images, as often
    assert torch.equal(torch.cat([data.y_train, data.y_test]).bincount(), labels.bincount())
    assert torch.equal(digits_jem.make_data().x_test, data.x_test)
    assert torch.bincount(data.y_test, minlength=10).min() >= 20      # every class is tested


def _fake_mnist(n_train: int = 24, n_test: int = 12) -> digits_jem.LabelledImages:
    g = torch.Generator().manual_seed(0)
    return digits_jem.LabelledImages(
        torch.rand(n_train, 1, 28, 28, generator=g), torch.arange(n_train) % 10,
        torch.rand(n_test, 1, 28, 28, generator=g), torch.arange(n_test) % 10)


def test_digits_jem_mnist_configuration_trains_on_28x28_images():
    config = {**digits_jem.MNIST_CONFIG, "features": 4, "batch_size": 8, "buffer_size": 16,
              "n_steps": 2, "n_saved": 4, "eval_chains": 3, "eval_steps": 2}
    result = digits_jem.train(config, steps=3, data=_fake_mnist())
    assert result["history"].shape == (3, 3)
    assert result["buffer"].shape == (4, 1, 28, 28)
    model = digits_jem.make_model(result["config"])
    model.load_state_dict(result["state_dict"])
    assert model.logits(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert set(result["metrics"]) >= {"accuracy", "auroc_noise", "auroc_upside_down"}
    with pytest.raises(ValueError, match=r"expects images of shape \(1, 8, 8\)"):
        digits_jem.train(steps=1, data=_fake_mnist())


def test_digits_jem_mnist_without_torchvision_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torchvision", None)       # as if not installed
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(ImportError, match=r"pip install torchvision.*--dataset digits"):
        digits_jem.mnist(tmp_path)
    out = tmp_path / "m.pt"
    with pytest.raises(ImportError, match="needs torchvision"):
        digits_jem.main(["--dataset", "mnist", "--steps", "1", "--out", str(out)])
    assert not out.exists()


def test_digits_jem_command_line_options(capsys, tmp_path):
    with pytest.raises(SystemExit):
        digits_jem.main(["--help"])
    usage = capsys.readouterr().out
    for option in ("--steps", "--seed", "--out", "--device", "--progress", "--dataset",
                   "--ablation"):
        assert option in usage
    for argv in (["--dataset", "cifar"], ["--ablation", "--dataset", "mnist"],
                 ["--ablation", "--seed", "2"]):
        with pytest.raises(SystemExit) as exc:
            digits_jem.main([*argv, "--out", str(tmp_path / "x.pt")])
        assert exc.value.code == 2, argv


def test_digits_jem_rejects_bad_data_with_a_clear_error():
    x, y = torch.rand(4, 1, 8, 8), torch.arange(4)
    with pytest.raises(TypeError, match=r"x_train must be a floating tensor of images"):
        digits_jem.LabelledImages(x.flatten(1), y, x, y)
    with pytest.raises(TypeError, match=r"y_test must be an int64 tensor of labels"):
        digits_jem.LabelledImages(x, y, x, y.float())
    with pytest.raises(ValueError, match="x_train holds 4 images but y_train 3 labels"):
        digits_jem.LabelledImages(x, y[:3], x, y)
    with pytest.raises(ValueError, match="dataset must be 'digits' or 'mnist'"):
        digits_jem.make_data({**digits_jem.CONFIG, "dataset": "cifar"})
    with pytest.raises(ValueError, match="steps must be >= 1"):
        digits_jem.train(steps=0)


# --- chapter 9's stabiliser study -------------------------------------------------------------
# The shipped study (nine variants, 1000 steps each) took about 50 CPU minutes: too long for a
# test. The shipped file must be the study chapter 9 reads, and a short study, from the shell
# and in-process, must have exactly its format, each row being what train() gives for the
# variant's configuration.
_CHEAP_EVAL = {"eval_chains": 8, "eval_steps": 3}


def test_digits_jem_shipped_ablation_is_the_study_of_the_recipe():
    study = digits_jem.load_ablation()
    _, stored = recipes.load("digits_jem")
    assert study["steps"] == digits_jem.ABLATION_STEPS < stored["config"]["steps"]
    assert study["base"] == digits_jem.CONFIG == stored["config"]
    assert study["variants"] == digits_jem.ABLATION
    assert list(study["metrics"]) == list(digits_jem.ABLATION)
    for name, row in study["metrics"].items():
        assert row.keys() == stored["metrics"].keys(), name
        assert all(torch.isfinite(torch.tensor(v)) for v in row.values()), name
        assert 0.0 <= row["accuracy"] <= 1.0 and 0.0 <= row["auroc_noise"] <= 1.0, name
    assert study["train_seconds"] > 0


@pytest.mark.slow
def test_digits_jem_short_ablation_has_the_format_of_the_shipped_one(tmp_path, monkeypatch):
    base = {**digits_jem.CONFIG, **_CHEAP_EVAL}
    short = digits_jem.ablate(steps=2, base=base)
    shipped = digits_jem.load_ablation()
    assert short.keys() | {"train_seconds"} == shipped.keys()
    assert short["variants"] == shipped["variants"] and short["base"] == base
    assert list(short["metrics"]) == list(shipped["metrics"])
    for name, row in short["metrics"].items():
        assert row.keys() == shipped["metrics"][name].keys(), name
    for name in ("all stabilisers", "step x10, clipped"):   # each row is train()'s metrics
        alone = digits_jem.train({**base, **digits_jem.ABLATION[name]}, steps=2)
        assert alone["metrics"] == short["metrics"][name], name
    # the command line writes what load_ablation reads (two variants, to stay short)
    monkeypatch.setattr(digits_jem, "CONFIG", base)
    two = {k: digits_jem.ABLATION[k] for k in ("all stabilisers", "no regulariser")}
    monkeypatch.setattr(digits_jem, "ABLATION", two)
    out = tmp_path / "study.pt"
    written = digits_jem.main(["--ablation", "--steps", "2", "--out", str(out)])
    read = digits_jem.load_ablation(out)
    assert read["metrics"] == written["metrics"] == {k: short["metrics"][k] for k in two}
    assert read["train_seconds"] == written["train_seconds"] > 0


def test_digits_jem_ablation_rejects_bad_input_with_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="steps must be >= 1"):
        digits_jem.ablate(steps=0)
    with pytest.raises(ValueError, match=r"variant 'typo' changes unknown settings \['alpah'\]"):
        digits_jem.ablate(steps=1, variants={"typo": {"alpah": 0.0}})
    with pytest.raises(FileNotFoundError, match="no ablation file"):
        digits_jem.load_ablation(tmp_path / "missing.pt")
    torch.save({"config": digits_jem.CONFIG}, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="is not a stabiliser study of digits_jem"):
        digits_jem.load_ablation(tmp_path / "checkpoint.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="cannot be read"):
        digits_jem.load_ablation(tmp_path / "junk.pt")


class _FakeMNIST:
    """Stands in for ``torchvision.datasets.MNIST``: 5 training or 3 test digits of known
    grey levels, and a record of each call (root, split, download)."""

    calls: ClassVar[list[tuple[str, bool, bool]]] = []

    def __init__(self, root: str, train: bool, download: bool) -> None:
        _FakeMNIST.calls.append((root, train, download))
        n = 5 if train else 3
        self.data = torch.arange(n * 28 * 28).reshape(n, 28, 28).remainder(256).to(torch.uint8)
        self.targets = torch.arange(n) % 10


def test_mnist_loaders_of_both_recipes_read_torchvision_s_digits(monkeypatch, tmp_path):
    datasets = types.ModuleType("torchvision.datasets")
    datasets.MNIST = _FakeMNIST  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", types.ModuleType("torchvision"))
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)
    _FakeMNIST.calls.clear()
    vectors = digits_ebm.mnist(tmp_path)
    labelled = digits_jem.mnist(tmp_path)
    assert _FakeMNIST.calls == [(str(tmp_path), True, True), (str(tmp_path), True, True),
                                (str(tmp_path), False, True)]
    expected = _FakeMNIST(str(tmp_path), True, False).data.float() / 255
    assert vectors.dtype == torch.float32 and vectors.shape == (5, 784)
    torch.testing.assert_close(vectors, expected.reshape(5, 784), rtol=0, atol=0)
    torch.testing.assert_close(labelled.x_train, expected.unsqueeze(1), rtol=0, atol=0)
    assert labelled.x_test.shape == (3, 1, 28, 28) and labelled.y_test.tolist() == [0, 1, 2]
    assert labelled.y_train.dtype == torch.int64 and labelled.image_shape == (1, 28, 28)
