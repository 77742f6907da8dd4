"""ld_core.report.scorecard (+ claim_verdicts, preconditions, scorecard_markdown): the claims file, claim verdicts
(holds / contradicted / inconclusive, seeds needed), the preconditions (models learned, teacher better than its
student), cells, Markdown, a dataset of one's own; ld_core.report.plots: the bar plots it writes."""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import statistics
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ld_core.cli import main as cli_main
from ld_core.config.claims import Claim
from ld_core.report import formatting as fmt
from ld_core.report import claim_verdicts, plots, preconditions, scorecard, scorecard_markdown, stats, tidy_table
from ld_core.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[2]
CLAIMS = ROOT / "configs" / "claims.yaml"
PAPER = ROOT / "configs" / "paper_tables.csv"
MATRIX = ROOT / "configs" / "experiments.yaml"

# row -> run of every table of the matrix (the preconditions look the runs up there)
RUNS = {(t, r["row"]): r["run"] for t, spec in yaml.safe_load(MATRIX.read_text())["tables"].items()
        for r in spec["rows"]}


@functools.lru_cache(maxsize=1)
def shipped():
    """(claims, paper) of the project's files, through the loaders the scorecard command uses."""
    return scorecard.load_inputs(MATRIX, PAPER, CLAIMS)


@pytest.fixture(scope="module")
def paper():
    return shipped()[1]


@pytest.fixture(scope="module")
def claims():
    return shipped()[0]


def write_tidy(path: Path, seeds: dict, table: str = "table1", dataset: str = None) -> Path:
    """A tidy table CSV in the ld_core.report.tables format; ``seeds`` maps (row, metric) -> per-seed values;
    ``dataset``: built on a dataset of one's own (no paper values)."""
    paper = shipped()[1]
    recs = []
    for (row, metric), values in seeds.items():
        n = len(values)
        mean = statistics.fmean(values)
        std = statistics.stdev(values) if n > 1 else math.nan
        p = math.nan if dataset else paper.value(table, row, metric)
        recs.append({"table": table, "row": row, "run": RUNS[(table, row)], "metric": metric,
                     "paper": p, "reproduced": round(mean, 4), "reproduced_std": round(std, 4) if n > 1 else math.nan,
                     "n_seeds": n, "delta": round(mean - p, 2), "per_seed": fmt.per_seed_text(dict(enumerate(values))),
                     "Teacher": "R-101", "Student": "R-18", "dataset": dataset})
    df = pd.DataFrame(recs, columns=tidy_table.TIDY_COLUMNS + ["Teacher", "Student"] + (["dataset"] if dataset else []))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(df.to_csv(index=False, lineterminator="\n"))
    return path


def table1_seeds(gt, ld_only, ld_gt, metrics=("AP", "AP75")):
    """(row, metric) -> seeds, the same per-seed values for every metric (offset by metric for realism)."""
    out = {}
    for row, vals in (("gt-only", gt), ("ld-only", ld_only), ("ld+gt", ld_gt)):
        for k, metric in enumerate(metrics):
            out[(row, metric)] = [v + 2.0 * k for v in vals]
    return out


def claim_by_id(frame: pd.DataFrame, cid: str) -> dict:
    rec = frame[frame["id"] == cid]
    assert len(rec) == 1, cid
    return rec.iloc[0].to_dict()


# ----------------------------------------------------------------------------------------------- claims file


def test_claims_file_valid_and_rows_exist(claims, paper):
    ids = [c.id for c in claims]
    assert len(ids) == len(set(ids))
    assert {c.table for c in claims} == {"table1", "table2", "table3", "table4"}
    for c in claims:
        if c.ours_only:  # rows this reproduction adds (Table 3's distribution heads without a teacher)
            assert c.table == "table3" and c.than not in {p.row for p in paper.cells}, c.id
            continue
        for row in [*c.better, c.than]:
            for metric in c.metrics:
                assert paper.has(c.table, row, metric), (c.id, row, metric)
    # the supplement's statements are all there
    pairs = {(c.table, b, c.than, m, c.allow_equal) for c in claims for b in c.better for m in c.metrics}
    for need in [("table1", "ld-only", "gt-only", "AP", False), ("table1", "ld-only", "gt-only", "AP75", False),
                 ("table1", "ld+gt", "ld-only", "AP", True),
                 ("table2", "r18-self", "r18-base", "AP75", False), ("table2", "r50-self", "r50-base", "AP", False),
                 ("table2", "x101dcn-self", "x101dcn-base", "AP75", False),
                 ("table3", "retinanet-ld", "retinanet", "AP", False), ("table3", "fcos-ld", "fcos", "AP", False),
                 ("table3", "atss-ld", "atss", "AP", False), ("table3", "gfocal-ld", "gfocal", "AP", False),
                 ("table4", "r34", "none", "AP", False), ("table4", "r101dcn", "none", "AP", False),
                 ("table4", "r50", "none", "AP80", True), ("table4", "r101", "none", "AP90", True)]:
        assert need in pairs, need


