"""The book's stored checkpoints are reproduced by the scripts that made them.

Each chapter that loads a trained model (``book/checkpoints/*.pt``) has a training
script in ``book/scripts/``; these tests rerun the script's ``train`` function (the full
configuration when it is fast, otherwise a short run with an identical configuration)
and compare the result with the stored file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch

import ebmlab as el

from .conftest import ROOT

SCRIPTS = ROOT / "book" / "scripts"


def _script(name: str) -> ModuleType:
    path = SCRIPTS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_book_script_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- chapter 4: the RBM on binarized digits -----------------------------------------------
def test_digits_rbm_checkpoint_is_reproduced_by_its_script():
    """The full CD-1 run (about 10 s single-threaded) gives the stored parameters."""
    script = _script("train_digits_rbm")
    stored = torch.load(script.CHECKPOINT, map_location="cpu", weights_only=True)
    assert stored["config"] == script.CONFIG
    fresh = script.train()
    assert fresh["config"] == stored["config"]
    assert set(fresh["state_dict"]) == set(stored["state_dict"]) == {
        "weight", "visible_bias", "hidden_bias"}
    for name, value in stored["state_dict"].items():
        assert value.dtype == torch.float64, name
        torch.testing.assert_close(fresh["state_dict"][name], value, rtol=0.0, atol=1e-9,
                                   msg=lambda m, name=name: f"{name}: {m}")
    rbm, _ = script.load()
    assert rbm.n_visible == 64 and rbm.n_hidden == stored["config"]["n_hidden"]
    assert not any(p.requires_grad for p in rbm.parameters())


def test_digits_rbm_checkpoint_is_small_and_better_than_independent_pixels():
    """What chapter 4 relies on: a file of tens of kB holding an RBM that beats the
    independent-pixel model (its AIS base) on the training digits."""
    script = _script("train_digits_rbm")
    assert Path(script.CHECKPOINT).stat().st_size < 100_000
    rbm, _ = script.load()
    data = script.make_data()
    base = script.data_log_odds(data)
    m = torch.sigmoid(base)
    independent = (data * torch.log(m) + (1 - data) * torch.log1p(-m)).sum(1).mean()
    g = torch.Generator().manual_seed(0)
    est = el.metrics.ais_log_likelihood(rbm, data, n_temperatures=300, n_runs=50,
                                        base_visible_bias=base, generator=g)
    assert float(est.stderr) < 0.2
    assert float(est.log_likelihood) > float(independent) + 5.0


# --- chapter 7: the deep EBM on 8x8 digits --------------------------------------------------
# The full run (6000 steps, about 3 CPU minutes) is too long for a test: a short run of the
# script from the shell must be bit-identical to a short run of its ``train`` function, and
# its first losses must match the start of the stored loss history.
_SHORT = 12


def test_digits_ebm_short_run_of_the_script_is_bit_identical(tmp_path):
    import subprocess
    import sys

    script = _script("train_digits_ebm")
    out = tmp_path / "short.pt"
    subprocess.run([sys.executable, str(SCRIPTS / "train_digits_ebm.py"), "--steps",
                    str(_SHORT), "--out", str(out)], check=True, capture_output=True,
                   timeout=300)
    from_shell = torch.load(out, map_location="cpu", weights_only=True)
    in_process = script.train(_SHORT)
    assert from_shell["config"] == in_process["config"] == {**script.CONFIG, "steps": _SHORT}
    assert set(from_shell["state_dict"]) == set(in_process["state_dict"])
    for name, value in in_process["state_dict"].items():
        assert torch.equal(from_shell["state_dict"][name], value), name
    assert torch.equal(from_shell["buffer"], in_process["buffer"])
    assert torch.equal(from_shell["loss"], in_process["loss"])
    stored = torch.load(script.CHECKPOINT, map_location="cpu", weights_only=True)
    torch.testing.assert_close(in_process["loss"], stored["loss"][:_SHORT], rtol=0.0,
                               atol=1e-4)


def test_digits_ebm_checkpoint_is_small_and_made_with_the_script_settings():
    script = _script("train_digits_ebm")
    assert Path(script.CHECKPOINT).stat().st_size < 300_000
    stored = torch.load(script.CHECKPOINT, map_location="cpu", weights_only=True)
    assert stored["config"] == script.CONFIG
    assert stored["loss"].shape == (script.CONFIG["steps"],)
    assert bool(torch.isfinite(stored["loss"]).all())
    assert set(stored["state_dict"]) == set(script.make_model().state_dict())
    buffer = stored["buffer"]
    assert buffer.shape == (script.CONFIG["n_saved"], 64)
    assert float(buffer.min()) >= 0.0 and float(buffer.max()) <= 1.0
    model, _, _ = script.load()
    assert not any(p.requires_grad for p in model.parameters())


def test_digits_ebm_checkpoint_has_the_properties_chapter_7_states():
    """Noise far above the data, samples (buffer and fresh chains) at the data's level."""
    script = _script("train_digits_ebm")
    model, buffer, checkpoint = script.load()
    config = checkpoint["config"]
    g = torch.Generator().manual_seed(0)
    data = script.make_data()
    noise = torch.rand(len(data), 64, generator=g)
    fresh = el.langevin(model, torch.rand(36, 64, generator=g), step_size=config["step_size"],
                        noise_scale=config["noise_scale"], n_steps=300,
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


# --- chapters 5 and 6: score matching on two moons, the NCSN on eight Gaussians -------------
# Both full runs take minutes: a short run of each script from the shell must be bit-identical
# to a short run of its ``train`` function and match the start of the stored loss histories;
# the stored networks must have the properties the chapters state.
_SCORE_SHORT = 10
_MOONS_BOUNDS = ((-1.75, 2.75), (-1.25, 1.75))


def _short_run_from_shell(name: str, out: Path) -> dict:
    import subprocess
    import sys

    subprocess.run([sys.executable, str(SCRIPTS / f"{name}.py"), "--steps", str(_SCORE_SHORT),
                    "--out", str(out)], check=True, capture_output=True, timeout=300)
    return torch.load(out, map_location="cpu", weights_only=True)


def test_ch05_toy_short_run_of_the_script_is_bit_identical(tmp_path):
    script = _script("train_ch05_toy")
    from_shell = _short_run_from_shell("train_ch05_toy", tmp_path / "short.pt")
    stored = torch.load(script.CHECKPOINT, map_location="cpu", weights_only=True)
    assert from_shell["config"] == stored["config"] == script.CONFIG
    for method in script.METHODS:
        model, losses = script.train(method, steps=_SCORE_SHORT)
        shell_state = from_shell["models"][method]
        assert set(shell_state) == set(model.state_dict()), method
        for name, value in model.state_dict().items():
            assert torch.equal(shell_state[name], value), (method, name)
        assert torch.equal(from_shell["losses"][method], losses), method
        torch.testing.assert_close(losses, stored["losses"][method][:_SCORE_SHORT], rtol=1e-5,
                                   atol=1e-5, msg=lambda m, method=method: f"{method}: {m}")


def test_ch05_toy_checkpoint_has_the_properties_chapter_5_states():
    """Small; full loss histories; every fit within 0.2 nats (KL on a grid) of the true
    two-moons density and less than half as far as the best single Gaussian."""
    script = _script("train_ch05_toy")
    assert Path(script.CHECKPOINT).stat().st_size < 300_000
    stored = torch.load(script.CHECKPOINT, map_location="cpu", weights_only=True)
    config = stored["config"]
    total = config["steps"] + config["fine_steps"]
    true_density = script.moons_density(config["noise"])
    data = script.make_data().double()
    gauss = el.Gaussian(data.mean(0), torch.cov(data.T, correction=0))
    kl_gauss = float(el.kl_divergence_grid(true_density, gauss, _MOONS_BOUNDS, resolution=120))
    for method in script.METHODS:
        assert stored["losses"][method].shape == (total,), method
        assert bool(torch.isfinite(stored["losses"][method]).all()), method
        model = script.make_model()
        model.load_state_dict(stored["models"][method])
        kl = float(el.kl_divergence_grid(true_density, model, _MOONS_BOUNDS, resolution=120))
        assert kl < 0.2 and kl < 0.5 * kl_gauss, (method, kl, kl_gauss)


def test_ch06_ncsn_short_run_of_the_script_is_bit_identical(tmp_path):
    script = _script("train_ch06_ncsn")
    from_shell = _short_run_from_shell("train_ch06_ncsn", tmp_path / "short.pt")
    stored = torch.load(script.CHECKPOINT, map_location="cpu", weights_only=True)
    assert from_shell["config"] == stored["config"] == script.CONFIG
    net, losses = script.train(steps=_SCORE_SHORT)
    assert set(from_shell["model"]) == set(net.state_dict())
    for name, value in net.state_dict().items():
        assert torch.equal(from_shell["model"][name], value), name
    assert torch.equal(from_shell["losses"], losses)
    torch.testing.assert_close(losses, stored["losses"][:_SCORE_SHORT], rtol=1e-5, atol=1e-5)


def test_ch06_ncsn_checkpoint_has_the_properties_chapter_6_states():
    """The learned score is within 8% (relative squared error) of the exact smoothed score
    -∇E_σ at every level of the ladder, on points drawn from each smoothed density."""
    script = _script("train_ch06_ncsn")
    assert Path(script.CHECKPOINT).stat().st_size < 300_000
    stored = torch.load(script.CHECKPOINT, map_location="cpu", weights_only=True)
    config = stored["config"]
    assert stored["losses"].shape == (config["steps"] + config["fine_steps"],)
    net = script.make_model()
    net.load_state_dict(stored["model"])
    target = script.target_mixture()
    g = torch.Generator().manual_seed(0)
    for sigma in script.sigmas():
        smoothed = target.smoothed(sigma)
        x = smoothed.sample(1000, generator=g)
        exact = smoothed.score(x)
        with torch.no_grad():
            learned = net(x.float(), sigma).double()
        rel = float((learned - exact).square().sum(1).mean() / exact.square().sum(1).mean())
        assert rel < 0.08, (sigma, rel)
