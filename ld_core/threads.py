"""Pin a process to exactly the threads Snakemake granted it (before torch spins up its pools)."""
from __future__ import annotations

import os

_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def pin_threads(threads: int) -> None:
    """Set OpenMP/BLAS env vars and torch's intra/inter-op pools to ``threads``."""
    threads = max(1, int(threads))
    for var in _VARS:
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass
