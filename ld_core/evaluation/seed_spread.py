"""The seed-to-seed spread of a metric split into a training and an evaluation (val size) part.

Definitions (AP in percent, "points"; variances in points², standard deviations in points):

* **Splits**: the ``N`` image ids permuted ``splits`` times by ``numpy.random.default_rng(seed)``; half A = the
  first ``floor(N/2)`` of the permutation, half B = the rest (both stored sorted).
* Over ``k >= 2`` seeds: ``var_full`` = sample variance (ddof 1) over seeds of the metric on the full split;
  ``var_half`` = mean over the splits and their two halves of the sample variance over seeds of the metric on
  the half.
* **Model**: ``var_seed(n) = var_train + c / n`` for an evaluation set of ``n`` images. With
  ``r = N * (1/n_A + 1/n_B) / 2`` (2 for even ``N``) the two equations ``var_full = var_train + c/N`` and
  ``var_half = var_train + r * c/N`` give ``var_eval = c/N = (var_half - var_full) / (r - 1)`` (the
  evaluation part at the full size) and ``var_train = var_full - var_eval``. **Clipping**: a negative
  ``var_eval`` is set to 0 (``var_train = var_full``, ``clipped = "eval"``), a negative ``var_train`` to 0
  (``var_eval = var_full``, ``clipped = "train"``); so always ``var_train + var_eval = var_full``; the
  unclipped values are kept as ``*_raw``. ``frac_eval = var_eval / var_full``. ``c = var_eval * N``
  predicts the evaluation part for another split size ``n`` as ``c / n``.
* **Split-half evaluation standard error** of one value at the full size: the sample sd (ddof 1) over the
  splits of ``(A - B) / 2`` (the full value is about the mean of A and B; if each half has variance ``2 s^2``,
  ``(A - B) / 2`` has variance ``s^2``). It includes the difficulty of the images shared by all seeds, which
  cancels in the variance over seeds, so it is usually larger than ``sqrt(var_eval)``.

With ``k`` seeds a sample variance has a relative sd of about ``sqrt(2 / (k - 1))`` (1.0 for 3 seeds), so
each decomposition is a rough estimate; the averaging over splits removes only the split noise of ``var_half``.
"""
from __future__ import annotations

import math
import statistics
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import ConfigError, DataError


def sample_var(values: Sequence[float]) -> Optional[float]:
    """Sample variance (ddof 1); ``None`` for fewer than two values."""
    return statistics.variance([float(v) for v in values]) if len(values) >= 2 else None


def sample_sd(values: Sequence[float]) -> Optional[float]:
    """Sample standard deviation (ddof 1); ``None`` for fewer than two values."""
    var = sample_var(values)
    return None if var is None else math.sqrt(var)


def decompose(var_full: float, var_half: float, n_full: int, half_sizes: Sequence[int]) -> dict:
    """Solve ``var(n) = var_train + c/n`` at ``n_full`` and at the halves (see the module docstring)."""
    n_a, n_b = (int(n) for n in half_sizes)
    if n_a < 1 or n_b < 1 or n_a + n_b != int(n_full):
        raise ConfigError(f"noise: halves {n_a} + {n_b} do not partition {n_full} images")
    ratio = int(n_full) * (1.0 / n_a + 1.0 / n_b) / 2.0
    var_full, var_half = float(var_full), float(var_half)
    eval_raw = (var_half - var_full) / (ratio - 1.0)
    train_raw = var_full - eval_raw
    clipped = None
    var_eval, var_train = eval_raw, train_raw
    if eval_raw < 0:
        var_eval, var_train, clipped = 0.0, var_full, "eval"
    elif train_raw < 0:
        var_eval, var_train, clipped = var_full, 0.0, "train"
    return dict(var_full=var_full, var_half=var_half, var_train=var_train, var_eval=var_eval,
                sd_full=math.sqrt(var_full), sd_train=math.sqrt(var_train), sd_eval=math.sqrt(var_eval),
                frac_eval=var_eval / var_full if var_full > 0 else None, eval_constant_c=var_eval * int(n_full),
                var_train_raw=train_raw, var_eval_raw=eval_raw, half_to_full_ratio=ratio, clipped=clipped)


def make_splits(img_ids: Sequence[int], splits: int, seed: int) -> List[tuple]:
    """``splits`` random halves ``(A, B)`` (sorted id lists) of ``img_ids``, from ``default_rng(seed)``."""
    ids = np.asarray(sorted(int(i) for i in img_ids), dtype=np.int64)
    if len(ids) < 2:
        raise DataError(f"noise: need at least 2 validation images to split, got {len(ids)}")
    rng = np.random.default_rng(int(seed))
    half = len(ids) // 2
    out = []
    for _ in range(int(splits)):
        perm = ids[rng.permutation(len(ids))]
        out.append((sorted(int(i) for i in perm[:half]), sorted(int(i) for i in perm[half:])))
    return out


def variance_block(full: Dict[str, float], halves: Dict[str, list], n_full: int, half_sizes) -> dict:
    """Decomposition of the variance over seeds of a per-seed quantity (full value, ``[(A, B)]`` per split)."""
    seeds = list(full)
    var_full = sample_var([full[s] for s in seeds])
    n_splits = len(next(iter(halves.values())))
    per_half = [sample_var([halves[s][j][h] for s in seeds]) for j in range(n_splits) for h in (0, 1)]
    var_half = statistics.fmean(per_half)
    return decompose(var_full, var_half, n_full, half_sizes)


def split_half_se(halves: Sequence) -> Optional[float]:
    """Split-half evaluation standard error: the sample sd over the splits of ``(A - B) / 2``."""
    return sample_sd([(a - b) / 2.0 for a, b in halves])
