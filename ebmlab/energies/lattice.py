r"""Discrete energies on spins and binary units: the 2D Ising model and Boltzmann machines.

Both carry ``support`` (the two values a unit takes), ``event_shape`` and a
``gibbs_step(x, *, generator=None)`` that performs one heat-bath sweep over all
units, batched over chains (Geman & Geman 1984).
"""

from __future__ import annotations

import torch

from .._validation import check_bool, check_int, check_number
from ..utils import rand_like
from ._common import as_float_tensor, check_input
from .base import Energy

__all__ = ["BoltzmannMachine", "Ising"]


def _colour_classes(rows: int, cols: int, periodic: bool) -> torch.Tensor:
    """Boolean masks ``(C, rows, cols)`` of a proper colouring of the lattice graph.

    The checkerboard (two colours) whenever it is proper; on a torus with an odd
    side it is not (wrap-around bonds join equal colours), and a greedy colouring
    with three (at most five) colours is used instead.
    """
    i = torch.arange(rows).unsqueeze(1)
    j = torch.arange(cols).unsqueeze(0)
    checker = (i + j) % 2
    if not periodic or (rows % 2 == 0 and cols % 2 == 0):
        return torch.stack((checker == 0, checker == 1))
    colour = [[-1] * cols for _ in range(rows)]
    for r in range(rows):
        for c in range(cols):
            taken = {colour[(r + dr) % rows][(c + dc) % cols]
                     for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))}
            colour[r][c] = min(k for k in range(5) if k not in taken)
    grid = torch.tensor(colour)
    return torch.stack([grid == k for k in range(int(grid.max()) + 1)])


