r"""Denoising score matching: one noise level (Vincent 2011) and a ladder (NCSN).

* :func:`denoising_score_matching_loss` — regress the score of the noised data
  :math:`\tilde x = x + \sigma\epsilon` onto :math:`-(\tilde x - x)/\sigma^2`;
* :func:`multiscale_dsm_loss` — the noise-conditional objective of Song & Ermon (2019).

The model may be an energy (score by autograd) or a score network, conditional on
:math:`\sigma` or not.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .._validation import (
    check_choice,
    check_continuous_model,
    check_generator,
    check_model_data,
    check_noise_conditional,
    check_noise_level,
    check_noise_levels,
)
from ..utils import randint, randn_like

__all__ = ["denoising_score_matching_loss", "multiscale_dsm_loss"]


# ---------------------------------------------------------------------------- scores


def _is_conditional(model: object) -> bool:
    """Whether ``model`` takes a noise level as second argument, from its signature.

    True when the callable has a parameter named ``sigma``, ``sigmas``, ``noise_level`` or
    ``noise_std`` after the first, or at least two required positional parameters.
    """
    fn = model.forward if isinstance(model, nn.Module) else model
    try:
        sig = inspect.signature(fn)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    positional = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.name in ("sigma", "sigmas", "noise_level", "noise_std") for p in positional[1:]):
        return True
    return sum(p.default is p.empty for p in positional) >= 2


def _model_score(model: Callable[..., torch.Tensor], x_t: torch.Tensor, sigma: torch.Tensor,
                 model_type: str, conditional: bool, name: str) -> torch.Tensor:
    """Score of ``model`` at ``x_t``: the output of a score network or ``-dE/dx`` of an energy."""
    x_in = x_t.detach().requires_grad_(model_type != "score")
    out = model(x_in, sigma) if conditional else model(x_in)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{name} must return a tensor, got {type(out).__name__}.")
    batch = x_t.shape[0]
    kind = model_type
    if kind == "auto":
        if out.shape == (batch,):
            kind = "energy"
        elif out.shape == x_t.shape:
            kind = "score"
        else:
            raise ValueError(
                f"{name} returned shape {tuple(out.shape)} for input {tuple(x_t.shape)}: expected "
                f"({batch},) (an energy) or {tuple(x_t.shape)} (a score network).")
    if kind == "score":
        if out.shape != x_t.shape:
            raise ValueError(f"{name} (a score network) must return the input's shape "
                             f"{tuple(x_t.shape)}, got {tuple(out.shape)}.")
        return out
    if out.shape != (batch,):
        raise ValueError(f"{name} (an energy) must return shape ({batch},), "
                         f"got {tuple(out.shape)}.")
    (g,) = torch.autograd.grad(out.sum(), x_in, create_graph=True, allow_unused=True)
    return -g if g is not None else torch.zeros_like(x_in)


# ---------------------------------------------------------------------------- denoising


def denoising_score_matching_loss(model: Callable[..., torch.Tensor], x: torch.Tensor,
                                  sigma: float | torch.Tensor, *,
                                  generator: torch.Generator | None = None,
                                  model_type: str = "auto",
                                  conditional: bool | None = None) -> torch.Tensor:
    r"""Denoising score matching (Vincent 2011) at noise level :math:`\sigma`.

    With :math:`\tilde x = x + \sigma\epsilon`, :math:`\epsilon\sim\mathcal N(0, I)`,

    .. math:: J_\text{DSM}(\theta) = \frac1B\sum_b \tfrac12 \Big\| s_\theta(\tilde x_b)
              + \frac{\tilde x_b - x_b}{\sigma^2}\Big\|^2,

    whose expectation equals explicit score matching against the smoothed density
    :math:`q_\sigma = p_\text{data} * \mathcal N(0, \sigma^2 I)` up to a constant: the minimiser
    is the score of :math:`q_\sigma`, not of :math:`p_\text{data}`.

    Parameters
    ----------
    model : callable
        An energy ``(B, *shape) -> (B,)`` (score by autograd, differentiable) or a score
        network ``(B, *shape) -> (B, *shape)``; noise-conditional models are called as
        ``model(x_tilde, sigma)`` with ``sigma`` a ``(B,)`` tensor.
    x : torch.Tensor
        Clean continuous data ``(B, *event_shape)``.
    sigma : float or torch.Tensor
        Noise level (> 0): a number, a 0-d tensor, or one level per example ``(B,)``.
    generator : torch.Generator, optional
        Source of the noise.
    model_type : {"auto", "energy", "score"}
        How to read the model's output; ``"auto"`` decides by shape: ``(B,)`` is an
        energy, the shape of ``x`` a score.
    conditional : bool, optional
        Whether to pass ``sigma`` to the model. Default: decided from the signature
        (a parameter named ``sigma``, or two required positional parameters).

    Returns
    -------
    torch.Tensor
        0-d loss.

    Raises
    ------
    ValueError
        ``sigma <= 0``, discrete models, bad data, or an output of the wrong shape.
    """
    check_continuous_model(model, "denoising_score_matching_loss")
    x = check_model_data(x, "x", model, min_event_dims=1)
    sig = check_noise_level(sigma, x)
    check_choice(model_type, "model_type", ("auto", "energy", "score"))
    check_generator(generator)
    cond = _is_conditional(model) if conditional is None else bool(conditional)
    eps = randn_like(x, generator)
    sig_b = sig.reshape(-1, *([1] * (x.dim() - 1)))  # one level per example, broadcast
    x_t = x.detach() + sig_b * eps
    with torch.enable_grad():
        s = _model_score(model, x_t, sig, model_type, cond, "model")
        resid = s + eps / sig_b
        return 0.5 * resid.reshape(x.shape[0], -1).square().sum(1).mean()


def multiscale_dsm_loss(score_model: Callable[..., torch.Tensor], x: torch.Tensor,
                        sigmas: Sequence[float] | torch.Tensor, *,
                        generator: torch.Generator | None = None,
                        model_type: str = "auto") -> torch.Tensor:
    r"""Noise-conditional denoising score matching of NCSN (Song & Ermon 2019).

    Each example draws a level :math:`\sigma_i` uniformly from the ladder and contributes
    :math:`\lambda(\sigma_i)\,\tfrac12\|s_\theta(\tilde x, \sigma_i)
    + (\tilde x - x)/\sigma_i^2\|^2`
    with :math:`\lambda(\sigma) = \sigma^2`, i.e.
    :math:`\tfrac12\|\sigma_i s_\theta(\tilde x, \sigma_i) + \epsilon\|^2`; the expectation is
    :math:`\frac1L\sum_i \lambda(\sigma_i)\, J_\text{DSM}^{\sigma_i}(\theta)`, every level on a
    comparable scale.

    Parameters
    ----------
    score_model : callable
        ``score_model(x_tilde, sigma)`` with ``sigma`` a ``(B,)`` tensor, returning a score
        ``(B, *shape)`` or an energy ``(B,)`` (score by autograd; see ``model_type``).
    x : torch.Tensor
        Clean continuous data ``(B, *event_shape)``.
    sigmas : sequence of float or 1-d tensor
        The noise ladder :math:`\sigma_1 > \dots > \sigma_L` (positive; order irrelevant).
    generator : torch.Generator, optional
        Source of the levels and of the noise.
    model_type : {"auto", "energy", "score"}
        As in :func:`denoising_score_matching_loss`.

    Returns
    -------
    torch.Tensor
        0-d loss.

    Raises
    ------
    ValueError
        Non-positive levels, discrete models, bad data, outputs of the wrong shape.
    """
    check_continuous_model(score_model, "multiscale_dsm_loss")
    check_noise_conditional(score_model, "score_model")
    x = check_model_data(x, "x", score_model, min_event_dims=1)
    ladder = torch.tensor(check_noise_levels(sigmas), dtype=x.dtype, device=x.device)
    check_choice(model_type, "model_type", ("auto", "energy", "score"))
    check_generator(generator)
    batch = x.shape[0]
    sig = ladder[randint(ladder.numel(), batch, x.device, generator)]
    eps = randn_like(x, generator)
    sig_b = sig.reshape(-1, *([1] * (x.dim() - 1)))  # one level per example, broadcast
    x_t = x.detach() + sig_b * eps
    with torch.enable_grad():
        s = _model_score(score_model, x_t, sig, model_type, True, "score_model")
        resid = sig_b * s + eps
        return 0.5 * resid.reshape(batch, -1).square().sum(1).mean()
