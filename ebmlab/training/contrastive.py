r"""Likelihood-based methods: exact MLE, CD-:math:`k` and PCD.

The losses are :func:`ebmlab.objectives.exact_nll` and
:func:`ebmlab.objectives.contrastive_loss`; the negative samples come from Gibbs
sweeps (``model.gibbs_step``) or :func:`ebmlab.samplers.langevin`. MCMC training with
a replay buffer is in ``ebmlab.training.replay``.
"""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import nn

from .._closed_form import (
    _accumulate,
    _has_hooks,
    weighted_energy_sum_and_grad,
)
from .._validation import check_positive
from ..energies.rbm import RBM, contrastive_divergence_grad
from ..objectives import contrastive_loss, exact_nll
from ..objectives.likelihood import _closed_form_route
from ..samplers import langevin
from ..utils import rand_like
from .objective import Objective, _check_int, _is_discrete

__all__ = ["ContrastiveDivergence", "MLEObjective", "PersistentCD"]


# ---------------------------------------------------------------------------- negative samples


def _gibbs_negatives(model: nn.Module, x0: torch.Tensor, k: int,
                     generator: torch.Generator | None) -> torch.Tensor:
    # ``fit`` validated the data (shape, dtype, values in the support) once and Gibbs
    # sweeps stay in the support, so the sweeps are called directly: the per-call checks
    # of ebmlab.samplers.gibbs cost about as much as a sweep of a small RBM.
    with torch.no_grad():
        x = x0
        for _ in range(k):
            x = model.gibbs_step(x, generator=generator)
    return x


def _langevin_negatives(model: nn.Module, x0: torch.Tensor, generator: torch.Generator | None,
                        **options: Any) -> torch.Tensor:
    # A non-finite chain raises SamplerDivergedError, which fit turns into a
    # TrainingDivergedError (and restores the parameters).
    return langevin(model, x0, generator=generator, **options).samples.detach()


def _contrastive_loss_and_grad(model: nn.Module, batch: torch.Tensor, negatives: torch.Tensor,
                               alpha: float) -> torch.Tensor:
    # contrastive_loss(...).backward(), without an autograd graph where the model has a
    # closed-form gradient (RBM.free_energy_grad): one of the costs that dominate the
    # training of a small RBM.
    route = _closed_form_route(model, batch, negatives, alpha)
    if route is not None:
        return weighted_energy_sum_and_grad(model, *route)
    loss = contrastive_loss(model, batch, negatives, alpha=alpha, validate=False)
    loss.backward()
    return loss.detach()


def _owns(model: nn.Module, names: tuple[str, ...]) -> bool:
    """``model`` is an :class:`~ebmlab.energies.RBM` using the RBM's own ``names``."""
    cls = type(model)
    return isinstance(model, RBM) and all(getattr(cls, n) is getattr(RBM, n) for n in names)


