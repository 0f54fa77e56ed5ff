"""Tests of ebmlab.data against independent references.

References: the geometry of each toy set (noise-free points on the exact curves),
Monte-Carlo frequencies and means within 5 standard errors, brute-force enumeration
of all binary images (bars and stripes), scikit-learn's ``load_digits`` directly.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from ebmlab import data


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------- 2D toy sets


def test_two_moons_noise_free_points_lie_on_the_two_half_circles():
    x = data.two_moons(1001, noise=0.0, generator=_g(), dtype=torch.float64)
    assert x.shape == (1001, 2) and x.dtype == torch.float64
    outer = ((x[:, 0] ** 2 + x[:, 1] ** 2 - 1).abs() < 1e-9) & (x[:, 1] >= -1e-12)
    inner = (((x[:, 0] - 1) ** 2 + (x[:, 1] - 0.5) ** 2 - 1).abs() < 1e-9) & (x[:, 1] <= 0.5)
    assert bool((outer | inner).all())
    assert int(outer.sum()) == 501 and int(inner.sum()) == 500


def test_two_moons_noise_has_the_requested_std():
    clean = data.two_moons(20000, noise=0.0, generator=_g(3), dtype=torch.float64)
    noisy = data.two_moons(20000, noise=0.1, generator=_g(3), dtype=torch.float64)
    resid = noisy - clean  # same generator: same angles, then the noise
    sd = resid.std()
    assert abs(float(sd) - 0.1) < 5 * 0.1 / math.sqrt(2 * 40000)


def test_samplers_are_reproducible_and_depend_on_the_seed():
    for fn in (data.two_moons, data.rings, data.eight_gaussians, data.two_gaussians,
               data.checkerboard):
        a, b, c = fn(50, generator=_g(1)), fn(50, generator=_g(1)), fn(50, generator=_g(2))
        assert torch.equal(a, b), fn.__name__
        assert not torch.equal(a, c), fn.__name__
        assert a.shape == (50, 2) and a.dtype == torch.float32


def test_rings_radii_and_equal_mass():
    n = 30000
    x = data.rings(n, radii=(1.0, 2.0, 3.0), noise=0.0, generator=_g(), dtype=torch.float64)
    r = x.norm(dim=1)
    nearest = (r[:, None] - torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).abs()
    assert float(nearest.min(1).values.max()) < 1e-9
    frac = torch.stack([(r.round() == k).double().mean() for k in (1, 2, 3)])
    se = math.sqrt((1 / 3) * (2 / 3) / n)
    assert bool(((frac - 1 / 3).abs() < 5 * se).all())
    # angles uniform: mean of cos and sin near 0
    cos = x[:, 0] / r
    assert abs(float(cos.mean())) < 5 * math.sqrt(0.5 / n)


def test_eight_gaussians_component_means_and_std():
    n = 40000
    x, lab = data.eight_gaussians(n, radius=2.0, std=0.1, return_labels=True, generator=_g(),
                                  dtype=torch.float64)
    assert lab.shape == (n,) and lab.dtype == torch.int64
    for k in range(8):
        xk = x[lab == k]
        center = torch.tensor([2 * math.cos(2 * math.pi * k / 8),
                               2 * math.sin(2 * math.pi * k / 8)], dtype=torch.float64)
        assert float((xk.mean(0) - center).abs().max()) < 5 * 0.1 / math.sqrt(len(xk))
        assert abs(len(xk) / n - 1 / 8) < 5 * math.sqrt((1 / 8) * (7 / 8) / n)
    assert abs(float((x - x.new_tensor([[0.0, 0.0]])).norm(dim=1).mean()) - 2.0) < 0.01


def test_two_gaussians_weights_match_song_and_ermon():
    n = 20000
    x, lab = data.two_gaussians(n, return_labels=True, generator=_g())
    frac = float((x.sum(1) > 0).double().mean())  # (5,5) vs (-5,-5), separated by 7 std
    assert abs(frac - 0.8) < 5 * math.sqrt(0.16 / n)
    assert torch.equal((x.sum(1) > 0), lab == 0)


def test_checkerboard_points_are_uniform_on_the_dark_squares():
    n = 32000
    x = data.checkerboard(n, generator=_g(), dtype=torch.float64)
    assert bool((x.abs() <= 4).all())
    cell = torch.floor((x + 4) / 2).long()
    assert bool(((cell.sum(1) % 2) == 0).all())
    counts = torch.bincount(cell[:, 0] * 4 + cell[:, 1], minlength=16).double()
    dark = counts[counts > 0]
    assert dark.numel() == 8
    assert bool(((dark / n - 1 / 8).abs() < 5 * math.sqrt((1 / 8) * (7 / 8) / n)).all())


# ---------------------------------------------------------------------------- binary sets


def _is_bar_or_stripe(img: torch.Tensor) -> bool:
    rows_equal = bool((img == img[0:1, :]).all())  # every row the same: a set of columns (bars)
    cols_equal = bool((img == img[:, 0:1]).all())  # every column the same: stripes
    return rows_equal or cols_equal


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_bars_and_stripes_count_and_patterns(size):
    x = data.bars_and_stripes(size)
    expected = 2 ** (size + 1) - 2
    assert x.shape == (expected, size * size) and x.dtype == torch.float32
    assert torch.unique(x, dim=0).shape[0] == expected
    assert bool(((x == 0) | (x == 1)).all())
    for row in x:
        assert _is_bar_or_stripe(row.reshape(size, size))


def test_bars_and_stripes_equals_brute_force_filter_of_all_images():
    size = 3
    found = {
        bits for bits in itertools.product((0.0, 1.0), repeat=size * size)
        if _is_bar_or_stripe(torch.tensor(bits).reshape(size, size))
    }
    got = {tuple(r.tolist()) for r in data.bars_and_stripes(size)}
    assert got == found and len(found) == 14


def test_binarized_digits_matches_sklearn():
    x = data.binarized_digits()
    ref = load_digits().data / 16.0 > 0.5
    assert x.shape == (1797, 64) and x.dtype == torch.float32
    assert bool(((x == 0) | (x == 1)).all())
    assert np.array_equal(x.numpy().astype(bool), ref)
    raw = data.binarized_digits(8.0, scale=False, dtype=torch.float64)
    assert torch.equal(raw, x.double())
    imgs, labels = data.binarized_digits(as_images=True, return_labels=True)
    assert imgs.shape == (1797, 1, 8, 8) and torch.equal(imgs.reshape(1797, 64), x)
    assert np.array_equal(labels.numpy(), load_digits().target)


def test_digits_grey_levels_in_unit_interval():
    x = data.digits(dtype=torch.float64)
    assert x.shape == (1797, 64)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert np.allclose(x.numpy() * 16, load_digits().data)
    assert data.digits(as_images=True).shape == (1797, 1, 8, 8)


# ---------------------------------------------------------------------------- batching


def test_iterate_minibatches_visits_every_row_once():
    x = torch.arange(23.0)[:, None]
    batches = list(data.iterate_minibatches(x, 5, generator=_g()))
    assert [b.shape[0] for b in batches] == [5, 5, 5, 5, 3]
    seen = torch.cat(batches).flatten()
    assert sorted(seen.tolist()) == list(range(23))
    assert not torch.equal(seen, torch.arange(23.0))  # shuffled
    again = torch.cat(list(data.iterate_minibatches(x, 5, generator=_g()))).flatten()
    assert torch.equal(seen, again)


def test_iterate_minibatches_options():
    x = torch.arange(10.0)[:, None]
    plain = list(data.iterate_minibatches(x, 4, shuffle=False))
    assert [b.flatten().tolist() for b in plain] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [b.shape[0] for b in data.iterate_minibatches(x, 4, drop_last=True)] == [4, 4]
    y = torch.arange(10) * 10
    for xb, yb in data.iterate_minibatches((x, y), 3, generator=_g()):
        assert torch.equal(xb.flatten().long() * 10, yb)


# ---------------------------------------------------------------------------- bad inputs


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        data.two_moons(0)
    with pytest.raises(TypeError, match="n must be an int >= 1"):
        data.two_moons(2.5)
    with pytest.raises(ValueError, match="noise must be >= 0"):
        data.two_moons(10, noise=-1)
    with pytest.raises(TypeError, match="dtype must be a floating"):
        data.eight_gaussians(10, dtype=torch.int64)
    with pytest.raises(ValueError, match="radii must be"):
        data.rings(10, radii=(1.0, -2.0))
    with pytest.raises(ValueError, match="weights must be 2 values"):
        data.two_gaussians(10, weights=(0.5, 0.3, 0.2))
    with pytest.raises(ValueError, match="non-negative"):
        data.two_gaussians(10, weights=(1.5, -0.5))
    with pytest.raises(ValueError, match="n_squares must be an int >= 2"):
        data.checkerboard(10, n_squares=1)
    with pytest.raises(ValueError, match="size must be an int >= 1"):
        data.bars_and_stripes(0)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        list(data.iterate_minibatches(torch.zeros(4, 2), 0))
    with pytest.raises(ValueError, match="same length"):
        list(data.iterate_minibatches((torch.zeros(4, 2), torch.zeros(5)), 2))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        list(data.iterate_minibatches([[1.0, 2.0]], 2))
