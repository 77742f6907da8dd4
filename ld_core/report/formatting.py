"""Formatting shared by the reports (tables, scorecard, plots, figures): numbers and seed counts.

One place for how a number is printed (decimals taken from the paper's values, an optional sign, a placeholder
for a missing value), how "mean ± std" is written and how the number of seeds is phrased, so that the LaTeX
tables, the Markdown scorecard and the plots say the same thing the same way. Output-specific markup (LaTeX or
Markdown escaping, ``$\\pm$`` vs ``±``) is left to the caller through the ``pm`` / ``dash`` / ``missing``
arguments.
"""
from __future__ import annotations

import math
from typing import Iterable

import pandas as pd


# ----------------------------------------------------------------------------------------------- numbers


def is_missing(value) -> bool:
    """True for None, ``pd.NA``, NaN and anything that is not a number."""
    if value is None or value is pd.NA:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True


def decimals(values: Iterable) -> int:
    """Decimals to print a metric with: those of the paper's values (1 or 2), 1 without paper values."""
    best = 1
    for v in values:
        if is_missing(v):
            continue
        frac = f"{float(v):.2f}".rstrip("0").split(".")[1]
        best = max(best, len(frac))
    return best


def number(value, decimals: int = 1, signed: bool = False, missing: str = "–") -> str:
    """``value`` with ``decimals`` decimals (and a ``+`` sign with ``signed``); ``missing`` where it has none."""
    if is_missing(value):
        return missing
    return f"{float(value):{'+' if signed else ''}.{decimals}f}"


def mean_std(mean, std, n_seeds, decimals: int, pm: str = "±", missing: str = "–") -> str:
    """``mean pm std`` (e.g. ``36.2 ± 0.3``) where there are several seeds and a std, else the mean alone."""
    text = number(mean, decimals, missing=missing)
    if not is_missing(n_seeds) and int(n_seeds) > 1 and not is_missing(std):
        text += f" {pm} {number(std, decimals, missing=missing)}"
    return text


# ----------------------------------------------------------------------------------------------- seeds


def seed_count(n: int) -> str:
    """``1 seed``, ``3 seeds``."""
    return f"{n} seed" + ("" if n == 1 else "s")


def seed_range(counts: Iterable[int], dash: str = "–") -> str:
    """The seed counts of a table's rows in words: ``3 seeds``, ``1 seed``, ``1–3 seeds`` where rows differ
    (``dash`` between the two: ``--`` in LaTeX); ``""`` for no counts."""
    counts = sorted({int(c) for c in counts})
    if not counts:
        return ""
    if len(counts) == 1:
        return seed_count(counts[0])
    return f"{counts[0]}{dash}{counts[-1]} seeds"


def per_seed_text(values: dict) -> str:
    """``{seed: value}`` as the tidy CSV's ``per_seed`` cell: ``0:14.3;1:14.0`` (4 decimals at most)."""
    return ";".join(f"{int(s)}:{round(float(v), 4)!r}" for s, v in sorted(values.items()))


def parse_per_seed(text) -> dict:
    """The ``per_seed`` cell back to ``{seed: value}`` (empty for a missing cell)."""
    if not isinstance(text, str) or not text.strip():
        return {}
    pairs = (item.split(":") for item in str(text).split(";"))
    return {int(s): float(v) for s, v in pairs}
