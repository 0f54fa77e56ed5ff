r"""Noise-contrastive estimation (Gutmann & Hyvärinen 2010, 2012).

:func:`nce_loss` fits an energy by logistic regression of data against samples of a
noise distribution whose normalised density is known. The model's log-density is
:math:`-E_\theta(x)` itself: the energy carries its own learnable log-normaliser, which
the classification learns along with the shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .._validation import check_batch, check_callable, check_model_data, evaluate_energy
from ..energies.base import EnergyLike

__all__ = ["nce_loss"]

LogProb = Callable[[torch.Tensor], torch.Tensor]


def _noise_log_prob(noise_log_prob: LogProb, x: torch.Tensor, name: str,
                    validate: bool) -> torch.Tensor:
    """``noise_log_prob(x)``, checked to be a ``(B,)`` tensor (finite when ``validate``)."""
    out = noise_log_prob(x)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"noise_log_prob must return a torch.Tensor, got {type(out).__name__} "
                        f"for {name}.")
    if out.shape != (x.shape[0],):
        raise ValueError(f"noise_log_prob must map {name} of shape {tuple(x.shape)} to log "
                         f"densities of shape ({x.shape[0]},), got {tuple(out.shape)}.")
    if validate and not bool(torch.isfinite(out).all()):
        raise ValueError(
            f"noise_log_prob returned non-finite values at {name} "
            f"({int((~torch.isfinite(out)).sum())} of {x.shape[0]}); the noise density must "
            "be positive and finite wherever the data and the noise samples lie (NCE "
            "needs p_n(x) > 0 wherever p_data(x) > 0).")
    return out


def nce_loss(energy: EnergyLike, x_data: torch.Tensor, x_noise: torch.Tensor,
             noise_log_prob: LogProb, *, validate: bool = True) -> torch.Tensor:
    r"""Noise-contrastive estimation loss of Gutmann & Hyvärinen (2010, 2012).

    NCE trains the model as a classifier that tells the data :math:`x_1,\dots,x_{B_d}`
    from noise samples :math:`y_1,\dots,y_{B_n} \sim p_n`, where :math:`p_n` is a
    distribution whose *normalised* log-density we can evaluate. The model's
    log-density is minus the energy, with no partition function added:

    .. math:: \log p_\theta(x) = -E_\theta(x),

    so the energy must carry a learnable log-normaliser, e.g.
    :math:`E_\theta(x) = E^0_\theta(x) + c` with a parameter :math:`c`. At the optimum
    :math:`c` estimates :math:`\log Z = \log\int e^{-E^0_\theta(x)}dx` (the model
    normalises itself). With the noise ratio :math:`\nu = B_n/B_d`, the log-odds that
    :math:`u` is data rather than noise are

    .. math:: G_\theta(u) - \log\nu, \qquad
              G_\theta(u) = -E_\theta(u) - \log p_n(u),

    and the loss is the logistic (binary cross-entropy) loss of that classifier,
    normalised per data point as in Gutmann & Hyvärinen (2012):

    .. math:: \mathcal L(\theta) = -\frac{1}{B_d}\Big[\sum_{t=1}^{B_d}
              \log\sigma\big(G_\theta(x_t) - \log\nu\big)
              + \sum_{t=1}^{B_n} \log\sigma\big(\log\nu - G_\theta(y_t)\big)\Big],

    with :math:`\sigma` the logistic function. It is computed with
    :func:`torch.nn.functional.logsigmoid`, so it stays finite for any finite energies.
    When the model family contains :math:`p_\text{data}` and :math:`p_n > 0` wherever
    :math:`p_\text{data} > 0`, its population minimiser is
    :math:`e^{-E_\theta} = p_\text{data}`, normaliser included.

    Parameters
    ----------
    energy : Energy or callable
        Maps ``(B, *event_shape)`` to ``(B,)``; :math:`-E_\theta` is the model's
        *normalised* log-density, so it includes a learnable log-normaliser.
    x_data : torch.Tensor
        Data batch ``(B_d, *event_shape)``, floating point.
    x_noise : torch.Tensor
        Noise samples ``(B_n, *event_shape)`` drawn from :math:`p_n`, on the device of
        ``x_data``; ``B_n`` may differ from ``B_d`` (the noise ratio is
        :math:`\nu = B_n / B_d`).
    noise_log_prob : callable
        :math:`\log p_n`, the noise's *normalised* log-density, mapping
        ``(B, *event_shape)`` to ``(B,)``, finite at the data and at the noise samples
        (e.g. the ``log_prob`` of a :class:`~ebmlab.energies.Gaussian` or of a
        :mod:`torch.distributions` distribution with independent event dimensions).
    validate : bool
        Check the batches (floating point, finite, non-empty, matching event shapes and
        devices) and that ``noise_log_prob`` is finite at them. These checks read values
        back from the device; a training loop that validated its data once may pass
        ``False`` (shapes and types are still checked).

    Returns
    -------
    torch.Tensor
        0-d loss. Gradients flow to whatever the energy, ``noise_log_prob`` and the
        batches depend on; in NCE only the energy is trained (the noise is fixed).

    Raises
    ------
    TypeError
        ``energy`` or ``noise_log_prob`` is not callable, a batch is not a floating-point
        tensor, or ``noise_log_prob`` returns something other than a tensor.
    ValueError
        Bad batches (empty, non-finite, different event shapes or devices), or an energy
        or noise log-density of the wrong shape, or a noise log-density that is not finite
        at the data.

    Notes
    -----
    The classifier's posterior :math:`\sigma(G_\theta(u) - \log\nu)` is the Bayes posterior
    :math:`P(\text{data}\mid u)` when the data are :math:`p_\theta` and the classes have
    prior odds :math:`1:\nu`, which is why its optimum is the data density. NCE is
    consistent for every :math:`\nu > 0`; its asymptotic covariance tends to that of
    maximum likelihood as :math:`\nu\to\infty`, and its variance grows when the noise is
    far from the data, because the classification becomes too easy.

    References: M. Gutmann and A. Hyvärinen, "Noise-contrastive estimation: a new
    estimation principle for unnormalized statistical models", AISTATS 2010; and
    "Noise-contrastive estimation of unnormalized statistical models, with applications
    to natural image statistics", JMLR 13, 2012.

    Examples
    --------
    When the model equals the noise, no classifier beats chance and the loss is
    :math:`(1+\nu)\log(1+\nu) - \nu\log\nu`, here :math:`2\log 2` for :math:`\nu = 1`:

    >>> import math
    >>> import torch
    >>> from ebmlab.objectives import nce_loss
    >>> log_normal = lambda x: -0.5 * (x ** 2).sum(1) - 0.5 * math.log(2 * math.pi)
    >>> energy = lambda x: -log_normal(x)
    >>> x, y = torch.randn(100, 1), torch.randn(100, 1)
    >>> round(float(nce_loss(energy, x, y, log_normal)), 4)
    1.3863

    Fitting the log-normaliser :math:`c` of :math:`E(x) = x^2/2 + c` to standard normal
    data against a wider Gaussian noise recovers :math:`\log\sqrt{2\pi} \approx 0.919`:

    >>> g = torch.Generator().manual_seed(0)
    >>> noise = torch.distributions.Normal(0.0, 2.0)
    >>> x = torch.randn(4000, 1, generator=g)
    >>> y = 2.0 * torch.randn(16000, 1, generator=g)
    >>> c = torch.zeros((), requires_grad=True)
    >>> opt = torch.optim.Adam([c], lr=0.05)
    >>> for _ in range(300):
    ...     opt.zero_grad()
    ...     loss = nce_loss(lambda u: 0.5 * (u ** 2).sum(1) + c, x, y,
    ...                     lambda u: noise.log_prob(u).sum(1))
    ...     loss.backward()
    ...     opt.step()
    >>> round(c.item(), 1)
    0.9
    """
    check_callable(energy, "energy", "mapping (B, *event_shape) to energies (B,)")
    check_callable(noise_log_prob, "noise_log_prob",
                   "mapping (B, *event_shape) to the noise's log-densities (B,)")
    if validate:
        x_data = check_model_data(x_data, "x_data", energy)
        x_noise = check_model_data(x_noise, "x_noise", energy)
    else:
        x_data, x_noise = check_batch(x_data, "x_data"), check_batch(x_noise, "x_noise")
    if x_data.shape[1:] != x_noise.shape[1:]:
        raise ValueError(f"x_data and x_noise must have the same event shape, got "
                         f"{tuple(x_data.shape)} and {tuple(x_noise.shape)}.")
    if x_data.device != x_noise.device:
        raise ValueError(f"x_data and x_noise must be on the same device, got "
                         f"{x_data.device} and {x_noise.device}.")
    if x_data.shape[0] == 0 or x_noise.shape[0] == 0:
        raise ValueError(f"x_data and x_noise must each hold at least one example, got "
                         f"shapes {tuple(x_data.shape)} and {tuple(x_noise.shape)}.")

    log_nu = math.log(x_noise.shape[0] / x_data.shape[0])
    logit_data = (-evaluate_energy(energy, x_data)
                  - _noise_log_prob(noise_log_prob, x_data, "x_data", validate) - log_nu)
    logit_noise = (-evaluate_energy(energy, x_noise)
                   - _noise_log_prob(noise_log_prob, x_noise, "x_noise", validate) - log_nu)
    # -(1/B_d) [sum log σ(logit) over data + sum log σ(-logit) over noise]
    n_data = x_data.shape[0]
    return -(F.logsigmoid(logit_data).sum() + F.logsigmoid(-logit_noise).sum()) / n_data
