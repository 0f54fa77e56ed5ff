"""Misbehaving answers to the test exercise "double a tensor" (tests/autograder_bank.py).

Shared by the in-process autograder tests (test_autograder.py), which call them, and the
command-line tests (test_grade_cli.py), which write their source into submission files.
"""

import os
import random
import sys

import numpy as np
import torch


def double_raises(x):
    raise ValueError("boom")


def double_loops(x):
    while True:
        pass


def double_nan(x):
    return 2 * x * float("nan")


def double_shape(x):
    return (2 * x).sum(-1)


def double_dtype(x):
    return (2 * x).float()


def double_device(x):
    return (2 * x).to("meta")


def double_mutates(x):
    x.mul_(2)
    return x


def double_floods(x):
    for i in range(10**7):
        print(i)
    return 2 * x


def double_exits(x):
    sys.exit(3)


def double_os_exit(x):
    os._exit(5)


def double_state(x):
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(123)
    np.random.seed(7)  # noqa: NPY002
    random.seed(7)
    torch.set_grad_enabled(False)
    torch.set_num_threads(3)
    return 2 * x