def test_every_claim_holds_on_the_paper_numbers(claims, paper):
    frame = pd.DataFrame([{"table": p.table, "row": p.row, "metric": p.metric, "paper": p.value}
                          for p in paper.cells])
    for c in (c for c in claims if not c.ours_only):
        res = claim_verdicts.evaluate_claim(c, frame, column="paper")
        assert res["verdict"] is True, (c.id, res)
        assert res["margin"] >= 0
        assert fmt.is_missing(res["n"]) and math.isnan(res["ci_lo"])
    # Table 1's "only 0.1 AP is increased": ld+gt vs ld-only, AP75 equal -> margin 0 (allowed)
    t1 = next(c for c in claims if c.table == "table1" and c.than == "ld-only")
    assert claim_verdicts.evaluate_claim(t1, frame, column="paper")["margin"] == pytest.approx(0.0)


# ----------------------------------------------------------------------------------------------- verdicts


def test_one_seed_is_inconclusive_with_its_margin(tmp_path):
    # ld-only below gt-only: AP 35.5 vs 36.0 (-0.5), AP75 37.9 vs 38.0 (-0.1)
    seeds = {("gt-only", "AP"): [36.0], ("gt-only", "AP75"): [38.0], ("ld-only", "AP"): [35.5],
             ("ld-only", "AP75"): [37.9], ("ld+gt", "AP"): [36.2], ("ld+gt", "AP75"): [38.4]}
    csv = write_tidy(tmp_path / "tables" / "table1.csv", seeds)
    claims = scorecard.build_scorecard([csv], *shipped()).claims
    rec = claim_by_id(claims, "t1-ld-only-beats-gt")
    assert rec["verdict"] == "inconclusive" and rec["n"] == 1 and math.isnan(rec["ci_lo"])  # one seed: no interval
    assert "one seed" in rec["note"] and rec["seeds_needed"] == ""  # no spread: cannot be computed
    assert rec["holds_in_paper"] is True
    assert rec["margin"] == pytest.approx(-0.5)
    assert rec["weakest"] == "ld-only − gt-only, AP"
    ok = claim_by_id(claims, "t1-gt-adds-little")  # ld+gt (36.2, 38.4) >= ld-only (35.5, 37.9)
    assert ok["verdict"] == "inconclusive" and ok["margin"] == pytest.approx(0.5)


def test_allow_equal_and_degenerate_runs():
    tidy = pd.DataFrame({"table": ["table1"] * 2, "row": ["a", "b"], "metric": ["AP", "AP"],
                         "reproduced": [36.4, 36.4], "reproduced_std": [math.nan] * 2, "n_seeds": [2, 2],
                         "per_seed": ["0:36.4;1:36.5", "0:36.4;1:36.5"]})
    claim = Claim(id="x", table="table1", text="t", better=("a",), than="b", metrics=("AP",))
    for allow_equal in (True, False):  # identical runs: a zero-width interval [0, 0] is no evidence either way
        rec = claim_verdicts.evaluate_claim(dataclasses.replace(claim, allow_equal=allow_equal), tidy)
        assert rec["verdict"] == "inconclusive" and "degenerate" in rec["note"] and rec["n"] == 2, rec
        assert rec["ci_lo"] == rec["ci_hi"] == 0.0 and rec["seeds_needed"] == ""
    tidy["per_seed"] = ["0:36.4;1:36.5;2:36.0", "0:36.4;1:36.4;2:35.5"]  # +0.0 +0.1 +0.5
    rec = claim_verdicts.evaluate_claim(dataclasses.replace(claim, allow_equal=True), tidy)
    assert rec["verdict"] == "inconclusive" and rec["ci_lo"] < 0 < rec["ci_hi"]
    tidy["per_seed"] = ["0:36.4;1:36.5;2:36.45", "0:36.2;1:36.2;2:36.2"]  # +0.2 +0.3 +0.25: above 0
    assert claim_verdicts.evaluate_claim(dataclasses.replace(claim, allow_equal=True), tidy)["verdict"] == "holds"
    tidy["per_seed"] = ["0:35.0;1:35.1;2:35.0", "0:36.0;1:36.3;2:35.8"]  # "does not hurt", but it does
    rec = claim_verdicts.evaluate_claim(dataclasses.replace(claim, allow_equal=True), tidy)
    assert rec["verdict"] == "contradicted" and rec["ci_hi"] < 0
    tidy["per_seed"] = ["0:36.4", "0:36.4"]
    assert claim_verdicts.evaluate_claim(dataclasses.replace(claim, allow_equal=True), tidy)["verdict"] == "inconclusive"
    # float noise (36.5 - 36.4 = 0.10000000000000142) does not break equality or margins
    tidy.loc[0, "reproduced"] = 36.5
    assert claim_verdicts.evaluate_claim(claim, tidy)["margin"] == 0.1


@pytest.mark.parametrize("gt, ld_only, expected, why", [
    ([35.0, 35.1, 35.2], [36.0, 36.3, 36.0], "holds", ""),            # +1.0 +1.2 +0.8: [0.50, 1.50], above
    ([35.0, 35.1, 35.2], [34.0, 33.8, 34.4], "contradicted", ""),     # -1.0 -1.3 -0.8: below
    ([35.0, 35.1, 35.2], [36.5, 35.6, 36.2], "inconclusive", "straddles"),  # +1.5 +0.5 +1.0: [-0.24, 2.24]
    ([35.0, 35.1, 35.2], [33.0, 36.1, 39.2], "inconclusive", "straddles"),  # -2, +1, +4: mean 1.0
    ([35.0, 35.1, 35.2], [36.0, 36.1, 36.2], "inconclusive", "degenerate"),  # every seed +1.0: [1.0, 1.0]
    ([35.1], [36.1], "inconclusive", "one seed"),
    ([35.0, 35.1, 35.2], [36.1], "inconclusive", "one seed"),           # one common seed
])
def test_paired_interval_decides(tmp_path, gt, ld_only, expected, why):
    csv = write_tidy(tmp_path / "table1.csv", table1_seeds(gt, ld_only, [37.0, 37.1, 37.2]))
    rec = claim_by_id(scorecard.build_scorecard([csv], *shipped()).claims, "t1-ld-only-beats-gt")
    diffs = [b - a for a, b in zip(gt, ld_only)]  # paired over the common seeds
    assert rec["margin"] == pytest.approx(statistics.fmean(ld_only) - statistics.fmean(gt), abs=1e-4)  # means
    assert rec["n"] == len(diffs)
    if len(diffs) > 1:
        half = stats.t_quantile(len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
        assert rec["ci_lo"] == pytest.approx(statistics.fmean(diffs) - half, abs=1e-4)
        assert rec["ci_hi"] == pytest.approx(statistics.fmean(diffs) + half, abs=1e-4)
    assert rec["verdict"] == expected and why in rec["note"]
    if why == "straddles":  # seeds an effect of the paper's size (+0.6 AP, +1.1 AP75) would need at this spread
        sd = statistics.stdev(diffs)
        assert rec["seeds_needed"] == str(stats.seeds_needed(sd, 36.4 - 35.8))
        assert int(rec["seeds_needed"]) > len(diffs)
    else:
        assert rec["seeds_needed"] == ""


def test_seeds_needed():
    # sd = |effect|: n = 10 is the first n with n >= (t(0.975, n-1) + t(0.8, n-1))^2 (9: 10.2 > 9)
    assert stats.seeds_needed(1.0, 1.0) == 10 and stats.seeds_needed(1.0, -1.0) == 10
    assert stats.seeds_needed(0.5, 1.0) == 5
    assert stats.seeds_needed(1.08, 0.7) > 18  # the README's Table 1 spread against the paper's +0.7 AP
    assert stats.seeds_needed(50.0, 0.1) == stats.MAX_SEEDS + 1
    for sd, effect in ((0.0, 1.0), (1.0, 0.0), (math.nan, 1.0), (1.0, math.nan)):
        assert stats.seeds_needed(sd, effect) is None


def test_t_interval_matches_the_textbook_value():
    d = stats.paired_difference({0: 1.5, 1: 0.5, 2: 1.0}, {0: 0.0, 1: 0.0, 2: 0.0})
    assert d.n == 3 and d.mean == pytest.approx(1.0) and d.sd == pytest.approx(0.5)
    assert stats.t_quantile(2) == pytest.approx(4.302653, abs=1e-5)   # t_{0.975, 2}
    assert (d.lo, d.hi) == pytest.approx((1.0 - 4.302653 * 0.5 / math.sqrt(3), 1.0 + 4.302653 * 0.5 / math.sqrt(3)))
    assert d.verdict(allow_equal=False) == ("inconclusive", "the interval straddles 0")
    assert stats.paired_difference({0: 1.0}, {1: 0.0}) is None
    same = stats.paired_difference({0: 36.1, 1: 36.2}, {0: 35.1, 1: 35.2})  # float noise: still degenerate
    assert same.degenerate and same.verdict(False)[0] == "inconclusive"


def test_tables_not_built_are_not_run(tmp_path, paper):
    csv = write_tidy(tmp_path / "table1.csv", table1_seeds([35.0, 35.2], [36.0, 36.4], [36.5, 36.7]))
    card = scorecard.build_scorecard([csv], *shipped())
    cells, claims = card.cells, card.claims
    # every paper cell is there, once
    assert len(cells) == len(paper.cells)
    assert not cells.duplicated(["table", "row", "metric"]).any()
    t1 = cells[cells["table"] == "table1"]
    assert (t1["status"] == "reproduced").all() and (t1["n_seeds"] == 2).all()
    one = t1[(t1["row"] == "ld-only") & (t1["metric"] == "AP")].iloc[0]
    assert one["reproduced"] == pytest.approx(36.2)
    assert one["reproduced_std"] == pytest.approx(0.2828, abs=1e-4)
    assert one["delta"] == pytest.approx(36.2 - 36.4)
    assert one["run"] == "gfl_r18_ld_only_r101" and one["dataset"] == "coco_val2017"
    rest = cells[cells["table"] != "table1"]
    assert (rest["status"] == "not run").all()
    assert rest["reproduced"].isna().all() and rest["delta"].isna().all() and rest["n_seeds"].isna().all()
    assert set(rest["table"]) == {"table2", "table3", "table4"}
    for rec in claims.to_dict("records"):
        assert rec["holds_in_paper"] is True or rec["id"].startswith("t3-ld-vs-head-")
        if rec["table"] == "table1":
            assert rec["verdict"] in ("holds", "contradicted", "inconclusive")
        else:
            assert rec["verdict"] == "not run" and fmt.is_missing(rec["n"])
            assert math.isnan(rec["margin"]) and "not built" in rec["note"]


def test_missing_row_in_a_built_table_is_not_run(tmp_path):
    seeds = {k: v for k, v in table1_seeds([35.0], [36.0], [36.5]).items() if k[0] != "ld+gt"}
    csv = write_tidy(tmp_path / "table1.csv", seeds)
    card = scorecard.build_scorecard([csv], *shipped())
    rec = claim_by_id(card.claims, "t1-gt-adds-little")
    assert rec["verdict"] == "not run" and "ld+gt" in rec["note"]
    assert claim_by_id(card.claims, "t1-ld-only-beats-gt")["verdict"] == "inconclusive"
    cells = card.cells
    assert (cells[(cells["table"] == "table1") & (cells["row"] == "ld+gt")]["status"] == "not run").all()


def test_works_on_a_table_built_by_ld_core_tables(tmp_path):
    spec = yaml.safe_load(MATRIX.read_text())["tables"]["table1"]
    metrics = pd.DataFrame([
        {"run": run, "seed": s, "metric": m, "value": v + s * 0.1 + (0.05 * s * s if run != "gfl_r18" else 0),
         "source": f"{run}/{s}"}
        for run, base in (("gfl_r18", 35.0), ("gfl_r18_ld_only_r101", 36.0), ("gfl_r18_ld_r101", 36.5))
        for s in (0, 1, 2) for m, v in (("AP", base), ("AP75", base + 2))])
    tidy = tidy_table.build_table("table1", spec, metrics, shipped()[1])
    csv = tmp_path / "table1.csv"
    csv.write_text(tidy.to_csv(index=False, lineterminator="\n"))
    rec = claim_by_id(scorecard.build_scorecard([csv], *shipped()).claims, "t1-ld-only-beats-gt")
    assert rec["verdict"] == "holds" and rec["margin"] == pytest.approx(1.0 + 0.05 * 5 / 3, abs=1e-4)
    assert rec["n"] == 3 and 0 < rec["ci_lo"] < 1.0  # +1.0, +1.05, +1.2


# ----------------------------------------------------------------------------------------------- preconditions


def write_teacher(root: Path, run: str, seed: int, ap: float) -> Path:
    path = root / "runs" / run / f"seed{seed}" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run": run, "seed": seed, "dataset": "coco", "metrics": {"AP": ap, "AP75": ap}}))
    return path


def pre(root: Path, teachers=(("gfl_r101_teacher", 1000, 24.5),), min_ap=1.0, margin=1.0):
    return preconditions.Preconditions(matrix=MATRIX, teacher_metrics=[write_teacher(root, *t) for t in teachers],
                                   min_ap=min_ap, teacher_margin_ap=margin)


def test_preconditions_pass(tmp_path):
    csv = write_tidy(tmp_path / "table1.csv", table1_seeds([14.0, 14.1, 14.2], [15.0, 15.3, 15.0], [16, 16.2, 15.9]))
    card = scorecard.build_scorecard([csv], *shipped(), preconditions=pre(tmp_path))
    p = card.preconditions.set_index("id")
    assert set(p["status"]) == {"passed"}
    assert list(p.index) == ["learned:gt-only", "learned:ld-only", "learned:ld+gt", "learned:teacher:gfl_r101_teacher",
                             "teacher-better:ld-only:gt-only", "teacher-better:ld+gt:gt-only"]
    better = p.loc["teacher-better:ld-only:gt-only"]
    assert (better["run"], better["value"], better["than_value"]) == ("gfl_r101_teacher", 24.5, pytest.approx(14.1))
    assert better["margin"] == pytest.approx(10.4) and better["n"] == 3  # unpaired: the teacher has seed 1000
    assert claim_by_id(card.claims, "t1-ld-only-beats-gt")["verdict"] == "holds"
    assert scorecard_markdown.precondition_line(card.preconditions) == ""


def test_preconditions_fail_and_the_verdicts_say_so(tmp_path):
    # the case: a teacher barely above its students, and a student baseline that learned nothing
    seeds = table1_seeds([0.5, 0.6, 0.7], [1.5, 1.8, 1.6], [0.9, 1.1, 1.0])
    csv = write_tidy(tmp_path / "table1.csv", seeds)
    card = scorecard.build_scorecard([csv], *shipped(), preconditions=pre(tmp_path, [("gfl_r101_teacher", 1000, 1.1)]))
    p = card.preconditions.set_index("id")
    assert p.loc["learned:gt-only", "status"] == "failed" and p.loc["learned:ld-only", "status"] == "passed"
    assert p.loc["learned:teacher:gfl_r101_teacher", "status"] == "passed"
    assert p.loc["teacher-better:ld-only:gt-only", "status"] == "failed"  # 1.1 - 0.6 = +0.5 < +1.0
    assert "teacher not better than student" in p.loc["teacher-better:ld-only:gt-only", "note"]
    rec = claim_by_id(card.claims, "t1-ld-only-beats-gt")  # the interval alone says holds (+1.0 +1.2 +0.9)
    assert rec["verdict"] == "inconclusive" and rec["ci_lo"] > 0
    assert rec["note"].startswith("precondition failed: gt-only below the AP floor (0.60); teacher not better than "
                                  "student (ld-only: gfl_r101_teacher 1.10 AP vs gt-only 0.60)")
    assert rec["note"].endswith("the interval alone says: holds")
    assert rec["seeds_needed"] == ""
    gt_adds = claim_by_id(card.claims, "t1-gt-adds-little")  # ld+gt vs ld-only: their teacher failed too
    assert gt_adds["verdict"] == "inconclusive" and "teacher not better" in gt_adds["note"]
    bars = {(c["label"], c["metric"]): c for c in card.differences["table1"]}
    assert bars[("ld-only − gt-only", "AP")]["verdict"] == "inconclusive"
    assert bars[("ld-only − gt-only", "AP")]["precondition_failed"]  # the plot labels it
    line = scorecard_markdown.precondition_line(card.preconditions)
    assert line.startswith("PRECONDITIONS FAILED: the teacher is not better than the student baseline "
                           "(table1: ld-only, ld+gt); models below the AP floor (table1: gt-only)")
    md = scorecard_markdown.render_markdown(card.cells, card.claims, card.preconditions)
    assert md.index("PRECONDITIONS FAILED") < md.index("hold, ") < md.index("## Preconditions") < md.index("## Claims")
    # a teacher below the floor fails "learned" for the rows it teaches
    card = scorecard.build_scorecard([csv], *shipped(), preconditions=pre(tmp_path, [("gfl_r101_teacher", 1000, 0.3)]))
    assert card.preconditions.set_index("id").loc["learned:teacher:gfl_r101_teacher", "status"] == "failed"
    assert "teacher gfl_r101_teacher below the AP floor" in claim_by_id(card.claims, "t1-ld-only-beats-gt")["note"]


def test_self_ld_teacher_is_exempt_and_a_missing_teacher_is_an_error(tmp_path):
    seeds = {("r18-base", "AP"): [14.3], ("r18-base", "AP75"): [7.5], ("r18-self", "AP"): [14.5],
             ("r18-self", "AP75"): [7.2]}
    csv = write_tidy(tmp_path / "table2.csv", seeds, table="table2")
    card = scorecard.build_scorecard([csv], *shipped(), preconditions=pre(tmp_path, [("gfl_r18", 1000, 13.6)]))
    p = card.preconditions.set_index("id")
    assert p.loc["teacher-better:r18-self", "status"] == "not required"  # the teacher 13.6 < 14.3: Self-LD
    assert "self-distillation" in p.loc["teacher-better:r18-self", "note"]
    with pytest.raises(DataError, match=r"no AP of teacher run 'gfl_r18' seed 1000 \(needed by table2 row 'r18-self'\)"):
        scorecard.build_scorecard([csv], *shipped(), preconditions=pre(tmp_path, []))
    with pytest.raises(ConfigError, match="min_ap must be a number >= 0"):
        scorecard.build_scorecard([csv], *shipped(), preconditions=pre(tmp_path, min_ap=-1.0))


def test_teacher_paired_by_seed_where_seeds_allow():
    """A teacher trained with the baseline's seeds is compared paired (interval above 0), not by the margin."""
    t = {0: 15.0, 1: 15.2, 2: 15.1}
    rec = preconditions._teacher_better("table1", "ld-only", "t", 0, t, "gt-only", {0: 14.0, 1: 14.5, 2: 13.9}, 5.0)
    assert rec["status"] == "passed" and rec["n"] == 3 and rec["ci_lo"] > 0  # +0.97 < 5.0, but paired above 0
    rec = preconditions._teacher_better("table1", "ld-only", "t", 0, t, "gt-only", {0: 15.5, 1: 14.5, 2: 15.0}, 0.0)
    assert rec["status"] == "failed" and "paired over 3 seeds" in rec["note"]


# ----------------------------------------------------------------------------------------------- outputs


PRE_ARGS = ["--matrix", str(MATRIX), "--min-ap", "1.0", "--teacher-margin", "1.0"]


def test_write_scorecard_outputs(tmp_path, capsys):
    csv = write_tidy(tmp_path / "tables" / "table1.csv",
                     table1_seeds([35.0, 35.1, 35.2], [36.0, 36.3, 36.2], [36.5, 36.7, 36.6]))
    teacher = write_teacher(tmp_path, "gfl_r101_teacher", 1000, 44.0)
    out_csv, out_md, plot_dir = tmp_path / "out" / "scorecard.csv", tmp_path / "out" / "scorecard.md", tmp_path / "fig"
    rc = cli_main(["scorecard", "--tables", str(csv), "--claims", str(CLAIMS), "--paper", str(PAPER), *PRE_ARGS,
                   "--teacher-metrics", str(teacher), "--csv", str(out_csv), "--md", str(out_md),
                   "--plot-dir", str(plot_dir)])
    assert rc == 0
    n = len(shipped()[0])
    n_other = sum(1 for c in shipped()[0] if c.table != "table1")
    # ld-only - gt-only +1.0 +1.2 +1.0: holds; ld+gt - gt-only: holds; ld+gt - ld-only +0.5 +0.4 +0.4: holds
    summary = f"3 hold, 0 contradicted, 0 inconclusive, {n_other} not run (of {n} claims, on the reproduced numbers)"
    assert summary in capsys.readouterr().out

    df = pd.read_csv(out_csv, dtype=str, keep_default_na=False)
    assert df.columns[0] == "kind"
    assert list(dict.fromkeys(df["kind"])) == ["precondition", "claim", "cell"]  # preconditions before verdicts
    for col in ("table", "row", "metric", "paper", "reproduced", "reproduced_std", "n_seeds", "delta", "status",
                "id", "verdict", "holds_in_paper", "margin", "n", "ci_lo", "ci_hi", "seeds_needed", "per_seed",
                "check", "value", "than_value"):
        assert col in df.columns, col
    claim_rows = df[df["kind"] == "claim"]
    assert len(claim_rows) == n and set(claim_rows["holds_in_paper"]) == {"True", claim_verdicts.NOT_IN_PAPER}
    assert claim_rows.set_index("id").loc["t1-ld-only-beats-gt", "verdict"] == "holds"
    assert set(claim_rows["verdict"]) == {"holds", "not run"}
    assert (df[df["kind"] == "cell"]["id"] == "").all()
    assert set(df.loc[df["kind"] == "precondition", "status"]) == {"passed"}

    md = out_md.read_text()
    assert md.startswith("# ") and "PRECONDITIONS FAILED" not in md
    assert summary in md
    assert "paired by seed" in md and "95 % Student-t interval" in md and "inconclusive" in md  # the rule
    assert "| t1-ld-only-beats-gt |" in md and "| **holds** |" in md
    assert md.index("## Preconditions") < md.index("## Claims") < md.index("## table1")
    assert "1 AP (mean over its seeds)" in md and "≥ 1" in md  # the thresholds are stated
    assert "## table1" in md and "## table4 (not run)" in md
    assert "| ld-only | AP | 36.4 | 36.2 ± 0.2 | -0.2 | reproduced |" in md

    png = plot_dir / "table1_bars.png"
    assert png.is_file() and png.stat().st_size > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in plot_dir.iterdir()) == ["table1_bars.png"]  # only built tables, no temp files
    card = scorecard.build_scorecard([csv], *shipped())
    assert png.read_bytes() == plots.bars_png("table1", card.differences["table1"])  # as rendered
    assert {c["verdict"] for c in card.differences["table1"]} == {"holds"}


def test_own_dataset_scorecard_has_no_paper_values(tmp_path):
    """A table built on a dataset of one's own: its name, no paper value or delta, claims judged on our numbers."""
    csv = write_tidy(tmp_path / "table1.csv", table1_seeds([0.5, 0.6, 0.7], [0.6, 1.3, 0.2], [0.5, 0.9, 0.4]),
                     dataset="aerial")
    out = tmp_path / "out"
    card = scorecard.write_scorecard([csv], *shipped(), out / "s.csv", out / "s.md", out / "fig",
                                     preconditions=pre(tmp_path, [("gfl_r101_teacher", 1000, 1.1)]))
    assert card.datasets == {"table1": "aerial"}
    t1 = card.cells[card.cells["table"] == "table1"]
    assert len(t1) == 6 and (t1["status"] == "reproduced").all() and set(t1["dataset"]) == {"aerial"}
    assert t1["paper"].isna().all() and t1["delta"].isna().all()
    rec = claim_by_id(card.claims, "t1-ld-only-beats-gt")
    assert rec["holds_in_paper"] == claim_verdicts.OWN_DATASET and math.isnan(rec["paper_margin"])
    assert rec["verdict"] == "inconclusive" and "precondition failed" in rec["note"]
    assert all(math.isnan(c["paper"]) for c in card.differences["table1"])
    md = (out / "s.md").read_text()
    assert md.startswith("# LD supplement scorecard\n\n**PRECONDITIONS FAILED")
    assert "## table1 on `aerial` (your dataset; no paper values: the paper's are on coco_val2017)" in md
    part = md.split("## table1 on")[1].split("## table2")[0]
    assert "| row | metric | reproduced (± std) | status |" in part and "coco_val2017 |" not in part
    assert "| gt-only | AP | 0.6 ± 0.1 | reproduced |" in part
    assert "Datasets of your own: table1 on `aerial`" in md
    assert (out / "fig" / "table1_bars.png").stat().st_size > 1000


def test_bars_png(tmp_path):
    comparisons = [dict(label="ld+gt − gt-only", metric="AP", paper=0.7, diff=1.0, lo=0.5, hi=1.5, n=3,
                        verdict="holds"),
                   dict(label="ld-only − gt-only", metric="AP75", paper=1.1, diff=-0.2, lo=None, hi=None, n=1,
                        verdict="inconclusive"),
                   dict(label="ld-only − gt-only", metric="AP", paper=0.6, diff=-1.0, lo=-1.5, hi=-0.5, n=3,
                        verdict="contradicted")]
    png = plots.bars_png("table1", comparisons)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    own = plots.bars_png("table1", comparisons, dataset="aerial")
    assert own[:8] == b"\x89PNG\r\n\x1a\n" and own != png
    recoloured = [dict(c, verdict="holds") for c in comparisons]
    assert plots.bars_png("table1", recoloured) != png  # the verdict shows
    assert plots.bars_png("table2", [])[:8] == b"\x89PNG\r\n\x1a\n"  # a built table without claims still plots


def test_build_scorecard_returns_the_claimed_differences(tmp_path):
    one = write_tidy(tmp_path / "table1.csv", table1_seeds([35.0, 35.1], [36.0, 36.3], [36.5, 36.5]))
    differences = scorecard.build_scorecard([one], *shipped()).differences
    assert list(differences) == ["table1"]
    by_key = {(c["label"], c["metric"]): c for c in differences["table1"]}
    ld_only = by_key[("ld-only − gt-only", "AP")]
    assert ld_only["diff"] == pytest.approx(1.1) and ld_only["n"] == 2 and ld_only["lo"] < 1.1 < ld_only["hi"]
    assert ld_only["paper"] == pytest.approx(36.4 - 35.8) and ld_only["verdict"] == "inconclusive"


