r"""Energies with closed-form scores: Gaussians, mixtures and 2D toy landscapes.

Every class here is an :class:`~ebmlab.energies.Energy` with a closed-form
:meth:`score` (no autograd), and, where it exists, a closed-form log-partition
function :math:`\log Z` and an exact sampler. The 2D landscapes carry an attribute
``bounds = ((xmin, xmax), (ymin, ymax))`` enclosing all but a negligible fraction
(below :math:`10^{-4}`) of the mass, so grid quadrature over ``bounds`` gives
:math:`Z`.

* ``gaussian`` — :class:`Gaussian` and :class:`GaussianMixture`, with closed-form
  :math:`\log Z` and exact samplers.
* ``landscapes`` — the 2D teaching landscapes :class:`DoubleWell`, :class:`Banana`,
  :class:`Ring` and :class:`Wells`.
"""

from .gaussian import Gaussian, GaussianMixture
from .landscapes import Banana, DoubleWell, Ring, Wells

__all__ = ["Banana", "DoubleWell", "Gaussian", "GaussianMixture", "Ring", "Wells"]