class Ising(Energy):
    r"""2D Ising model on an :math:`L \times L` lattice (Ising 1925; Onsager 1944).

    .. math::
        E(s) = -J \sum_{\langle ij \rangle} s_i s_j - h \sum_i s_i,
        \qquad s_i \in \{-1, +1\},

    the first sum over nearest-neighbour bonds, each bond once. With
    ``periodic=True`` the lattice is a torus: every site has a bond to its right
    and to its lower neighbour (wrapping around), :math:`2L^2` bonds in all (on a
    side of length 2 the two bonds between a pair are both counted, as in
    Kaufman's (1949) exact solution). With ``periodic=False`` the boundary sites
    have fewer neighbours. The inverse temperature is absorbed in :math:`J` and
    :math:`h`; the critical point of the infinite lattice is
    :math:`J_c = \tfrac12\ln(1+\sqrt2) \approx 0.4407`.

    Parameters
    ----------
    size : int or (int, int)
        Side length :math:`L \ge 2`, or ``(rows, cols)`` for a rectangle.
    coupling : float
        :math:`J` (positive: ferromagnetic).
    field : float
        External field :math:`h`.
    periodic : bool
        Periodic (torus) or open boundaries.

    Attributes
    ----------
    size, coupling, field, periodic
        The constructor arguments (``size`` as given).
    support : tuple of float
        ``(-1.0, 1.0)``.
    event_shape : tuple of int
        ``(L, L)`` (or ``(rows, cols)``).

    Examples
    --------
    >>> model = Ising(4, coupling=0.4)
    >>> s = torch.ones(2, 4, 4)
    >>> model(s)          # 32 satisfied bonds
    tensor([-12.8000, -12.8000])
    """

    support: tuple[float, float] = (-1.0, 1.0)
    colours: torch.Tensor
    _down_mask: torch.Tensor
    _right_mask: torch.Tensor

    def __init__(self, size: int | tuple[int, int], coupling: float = 1.0, field: float = 0.0,
                 periodic: bool = True) -> None:
        super().__init__()
        if isinstance(size, (tuple, list)) and len(size) == 2:
            rows = check_int(size[0], "size[0]", minimum=2)
            cols = check_int(size[1], "size[1]", minimum=2)
            size = (rows, cols)
        else:
            rows = cols = check_int(size, "size", minimum=2)
        check_bool(periodic, "periodic")
        self.size = size
        self.coupling = check_number(coupling, "coupling")
        self.field = check_number(field, "field")
        self.periodic = periodic
        self.event_shape: tuple[int, ...] = (rows, cols)
        # bond masks: the bond from (r, c) to (r+1, c) / (r, c+1) exists (no wrap when open)
        down = torch.ones(rows, cols, dtype=torch.bool)
        right = torch.ones(rows, cols, dtype=torch.bool)
        if not periodic:
            down[-1, :] = False
            right[:, -1] = False
        self.register_buffer("_down_mask", down, persistent=False)
        self.register_buffer("_right_mask", right, persistent=False)
        self.register_buffer("colours", _colour_classes(rows, cols, periodic), persistent=False)

    def extra_repr(self) -> str:
        return (f"size={self.size!r}, coupling={self.coupling}, field={self.field}, "
                f"periodic={self.periodic}")

    @property
    def n_sites(self) -> int:
        """Number of spins."""
        return self.event_shape[0] * self.event_shape[1]

    def _bond_sums(self, s: torch.Tensor) -> torch.Tensor:
        """:math:`\\sum_{\\langle ij\\rangle} s_i s_j` per configuration, ``(B,)``."""
        down = s * torch.roll(s, -1, dims=1)
        right = s * torch.roll(s, -1, dims=2)
        if not self.periodic:
            down = down * self._down_mask
            right = right * self._right_mask
        return (down + right).sum(dim=(1, 2))

    def neighbour_sum(self, s: torch.Tensor) -> torch.Tensor:
        r"""Sum of the neighbours' spins :math:`\sum_{j \sim i} s_j` at each site, ``(B, L, L)``."""
        s = check_input(s, self.event_shape, name="s")
        return self._neighbour_sum(s)

    def _neighbour_sum(self, s: torch.Tensor) -> torch.Tensor:
        up = torch.roll(s, 1, dims=1)      # the spin above (r-1, c)
        down = torch.roll(s, -1, dims=1)   # the spin below (r+1, c)
        left = torch.roll(s, 1, dims=2)
        right = torch.roll(s, -1, dims=2)
        if not self.periodic:
            # s at (r-1, c) is a neighbour iff the bond (r-1, c) -> (r, c) exists, etc.
            up = up * torch.roll(self._down_mask, 1, dims=0)
            down = down * self._down_mask
            left = left * torch.roll(self._right_mask, 1, dims=1)
            right = right * self._right_mask
        return up + down + left + right

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        s = check_input(s, self.event_shape, name="s")
        return -self.coupling * self._bond_sums(s) - self.field * s.sum(dim=(1, 2))

    def magnetization(self, s: torch.Tensor) -> torch.Tensor:
        r"""Mean spin :math:`m = \frac1N\sum_i s_i` per configuration, ``(B,)``."""
        s = check_input(s, self.event_shape, name="s")
        return s.mean(dim=(1, 2))

    def random_state(self, n: int, *, generator: torch.Generator | None = None,
                     dtype: torch.dtype | None = None,
                     device: torch.device | str | None = None) -> torch.Tensor:
        """``n`` configurations of independent uniform spins, ``(n, rows, cols)``."""
        n = check_int(n, "n", minimum=1)
        like = torch.empty(n, *self.event_shape, dtype=dtype,
                           device=device if device is not None else self.colours.device)
        return torch.where(rand_like(like, generator) < 0.5, 1.0, -1.0).to(like.dtype)

    @torch.no_grad()
    def gibbs_step(self, s: torch.Tensor, *, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
        r"""One heat-bath sweep, colour class by colour class (checkerboard).

        Sites of one colour share no bond, so they are conditionally independent
        given the rest and are resampled together from
        :math:`p(s_i = +1 \mid s_{-i}) = \sigma\big(2(J\sum_{j\sim i} s_j + h)\big)`.

        Parameters
        ----------
        s : torch.Tensor
            Spins ``(B, rows, cols)`` in :math:`\{-1, +1\}`.
        generator : torch.Generator, optional
            Source of randomness.

        Returns
        -------
        torch.Tensor
            The new spins, same shape, dtype and device as ``s``.
        """
        x = check_input(s, self.event_shape, name="s")
        for mask in self.colours:
            local = self.coupling * self._neighbour_sum(x) + self.field
            up = rand_like(x, generator) < torch.sigmoid(2.0 * local)
            x = torch.where(mask, torch.where(up, 1.0, -1.0).to(x.dtype), x)
        return x.to(s.dtype)


class BoltzmannMachine(Energy):
    r"""Fully visible Boltzmann machine over :math:`x \in \{0, 1\}^d` (Ackley et al. 1985).

    .. math::
        E(x) = -\tfrac12 x^\top W x - b^\top x,

    with :math:`W` symmetric and zero on the diagonal. ``weight`` and ``bias`` are
    trainable :class:`~torch.nn.Parameter` s; the energy and the Gibbs sampler use
    the symmetric, zero-diagonal part of ``weight``, so gradient steps cannot break
    the constraint.

    Parameters
    ----------
    weight : array-like, shape (d, d)
        Symmetric couplings with a zero diagonal.
    bias : array-like, shape (d,)
        Biases :math:`b`.

    Attributes
    ----------
    support : tuple of float
        ``(0.0, 1.0)``.
    event_shape : tuple of int
        ``(d,)``.

    Raises
    ------
    ValueError
        If ``weight`` is not square, symmetric, zero on the diagonal, or the shapes disagree.
    """

    support: tuple[float, float] = (0.0, 1.0)

    def __init__(self, weight: object, bias: object) -> None:
        super().__init__()
        w = as_float_tensor(weight, "weight")
        b = as_float_tensor(bias, "bias", dtype=w.dtype, device=w.device)
        if w.dim() != 2 or w.shape[0] != w.shape[1] or w.shape[0] == 0:
            raise ValueError(f"weight must be a square matrix (d, d), got {tuple(w.shape)}.")
        d = w.shape[0]
        if b.shape != (d,):
            raise ValueError(f"bias must have shape ({d},) to match weight of shape ({d}, {d}), "
                             f"got {tuple(b.shape)}.")
        tol = 1e-6 * max(1.0, float(w.abs().max()))
        asym = float((w - w.T).abs().max())
        if asym > tol:
            raise ValueError(f"weight must be symmetric, got max |W - Wᵀ| = {asym:.3g}.")
        diag = float(w.diagonal().abs().max())
        if diag > tol:
            raise ValueError(f"weight must have a zero diagonal, got max |W_ii| = {diag:.3g}.")
        off_diagonal = 1.0 - torch.eye(d, dtype=w.dtype, device=w.device)
        self.weight = torch.nn.Parameter(0.5 * (w + w.T) * off_diagonal)
        self.bias = torch.nn.Parameter(b)
        self.event_shape: tuple[int, ...] = (d,)

    @property
    def n_units(self) -> int:
        """Number of units :math:`d`."""
        return self.event_shape[0]

    def coupling_matrix(self) -> torch.Tensor:
        """The symmetric, zero-diagonal part of ``weight`` (the :math:`W` the energy uses)."""
        w = 0.5 * (self.weight + self.weight.T)
        return w - torch.diag_embed(w.diagonal())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_input(x, self.event_shape)
        w = self.coupling_matrix().to(x.dtype)
        return -0.5 * ((x @ w) * x).sum(-1) - x @ self.bias.to(x.dtype)

    def random_state(self, n: int, *, generator: torch.Generator | None = None,
                     dtype: torch.dtype | None = None) -> torch.Tensor:
        """``n`` configurations of independent uniform bits, ``(n, d)``."""
        n = check_int(n, "n", minimum=1)
        like = torch.empty(n, self.n_units, dtype=dtype or self.bias.dtype,
                           device=self.bias.device)
        return (rand_like(like, generator) < 0.5).to(like.dtype)

    @torch.no_grad()
    def gibbs_step(self, x: torch.Tensor, *, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
        r"""One sequential heat-bath sweep over the units :math:`i = 1, \dots, d`.

        Unit :math:`i` is resampled from
        :math:`p(x_i = 1 \mid x_{-i}) = \sigma\big(\sum_j W_{ij} x_j + b_i\big)` using
        the current values of the other units (batched over chains).

        Parameters
        ----------
        x : torch.Tensor
            States ``(B, d)`` in :math:`\{0, 1\}`.
        generator : torch.Generator, optional
            Source of randomness.

        Returns
        -------
        torch.Tensor
            The new states, same shape, dtype and device as ``x``.
        """
        v = check_input(x, self.event_shape).clone()
        w = self.coupling_matrix().to(v.dtype)
        b = self.bias.to(v.dtype)
        u = rand_like(v, generator)
        for i in range(self.n_units):
            p = torch.sigmoid(v @ w[:, i] + b[i])
            v[:, i] = (u[:, i] < p).to(v.dtype)
        return v.to(x.dtype)
