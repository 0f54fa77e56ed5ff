r"""Restricted Boltzmann machine with binary units (Smolensky 1986; Hinton 2002)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import rand_like
from ._common import check_input, check_positive_int
from .base import Energy

__all__ = ["RBM", "contrastive_divergence_grad"]

_PARAMETER_NAMES = ("weight", "visible_bias", "hidden_bias")


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
        n_visible = check_positive_int(n_visible, "n_visible")
        n_hidden = check_positive_int(n_hidden, "n_hidden")
        if isinstance(weight_std, bool) or not isinstance(weight_std, (int, float)):
            raise TypeError(f"weight_std must be a number >= 0, got {weight_std!r}.")
        if not weight_std >= 0 or weight_std == float("inf"):
            raise ValueError(f"weight_std must be a finite number >= 0, got {weight_std!r}.")
        w = torch.randn(n_visible, n_hidden, generator=generator) * float(weight_std)
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

    def free_energy_grad(self, v: torch.Tensor, weights: torch.Tensor
                         ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        r"""Free energies and the closed-form gradient of their weighted sum.

        For :math:`L(\theta) = \sum_b w_b F_\theta(v_b)`, with
        :math:`p_b = \sigma(b + W^\top v_b)` the hidden units' conditional means,

        .. math::
            \frac{\partial L}{\partial W} = -\sum_b w_b\, v_b\, p_b^\top, \qquad
            \frac{\partial L}{\partial a} = -\sum_b w_b\, v_b, \qquad
            \frac{\partial L}{\partial b} = -\sum_b w_b\, p_b .

        With :math:`w_b = 1/B^+` on data and :math:`-1/B^-` on model samples this is the
        CD/PCD update (Hinton 2002) without autograd: two matrix products for any batch.
        :func:`ebmlab.objectives.contrastive_loss` uses it when its ``alpha`` is 0.

        Parameters
        ----------
        v : torch.Tensor
            Visible states ``(B, n_visible)``, floating point.
        weights : torch.Tensor
            Coefficients :math:`w_b`, shape ``(B,)``, dtype and device of ``v``.

        Returns
        -------
        energies : torch.Tensor
            :math:`F(v_b)`, shape ``(B,)`` (no autograd graph).
        grads : dict of str to torch.Tensor
            :math:`\partial L / \partial\theta` for ``"weight"``, ``"visible_bias"`` and
            ``"hidden_bias"``, each with its parameter's shape and dtype.

        Examples
        --------
        >>> rbm = RBM(4, 3, generator=torch.Generator().manual_seed(0))
        >>> v = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
        >>> f, grads = rbm.free_energy_grad(v, torch.tensor([0.5, 0.5]))
        >>> rbm(v).mean().backward()
        >>> torch.allclose(grads["weight"], rbm.weight.grad)
        True
        """
        v = self._check_v(v)
        if weights.shape != (v.shape[0],):
            raise ValueError(f"weights must have shape ({v.shape[0]},) (one per row of v), "
                             f"got {tuple(weights.shape)}.")
        with torch.no_grad():
            w, a, b = self._params(v)
            pre = torch.addmm(b, v, w)
            # F(v) = -(v @ a) - sum_j softplus(pre_j), in one fused multiply-add
            energies = torch.addmv(F.softplus(pre).sum(-1), v, a, beta=-1, alpha=-1)
            neg_weights = weights.neg()
            scaled = torch.sigmoid_(pre).mul_(neg_weights.unsqueeze(1))  # -w_b p_b
            vt = v.T
            grads = (torch.mm(vt, scaled), torch.mv(vt, neg_weights), scaled.sum(0))
            if v.dtype != self.weight.dtype:
                grads = tuple(g.to(self.weight.dtype) for g in grads)
        return energies, dict(zip(_PARAMETER_NAMES, grads, strict=True))

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
        return torch.sigmoid(torch.addmm(b, v, w))

    def prob_v(self, h: torch.Tensor) -> torch.Tensor:
        r""":math:`p(v_i = 1 \mid h) = \sigma(a_i + W_{i:} h)`, shape ``(B, n_visible)``."""
        h = self._check_h(h)
        w, a, _ = self._params(h)
        return torch.sigmoid(torch.addmm(a, h, w.T))

    @torch.no_grad()
    def sample_h(self, v: torch.Tensor, *, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        """Draw :math:`h \\sim p(h \\mid v)`, shape ``(B, n_hidden)``, dtype of ``v``."""
        p = self.prob_h(v)
        return (rand_like(p, generator) < p).to(p.dtype)

    @torch.no_grad()
    def sample_v(self, h: torch.Tensor, *, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        """Draw :math:`v \\sim p(v \\mid h)`, shape ``(B, n_visible)``, dtype of ``h``."""
        p = self.prob_v(h)
        return (rand_like(p, generator) < p).to(p.dtype)

    def gibbs_step(self, v: torch.Tensor, *, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
        """One block-Gibbs step :math:`v \\to h \\sim p(h\\mid v) \\to v' \\sim p(v\\mid h)`."""
        x = self._check_v(v)
        with torch.no_grad():
            out = _gibbs_sweeps(x, *self._params(x), 1, generator)
        return out if out.dtype == v.dtype else out.to(v.dtype)

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
        k = check_positive_int(k, "k")
        for _ in range(k):
            v = self.gibbs_step(v, generator=generator)
        return v

    def random_state(self, n: int, *, generator: torch.Generator | None = None,
                     dtype: torch.dtype | None = None) -> torch.Tensor:
        """``n`` visible configurations of independent uniform bits, ``(n, n_visible)``."""
        n = check_positive_int(n, "n")
        like = torch.empty(n, self.n_visible, dtype=dtype or self.weight.dtype,
                           device=self.weight.device)
        return (rand_like(like, generator) < 0.5).to(like.dtype)


# ---------------------------------------------------------------------------- arithmetic
# The Gibbs sweep, shared by the checked methods above and by
# :func:`contrastive_divergence_grad`. No input checks and no autograd (callers run it
# under ``torch.no_grad()``). contrastive_divergence_grad computes the gradient of
# :meth:`RBM.free_energy_grad` for the weights (1/B+, -1/B-) on the two halves separately:
# no concatenation and no per-row weighting, which is a noticeable part of a small step.


def _sample_visible(hidden_probs: torch.Tensor, w: torch.Tensor, a: torch.Tensor,
                    generator: torch.Generator | None) -> torch.Tensor:
    r"""The second half of a sweep: :math:`h \sim p(h)` given its probabilities, then
    :math:`v \sim p(v \mid h)`."""
    h = rand_like(hidden_probs, generator).lt_(hidden_probs)
    p = torch.sigmoid_(torch.addmm(a, h, w.T))
    return rand_like(p, generator).lt_(p)


def _gibbs_sweeps(x: torch.Tensor, w: torch.Tensor, a: torch.Tensor, b: torch.Tensor, k: int,
                  generator: torch.Generator | None) -> torch.Tensor:
    r"""``k`` block-Gibbs sweeps :math:`v \to h \sim p(h\mid v) \to v' \sim p(v\mid h)`."""
    for _ in range(k):
        x = _sample_visible(torch.sigmoid_(torch.addmm(b, x, w)), w, a, generator)
    return x


def contrastive_divergence_grad(
    rbm: RBM, v_data: torch.Tensor, v_start: torch.Tensor, k: int = 1,
    generator: torch.Generator | None = None, *, hidden_start: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    r"""One CD-:math:`k`/PCD update of an RBM: the negatives, the loss and its gradient.

    Runs ``k`` block-Gibbs sweeps from ``v_start`` (the data for CD, the persistent
    chains for PCD) to get the negatives :math:`v^-`, and returns the contrastive loss

    .. math:: L = \frac1{B^+}\sum_b F(v^+_b) - \frac1{B^-}\sum_b F(v^-_b)

    with its closed-form gradient (as :meth:`RBM.free_energy_grad`),

    .. math::
        \frac{\partial L}{\partial W} = \overline{v^- p^{-\top}} - \overline{v^+ p^{+\top}},
        \quad \frac{\partial L}{\partial a} = \bar v^- - \bar v^+, \quad
        \frac{\partial L}{\partial b} = \bar p^- - \bar p^+,

    where :math:`p^\pm = p(h = 1 \mid v^\pm)`. Each conditional is computed once: the
    data's :math:`p^+` serve the gradient and, for CD (``v_start is v_data``), the first
    half-sweep; the negatives' :math:`p^-` serve the gradient and are returned, so that
    a persistent chain can draw its next hidden units from them (``hidden_start``).
    There are no per-call input checks and no autograd bookkeeping: the training loop
    of :func:`ebmlab.training.fit` validates its data once and then calls this for
    every update, where those costs are a sizeable part of a small RBM's step.

    Parameters
    ----------
    rbm : RBM
        The model.
    v_data : torch.Tensor
        Data batch :math:`v^+`, ``(B+, n_visible)``, floating point, values in {0, 1},
        the dtype and device of the parameters (not checked).
    v_start : torch.Tensor
        Starting states of the negative chains ``(B-, n_visible)``, like ``v_data``.
    k : int
        Number of Gibbs sweeps, ``k >= 1``.
    generator : torch.Generator, optional
        Source of randomness of the sweeps.
    hidden_start : torch.Tensor, optional
        Probabilities ``(B-, n_hidden)`` from which the first sweep draws the hidden
        units, instead of :math:`p(h \mid v_{\text{start}})` under the current
        parameters (PCD passes the previous update's returned ``hidden``).

    Returns
    -------
    loss : torch.Tensor
        :math:`L`, 0-d (no autograd graph).
    negatives : torch.Tensor
        :math:`v^-`, shape ``(B-, n_visible)``.
    hidden : torch.Tensor
        :math:`p^- = p(h = 1 \mid v^-)` under the current parameters, ``(B-, n_hidden)``.
    grads : dict of str to torch.Tensor
        :math:`\partial L/\partial\theta` for ``"weight"``, ``"visible_bias"`` and
        ``"hidden_bias"``.

    Examples
    --------
    CD-1 from two data rows gives the chains of :meth:`RBM.gibbs` and the gradient of
    :meth:`RBM.free_energy_grad` with weights :math:`\pm 1/2`:

    >>> rbm = RBM(4, 3, generator=torch.Generator().manual_seed(0))
    >>> v = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    >>> loss, neg, hidden, grads = contrastive_divergence_grad(
    ...     rbm, v, v, 1, torch.Generator().manual_seed(1))
    >>> same = rbm.gibbs(v, 1, generator=torch.Generator().manual_seed(1))
    >>> bool((neg == same).all())
    True
    >>> weights = torch.tensor([0.5, 0.5, -0.5, -0.5])
    >>> _, ref = rbm.free_energy_grad(torch.cat([v, neg]), weights)
    >>> torch.allclose(grads["weight"], ref["weight"])
    True
    """
    with torch.no_grad():
        params = rbm._parameters  # direct lookup: nn.Module.__getattr__ costs per access
        w, a, b = params["weight"], params["visible_bias"], params["hidden_bias"]
        pre_pos = torch.addmm(b, v_data, w)
        if hidden_start is None:
            hidden_start = (torch.sigmoid(pre_pos) if v_start is v_data
                            else torch.sigmoid_(torch.addmm(b, v_start, w)))
        negatives = _sample_visible(hidden_start, w, a, generator)
        if k > 1:
            negatives = _gibbs_sweeps(negatives, w, a, b, k - 1, generator)
        pre_neg = torch.addmm(b, negatives, w)
        inv_pos, inv_neg = 1.0 / v_data.shape[0], 1.0 / negatives.shape[0]
        # F(v) = -a.v - sum_j softplus(pre_j): the softplus sums before the in-place sigmoids
        soft_pos = F.softplus(pre_pos).sum()
        soft_neg = F.softplus(pre_neg).sum()
        p_pos, p_neg = torch.sigmoid_(pre_pos), torch.sigmoid_(pre_neg)
        grad_a = negatives.sum(0).mul_(inv_neg).sub_(v_data.sum(0), alpha=inv_pos)
        grad_b = p_neg.sum(0).mul_(inv_neg).sub_(p_pos.sum(0), alpha=inv_pos)
        grad_w = torch.addmm(w, negatives.T, p_neg, beta=0, alpha=inv_neg)  # w: shape only
        grad_w.addmm_(v_data.T, p_pos, alpha=-inv_pos)
        loss = torch.dot(a, grad_a).add_(soft_neg, alpha=inv_neg).sub_(soft_pos, alpha=inv_pos)
    return loss, negatives, p_neg, {"weight": grad_w, "visible_bias": grad_a,
                                    "hidden_bias": grad_b}
