r"""Data sets of the course: 2D toy densities, bars-and-stripes and the 8x8 digits.

Nothing is downloaded: the toy sets are sampled here (seeded through ``generator=``),
bars-and-stripes is enumerated, and the digits ship with scikit-learn
(:func:`sklearn.datasets.load_digits`, 1797 images of 8x8 pixels with values 0..16).

Every sampler returns a float tensor of shape ``(n, 2)`` (``dtype`` and ``device``
selectable) and takes ``generator: torch.Generator | None`` for reproducibility.

The code lives in the submodules ``toy2d`` (2D toy sets), ``binary`` (bars-and-stripes
and the digits) and ``batching`` (:func:`iterate_minibatches`); import from here.
"""

from .batching import iterate_minibatches
from .binary import bars_and_stripes, binarized_digits, digits
from .toy2d import checkerboard, eight_gaussians, rings, two_gaussians, two_moons

__all__ = [
    "bars_and_stripes",
    "binarized_digits",
    "checkerboard",
    "digits",
    "eight_gaussians",
    "iterate_minibatches",
    "rings",
    "two_gaussians",
    "two_moons",
]