def test_nothing_partial_on_error(tmp_path):
    csv = write_tidy(tmp_path / "table1.csv", table1_seeds([35.0], [36.0], [36.5]))
    bad_claims = tmp_path / "claims.yaml"
    bad_claims.write_text("claims:\n  - {id: x, table: table1, text: t, better: [ld-only], metrics: [AP]}\n")
    out = tmp_path / "out"
    assert cli_main(["scorecard", "--tables", str(csv), "--claims", str(bad_claims), "--paper", str(PAPER), *PRE_ARGS,
                     "--csv", str(out / "s.csv"), "--md", str(out / "s.md"), "--plot-dir", str(out / "fig")]) == 2
    assert not out.exists()
    with pytest.raises(DataError, match="no AP of teacher run"):  # a teacher's metrics missing
        scorecard.write_scorecard([csv], *shipped(), out / "s.csv", out / "s.md", out / "fig",
                                  preconditions=pre(tmp_path, []))
    assert not out.exists()
    # a write failing half-way (the Markdown's folder is a file) rolls the CSV back
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    with pytest.raises(DataError):
        scorecard.write_scorecard([csv], *shipped(), out / "s.csv", blocker / "s.md")
    assert not (out / "s.csv").exists()
    assert not (out.exists() and [p for p in out.rglob("*") if p.is_file()])  # no temp files either
    # a malformed table CSV
    broken = tmp_path / "broken.csv"
    broken.write_text("table,row,metric\ntable1,ld-only,AP\n")
    with pytest.raises(DataError, match="broken.csv"):
        scorecard.write_scorecard([broken], *shipped(), out / "s.csv", out / "s.md")
    assert not (out / "s.csv").exists()
    with pytest.raises(DataError, match="gone.csv: table CSV does not exist"):
        scorecard.write_scorecard([tmp_path / "gone.csv"], *shipped(), out / "s.csv", out / "s.md")
    unreadable = tmp_path / "latin1.csv"
    unreadable.write_bytes(b"table,row\n\xff\n")
    with pytest.raises(DataError, match=r"latin1.csv: malformed CSV \('utf-8' codec can't decode"):
        tidy_table.load_tidy(unreadable)


