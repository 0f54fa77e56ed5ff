"""Reference solutions of the graded exercises of chapter 2 (the score and Langevin sampling).

Each function has the name and signature of its stub in
``book/exercises/ch02_score_langevin.ipynb``; the test suite proves it scores full marks
(``tests/test_autograder.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def score(energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    r"""Exercise 2.1: the score :math:`s(x) = \nabla_x \log p(x) = -\nabla_x E(x)`.

    :math:`\log Z` is constant in :math:`x`, so only the energy is differentiated.
    Autograd runs on a detached copy of ``x`` inside ``torch.enable_grad()``: the
    caller's tensor, the energy's parameters and the grad mode are left as they were,
    and the gradient comes back without a graph, with ``x``'s shape, dtype and device.
    """
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(x).sum(), x)
    return -grad
