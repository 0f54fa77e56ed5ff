r"""The image sets: bars-and-stripes and scikit-learn's 8x8 digits (grey or binarised).

Bars-and-stripes is enumerated; the digits are read once from
:func:`sklearn.datasets.load_digits` (no download) and cached.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .._validation import check_bool, check_int, check_number
from ._common import check_output, finish

__all__ = ["bars_and_stripes", "binarized_digits", "digits"]


def bars_and_stripes(size: int, *, dtype: torch.dtype = torch.float32,
                     device: torch.device | str | None = None) -> torch.Tensor:
    r"""All distinct bars-and-stripes patterns of a ``size`` × ``size`` image (MacKay 2003).

    A pattern switches on a subset of the columns (bars) or a subset of the rows
    (stripes). Both families contain the all-off and all-on images, so there are
    :math:`2^{\text{size}+1} - 2` distinct patterns.

    Parameters
    ----------
    size : int
        Side of the image (at least 1).
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor
        Shape ``(2**(size+1) - 2, size*size)``, values in {0, 1}, rows are the
        images flattened in row-major order; bars first, then the stripes that are
        not also bars.

    Examples
    --------
    >>> bars_and_stripes(3).shape
    torch.Size([14, 9])
    """
    size = check_int(size, "size", minimum=1)
    check_output(dtype, device)
    subsets = torch.cartesian_prod(*([torch.tensor([0.0, 1.0])] * size)).reshape(-1, size)
    bars = subsets[:, None, :].expand(-1, size, size)  # column j on when subsets[j] == 1
    stripes = subsets[:, :, None].expand(-1, size, size)  # row i on
    constant = (subsets == subsets[:, :1]).all(dim=1)
    pats = torch.cat([bars, stripes[~constant]]).reshape(-1, size * size)
    return finish(pats, dtype, device)


@lru_cache(maxsize=1)
def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.astype(np.float64), d.target.astype(np.int64)


def _digits_output(values: np.ndarray, target: np.ndarray, as_images: bool, return_labels: bool,
                   dtype: torch.dtype, device: torch.device | str | None
                   ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The digits as a tensor of ``dtype`` on ``device`` (as images if asked), with labels."""
    x = torch.from_numpy(values)
    if as_images:
        x = x.reshape(-1, 1, 8, 8)
    x = finish(x, dtype, device)
    if return_labels:
        return x, torch.from_numpy(target).to(x.device)
    return x


def digits(*, as_images: bool = False, return_labels: bool = False,
           dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
           ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""scikit-learn's 8x8 handwritten digits, grey levels scaled to :math:`[0, 1]`.

    The 1797 images of :func:`sklearn.datasets.load_digits` (shipped with
    scikit-learn, no download), pixel values divided by 16.

    Parameters
    ----------
    as_images : bool
        Return shape ``(1797, 1, 8, 8)`` (for convolutional energies) instead of
        ``(1797, 64)``.
    return_labels : bool
        Also return the digit labels (int64, shape ``(1797,)``).
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
    """
    check_output(dtype, device)
    data, target = _load_digits()
    return _digits_output(data / 16.0, target, as_images, return_labels, dtype, device)


def binarized_digits(threshold: float = 0.5, *, scale: bool = True, as_images: bool = False,
                     return_labels: bool = False, dtype: torch.dtype = torch.float32,
                     device: torch.device | str | None = None,
                     ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""scikit-learn's 8x8 digits binarised: pixel on when its grey level exceeds ``threshold``.

    The binary data of chapter 7 (RBMs trained by CD/PCD): :math:`x_i = 1` when
    :math:`\text{pixel}_i / 16 > \text{threshold}`.

    Parameters
    ----------
    threshold : float
        Threshold on the grey level, in :math:`[0, 1)` when ``scale`` is true (default
        0.5), in :math:`[0, 16)` on the raw 0..16 scale otherwise.
    scale : bool
        Whether ``threshold`` refers to grey levels divided by 16.
    as_images : bool
        Return shape ``(1797, 1, 8, 8)`` instead of ``(1797, 64)``.
    return_labels : bool
        Also return the digit labels.
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        Values in {0, 1}, shape ``(1797, 64)`` by default.
    """
    scale = check_bool(scale, "scale")
    t = check_number(threshold, "threshold", at_least=0, at_most=1.0 if scale else 16.0)
    if t == (1.0 if scale else 16.0):
        raise ValueError(f"threshold must be below {'1' if scale else '16'} (no pixel is brighter: "
                         f"every image would be blank), got {threshold!r}.")
    check_output(dtype, device)
    data, target = _load_digits()
    grey = data / 16.0 if scale else data
    return _digits_output((grey > t).astype(np.float64), target, as_images, return_labels,
                          dtype, device)
