r"""Noise-contrastive estimation as a training method: :class:`NCE`.

The loss is :func:`ebmlab.objectives.nce_loss`: the model learns to tell each minibatch
from fresh samples of a fixed, normalised noise distribution, and its energy carries a
learnable log-normaliser that ends up estimating :math:`\log Z`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import torch
from torch import nn

from ..._validation import check_number
from ...objectives import nce_loss
from .base import KeywordOptions, Method

__all__ = ["NCE", "NoiseDistribution"]


@runtime_checkable
class NoiseDistribution(Protocol):
    """What NCE needs of its noise: samples and a *normalised* log-density.

    :class:`ebmlab.energies.Gaussian` and :class:`ebmlab.energies.GaussianMixture` are
    noise distributions.
    """

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples, shape ``(n, *event_shape)``."""
        ...

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\log p_n(x)`, shape ``(B,)``."""
        ...


@dataclass(kw_only=True)
class NCE(KeywordOptions, Method):
    r"""Noise-contrastive estimation (Gutmann & Hyvärinen 2010, 2012).

    At every step draws :math:`\nu B` samples of the noise :math:`p_n` for a minibatch of
    :math:`B` data points and minimises the logistic loss of the classifier with log-odds
    :math:`-E_\theta(u) - \log p_n(u) - \log\nu` (:func:`~ebmlab.objectives.nce_loss`).
    The energy must include a learnable log-normaliser (e.g. a parameter :math:`c` added
    to it): NCE fits :math:`e^{-E_\theta}` as a *normalised* density, so :math:`c`
    converges to :math:`\log Z` of the rest of the energy.

    Parameters
    ----------
    noise : NoiseDistribution
        The noise: ``sample(n, generator=...)`` and a normalised ``log_prob(x)``, on the
        data's device and dtype, positive wherever the data are (e.g. a
        :class:`~ebmlab.energies.Gaussian` with the data's mean and a wider covariance).
        It is fixed: its parameters are not trained.
    noise_ratio : float
        :math:`\nu`, noise samples per data point (``> 0``; ``ceil(noise_ratio * B)``
        samples per minibatch). A larger ratio lowers the variance of the estimate at
        the cost of more energy evaluations.

    Examples
    --------
    A Gaussian model with a learnable mean and log-normaliser, fitted by NCE:

    >>> import torch
    >>> import ebmlab as el
    >>> class Model(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.mu = torch.nn.Parameter(torch.zeros(1))
    ...         self.c = torch.nn.Parameter(torch.zeros(()))  # log-normaliser
    ...     def forward(self, x):
    ...         return 0.5 * ((x - self.mu) ** 2).sum(-1) + self.c
    >>> data = 1.0 + torch.randn(2000, 1, generator=torch.Generator().manual_seed(0))
    >>> noise = el.Gaussian(torch.zeros(1), torch.tensor([[4.0]]))
    >>> model = Model()
    >>> hist = el.fit(model, data, NCE(noise=noise, noise_ratio=2.0), steps=300,
    ...               batch_size=500, lr=0.05, optimizer="adam", seed=0, progress=False)
    >>> abs(model.mu.item() - 1.0) < 0.1, abs(model.c.item() - 0.9189) < 0.1  # log sqrt(2 pi)
    (True, True)
    """

    name: ClassVar[str] = "nce"
    hint: ClassVar[str] = "a noise distribution closer to the data or a smaller lr"
    noise: NoiseDistribution
    noise_ratio: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.noise, NoiseDistribution):
            raise TypeError("noise must have sample(n, generator=...) and a normalised "
                            f"log_prob(x), e.g. ebmlab.Gaussian; got {type(self.noise).__name__}.")
        self.noise_ratio = check_number(self.noise_ratio, "noise_ratio", greater_than=0)

    def init(self, model: nn.Module, data: torch.Tensor,
             generator: torch.Generator | None) -> None:
        """Check once that the noise's samples and log-density fit the data."""
        y = self.noise.sample(2, generator=generator)
        if not isinstance(y, torch.Tensor) or tuple(y.shape[1:]) != tuple(data.shape[1:]):
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"the noise's samples must have the data's event shape "
                             f"{tuple(data.shape[1:])}: noise.sample(2) gave {got}.")
        log_p = self.noise.log_prob(data[:64])
        if not bool(torch.isfinite(log_p).all()):
            raise ValueError("the noise's log_prob is not finite at the data: NCE needs a noise "
                             "density positive wherever the data are (e.g. a wider Gaussian).")

    def loss(self, model: nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        n_noise = math.ceil(self.noise_ratio * len(batch))
        noise = self.noise.sample(n_noise, generator=generator).to(batch)
        return nce_loss(model, batch, noise, self.noise.log_prob, validate=False)