class _NegativePhase(Objective):
    """What CD and PCD share: the sampler (Gibbs sweeps or Langevin steps) and the loss.

    Subclasses say only where the chains start (:meth:`_chain_start`, and
    :meth:`_hidden_start` for an RBM) and what happens to their end points
    (:meth:`_chain_end`).
    """

    persistent: bool = False  # whether the chains carry over from one update to the next
    # Set by init: the chains are the RBM's own Gibbs sweeps (so a persistent
    # chain can keep its hidden probabilities), and the whole update can be done by
    # ebmlab.energies.rbm.contrastive_divergence_grad.
    _rbm_sweeps: bool = False
    _rbm_closed_form: bool = False

    def __init__(self, k: int = 1, *, sampler: str | None = None, step_size: float = 0.01,
                 noise_scale: float | None = None, grad_clip: float | None = None,
                 alpha: float = 0.0):
        self.k = _check_int(k, "k")
        self.sampler = sampler
        self.step_size = step_size
        self.noise_scale = noise_scale
        self.grad_clip = grad_clip
        self.alpha = check_positive(alpha, "alpha", strict=False)

    @abc.abstractmethod
    def _chain_start(self, batch: torch.Tensor) -> torch.Tensor:
        """The starting states of this update's negative chains, ``(n, *event_shape)``."""

    def _hidden_start(self) -> torch.Tensor | None:
        """For an RBM: the hidden probabilities the first sweep draws from (None: those of
        the starting states under the current parameters)."""
        return None

    def _chain_end(self, negatives: torch.Tensor, hidden: torch.Tensor | None) -> None:
        """Called after every update with the negatives and, for an RBM, their hidden
        probabilities under the parameters of this update."""

    def _negatives(self, model: nn.Module, batch: torch.Tensor,
                   generator: torch.Generator | None) -> torch.Tensor:
        if not hasattr(self, "_use_gibbs"):
            raise RuntimeError(f"{type(self).__name__}.init(model, data, generator) must be "
                               "called before loss().")
        start = self._chain_start(batch)
        hidden = self._hidden_start() if self._rbm_sweeps else None
        if hidden is None:
            negatives = self._run_chains(model, start, generator)
        else:  # the sweep's first half from the stored probabilities, then whole sweeps
            with torch.no_grad():
                h = rand_like(hidden, generator).lt_(hidden)
                negatives = model.sample_v(h, generator=generator)  # type: ignore[operator]
            if self.k > 1:
                negatives = _gibbs_negatives(model, negatives, self.k - 1, generator)
        if self._rbm_sweeps and self.persistent:
            with torch.no_grad():
                hidden = model.prob_h(negatives)  # type: ignore[operator]
        self._chain_end(negatives, hidden)
        return negatives

    def loss(self, model: nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        negatives = self._negatives(model, batch, generator)
        return contrastive_loss(model, batch, negatives, alpha=self.alpha, validate=False)

    def loss_and_grad(self, model: nn.Module, batch: torch.Tensor,
                      generator: torch.Generator | None) -> torch.Tensor:
        """:meth:`loss` with its gradient accumulated into ``.grad``, returned detached."""
        if self._rbm_closed_form and torch.is_grad_enabled():
            own = model._parameters
            params = [own["weight"], own["visible_bias"], own["hidden_bias"]]
            if not any(_has_hooks(p) for p in params):
                # The whole update in one call: the same chains and gradient as the
                # route below, each conditional computed once, no per-call checks.
                loss, negatives, hidden, grads = contrastive_divergence_grad(
                    model, batch, self._chain_start(batch), self.k,  # type: ignore[arg-type]
                    generator, hidden_start=self._hidden_start())
                self._chain_end(negatives, hidden)
                _accumulate(params, grads.values())
                return loss
        negatives = self._negatives(model, batch, generator)
        return _contrastive_loss_and_grad(model, batch, negatives, self.alpha)

    def init(self, model: nn.Module, data: torch.Tensor,
             generator: torch.Generator | None) -> None:
        """Choose the sampler (Gibbs or Langevin) for ``model`` and check it applies."""
        if self.sampler is None:
            self._use_gibbs = hasattr(model, "gibbs_step")
        elif self.sampler in ("gibbs", "langevin"):
            self._use_gibbs = self.sampler == "gibbs"
        else:
            raise ValueError(f"sampler must be 'gibbs', 'langevin' or None (automatic), "
                             f"got {self.sampler!r}.")
        if self._use_gibbs and not hasattr(model, "gibbs_step"):
            raise ValueError(f"sampler='gibbs' needs a model with gibbs_step (RBM, "
                             f"BoltzmannMachine, Ising); {type(model).__name__} has none.")
        self._rbm_sweeps = self._use_gibbs and _owns(model, ("gibbs_step", "sample_v", "prob_h"))
        self._rbm_closed_form = (self._rbm_sweeps and self.alpha == 0
                                 and _owns(model, ("forward", "free_energy_grad"))
                                 and data.dtype == model.weight.dtype)  # type: ignore[union-attr]
        if not self._use_gibbs:
            if _is_discrete(model) or not data.is_floating_point():
                raise ValueError(
                    f"method {self.name!r} needs either a model with gibbs_step (RBM, "
                    "BoltzmannMachine) or a continuous energy with floating-point data "
                    f"(Langevin negatives); got {type(model).__name__} and data of dtype "
                    f"{data.dtype}."
                )

    def _run_chains(self, model: nn.Module, x0: torch.Tensor,
                    generator: torch.Generator | None) -> torch.Tensor:
        if self._use_gibbs:
            return _gibbs_negatives(model, x0, self.k, generator)
        return _langevin_negatives(model, x0, generator, step_size=self.step_size,
                                   n_steps=self.k, noise_scale=self.noise_scale,
                                   grad_clip=self.grad_clip)


# ---------------------------------------------------------------------------- the methods


class MLEObjective(Objective):
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

    name = "mle"

    def __init__(self, log_partition: Any = None):
        self.log_partition = log_partition

    def init(self, model: nn.Module, data: torch.Tensor,
             generator: torch.Generator | None) -> None:
        if (self.log_partition is None and not _is_discrete(model)
                and not hasattr(model, "log_partition")):
            raise ValueError(
                f"method 'mle' needs a tractable log Z: a small discrete model (RBM, "
                f"BoltzmannMachine, Ising) or one with log_partition(); "
                f"{type(model).__name__} has neither. Pass log_partition=... or use "
                "'cd', 'pcd', 'mcmc' or a score-matching method."
            )

    def loss(self, model: nn.Module, batch: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        return exact_nll(model, batch, log_partition=self.log_partition)


class ContrastiveDivergence(_NegativePhase):
    r"""Contrastive divergence CD-:math:`k` (Hinton 2002).

    Each step starts one chain at every data point of the batch, runs :math:`k`
    MCMC steps -- block Gibbs sweeps (``model.gibbs_step``) for RBMs and Boltzmann
    machines, Langevin steps for continuous energies -- and uses the end points
    :math:`\tilde x` as negatives in :func:`~ebmlab.objectives.contrastive_loss`:
    the gradient is :math:`\nabla_\theta \bar E(x) - \nabla_\theta \bar E(\tilde x)`.

    For an :class:`~ebmlab.energies.RBM` (without a regulariser or gradient hooks) the
    training loop does the whole update -- sweeps, loss and closed-form gradient -- in
    one call of :func:`ebmlab.energies.contrastive_divergence_grad`, which reuses the
    data's :math:`p(h \mid x)` for the first half-sweep; the chains and the gradient are
    those of the general route.

    Parameters
    ----------
    k : int
        Number of Gibbs sweeps or Langevin steps per update.
    sampler : {"gibbs", "langevin"} or None
        ``None`` picks Gibbs when the model has ``gibbs_step``.
    step_size, noise_scale, grad_clip : float, optional
        Langevin settings (see :func:`ebmlab.samplers.langevin`).
    alpha : float
        Weight of the energy-magnitude regulariser of ``contrastive_loss``.
    """

    name = "cd"
    hint = "for Langevin negatives, a smaller step_size or a grad_clip option"

    def _chain_start(self, batch: torch.Tensor) -> torch.Tensor:
        return batch  # chains start at the data


class PersistentCD(_NegativePhase):
    r"""Persistent contrastive divergence (Tieleman 2008).

    Like CD-:math:`k`, but the ``n_chains`` negative chains persist across updates
    (initialised at random data points), so they keep approaching
    :math:`p_\theta` while the parameters change slowly.

    For an RBM the state that persists is a chain's hidden layer: update :math:`t`
    draws :math:`v \sim p_{\theta_t}(v \mid h)`, then :math:`h' \sim p_{\theta_t}(h \mid v)`,
    so each update is :math:`k` sweeps :math:`h \to v \to h'` of the block-Gibbs
    kernel at :math:`\theta_t` and the visible states of the last sweep are the
    negatives (:attr:`chains`). The probabilities :math:`p_{\theta_t}(h \mid v)` are
    those the gradient needs anyway (:attr:`hidden_probs`; :math:`h'` is drawn from them
    when the next update starts), so a sweep costs one matrix product fewer than one
    that starts from the visible layer. scikit-learn's ``BernoulliRBM`` keeps its
    persistent chains the same way.

    Parameters
    ----------
    n_chains : int, optional
        Number of persistent chains, started at random data points. ``None``: one chain
        per example of the first minibatch, started there.
    k, sampler, step_size, noise_scale, grad_clip, alpha
        As in :class:`ContrastiveDivergence`.
    """

    name = "pcd"
    hint = "for Langevin negatives, a smaller step_size or a grad_clip option"
    persistent = True

    def __init__(self, n_chains: int | None = None, k: int = 1, *, sampler: str | None = None,
                 step_size: float = 0.01, noise_scale: float | None = None,
                 grad_clip: float | None = None, alpha: float = 0.0):
        super().__init__(k, sampler=sampler, step_size=step_size, noise_scale=noise_scale,
                         grad_clip=grad_clip, alpha=alpha)
        self.n_chains = None if n_chains is None else _check_int(n_chains, "n_chains")
        self._chains: torch.Tensor | None = None
        self._hidden: torch.Tensor | None = None

    def init(self, model: nn.Module, data: torch.Tensor,
             generator: torch.Generator | None) -> None:
        super().init(model, data, generator)
        self._chains = None
        self._hidden = None
        if self.n_chains is not None:
            u = rand_like(data.new_empty(self.n_chains), generator)
            self._chains = data[(u * len(data)).long().clamp_(max=len(data) - 1)].clone()

    def _chain_start(self, batch: torch.Tensor) -> torch.Tensor:
        if self._chains is None:  # n_chains=None: one chain per example of the first batch
            self._chains = batch.detach().clone()
        return self._chains

    def _hidden_start(self) -> torch.Tensor | None:
        return self._hidden

    def _chain_end(self, negatives: torch.Tensor, hidden: torch.Tensor | None) -> None:
        self._chains = negatives
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
        # Without stored probabilities (a checkpoint written before they were kept) the
        # next sweep starts from the chains' visible states.
        self._hidden = None if hidden is None else hidden.clone()
