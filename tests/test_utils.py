"""Tests of ebmlab.utils: seeding and noise helpers, against torch's own functions."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from ebmlab.utils import make_generator, rand_like, randn_like, seed_everything, seed_torch


@pytest.mark.parametrize("ours, torchs", [(rand_like, torch.rand), (randn_like, torch.randn)])
@pytest.mark.parametrize("shape", [(3,), (100, 64), (7, 3, 2), (40,)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_noise_helpers_draw_what_torch_draws(ours, torchs, shape, dtype):
    like = torch.zeros(shape, dtype=dtype)
    got = ours(like, make_generator(1))
    assert torch.equal(got, torchs(shape, generator=make_generator(1), dtype=dtype))
    assert got.shape == like.shape and got.dtype == dtype and got.is_contiguous()


def test_noise_helpers_ignore_the_layout_and_grad_of_the_template():
    like = torch.zeros(5, 4, requires_grad=True).T  # non-contiguous, requires grad
    got = rand_like(like, make_generator(2))
    assert got.is_contiguous() and not got.requires_grad
    assert torch.equal(got, torch.rand(4, 5, generator=make_generator(2)))
    # no generator: torch's global one
    torch.manual_seed(3)
    a = randn_like(like)
    torch.manual_seed(3)
    assert torch.equal(a, torch.randn(4, 5))


def test_seed_torch_seeds_like_manual_seed():
    seed_torch(11)
    ours = torch.rand(6), torch.randn(3)
    torch.manual_seed(11)
    assert all(torch.equal(a, b) for a, b in zip(ours, (torch.rand(6), torch.randn(3)),
                                                 strict=True))
    with pytest.raises(TypeError, match=r"seed must be an int, got 1\.5"):
        seed_torch(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed must be an int"):
        seed_torch(True)


def test_seed_everything_seeds_python_numpy_and_torch():
    def draw(g: torch.Generator) -> tuple:
        legacy = np.random.rand()  # noqa: NPY002 - the global state is what it seeds
        return random.random(), legacy, torch.rand(2), torch.rand(2, generator=g)

    first = draw(seed_everything(4))
    second = draw(seed_everything(4))
    assert first[:2] == second[:2]
    assert torch.equal(first[2], second[2]) and torch.equal(first[3], second[3])