def test_same_table_twice_is_an_error(tmp_path):
    a = write_tidy(tmp_path / "a.csv", table1_seeds([35.0], [36.0], [36.5]))
    b = write_tidy(tmp_path / "b.csv", table1_seeds([35.0], [36.0], [36.5]))
    with pytest.raises(DataError, match="also given by"):
        scorecard.build_scorecard([a, b], *shipped())


# ----------------------------------------------------------------------------------------------- malformed claims


GOOD = {"id": "c", "table": "table1", "text": "t", "better": ["ld-only"], "than": "gt-only", "metrics": ["AP"]}


# the scorecard command loads the claims through the loader the Snakefile validates them with at parse time
# (ld_core.config.claims): the same one-line messages (key paths from 0), checked once
@pytest.mark.parametrize("content, fragment", [
    (yaml.safe_dump({"claims": [{**GOOD, "colour": "red"}]}), "claims[0]: unknown key 'colour'"),
    (yaml.safe_dump({"claims": [{k: v for k, v in GOOD.items() if k != "than"}]}), "claims[0]: missing key 'than'"),
    (yaml.safe_dump({"claims": [GOOD, GOOD]}), "claims[1].id: duplicate id 'c' (also claims[0])"),
    (yaml.safe_dump({"claims": [{**GOOD, "better": []}]}), "claims[0].better: must not be empty"),
    (yaml.safe_dump({"claims": [{**GOOD, "allow_equal": "yes please"}]}),
     "claims[0].allow_equal: must be true or false"),
    (yaml.safe_dump({"claims": [{**GOOD, "table": "Table 1"}]}), "claims[0].table: 'Table 1' does not match"),
    (yaml.safe_dump({"claims": []}), "claims: must not be empty"),
    (yaml.safe_dump({"claims": [GOOD], "extra": 1}), "unknown key 'extra' (allowed: claims)"),
    ("claims:\n  - id: [unclosed\n", "malformed YAML"),
    ("- just a list\n", "must be a mapping"),
    (yaml.safe_dump({"claims": [{**GOOD, "better": ["gt-only"]}]}), "row 'gt-only' is both in 'better' and 'than'"),
])
def test_malformed_claims_file(tmp_path, content, fragment):
    path = tmp_path / "my_claims.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        scorecard.load_inputs(MATRIX, PAPER, path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ") and fragment in msg, msg


