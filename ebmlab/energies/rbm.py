r"""Restricted Boltzmann machine with binary units (Smolensky 1986; Hinton 2002)."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_batch, check_int, check_number
from ..utils import bernoulli
from ._common import check_input
from .base import Energy

__all__ = ["RBM", "ContrastiveGradient", "contrastive_divergence_gradient"]


class RBM(Energy):
    r"""Bernoulli–Bernoulli restricted Boltzmann machine.

    Visible units :math:`v \in \{0,1\}^{n_v}`, hidden units :math:`h \in \{0,1\}^{n_h}`,

    .. math::
        E(v, h) = -a^\top v - b^\top h - v^\top W h .

    The hidden units are conditionally independent given :math:`v` and vice
    versa, :math:`p(h_j = 1 \mid v) = \sigma(b_j + v^\top W_{:j})`,
    :math:`p(v_i = 1 \mid h) = \sigma(a_i + W_{i:} h)`, and summing :math:`h` out
    gives the free energy (the module's :meth:`forward`)

    .. math::
        F(v) = -a^\top v - \sum_j \operatorname{softplus}(b_j + v^\top W_{:j}),

    so :math:`p(v) = e^{-F(v)}/Z`. The same :math:`Z` is obtained from the hidden
    side with :meth:`hidden_free_energy`, which is how :math:`\log Z` is enumerated
    over the smaller layer.

    Parameters
    ----------
    n_visible, n_hidden : int
        Numbers of visible and hidden units.
    weight_std : float
        Standard deviation of the initial weights (Hinton 2012 recommends 0.01);
        the biases start at zero.
    generator : torch.Generator, optional
        Source of randomness for the initial weights (a CPU generator).

    Attributes
    ----------
    weight : nn.Parameter
        :math:`W`, shape ``(n_visible, n_hidden)``.
    visible_bias, hidden_bias : nn.Parameter
        :math:`a` of shape ``(n_visible,)`` and :math:`b` of shape ``(n_hidden,)``.
    support : tuple of float
        ``(0.0, 1.0)``.
    event_shape : tuple of int
        ``(n_visible,)``.

    Examples
    --------
    >>> rbm = RBM(6, 3, generator=torch.Generator().manual_seed(0))
    >>> v = torch.bernoulli(torch.full((4, 6), 0.5))
    >>> rbm(v).shape
    torch.Size([4])
    """

    support: tuple[float, float] = (0.0, 1.0)

    def __init__(self, n_visible: int, n_hidden: int, *, weight_std: float = 0.01,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        n_visible = check_int(n_visible, "n_visible", minimum=1)
        n_hidden = check_int(n_hidden, "n_hidden", minimum=1)
        weight_std = check_number(weight_std, "weight_std", at_least=0)
        w = torch.randn(n_visible, n_hidden, generator=generator) * weight_std
        self.weight = nn.Parameter(w)
        self.visible_bias = nn.Parameter(torch.zeros(n_visible))
        self.hidden_bias = nn.Parameter(torch.zeros(n_hidden))
        self.event_shape: tuple[int, ...] = (n_visible,)

    @property
    def n_visible(self) -> int:
        """Number of visible units."""
        return self.weight.shape[0]

    @property
    def n_hidden(self) -> int:
        """Number of hidden units."""
        return self.weight.shape[1]

    def extra_repr(self) -> str:
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}"

    def _params(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        w, a, b = self.weight, self.visible_bias, self.hidden_bias
        d = like.dtype
        if w.dtype == d and a.dtype == d and b.dtype == d:
            return w, a, b
        return w.to(d), a.to(d), b.to(d)

    def _check_v(self, v: torch.Tensor, name: str = "v") -> torch.Tensor:
        return check_input(v, (self.n_visible,), name=name, dtype=self.weight.dtype)

    def _check_h(self, h: torch.Tensor, name: str = "h") -> torch.Tensor:
        return check_input(h, (self.n_hidden,), name=name, dtype=self.weight.dtype)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        r"""Free energy :math:`F(v) = -a^\top v - \sum_j \mathrm{softplus}(b_j + v^\top W_{:j})`."""
        v = self._check_v(v)
        w, a, b = self._params(v)
        return -(v @ a) - F.softplus(v @ w + b).sum(-1)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """Alias of :meth:`forward`: the free energy :math:`F(v)`."""
        return self(v)

    def hidden_free_energy(self, h: torch.Tensor) -> torch.Tensor:
        r"""Free energy of the hidden layer, visible units summed out, ``(B,)``.

        :math:`F_h(h) = -b^\top h - \sum_i \operatorname{softplus}(a_i + W_{i:} h)`,
        so that :math:`\sum_h e^{-F_h(h)} = \sum_v e^{-F(v)} = Z`.
        """
        h = self._check_h(h)
        w, a, b = self._params(h)
        return -(h @ b) - F.softplus(h @ w.T + a).sum(-1)

    def joint_energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        r"""Joint energy :math:`E(v, h) = -a^\top v - b^\top h - v^\top W h`, ``(B,)``."""
        v = self._check_v(v)
        h = self._check_h(h)
        if v.shape[0] != h.shape[0]:
            raise ValueError(f"v and h must have the same batch size, got {v.shape[0]} and "
                             f"{h.shape[0]}.")
        h = h.to(v.dtype)
        w, a, b = self._params(v)
        return -(v @ a) - (h @ b) - ((v @ w) * h).sum(-1)

    def prob_h(self, v: torch.Tensor) -> torch.Tensor:
        r""":math:`p(h_j = 1 \mid v) = \sigma(b_j + v^\top W_{:j})`, shape ``(B, n_hidden)``."""
        v = self._check_v(v)
        w, _, b = self._params(v)
        return torch.addmm(b, v, w).sigmoid_()

    def prob_v(self, h: torch.Tensor) -> torch.Tensor:
        r""":math:`p(v_i = 1 \mid h) = \sigma(a_i + W_{i:} h)`, shape ``(B, n_visible)``."""
        h = self._check_h(h)
        w, a, _ = self._params(h)
        return torch.addmm(a, h, w.T).sigmoid_()

    @torch.no_grad()
    def sample_h(self, v: torch.Tensor, *, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        """Draw :math:`h \\sim p(h \\mid v)`, shape ``(B, n_hidden)``, dtype of ``v``."""
        return bernoulli(self.prob_h(v), generator)

    @torch.no_grad()
    def sample_v(self, h: torch.Tensor, *, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        """Draw :math:`v \\sim p(v \\mid h)`, shape ``(B, n_visible)``, dtype of ``h``."""
        return bernoulli(self.prob_v(h), generator)

    def gibbs_step(self, v: torch.Tensor, *, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
        """One block-Gibbs step :math:`v \\to h \\sim p(h\\mid v) \\to v' \\sim p(v\\mid h)`."""
        with torch.no_grad():
            v_next = self.sample_v(self.sample_h(v, generator=generator), generator=generator)
        return v_next.to(v.dtype)

    def gibbs(self, v: torch.Tensor, k: int = 1, *, generator: torch.Generator | None = None
              ) -> torch.Tensor:
        """``k`` block-Gibbs steps from ``v`` (the negative phase of CD-:math:`k`, Hinton 2002).

        Parameters
        ----------
        v : torch.Tensor
            Starting visible states ``(B, n_visible)``.
        k : int
            Number of steps, ``k >= 1``.
        generator : torch.Generator, optional
            Source of randomness.

        Returns
        -------
        torch.Tensor
            The visible states after ``k`` steps (no autograd graph).
        """
        k = check_int(k, "k", minimum=1)
        for _ in range(k):
            v = self.gibbs_step(v, generator=generator)
        return v

    def random_state(self, n: int, *, generator: torch.Generator | None = None,
                     dtype: torch.dtype | None = None) -> torch.Tensor:
        """``n`` visible configurations of independent uniform bits, ``(n, n_visible)``."""
        n = check_int(n, "n", minimum=1)
        like = torch.empty(n, self.n_visible, dtype=dtype or self.weight.dtype,
                           device=self.weight.device)
        return bernoulli(torch.full_like(like, 0.5), generator)




# ---------------------------------------------------------------------------- CD gradient


class ContrastiveGradient(NamedTuple):
    """What :func:`contrastive_divergence_gradient` returns.

    Attributes
    ----------
    loss : torch.Tensor
        :math:`\\bar F(v^+) - \\bar F(v^-)`, 0-d.
    grads : dict of str to torch.Tensor
        Its gradient for ``"weight"``, ``"visible_bias"`` and ``"hidden_bias"``.
    hidden_model : torch.Tensor
        :math:`p(h = 1 \\mid v^-)`, ``(B-, n_hidden)``: what a persistent chain draws its
        next hidden units from.
    """

    loss: torch.Tensor
    grads: dict[str, torch.Tensor]
    hidden_model: torch.Tensor


def contrastive_divergence_gradient(rbm: RBM, v_data: torch.Tensor,
                                    v_model: torch.Tensor) -> ContrastiveGradient:
    r"""The textbook contrastive-divergence gradient of an RBM, in closed form (Hinton 2002).

    For the contrastive loss :math:`L = \frac1{B^+}\sum_b F(v^+_b) - \frac1{B^-}\sum_b
    F(v^-_b)` between data :math:`v^+` and model samples :math:`v^-` (CD-:math:`k` or PCD
    chains), with :math:`p^\pm = p(h = 1 \mid v^\pm) = \sigma(b + W^\top v^\pm)`,

    .. math::
        \frac{\partial L}{\partial W} = \langle v\, p^\top \rangle_-
            - \langle v\, p^\top \rangle_+,
        \quad \frac{\partial L}{\partial a} = \langle v \rangle_- - \langle v \rangle_+,
        \quad \frac{\partial L}{\partial b} = \langle p \rangle_- - \langle p \rangle_+,

    averages over each batch: "model statistics minus data statistics", the update of
    every RBM textbook (its negative is the ascent direction of the log-likelihood). It
    is what autograd returns for :func:`ebmlab.objectives.contrastive_loss` on an RBM,
    computed with two matrix products and no graph;
    :class:`~ebmlab.training.ContrastiveDivergence` and
    :class:`~ebmlab.training.PersistentCD` use it for every :class:`RBM` (where autograd's
    bookkeeping would be a large part of a small model's step).

    Parameters
    ----------
    rbm : RBM
        The model.
    v_data : torch.Tensor
        Data :math:`v^+`, ``(B+, n_visible)``, with the parameters' dtype.
    v_model : torch.Tensor
        Model samples :math:`v^-`, ``(B-, n_visible)``, like ``v_data``.

    Returns
    -------
    ContrastiveGradient
        The loss, its gradient and :math:`p(h \mid v^-)`, all without an autograd graph.

    Examples
    --------
    The gradient is the autograd gradient of the contrastive loss:

    >>> rbm = RBM(4, 3, generator=torch.Generator().manual_seed(0))
    >>> v_data = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    >>> v_model = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    >>> out = contrastive_divergence_gradient(rbm, v_data, v_model)
    >>> (rbm(v_data).mean() - rbm(v_model).mean()).backward()
    >>> torch.allclose(out.grads["weight"], rbm.weight.grad)
    True
    """
    v_data = check_batch(v_data, "v_data", event_shape=rbm.event_shape, floating=True)
    v_model = check_batch(v_model, "v_model", event_shape=rbm.event_shape, floating=True)
    w, a, b = rbm.weight, rbm.visible_bias, rbm.hidden_bias
    for name, v in (("v_data", v_data), ("v_model", v_model)):
        if v.dtype != w.dtype:
            raise TypeError(f"{name} has dtype {v.dtype} but the parameters of the RBM are "
                            f"{w.dtype}; convert one of them ({name}.to({w.dtype}) or "
                            f"rbm.to({v.dtype})).")
    with torch.no_grad():
        pre_data, pre_model = torch.addmm(b, v_data, w), torch.addmm(b, v_model, w)
        inv_data, inv_model = 1.0 / v_data.shape[0], 1.0 / v_model.shape[0]
        # F(v) = -a.v - sum_j softplus(pre_j): the softplus sums before the in-place sigmoids
        softplus_data = F.softplus(pre_data).sum()
        softplus_model = F.softplus(pre_model).sum()
        p_data, p_model = torch.sigmoid_(pre_data), torch.sigmoid_(pre_model)
        grad_a = v_model.sum(0).mul_(inv_model).sub_(v_data.sum(0), alpha=inv_data)
        grad_b = p_model.sum(0).mul_(inv_model).sub_(p_data.sum(0), alpha=inv_data)
        grad_w = torch.mm(v_model.T, p_model).mul_(inv_model)
        grad_w.addmm_(v_data.T, p_data, alpha=-inv_data)
        loss = torch.dot(a, grad_a).add_(softplus_model, alpha=inv_model).sub_(
            softplus_data, alpha=inv_data)
    return ContrastiveGradient(loss, {"weight": grad_w, "visible_bias": grad_a,
                                      "hidden_bias": grad_b}, p_model)
