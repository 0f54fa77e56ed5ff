r"""Likelihood-based methods: exact MLE, CD-:math:`k` and PCD.

The losses are :func:`ebmlab.objectives.exact_nll` and
:func:`ebmlab.objectives.contrastive_loss`; the negative samples come from the kernels
of :mod:`ebmlab.samplers` -- Gibbs sweeps (:class:`~ebmlab.samplers.GibbsKernel`) for
models with ``gibbs_step``, Langevin steps (:class:`~ebmlab.samplers.LangevinKernel`) for
continuous energies -- run by :func:`~ebmlab.samplers.run_chain`. For an
:class:`~ebmlab.energies.RBM` the gradient is the textbook closed form
:func:`~ebmlab.energies.contrastive_divergence_gradient`.
"""

from __future__ import annotations

import abc
import functools
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from ..._validation import check_choice, check_continuous_model, check_int, check_number
from ...energies.base import score_of
from ...energies.rbm import RBM, contrastive_divergence_gradient
from ...objectives import contrastive_loss, exact_nll
from ...samplers import GibbsKernel, Kernel, LangevinKernel, run_chain
from ...utils import bernoulli, frozen_parameters, rand_like
from .base import KeywordOptions, Method, set_gradient

__all__ = ["MAX_MCMC_STEPS", "ContrastiveDivergence", "ExactMLE", "PersistentCD"]

#: The most MCMC steps a method runs per update: CD-k with a larger k would take hours
#: per epoch (persistent chains, PCD, run long across updates instead).
MAX_MCMC_STEPS = 10_000


@dataclass(kw_only=True)
class ExactMLE(KeywordOptions, Method):
    r"""Exact maximum likelihood: minimise :math:`-\frac1B\sum_b \log p_\theta(x_b)`.

    The loss is :math:`\bar E_\theta(x) + \log Z(\theta)` with :math:`\log Z` exact
    (:func:`ebmlab.objectives.exact_nll`: enumeration for small discrete models, the
    closed form for analytic ones), so its gradient is the exact MLE gradient
    :math:`\nabla_\theta \bar E(x) - \mathbb{E}_{p_\theta}[\nabla_\theta E]`.

    Parameters
    ----------
    log_partition : optional
        Passed to :func:`~ebmlab.objectives.exact_nll` (``None``: computed there).
    """

    name: ClassVar[str] = "mle"
    log_partition: Any = None

    def init(self, model: nn.Module, data: torch.Tensor,
             generator: torch.Generator | None) -> None:
        discrete = getattr(model, "support", None) is not None or hasattr(model, "gibbs_step")
        if self.log_partition is None and not discrete and not hasattr(model, "log_partition"):
            raise ValueError(
                f"method 'mle' needs a tractable log Z: a small discrete model (RBM, "
                f"BoltzmannMachine, Ising) or one with log_partition(); "
                f"{type(model).__name__} has neither. Pass log_partition=... or use "
                "'cd', 'pcd', 'mcmc' or a score-matching method.")

    def loss(self, model: nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        return exact_nll(model, batch, log_partition=self.log_partition)


@dataclass(kw_only=True)
class _NegativePhase(KeywordOptions, Method):
    """What CD and PCD share: the options, the chains' kernel and the two gradient routes.

    Subclasses say where the chains of an update start and what persists
    (:meth:`negatives`).
    """

    hint: ClassVar[str] = "for Langevin negatives, a smaller step_size or a grad_clip option"
    k: int = 1
    sampler: str | None = None
    step_size: float = 0.01
    noise_scale: float | None = None
    grad_clip: float | None = None
    alpha: float = 0.0
    _kernel: Kernel[Any] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        check_int(self.k, "k", minimum=1, maximum=MAX_MCMC_STEPS)
        if self.sampler is not None:
            check_choice(self.sampler, "sampler", ("gibbs", "langevin"))
        check_number(self.step_size, "step_size", greater_than=0)
        if self.noise_scale is not None:
            check_number(self.noise_scale, "noise_scale", at_least=0)
        if self.grad_clip is not None:
            check_number(self.grad_clip, "grad_clip", greater_than=0)
        check_number(self.alpha, "alpha", at_least=0)

    def init(self, model: nn.Module, data: torch.Tensor,
             generator: torch.Generator | None) -> None:
        """Choose the chains' kernel: Gibbs sweeps when the model has them, else Langevin."""
        has_sweeps = hasattr(model, "gibbs_step")
        if self.sampler == "gibbs" and not has_sweeps:
            raise ValueError(f"sampler='gibbs' needs a model with gibbs_step (RBM, "
                             f"BoltzmannMachine, Ising); {type(model).__name__} has none.")
        if has_sweeps and self.sampler != "langevin":
            self._kernel = GibbsKernel(model)  # type: ignore[arg-type]
            return
        if getattr(model, "support", None) is not None and not has_sweeps:
            raise ValueError(
                f"method {self.name!r} needs either a model with gibbs_step (RBM, "
                "BoltzmannMachine, Ising) or a continuous energy (Langevin negatives); "
                f"{type(model).__name__} is discrete but has no gibbs_step.")
        check_continuous_model(model, f"method {self.name!r} with Langevin negatives")
        noise = math.sqrt(2 * self.step_size) if self.noise_scale is None else self.noise_scale
        self._kernel = LangevinKernel(functools.partial(score_of, model), self.step_size,
                                      noise, self.grad_clip)

    def _textbook(self, model: nn.Module) -> bool:
        """CD and PCD on an RBM with Gibbs chains and no regulariser: the closed form."""
        return isinstance(model, RBM) and isinstance(self._kernel, GibbsKernel) \
            and self.alpha == 0

    def _run(self, model: nn.Module, start: torch.Tensor, n_steps: int,
             generator: torch.Generator | None) -> torch.Tensor:
        """``n_steps`` of the chains' kernel from ``start``, without autograd."""
        kernel = self._kernel
        if kernel is None:
            raise RuntimeError(f"{type(self).__name__}.init(model, data, generator) must be "
                               "called before the method is used.")
        if n_steps == 0:
            return start
        # Langevin steps differentiate the energy in x only: its parameters are frozen.
        langevin = isinstance(kernel, LangevinKernel)
        with frozen_parameters(model if langevin else None), torch.no_grad():
            return run_chain(kernel.init(start), [(kernel, n_steps)],
                             generator=generator).state.position

    @abc.abstractmethod
    def _advance_chains(self, model: nn.Module, batch: torch.Tensor,
                        generator: torch.Generator | None) -> torch.Tensor:
        """Run this update's chains; return their end points :math:`\\tilde x`."""

    def _chains_advanced(self, model: nn.Module, chains: torch.Tensor,
                         hidden: torch.Tensor | None) -> None:
        """Told the end points and, for an RBM's textbook update, :math:`p(h \\mid \\tilde x)`."""

    def negatives(self, model: nn.Module, batch: torch.Tensor,
                  generator: torch.Generator | None) -> torch.Tensor:
        """This update's negative samples :math:`\\tilde x` (the chains' end points)."""
        chains = self._advance_chains(model, batch, generator)
        self._chains_advanced(model, chains, None)
        return chains

    def loss(self, model: nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        negatives = self.negatives(model, batch, generator)
        return contrastive_loss(model, batch, negatives, alpha=self.alpha, validate=False)

    def compute_gradient(self, model: nn.Module, batch: torch.Tensor,
                         generator: torch.Generator | None) -> torch.Tensor:
        """The loss and its gradient: the textbook closed form for an RBM (see
        :func:`~ebmlab.energies.contrastive_divergence_gradient`), else autograd."""
        if not self._textbook(model):
            return super().compute_gradient(model, batch, generator)
        chains = self._advance_chains(model, batch, generator)
        update = contrastive_divergence_gradient(model, batch, chains)  # type: ignore[arg-type]
        self._chains_advanced(model, chains, update.hidden_model)
        set_gradient(model, update.grads)
        return update.loss


@dataclass(kw_only=True)
class ContrastiveDivergence(_NegativePhase):
    r"""Contrastive divergence CD-:math:`k` (Hinton 2002).

    Each step starts one chain at every data point of the batch, runs :math:`k`
    MCMC steps -- block Gibbs sweeps (``model.gibbs_step``) for RBMs and Boltzmann
    machines, Langevin steps for continuous energies -- and uses the end points
    :math:`\tilde x` as negatives in :func:`~ebmlab.objectives.contrastive_loss`:
    the gradient is :math:`\nabla_\theta \bar E(x) - \nabla_\theta \bar E(\tilde x)`.
    For an :class:`~ebmlab.energies.RBM` (without the regulariser ``alpha``) it is
    computed in closed form, by :func:`ebmlab.energies.contrastive_divergence_gradient`.

    Parameters
    ----------
    k : int
        Number of Gibbs sweeps or Langevin steps per update, ``1 <= k <= 10000``.
    sampler : {"gibbs", "langevin"} or None
        ``None`` picks Gibbs when the model has ``gibbs_step``.
    step_size, noise_scale, grad_clip : float, optional
        Langevin settings (see :func:`ebmlab.samplers.langevin`).
    alpha : float
        Weight of the energy-magnitude regulariser of ``contrastive_loss``.
    """

    name: ClassVar[str] = "cd"

    def _advance_chains(self, model: nn.Module, batch: torch.Tensor,
                        generator: torch.Generator | None) -> torch.Tensor:
        return self._run(model, batch, self.k, generator)  # chains start at the data


@dataclass(kw_only=True)
class PersistentCD(_NegativePhase):
    r"""Persistent contrastive divergence (Tieleman 2008).

    Like CD-:math:`k`, but the ``n_chains`` negative chains persist across updates
    (initialised at random data points), so they keep approaching
    :math:`p_\theta` while the parameters change slowly.

    For an RBM a chain also keeps its hidden layer's probabilities, as scikit-learn's
    ``BernoulliRBM`` does: update :math:`t` draws :math:`h \sim p_{\theta_{t-1}}(h \mid v)`
    from the probabilities stored by the previous update, then :math:`v \sim p_{\theta_t}(v
    \mid h)` (the second half of a sweep), then :math:`k - 1` whole sweeps; the
    probabilities :math:`p_{\theta_t}(h \mid v)` of the new visible states are those the
    gradient needs anyway (:attr:`hidden_probs`), so an update costs one matrix product
    fewer than :math:`k` sweeps from the visible layer.

    Parameters
    ----------
    n_chains : int, optional
        Number of persistent chains, started at random data points. ``None``: one chain
        per example of the first minibatch, started there.
    k, sampler, step_size, noise_scale, grad_clip, alpha
        As in :class:`ContrastiveDivergence`.
    """

    name: ClassVar[str] = "pcd"
    n_chains: int | None = None
    _chains: torch.Tensor | None = field(default=None, init=False, repr=False)
    _hidden: torch.Tensor | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_chains is not None:
            check_int(self.n_chains, "n_chains", minimum=1)

    def init(self, model: nn.Module, data: torch.Tensor,
             generator: torch.Generator | None) -> None:
        super().init(model, data, generator)
        self._chains, self._hidden = None, None
        if self.n_chains is not None:
            u = rand_like(data.new_empty(self.n_chains), generator)
            self._chains = data[(u * len(data)).long().clamp_(max=len(data) - 1)].clone()

    def _advance_chains(self, model: nn.Module, batch: torch.Tensor,
                        generator: torch.Generator | None) -> torch.Tensor:
        if self._chains is None:  # n_chains=None: one chain per example of the first batch
            self._chains = batch.detach().clone()
        if self._hidden is None:
            return self._run(model, self._chains, self.k, generator)
        with torch.no_grad():  # an RBM: the second half of the sweep started at the last update
            start = model.sample_v(bernoulli(self._hidden, generator),  # type: ignore[operator]
                                   generator=generator)
        return self._run(model, start, self.k - 1, generator)

    def _chains_advanced(self, model: nn.Module, chains: torch.Tensor,
                         hidden: torch.Tensor | None) -> None:
        self._chains = chains
        if hidden is None and isinstance(model, RBM):
            with torch.no_grad():
                hidden = model.prob_h(chains)
        self._hidden = hidden

    @property
    def chains(self) -> torch.Tensor | None:
        """The current state of the persistent chains, shape ``(n_chains, *event_shape)``."""
        return self._chains

    @property
    def hidden_probs(self) -> torch.Tensor | None:
        r"""For an RBM, :math:`p(h = 1 \mid v)` of the chains under the parameters of the
        last update, ``(n_chains, n_hidden)``; the next update draws the hidden units
        from it. None for other models and before the first update."""
        return self._hidden

    def state_dict(self) -> dict[str, Any]:
        return {"chains": None if self._chains is None else self._chains.clone(),
                "hidden": None if self._hidden is None else self._hidden.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        chains, hidden = state.get("chains"), state.get("hidden")
        self._chains = None if chains is None else chains.clone()
        self._hidden = None if hidden is None else hidden.clone()