@pytest.mark.parametrize("change, fragment", [
    ({"better": ["ld-plus"]}, "claims[0].better[0]: row 'ld-plus' is not a row of table1 (rows: gt-only,"),
    ({"metrics": ["AP50"]}, "claims[0].metrics[0]: 'AP50' is not a metric of table1 (metrics: AP, AP75)"),
    ({"table": "table3", "better": ["atss-ld"], "than": "atss-dist"},
     f"claims[0].metrics[0]: the paper ({PAPER}) has no AP for row 'atss-dist' of table3"),
])
def test_claim_rows_must_exist_in_matrix_and_paper(tmp_path, change, fragment):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"claims": [{**GOOD, **change}]}))
    with pytest.raises(ConfigError) as info:
        scorecard.load_inputs(MATRIX, PAPER, path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ") and fragment in msg, msg


def test_missing_claims_file_and_cli_error(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="nope.yaml: claims file does not exist"):
        scorecard.load_inputs(MATRIX, PAPER, missing)
    rc = cli_main(["scorecard", "--tables", str(tmp_path / "t.csv"), "--claims", str(missing), "--paper", str(PAPER),
                   *PRE_ARGS, "--csv", str(tmp_path / "s.csv"), "--md", str(tmp_path / "s.md")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "s.csv").exists()


def test_the_scorecard_checks_the_paper_with_the_parse_time_loader(tmp_path, capsys):
    """A paper CSV edited after the DAG was parsed: the scorecard refuses it (and the claims it no longer backs)
    with the Snakefile's one-line messages, and writes nothing."""
    csv = write_tidy(tmp_path / "table1.csv", table1_seeds([35.0], [36.0], [36.5]))
    bad, out = tmp_path / "paper.csv", tmp_path / "out"
    args = ["scorecard", "--tables", str(csv), "--claims", str(CLAIMS), "--paper", str(bad), *PRE_ARGS,
            "--csv", str(out / "s.csv"), "--md", str(out / "s.md")]
    bad.write_text(PAPER.read_text().replace("\n2,r50-self,", "\n2,r50-selfie,", 1))
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: line ") and err.count("\n") == 1
    assert "column 'row': row 'r50-selfie' is not a row of table2 (rows: r18-base," in err
    lines = PAPER.read_text().splitlines(keepends=True)
    bad.write_text("".join(line for line in lines if not line.startswith("1,ld-only,") or ",AP75," in line))
    assert cli_main(args) == 2
    assert capsys.readouterr().err == (f"error: {CLAIMS}: claims[0].metrics[0]: the paper ({bad}) has no AP for "
                                       "row 'ld-only' of table1\n")
    assert not out.exists()


def test_figure2_claim_from_the_figures_summary(tmp_path):
    csv = write_tidy(tmp_path / "table1.csv", table1_seeds([35.0, 35.1], [36.0, 36.3], [36.5, 36.5]))
    summary = tmp_path / "figures.json"
    rec = {"boxes_per_image_nms0.6": 2.0, "boxes_per_image_nms0.95": 3.5, "surplus_per_image": 1.5}
    summary.write_text(json.dumps({"nms_redundancy": {"images": 200, "score_thr": 0.3,
                                                      "baseline": dict(rec, **{"redundant_per_image_nms0.6": 0.4}),
                                                      "ld": dict(rec, **{"redundant_per_image_nms0.6": 0.25})}}))
    claims = scorecard.build_scorecard([csv], *shipped(), summary).claims
    fig = claim_by_id(claims, "f2-ld-fewer-redundant-boxes")
    assert fig["verdict"] == "inconclusive" and fig["margin"] == pytest.approx(0.15) and "200 images" in fig["note"]
    assert fig["note"].startswith("one seed")
    summary.write_text("{}")
    with pytest.raises(DataError, match="Figure 2"):
        scorecard.build_scorecard([csv], *shipped(), summary)


def test_ours_only_claim_is_scored_without_a_paper_value(tmp_path):
    """LD vs the same distribution head without a teacher: the paper has no such row; paired 95 % CI decides."""
    seeds = {("atss", "AP"): [17.0, 17.2, 16.9], ("atss-ld", "AP"): [18.0, 18.3, 18.1],
             ("atss-dist", "AP"): [17.1, 17.0, 17.3]}
    csv = write_tidy(tmp_path / "tables" / "table3.csv", seeds, table="table3")
    claims = [c for c in shipped()[0] if c.id in ("t3-ld-atss", "t3-ld-vs-head-atss")]
    assert len(claims) == 2
    card = scorecard.build_scorecard([csv], claims, shipped()[1], preconditions=pre(tmp_path, [("atss_r101_teacher", 1000, 29.9)]))
    rec = claim_by_id(card.claims, "t3-ld-vs-head-atss")
    assert rec["holds_in_paper"] == claim_verdicts.NOT_IN_PAPER and rec["verdict"] == "holds" and rec["n"] == 3
    assert claim_by_id(card.claims, "t3-ld-atss")["holds_in_paper"] is True
    # the student baseline of atss-ld is the same architecture without a teacher: the distribution head
    p = card.preconditions.set_index("id")
    assert list(p.loc[p["check"] == "teacher better", "than"]) == ["atss-dist"]
    bars = {c["label"]: c for c in card.differences["table3"]}
    assert len(bars) == 2 and any(math.isnan(c["paper"]) for c in bars.values())
    assert plots.bars_png("table3", card.differences["table3"])[:4] == b"\x89PNG"


def test_precondition_thresholds_live_in_the_config():
    """configs/config.yaml states them; `--config preconditions={...}` strings are read as numbers; a mistake is
    one line at parse time (before any job)."""
    from ld_core.config.pipeline import validate_config

    schema = ROOT / "workflow" / "schemas" / "config.schema.yaml"
    shipped = validate_config(yaml.safe_load((ROOT / "configs" / "config.yaml").read_text()), schema)
    assert shipped["preconditions"] == {"min_ap": 1.0, "teacher_margin_ap": 1.0}
    given = validate_config({"preconditions": {"min_ap": "2.5"}}, schema)  # as Snakemake hands --config over
    assert given["preconditions"] == {"min_ap": 2.5, "teacher_margin_ap": 1.0}
    for bad, fragment in (({"min_ap": -1}, "preconditions.min_ap: -1 is less than the minimum of 0"),
                          ({"min_aps": 1}, "unknown config key 'min_aps' in preconditions")):
        with pytest.raises(ConfigError, match=re.escape(fragment)):
            validate_config({"preconditions": bad}, schema)
