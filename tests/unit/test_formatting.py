"""ld_core.report.formatting: the number and seed formatting the tables, scorecard and plots share."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from ld_core.report import formatting as fmt


@pytest.mark.parametrize("value, missing", [
    (None, True), (pd.NA, True), (math.nan, True), ("abc", True), (0.0, False), (3, False), ("36.5", False)])
def test_is_missing(value, missing):
    assert fmt.is_missing(value) is missing


def test_decimals_follow_the_paper_values():
    assert fmt.decimals([35.8, 38.2]) == 1
    assert fmt.decimals([37.74, 21.0, math.nan, None]) == 2
    assert fmt.decimals([200.5, 239.32]) == 2
    assert fmt.decimals([]) == 1 and fmt.decimals([math.nan]) == 1
    assert fmt.decimals(pd.Series([36.0, 40.0])) == 1


def test_number_and_mean_std():
    assert fmt.number(36.25, 1) == "36.2" and fmt.number(0.4, 2, signed=True) == "+0.40"
    assert fmt.number(-0.3, 1, signed=True) == "-0.3"
    assert fmt.number(math.nan) == "–" and fmt.number(None, missing="--") == "--"
    assert fmt.mean_std(36.2, 0.283, 2, 1) == "36.2 ± 0.3"
    assert fmt.mean_std(36.2, 0.283, 2, 1, pm="$\\pm$") == "36.2 $\\pm$ 0.3"
    assert fmt.mean_std(36.2, math.nan, 1, 1) == "36.2"      # one seed: no std
    assert fmt.mean_std(36.2, math.nan, 3, 2) == "36.20"     # no std known
    assert fmt.mean_std(36.2, 0.1, pd.NA, 1) == "36.2"


def test_seed_phrases():
    assert [fmt.seed_count(n) for n in (0, 1, 3)] == ["0 seeds", "1 seed", "3 seeds"]
    assert fmt.seed_range([2, 2, 2]) == "2 seeds" and fmt.seed_range([1]) == "1 seed"
    assert fmt.seed_range([3, 1, 2]) == "1–3 seeds"
    assert fmt.seed_range(pd.Series([1, 3]), dash="--") == "1--3 seeds"
    assert fmt.seed_range([]) == ""
