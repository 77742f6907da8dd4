"""Paired statistics of the scorecard's claims: mean difference over seeds with a Student-t interval, its
verdict, and about how many seeds would decide an effect of a given size.

Runs of one table trained with the same seed share their initial weights and data order (the teacher is
built under a forked RNG), so a claim "A beats B" is judged on the per-seed differences A_s − B_s.

Verdict of one comparison (:meth:`PairedDifference.verdict`):

* ``holds``: the 95 % interval lies above 0 (at or above 0 with ``allow_equal``, the "does not hurt" claims);
* ``contradicted``: the interval lies entirely below 0 (for both kinds of claim);
* ``inconclusive``: anything else: the interval straddles 0, one seed (no interval), or degenerate runs (every
  seed's difference the same, sd = 0: a zero-width interval is no evidence, e.g. identical runs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

CONFIDENCE = 0.95
POWER = 0.80          # seeds_needed: the chance of deciding an effect of the given size
MAX_SEEDS = 1000      # seeds_needed: above this, "more than MAX_SEEDS"
DECIMALS = 6          # per-seed differences are rounded to this (the tidy CSV keeps 4): no float noise at equality

HOLDS, CONTRADICTED, INCONCLUSIVE = "holds", "contradicted", "inconclusive"
VERDICTS = (HOLDS, CONTRADICTED, INCONCLUSIVE)


@dataclass(frozen=True)
class PairedDifference:
    """Mean of the per-seed differences with its two-sided t interval (``None`` bounds for one seed)."""

    n: int
    mean: float
    lo: Optional[float]
    hi: Optional[float]
    seeds: tuple
    sd: float = math.nan

    @property
    def degenerate(self) -> bool:
        """Several seeds, every difference the same (sd = 0): the interval has zero width."""
        return self.n > 1 and self.sd == 0

    def verdict(self, allow_equal: bool) -> Tuple[str, str]:
        """(verdict, reason): see the module docstring; the reason says why a verdict is inconclusive."""
        if self.lo is None:
            return INCONCLUSIVE, "one seed: no interval"
        if self.degenerate:
            return INCONCLUSIVE, f"degenerate: all {self.n} per-seed differences are {self.mean:+.2f} (sd 0)"
        if self.lo > 0 or (allow_equal and self.lo >= 0):
            return HOLDS, ""
        if self.hi < 0:
            return CONTRADICTED, ""
        return INCONCLUSIVE, "the interval straddles 0"


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
    diffs = [round(float(better[s]) - float(than[s]), DECIMALS) for s in seeds]
    n = len(diffs)
    mean = sum(diffs) / n
    if n == 1:
        return PairedDifference(n=1, mean=mean, lo=None, hi=None, seeds=seeds)
    sd = 0.0 if len(set(diffs)) == 1 else math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = t_quantile(n - 1, confidence) * sd / math.sqrt(n)
    return PairedDifference(n=n, mean=mean, lo=mean - half, hi=mean + half, seeds=seeds, sd=sd)


def seeds_needed(sd: float, effect: float, confidence: float = CONFIDENCE, power: float = POWER) -> Optional[int]:
    """About how many seeds a paired comparison with per-seed sd ``sd`` needs for its interval to exclude 0 when
    the true difference is ``effect``, with probability ``power``: the smallest n >= 2 with
    n >= ((t_{(1+confidence)/2, n-1} + t_{power, n-1}) * sd / |effect|)^2. ``None`` where it cannot be computed
    (no sd: one seed or degenerate runs; no effect: 0 or unknown); ``MAX_SEEDS + 1`` for more than ``MAX_SEEDS``.
    """
    from scipy.stats import t

    if not all(math.isfinite(v) for v in (sd, effect)) or sd <= 0 or effect == 0:
        return None
    ratio = sd / abs(effect)
    for n in range(2, MAX_SEEDS + 1):
        if n >= ((t.ppf(0.5 + confidence / 2, n - 1) + t.ppf(power, n - 1)) * ratio) ** 2:
            return n
    return MAX_SEEDS + 1
