r"""Restricted Boltzmann machine with binary units (Smolensky 1986; Hinton 2002)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import rand_like
from ._common import check_input, check_positive_int
from .base import Energy

__all__ = ["RBM"]


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
            nwv = v.T * weights.neg()               # (n_visible, B): -w_b v_b
            p = torch.sigmoid_(pre)
            grads = {"weight": torch.mm(nwv, p), "visible_bias": nwv.sum(1),
                     "hidden_bias": torch.mv(p.T, weights).neg_()}
            if v.dtype != self.weight.dtype:
                grads = {k: g.to(self.weight.dtype) for k, g in grads.items()}
        return energies, grads

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
        return torch.sigmoid(v @ w + b)

    def prob_v(self, h: torch.Tensor) -> torch.Tensor:
        r""":math:`p(v_i = 1 \mid h) = \sigma(a_i + W_{i:} h)`, shape ``(B, n_visible)``."""
        h = self._check_h(h)
        w, a, _ = self._params(h)
        return torch.sigmoid(h @ w.T + a)

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
            # sample_h then sample_v with the same arithmetic (bit for bit the same states),
            # in place: this sweep is the inner loop of CD/PCD training.
            w, a, b = self._params(x)
            p = torch.sigmoid_((x @ w).add_(b))
            h = rand_like(p, generator).lt_(p)
            p = torch.sigmoid_((h @ w.T).add_(a))
            out = rand_like(p, generator).lt_(p)
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
