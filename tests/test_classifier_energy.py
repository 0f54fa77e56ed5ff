"""Tests of the joint energy model :class:`ebmlab.ConvClassifierEnergy` (Grathwohl et al. 2020).

References: the definitions written out in float64 in the test (log of a sum of exponentials,
Bayes' rule p(y | x) = p(x, y) / p(x)), :func:`torch.autograd.grad` for scores, and the layer
names of :class:`ebmlab.ConvEnergy` before the two classes shared their trunk.
"""

from __future__ import annotations

import pytest
import torch

import ebmlab
from ebmlab import ConvClassifierEnergy, ConvEnergy, Energy

F64 = torch.float64


def _model(**options) -> ConvClassifierEnergy:
    torch.manual_seed(0)
    model = ConvClassifierEnergy(**{"image_size": 8, "n_classes": 10, "features": 4,
                                    **options}).double()
    with torch.no_grad():                      # logits of order one, not near zero
        model.net[-1].weight.mul_(30.0)
        model.net[-1].bias.copy_(torch.linspace(-1.0, 1.0, model.n_classes, dtype=F64))
    return model


def _images(n: int = 6, size: int = 8, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed), dtype=F64)


def test_marginal_energy_is_minus_log_sum_exp_of_the_logits():
    model, x = _model().requires_grad_(False), _images()
    logits = model.logits(x)
    assert logits.shape == (6, 10)
    assert float(logits.std()) > 0.1           # the check below is not trivially satisfied
    by_hand = -torch.log(torch.exp(logits).sum(dim=1))
    torch.testing.assert_close(model(x), by_hand, rtol=0.0, atol=1e-12)


def test_class_energies_give_the_classifier_by_bayes_rule():
    """p(y | x) = exp(-E(x, y)) / exp(-E(x)) is the softmax of the logits and sums to one."""
    model, x = _model(), _images()
    joint = torch.stack([model.class_energy(x, k) for k in range(10)], dim=1)
    torch.testing.assert_close(joint, -model.logits(x), rtol=0.0, atol=0.0)
    posterior = torch.exp(model(x)[:, None] - joint)
    torch.testing.assert_close(posterior.sum(dim=1), torch.ones(6, dtype=F64))
    torch.testing.assert_close(posterior, torch.softmax(model.logits(x), dim=1))
    labels = torch.tensor([3, 0, 9, 9, 1, 5])
    torch.testing.assert_close(model.class_energy(x, labels), joint[torch.arange(6), labels])


def test_conditional_energy_is_an_energy_with_the_class_score():
    model, x = _model(), _images()
    labels = torch.tensor([2, 7, 7, 0, 1, 4])
    energy = model.conditional(labels)
    assert isinstance(energy, Energy) and energy.event_shape == (1, 8, 8)
    torch.testing.assert_close(energy(x), model.class_energy(x, labels))
    leaf = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.class_energy(leaf, labels).sum(), leaf)
    torch.testing.assert_close(energy.score(x), -grad)
    # the model is a submodule, so samplers can freeze its parameters
    assert {id(p) for p in energy.parameters()} == {id(p) for p in model.parameters()}


def test_class_conditional_langevin_moves_towards_the_class():
    """A few Langevin steps on E(x, y) lower E(x, y) and do not touch the parameters."""
    model, x = _model(), _images(32)
    before = model.class_energy(x, 4).detach()
    out = ebmlab.langevin(model.conditional(4), x, step_size=1e-3, n_steps=20, noise_scale=0.0)
    after = model.class_energy(out.samples, 4).detach()
    assert bool((after < before).all())
    assert all(p.requires_grad for p in model.parameters())


def test_any_image_size_and_channels_and_spectral_norm():
    model = ConvClassifierEnergy(image_size=28, n_classes=3, channels=2, features=4)
    x = torch.rand(2, 2, 28, 28)
    assert model.logits(x).shape == (2, 3) and model(x).shape == (2,)
    sn = ConvClassifierEnergy(features=4, spectral_norm=True)
    assert sn.spectral_norm
    assert all(hasattr(layer, "parametrizations") for layer in sn.net
               if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)))


def test_conv_energy_keeps_its_layer_names():
    """ConvEnergy shares its trunk with ConvClassifierEnergy; saved state dicts still load."""
    names = [f"net.{i}.{p}" for i in (0, 2, 4, 6, 8, 11) for p in ("weight", "bias")]
    names.remove("net.11.bias")                 # the one-number output layer has no bias
    assert list(ConvEnergy(8, features=4).state_dict()) == names
    assert ConvEnergy(8, features=4).net[11].weight.shape == (1, 16 * 2 * 2)


@pytest.mark.parametrize(("options", "error", "match"), [
    ({"n_classes": 1}, ValueError, "n_classes must be an int >= 2"),
    ({"n_classes": 2.0}, TypeError, "n_classes must be an int"),
    ({"image_size": 3}, ValueError, "image_size must be an int >= 4"),
    ({"spectral_norm": 1}, TypeError, "spectral_norm must be a bool"),
    ({"activation": "relu"}, ValueError, "activation must be one of"),
])
def test_constructor_errors(options, error, match):
    with pytest.raises(error, match=match):
        ConvClassifierEnergy(**options)


def test_label_and_input_errors():
    model, x = _model(), _images(3)
    with pytest.raises(ValueError, match=r"y must be a class in \[0, 10\), got 10"):
        model.class_energy(x, 10)
    with pytest.raises(ValueError, match="y must be a class"):
        model.conditional(-1)
    with pytest.raises(TypeError, match="y must be an int or a 1-D integer tensor"):
        model.class_energy(x, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match="y must be an int or a 1-D integer tensor"):
        model.conditional(True)
    with pytest.raises(ValueError, match="y holds 2 labels for a batch of 3 images"):
        model.class_energy(x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"shape \(B, 1, 8, 8\)"):
        model.logits(torch.rand(3, 64, dtype=F64))


def test_exported_from_the_top_level():
    assert ebmlab.ConvClassifierEnergy is ebmlab.energies.ConvClassifierEnergy
    assert "ConvClassifierEnergy" in ebmlab.__all__
