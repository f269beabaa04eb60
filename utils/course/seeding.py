"""Making runs repeatable: one seed for Python, NumPy and PyTorch."""

from __future__ import annotations

import random

import numpy as np
import torch


def set_seed(seed: int = 0) -> None:
    """Seed every random number generator the course uses.

    Same seed, same machine, same versions -> same numbers. (GPUs may still differ in the
    last digits: some of their kernels add in a different order each run.)
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators
