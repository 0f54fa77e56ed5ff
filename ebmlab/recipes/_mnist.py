"""MNIST through torchvision, for the recipes' full-size runs (``--full``, ``--dataset mnist``).

torchvision is not a dependency of ebmlab and the book never downloads anything: these
runs are for a reader with a network (and usually a GPU).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ..training.distributed import DataParallel

__all__ = ["load_mnist"]


def load_mnist(root: str | os.PathLike[str], *, train: bool, option: str,
               offline: str) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST's training (``train=True``, 60 000) or test (10 000) digits, downloaded by
    torchvision into ``root`` on first use.

    Under ``torchrun`` rank 0 downloads first while the other processes wait, and they
    then read its copy, so the processes never write the same files at once.

    Parameters
    ----------
    root : path
        Where torchvision keeps the data set.
    train : bool
        The training set, or the test set.
    option, offline : str
        For the error message: the command-line option that asked for MNIST (e.g.
        ``"--full"``), and what to run instead without torchvision.

    Returns
    -------
    images : torch.Tensor
        float32 ``(N, 1, 28, 28)`` in ``[0, 1]``.
    labels : torch.Tensor
        int64 ``(N,)``.

    Raises
    ------
    ModuleNotFoundError
        If torchvision is not installed; the message says how to install it.
    """
    try:
        from torchvision.datasets import MNIST
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"{option} needs torchvision, which is not installed: run `pip install "
            "torchvision` (the build matching your torch) on a machine with a network "
            f"connection (MNIST is downloaded on first use), or {offline}.") from None
    with _rank_zero_first():
        dataset = MNIST(os.fspath(root), train=train, download=True)
    return dataset.data.unsqueeze(1).float().div_(255), dataset.targets.long()


@contextmanager
def _rank_zero_first() -> Iterator[None]:
    """In a process group, run the body on rank 0 first and on the others after it."""
    parallel = DataParallel.current()
    if parallel is not None and not parallel.is_main:
        parallel.barrier("rank 0's download of MNIST")
    yield
    if parallel is not None and parallel.is_main:
        parallel.barrier("rank 0's download of MNIST")
