r"""Neural energies and noise-conditional score/energy networks.

Design choices follow deep-EBM practice (Du & Mordatch 2019; Song & Ermon 2019):
smooth activations (SiLU, softplus, ELU, GELU, tanh) so that scores and their
derivatives are continuous (score matching differentiates through the score; ReLU
networks have a zero Laplacian almost everywhere), **no batch normalisation**
(it couples the energies of a batch, which breaks per-sample energies and MCMC),
and optional spectral normalisation (Miyato et al. 2018) to bound the Lipschitz
constant. The output layer starts with small weights so that an untrained
energy is nearly flat.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .._validation import check_bool, check_int, check_number
from ._common import check_input, check_parameter_dtype
from .base import Energy, EnergyFunction, _autograd_score

__all__ = [
    "ConvClassifierEnergy",
    "ConvEnergy",
    "MLPEnergy",
    "NoiseConditionalEnergy",
    "NoiseConditionalScoreNet",
]

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
}
#: Factor applied to the default initial weights of every output layer.
_OUTPUT_INIT_SCALE = 0.1


def _activation(name: object) -> nn.Module:
    if not isinstance(name, str) or name.lower() not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)} (smooth activations: "
                         f"scores must be differentiable), got {name!r}.")
    return _ACTIVATIONS[name.lower()]()


def _check_hidden(hidden: object) -> tuple[int, ...]:
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        hidden = (hidden,)
    if not isinstance(hidden, Sequence) or len(hidden) == 0:
        raise ValueError(f"hidden must be a non-empty sequence of layer widths, got {hidden!r}.")
    return tuple(check_int(h, "hidden widths", minimum=1) for h in hidden)


def _maybe_sn(layer: nn.Module, enabled: bool) -> nn.Module:
    return _spectral_norm(layer) if enabled else layer


def _output_layer(in_features: int, out_features: int, sn: bool) -> nn.Module:
    layer = nn.Linear(in_features, out_features, bias=out_features > 1)
    with torch.no_grad():
        layer.weight.mul_(_OUTPUT_INIT_SCALE)
        if layer.bias is not None:
            layer.bias.zero_()
    return _maybe_sn(layer, sn)


class MLPEnergy(Energy):
    r"""Multilayer-perceptron energy :math:`E_\theta: \mathbb R^d \to \mathbb R`.

    Parameters
    ----------
    dim : int
        Input dimension :math:`d`.
    hidden : sequence of int
        Widths of the hidden layers.
    activation : {"silu", "softplus", "elu", "gelu", "tanh"}
        Smooth non-linearity between layers.
    spectral_norm : bool
        Wrap every linear layer in spectral normalisation (Miyato et al. 2018), so
        each has operator norm 1 and :math:`E_\theta` is Lipschitz.

    Examples
    --------
    >>> energy = MLPEnergy(2, hidden=(32, 32))
    >>> energy(torch.randn(5, 2)).shape
    torch.Size([5])
    """

    def __init__(self, dim: int, hidden: Sequence[int] = (128, 128), activation: str = "silu",
                 spectral_norm: bool = False) -> None:
        super().__init__()
        dim = check_int(dim, "dim", minimum=1)
        widths = _check_hidden(hidden)
        sn = check_bool(spectral_norm, "spectral_norm")
        _activation(activation)
        layers: list[nn.Module] = []
        fan_in = dim
        for width in widths:
            layers += [_maybe_sn(nn.Linear(fan_in, width), sn), _activation(activation)]
            fan_in = width
        layers.append(_output_layer(fan_in, 1, sn))
        self.net = nn.Sequential(*layers)
        self.event_shape: tuple[int, ...] = (dim,)
        self.spectral_norm = sn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_input(x, self.event_shape)
        check_parameter_dtype(x, self)
        return self.net(x).squeeze(-1)


def _conv_trunk(image_size: int, channels: int, features: int, activation: str,
                spectral_norm: bool) -> tuple[list[nn.Module], int, bool]:
    """The convolutional stages shared by the image energies, after checking their options.

    A 3x3 convolution with ``features`` channels, then two down-sampling stages (a 4x4
    stride-2 convolution doubling the channels, then a 3x3 convolution), each followed
    by the activation; the last layer is a :class:`~torch.nn.Flatten`. Returns the
    layers, the width of their flattened output and the spectral-norm flag.
    """
    image_size = check_int(image_size, "image_size", minimum=4)
    channels = check_int(channels, "channels", minimum=1)
    features = check_int(features, "features", minimum=1)
    sn = check_bool(spectral_norm, "spectral_norm")
    _activation(activation)
    f1, f2, f3 = features, 2 * features, 4 * features
    layers: list[nn.Module] = [_maybe_sn(nn.Conv2d(channels, f1, 3, padding=1), sn),
                               _activation(activation)]
    size = image_size
    for c_in, c_out in ((f1, f2), (f2, f3)):
        layers += [_maybe_sn(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), sn),
                   _activation(activation),
                   _maybe_sn(nn.Conv2d(c_out, c_out, 3, padding=1), sn),
                   _activation(activation)]
        size //= 2
    layers.append(nn.Flatten())
    return layers, f3 * size * size, sn


class ConvEnergy(Energy):
    r"""Convolutional image energy :math:`E_\theta: \mathbb R^{C\times H\times W} \to \mathbb R`.

    Three stages: a 3x3 convolution with ``features`` channels, then two
    down-sampling stages (a 4x4 stride-2 convolution doubling the channels and a
    3x3 convolution), 8x8 → 4x4 → 2x2 or 28x28 → 14x14 → 7x7, then a linear map
    of the flattened features to one number. Smooth activations, no
    normalisation layers (Du & Mordatch 2019).

    Parameters
    ----------
    image_size : int
        Side of the square images (8 for scikit-learn's digits, 28 for MNIST-sized
        images; any size >= 4 works).
    channels : int
        Number of input channels :math:`C`.
    features : int
        Channels of the first stage (then 2x and 4x).
    activation : {"silu", "softplus", "elu", "gelu", "tanh"}
        Smooth non-linearity.
    spectral_norm : bool
        Spectral normalisation of every convolution and of the output layer.

    Examples
    --------
    >>> energy = ConvEnergy(image_size=8)
    >>> energy(torch.rand(3, 1, 8, 8)).shape
    torch.Size([3])
    """

    def __init__(self, image_size: int = 8, channels: int = 1, features: int = 32,
                 activation: str = "silu", spectral_norm: bool = False) -> None:
        super().__init__()
        layers, width, sn = _conv_trunk(image_size, channels, features, activation,
                                        spectral_norm)
        self.net = nn.Sequential(*layers, _output_layer(width, 1, sn))
        self.event_shape: tuple[int, ...] = (channels, image_size, image_size)
        self.spectral_norm = sn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_input(x, self.event_shape)
        check_parameter_dtype(x, self)
        return self.net(x).squeeze(-1)


class ConvClassifierEnergy(Energy):
    r"""A convolutional classifier read as an energy-based model (JEM, Grathwohl et al. 2020).

    The network maps an image to ``n_classes`` logits :math:`f_\theta(x) \in \mathbb R^K`
    (the stages of :class:`ConvEnergy`, then a linear map to :math:`K` numbers). Read as
    a classifier it gives :math:`p_\theta(y \mid x) = \operatorname{softmax}(f_\theta(x))_y`;
    read as an energy-based model of the pairs :math:`(x, y)` it gives

    .. math::

        E_\theta(x, y) = -f_\theta(x)[y], \qquad
        E_\theta(x) = -\log \sum_{y} e^{f_\theta(x)[y]},

    so that :math:`p_\theta(x, y) = e^{f_\theta(x)[y]}/Z(\theta)`, its marginal is
    :math:`p_\theta(x) = e^{-E_\theta(x)}/Z(\theta)` and the conditional
    :math:`p_\theta(y \mid x)` is the softmax, with :math:`Z` cancelling. The forward pass
    returns :math:`E_\theta(x)`, so the model is an :class:`Energy` like any other
    (samplers, objectives, metrics); :meth:`logits` gives the classifier and
    :meth:`conditional` the energy :math:`x \mapsto E_\theta(x, y)` of one class.

    Parameters
    ----------
    image_size, channels, features, activation, spectral_norm
        As for :class:`ConvEnergy` (8 for scikit-learn's digits, 28 for MNIST).
    n_classes : int
        Number of classes :math:`K \ge 2`.

    Examples
    --------
    >>> model = ConvClassifierEnergy(image_size=8, n_classes=10, features=8)
    >>> x = torch.rand(3, 1, 8, 8)
    >>> model.logits(x).shape, model(x).shape
    (torch.Size([3, 10]), torch.Size([3]))
    >>> torch.allclose(model(x), -model.logits(x).logsumexp(dim=1))
    True
    """

    def __init__(self, image_size: int = 8, n_classes: int = 10, channels: int = 1,
                 features: int = 32, activation: str = "silu",
                 spectral_norm: bool = False) -> None:
        super().__init__()
        n_classes = check_int(n_classes, "n_classes", minimum=2)
        layers, width, sn = _conv_trunk(image_size, channels, features, activation,
                                        spectral_norm)
        self.net = nn.Sequential(*layers, _output_layer(width, n_classes, sn))
        self.event_shape: tuple[int, ...] = (channels, image_size, image_size)
        self.n_classes = n_classes
        self.spectral_norm = sn

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        r"""The classifier's logits :math:`f_\theta(x)`, shape ``(B, n_classes)``."""
        x = check_input(x, self.event_shape)
        check_parameter_dtype(x, self)
        return self.net(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r"""The marginal energy :math:`E_\theta(x) = -\operatorname{logsumexp}_y f_\theta(x)[y]`."""
        return -torch.logsumexp(self.logits(x), dim=-1)

    def class_energy(self, x: torch.Tensor, y: int | torch.Tensor) -> torch.Tensor:
        r"""The joint energy :math:`E_\theta(x, y) = -f_\theta(x)[y]`, shape ``(B,)``.

        Parameters
        ----------
        x : torch.Tensor
            Images ``(B, C, H, W)``.
        y : int or torch.Tensor
            One class for the whole batch, or a class per image (an integer tensor of
            shape ``(B,)``), in ``[0, n_classes)``.
        """
        logits = self.logits(x)
        labels = self._check_labels(y, logits.shape[0], logits.device)
        return -logits.gather(1, labels[:, None]).squeeze(1)

    def conditional(self, y: int | torch.Tensor) -> Energy:
        r"""The energy of one class, :math:`x \mapsto E_\theta(x, y)`, as an :class:`Energy`.

        :math:`p_\theta(x \mid y) \propto e^{-E_\theta(x, y)}`, so Langevin dynamics on
        this energy draws class-conditional samples. The returned module holds this
        model as a submodule (samplers freeze its parameters while they run).

        Parameters
        ----------
        y : int or torch.Tensor
            One class, or a class per chain (an integer tensor ``(B,)``).
        """
        self._check_labels(y, None, None)
        return _ClassEnergy(self, y)

    def _check_labels(self, y: object, batch: int | None,
                      device: torch.device | None) -> torch.Tensor:
        k = self.n_classes
        if isinstance(y, torch.Tensor):
            if y.dtype not in (torch.int64, torch.int32) or y.dim() != 1:
                raise TypeError(f"y must be an int or a 1-D integer tensor of classes, got a "
                                f"{y.dtype} tensor of shape {tuple(y.shape)}.")
            if batch is not None and y.shape[0] != batch:
                raise ValueError(f"y holds {y.shape[0]} labels for a batch of {batch} images.")
            labels = y.long() if device is None else y.to(device=device, dtype=torch.long)
            return labels
        if isinstance(y, bool) or not isinstance(y, int):
            raise TypeError(f"y must be an int or a 1-D integer tensor of classes, got {y!r}.")
        if not 0 <= y < k:
            raise ValueError(f"y must be a class in [0, {k}), got {y}.")
        n = 1 if batch is None else batch
        return torch.full((n,), y, dtype=torch.long, device=device)


class _ClassEnergy(Energy):
    """``x -> model.class_energy(x, y)`` for a fixed class ``y`` (see ``conditional``)."""

    def __init__(self, model: ConvClassifierEnergy, y: int | torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.y = y
        self.event_shape = model.event_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.class_energy(x, self.y)


def _sigma_column(sigma: object, x: torch.Tensor) -> torch.Tensor:
    """Noise levels as a ``(B, 1)`` tensor with the dtype and device of ``x``.

    A Python number is checked to be positive; a tensor is not (that would
    synchronise with the device) and must be 0-d, ``(B,)`` or ``(B, 1)``.
    """
    b = x.shape[0]
    if isinstance(sigma, torch.Tensor):
        if sigma.dim() == 0:
            return sigma.to(device=x.device, dtype=x.dtype).expand(b, 1)
        if sigma.shape in ((b,), (b, 1)):
            return sigma.to(device=x.device, dtype=x.dtype).reshape(b, 1)
        raise ValueError(f"sigma must be a number, a 0-d tensor or a tensor of shape ({b},) "
                         f"matching the batch, got shape {tuple(sigma.shape)}.")
    return x.new_full((b, 1), check_number(sigma, "sigma", greater_than=0))


class _NoiseConditionalMLP(nn.Module):
    r"""MLP on :math:`x` whose every hidden layer gets an additive embedding of :math:`\log\sigma`.

    The embedding is :math:`[\log\sigma, \sin(\omega_k\log\sigma), \cos(\omega_k\log\sigma)]_k`
    with fixed geometric frequencies :math:`\omega_k` from 1/4 to 16.
    """

    frequencies: torch.Tensor

    def __init__(self, dim: int, out_features: int, hidden: tuple[int, ...], activation: str,
                 n_frequencies: int = 8) -> None:
        super().__init__()
        self.register_buffer("frequencies",
                             torch.logspace(math.log10(0.25), math.log10(16.0), n_frequencies))
        emb_dim = 1 + 2 * n_frequencies
        self.layers = nn.ModuleList()
        self.embeds = nn.ModuleList()
        fan_in = dim
        for width in hidden:
            self.layers.append(nn.Linear(fan_in, width))
            self.embeds.append(nn.Linear(emb_dim, width, bias=False))
            fan_in = width
        self.act = _activation(activation)
        self.out = _output_layer(fan_in, out_features, False)

    def forward(self, x: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
        angles = log_sigma * self.frequencies.to(x.dtype)
        emb = torch.cat((log_sigma, angles.sin(), angles.cos()), dim=-1)
        h = x
        for layer, embed in zip(self.layers, self.embeds, strict=True):
            h = self.act(layer(h) + embed(emb))
        return self.out(h)


class NoiseConditionalScoreNet(nn.Module):
    r"""Noise-conditional score network :math:`s_\theta(x,\sigma) \approx \nabla_x\log q_\sigma(x)`.

    An MLP conditioned on :math:`\log\sigma` (an embedding added to every hidden
    layer) whose output is divided by :math:`\sigma`, the parametrisation of
    Song & Ermon (2019): the true noise-conditional score scales like
    :math:`1/\sigma`. Train it with multi-noise denoising score matching and
    sample with annealed Langevin dynamics.

    Parameters
    ----------
    dim : int
        Data dimension :math:`d`.
    hidden : sequence of int
        Hidden widths.
    activation : {"silu", "softplus", "elu", "gelu", "tanh"}
        Smooth non-linearity.

    Examples
    --------
    >>> net = NoiseConditionalScoreNet(2, hidden=(32, 32))
    >>> net(torch.randn(4, 2), 0.5).shape
    torch.Size([4, 2])
    """

    def __init__(self, dim: int, hidden: Sequence[int] = (128, 128),
                 activation: str = "silu") -> None:
        super().__init__()
        dim = check_int(dim, "dim", minimum=1)
        self.net = _NoiseConditionalMLP(dim, dim, _check_hidden(hidden), activation)
        self.event_shape: tuple[int, ...] = (dim,)

    def forward(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """Score estimate, shape ``(B, d)``; ``sigma`` a number, 0-d or ``(B,)`` tensor."""
        x = check_input(x, self.event_shape)
        check_parameter_dtype(x, self)
        s = _sigma_column(sigma, x)
        return self.net(x, s.log()) / s


class NoiseConditionalEnergy(nn.Module):
    r"""Noise-conditional energy :math:`E_\theta(x, \sigma)` with score :math:`-\nabla_x E_\theta`.

    :math:`E_\theta(x, \sigma) = g_\theta(x, \log\sigma)/\sigma` with :math:`g_\theta` an
    MLP conditioned on :math:`\log\sigma`, so the score scales like :math:`1/\sigma`
    as in Song & Ermon (2019). Unlike a score network, it defines a density at
    every noise level (useful for MCMC with Metropolis corrections or for
    comparing energies); the score costs one backward pass.

    Parameters
    ----------
    dim : int
        Data dimension :math:`d`.
    hidden : sequence of int
        Hidden widths.
    activation : {"silu", "softplus", "elu", "gelu", "tanh"}
        Smooth non-linearity.
    """

    def __init__(self, dim: int, hidden: Sequence[int] = (128, 128),
                 activation: str = "silu") -> None:
        super().__init__()
        dim = check_int(dim, "dim", minimum=1)
        self.net = _NoiseConditionalMLP(dim, 1, _check_hidden(hidden), activation)
        self.event_shape: tuple[int, ...] = (dim,)

    def forward(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """Energies, shape ``(B,)``; ``sigma`` a number, 0-d or ``(B,)`` tensor."""
        x = check_input(x, self.event_shape)
        check_parameter_dtype(x, self)
        s = _sigma_column(sigma, x)
        return (self.net(x, s.log()) / s).squeeze(-1)

    def score(self, x: torch.Tensor, sigma: float | torch.Tensor, *,
              create_graph: bool = False) -> torch.Tensor:
        r"""The score :math:`-\nabla_x E_\theta(x, \sigma)`, shape ``(B, d)``.

        Parameters
        ----------
        x : torch.Tensor
            Points ``(B, d)``.
        sigma : float or torch.Tensor
            Noise level(s).
        create_graph : bool
            Keep the graph so the score can be differentiated with respect to the
            parameters (denoising score matching trains through it).
        """
        x = check_input(x, self.event_shape)
        return _autograd_score(lambda y: self(y, sigma), x, create_graph=create_graph)

    def at(self, sigma: float | torch.Tensor) -> Energy:
        """The energy at one noise level, :math:`x \\mapsto E_\\theta(x, \\sigma)`, as an Energy."""
        if not isinstance(sigma, torch.Tensor):
            _sigma_column(sigma, torch.zeros(1, 1))
        return EnergyFunction(lambda y: self(y, sigma), event_shape=self.event_shape)
