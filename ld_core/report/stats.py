"""Paired statistics of the scorecard's claims: mean difference over seeds with a Student-t interval.

Runs of one table trained with the same seed share their initial weights and data order (the teacher is
built under a forked RNG), so a claim "A beats B" is judged on the per-seed differences A_s − B_s.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional

CONFIDENCE = 0.95


@dataclass(frozen=True)
class PairedDifference:
    """Mean of the per-seed differences with its two-sided t interval (``None`` bounds for one seed)."""

    n: int
    mean: float
    lo: Optional[float]
    hi: Optional[float]
    seeds: tuple

    def verdict(self, allow_equal: bool) -> str:
        """'holds' when the interval lies above 0 (at or above 0 with ``allow_equal``), 'does not hold'
        otherwise; 'one seed' when there is no interval."""
        if self.lo is None:
            return "one seed"
        return "holds" if (self.lo >= 0 if allow_equal else self.lo > 0) else "does not hold"


def t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided Student-t quantile (scipy, which mmdet depends on)."""
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, df))


def paired_difference(better: Dict[int, float], than: Dict[int, float],
                      confidence: float = CONFIDENCE) -> Optional[PairedDifference]:
    """The per-seed differences ``better[s] - than[s]`` over the seeds both have; ``None`` if none."""
    seeds = tuple(sorted(set(better) & set(than)))
    if not seeds:
        return None
    diffs = [float(better[s]) - float(than[s]) for s in seeds]
    n = len(diffs)
    mean = sum(diffs) / n
    if n == 1:
        return PairedDifference(n=1, mean=mean, lo=None, hi=None, seeds=seeds)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = t_quantile(n - 1, confidence) * sd / math.sqrt(n)
    return PairedDifference(n=n, mean=mean, lo=mean - half, hi=mean + half, seeds=seeds)
