"""The embedded default DAG for real (about 5-6 minutes on 2 cores): `make test-slow`."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_embedded_default_gives_a_strong_teacher_and_no_degenerate_row(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                           str(tmp_path), "--cores", "all"], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = tmp_path / "results" / "runs"
    ap = {p.parts[-3]: json.loads(p.read_text())["metrics"]["AP"] for p in runs.glob("*/seed*/metrics.json")}
    assert set(ap) == {"gfl_r101_teacher", "gfl_r18", "gfl_r18_ld_only_r101", "gfl_r18_ld_r101"}
    assert ap["gfl_r101_teacher"] > 2 * ap["gfl_r18"] and ap["gfl_r101_teacher"] - ap["gfl_r18"] > 3, ap
    table = pd.read_csv(tmp_path / "results" / "tables" / "table1.csv")
    values = table["reproduced"].tolist()
    assert all(math.isfinite(v) for v in values) and any(v > 0 for v in values)
    for metric, group in table.groupby("metric"):
        assert group["reproduced"].nunique() == len(group), f"identical rows for {metric}: {group}"
    claims = pd.read_csv(tmp_path / "results" / "scorecard.csv").query("kind == 'claim' and table == 'table1'")
    assert set(claims["holds"].astype(str)) <= {"True", "False"}
