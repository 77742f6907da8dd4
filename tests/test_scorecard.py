"""ld_core.report.scorecard: the claims file, claim evaluation (holds / margin / seed spread), cells, Markdown;
ld_core.report.plots: the bar plots it writes."""
from __future__ import annotations

import math
import statistics
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ld_core.cli import main as cli_main

from ld_core.report import format as fmt
from ld_core.report import plots, scorecard, stats, tables
from ld_core.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = ROOT / "configs" / "claims.yaml"
PAPER = ROOT / "configs" / "paper_tables.csv"
MATRIX = ROOT / "configs" / "experiments.yaml"

TABLE1_RUNS = {"gt-only": "gfl_r18", "ld-only": "gfl_r18_ld_only_r101", "ld+gt": "gfl_r18_ld_r101"}


@pytest.fixture(scope="module")
def paper():
    return tables.load_paper_values(PAPER)


@pytest.fixture(scope="module")
def claims():
    return scorecard.load_claims(CLAIMS)


def write_tidy(path: Path, seeds: dict, table: str = "table1") -> Path:
    """A tidy table CSV in the ld_core.report.tables format; ``seeds`` maps (row, metric) -> per-seed values."""
    paper = tables.load_paper_values(PAPER)
    number = int(table[len("table"):])
    lookup = {(r, m): v for t, r, m, v in zip(paper["table"], paper["row"], paper["metric"], paper["value"])
              if t == number}
    recs = []
    for (row, metric), values in seeds.items():
        n = len(values)
        mean = statistics.fmean(values)
        std = statistics.stdev(values) if n > 1 else math.nan
        p = lookup.get((row, metric), math.nan)
        recs.append({"table": table, "row": row, "run": TABLE1_RUNS.get(row, f"run_{row}"), "metric": metric,
                     "paper": p, "reproduced": round(mean, 4), "reproduced_std": round(std, 4) if n > 1 else math.nan,
                     "n_seeds": n, "delta": round(mean - p, 2), "per_seed": fmt.per_seed_text(dict(enumerate(values))),
                     "Teacher": "R-101", "Student": "R-18"})
    df = pd.DataFrame(recs, columns=tables.TIDY_COLUMNS + ["Teacher", "Student"])
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
    ids = [c["id"] for c in claims]
    assert len(ids) == len(set(ids))
    assert {c["table"] for c in claims} == {"table1", "table2", "table3", "table4"}
    cells = {(f"table{t}", r, m) for t, r, m in zip(paper["table"], paper["row"], paper["metric"])}
    for c in claims:
        if c["ours_only"]:  # rows this reproduction adds (Table 3's distribution heads without a teacher)
            assert c["table"] == "table3" and all(r not in {r for _, r, _ in cells} for r in [c["than"]]), c["id"]
            continue
        for row in c["better"] + [c["than"]]:
            for metric in c["metrics"]:
                assert (c["table"], row, metric) in cells, (c["id"], row, metric)
    scorecard.check_claims_against_paper(claims, paper, CLAIMS)  # the same check the scorecard runs
    # the supplement's statements are all there
    pairs = {(c["table"], b, c["than"], m, c["allow_equal"]) for c in claims for b in c["better"] for m in c["metrics"]}
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
    frame = pd.DataFrame({"table": [f"table{t}" for t in paper["table"]], "row": paper["row"],
                          "metric": paper["metric"], "paper": paper["value"]})
    for c in (c for c in claims if not c["ours_only"]):
        res = scorecard.evaluate_claim(c, frame, column="paper")
        assert res["holds"] is True, (c["id"], res)
        assert res["margin"] >= 0
        assert fmt.is_missing(res["n"]) and math.isnan(res["ci_lo"])
    # Table 1's "only 0.1 AP is increased": ld+gt vs ld-only, AP75 equal -> margin 0 (allowed)
    t1 = next(c for c in claims if c["table"] == "table1" and c["than"] == "ld-only")
    assert scorecard.evaluate_claim(t1, frame, column="paper")["margin"] == pytest.approx(0.0)


# ----------------------------------------------------------------------------------------------- evaluation


def test_failing_claim_reports_negative_margin(tmp_path):
    # ld-only below gt-only: AP 35.5 vs 36.0 (-0.5), AP75 37.9 vs 38.0 (-0.1)
    seeds = {("gt-only", "AP"): [36.0], ("gt-only", "AP75"): [38.0], ("ld-only", "AP"): [35.5],
             ("ld-only", "AP75"): [37.9], ("ld+gt", "AP"): [36.2], ("ld+gt", "AP75"): [38.4]}
    csv = write_tidy(tmp_path / "tables" / "table1.csv", seeds)
    _, claims, _ = scorecard.build_scorecard([csv], CLAIMS, PAPER)
    rec = claim_by_id(claims, "t1-ld-only-beats-gt")
    assert rec["holds"] == "one seed" and rec["n"] == 1 and math.isnan(rec["ci_lo"])  # one seed: no verdict
    assert rec["holds_in_paper"] is True
    assert rec["margin"] == pytest.approx(-0.5)
    assert rec["weakest"] == "ld-only − gt-only, AP"
    ok = claim_by_id(claims, "t1-gt-adds-little")  # ld+gt (36.2, 38.4) >= ld-only (35.5, 37.9)
    assert ok["holds"] == "one seed" and ok["margin"] == pytest.approx(0.5)


def test_allow_equal_and_one_seed():
    tidy = pd.DataFrame({"table": ["table1"] * 2, "row": ["a", "b"], "metric": ["AP", "AP"],
                         "reproduced": [36.4, 36.4], "reproduced_std": [math.nan] * 2, "n_seeds": [2, 2],
                         "per_seed": ["0:36.4;1:36.5", "0:36.4;1:36.5"]})
    claim = {"id": "x", "table": "table1", "text": "t", "better": ["a"], "than": "b", "metrics": ["AP"]}
    assert scorecard.evaluate_claim({**claim, "allow_equal": True}, tidy)["holds"] is True   # [0, 0] >= 0
    assert scorecard.evaluate_claim({**claim, "allow_equal": False}, tidy)["holds"] is False
    tidy["per_seed"] = ["0:36.4", "0:36.4"]
    assert scorecard.evaluate_claim({**claim, "allow_equal": True}, tidy)["holds"] == "one seed"
    # float noise (36.5 - 36.4 = 0.10000000000000142) does not break equality or margins
    tidy.loc[0, "reproduced"] = 36.5
    assert scorecard.evaluate_claim({**claim, "allow_equal": False}, tidy)["margin"] == 0.1


@pytest.mark.parametrize("gt, ld_only, expected", [
    ([35.0, 35.1, 35.2], [36.0, 36.1, 36.2], True),     # every seed +1.0: interval [1.0, 1.0]
    ([35.0, 35.1, 35.2], [36.0, 36.3, 36.0], True),     # +1.0, +1.2, +0.8: interval [0.50, 1.50]
    ([35.0, 35.1, 35.2], [36.5, 35.6, 36.2], False),    # +1.5, +0.5, +1.0: interval [-0.24, 2.24]
    ([35.0, 35.1, 35.2], [33.0, 36.1, 39.2], False),    # -2, +1, +4: mean 1.0 but the interval reaches below 0
    ([35.1], [36.1], "one seed"),
    ([35.0, 35.1, 35.2], [36.1], "one seed"),           # one common seed
])
def test_paired_interval_decides(tmp_path, gt, ld_only, expected):
    csv = write_tidy(tmp_path / "table1.csv", table1_seeds(gt, ld_only, [37.0, 37.1, 37.2]))
    _, claims, _ = scorecard.build_scorecard([csv], CLAIMS, PAPER)
    rec = claim_by_id(claims, "t1-ld-only-beats-gt")
    diffs = [b - a for a, b in zip(gt, ld_only)]  # paired over the common seeds
    assert rec["margin"] == pytest.approx(statistics.fmean(ld_only) - statistics.fmean(gt))  # of the means
    assert rec["n"] == len(diffs)
    if len(diffs) > 1:
        half = stats.t_quantile(len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
        assert rec["ci_lo"] == pytest.approx(statistics.fmean(diffs) - half, abs=1e-4)
        assert rec["holds"] is (rec["ci_lo"] > 0)
    assert rec["holds"] == expected


def test_t_interval_matches_the_textbook_value():
    d = stats.paired_difference({0: 1.5, 1: 0.5, 2: 1.0}, {0: 0.0, 1: 0.0, 2: 0.0})
    assert d.n == 3 and d.mean == pytest.approx(1.0)
    assert stats.t_quantile(2) == pytest.approx(4.302653, abs=1e-5)   # t_{0.975, 2}
    assert (d.lo, d.hi) == pytest.approx((1.0 - 4.302653 * 0.5 / math.sqrt(3), 1.0 + 4.302653 * 0.5 / math.sqrt(3)))
    assert stats.paired_difference({0: 1.0}, {1: 0.0}) is None


def test_tables_not_built_are_not_run(tmp_path, paper):
    csv = write_tidy(tmp_path / "table1.csv", table1_seeds([35.0, 35.2], [36.0, 36.4], [36.5, 36.7]))
    cells, claims, _ = scorecard.build_scorecard([csv], CLAIMS, PAPER)
    # every paper cell is there, once
    assert len(cells) == len(paper)
    assert not cells.duplicated(["table", "row", "metric"]).any()
    t1 = cells[cells["table"] == "table1"]
    assert (t1["status"] == "reproduced").all() and (t1["n_seeds"] == 2).all()
    one = t1[(t1["row"] == "ld-only") & (t1["metric"] == "AP")].iloc[0]
    assert one["reproduced"] == pytest.approx(36.2)
    assert one["reproduced_std"] == pytest.approx(0.2828, abs=1e-4)
    assert one["delta"] == pytest.approx(36.2 - 36.4)
    assert one["run"] == "gfl_r18_ld_only_r101"
    rest = cells[cells["table"] != "table1"]
    assert (rest["status"] == "not run").all()
    assert rest["reproduced"].isna().all() and rest["delta"].isna().all() and rest["n_seeds"].isna().all()
    assert set(rest["table"]) == {"table2", "table3", "table4"}
    for rec in claims.to_dict("records"):
        assert rec["holds_in_paper"] is True or rec["id"].startswith("t3-ld-vs-head-")
        if rec["table"] == "table1":
            assert rec["holds"] in (True, False)
        else:
            assert rec["holds"] == "not run" and fmt.is_missing(rec["n"])
            assert math.isnan(rec["margin"]) and "not built" in rec["note"]


def test_missing_row_in_a_built_table_is_not_run(tmp_path):
    seeds = {k: v for k, v in table1_seeds([35.0], [36.0], [36.5]).items() if k[0] != "ld+gt"}
    csv = write_tidy(tmp_path / "table1.csv", seeds)
    cells, claims, _ = scorecard.build_scorecard([csv], CLAIMS, PAPER)
    rec = claim_by_id(claims, "t1-gt-adds-little")
    assert rec["holds"] == "not run" and "ld+gt" in rec["note"]
    assert claim_by_id(claims, "t1-ld-only-beats-gt")["holds"] == "one seed"
    assert (cells[(cells["table"] == "table1") & (cells["row"] == "ld+gt")]["status"] == "not run").all()


def test_works_on_a_table_built_by_ld_core_tables(tmp_path):
    spec = yaml.safe_load(MATRIX.read_text())["tables"]["table1"]
    metrics = pd.DataFrame([
        {"run": run, "seed": s, "metric": m, "value": v + s * 0.1, "source": f"{run}/{s}"}
        for run, base in (("gfl_r18", 35.0), ("gfl_r18_ld_only_r101", 36.0), ("gfl_r18_ld_r101", 36.5))
        for s in (0, 1, 2) for m, v in (("AP", base), ("AP75", base + 2))])
    tidy = tables.build_table("table1", spec, metrics, tables.load_paper_values(PAPER))
    csv = tmp_path / "table1.csv"
    csv.write_text(tidy.to_csv(index=False, lineterminator="\n"))
    _, claims, _ = scorecard.build_scorecard([csv], CLAIMS, PAPER)
    rec = claim_by_id(claims, "t1-ld-only-beats-gt")
    assert rec["holds"] is True and rec["margin"] == pytest.approx(1.0)
    assert rec["n"] == 3 and rec["ci_lo"] == pytest.approx(1.0)  # every seed +1.0


# ----------------------------------------------------------------------------------------------- outputs


def test_write_scorecard_outputs(tmp_path, capsys):
    csv = write_tidy(tmp_path / "tables" / "table1.csv",
                     table1_seeds([35.0, 35.1, 35.2], [36.0, 36.1, 36.2], [36.5, 36.6, 36.7]))
    out_csv, out_md, plot_dir = tmp_path / "out" / "scorecard.csv", tmp_path / "out" / "scorecard.md", tmp_path / "fig"
    rc = cli_main(["scorecard", "--tables", str(csv), "--claims", str(CLAIMS), "--paper", str(PAPER),
                         "--csv", str(out_csv), "--md", str(out_md), "--plot-dir", str(plot_dir)])
    assert rc == 0
    n = len(scorecard.load_claims(CLAIMS))
    n_other = sum(1 for c in scorecard.load_claims(CLAIMS) if c["table"] != "table1")
    summary = (f"{n - n_other} of {n} claims hold on the reproduced numbers (paired 95 % interval above 0); "
               f"0 one seed; {n_other} not run")
    assert summary in capsys.readouterr().out

    df = pd.read_csv(out_csv, dtype=str, keep_default_na=False)
    assert set(df["kind"]) == {"cell", "claim"}
    assert df.columns[0] == "kind"
    for col in ("table", "row", "metric", "paper", "reproduced", "reproduced_std", "n_seeds", "delta", "status",
                "id", "holds", "holds_in_paper", "margin", "n", "ci_lo", "ci_hi", "per_seed"):
        assert col in df.columns, col
    claim_rows = df[df["kind"] == "claim"]
    assert len(claim_rows) == n and set(claim_rows["holds_in_paper"]) == {"True", scorecard.NOT_IN_PAPER}
    assert claim_rows.set_index("id").loc["t1-ld-only-beats-gt", "holds"] == "True"
    assert (df[df["kind"] == "cell"]["id"] == "").all()

    md = out_md.read_text()
    assert md.startswith("# ")
    assert summary in md
    assert "paired by seed" in md and "95 % Student-t interval" in md  # the rule is stated
    assert "| t1-ld-only-beats-gt |" in md
    assert "## table1" in md and "## table4 (not run)" in md
    assert "| ld-only | AP | 36.4 | 36.1 ± 0.1 | -0.3 | reproduced |" in md

    png = plot_dir / "table1_bars.png"
    assert png.is_file() and png.stat().st_size > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in plot_dir.iterdir()) == ["table1_bars.png"]  # only built tables, no temp files
    _, _, differences = scorecard.build_scorecard([csv], CLAIMS, PAPER)
    assert png.read_bytes() == plots.bars_png("table1", differences["table1"])  # the claims' differences, as rendered


def test_bars_png(tmp_path):
    png = plots.bars_png("table1", [dict(label="ld+gt − gt-only", metric="AP", paper=0.7, diff=1.0, lo=0.5, hi=1.5, n=3),
                                    dict(label="ld-only − gt-only", metric="AP75", paper=1.1, diff=-0.2, lo=None,
                                         hi=None, n=1)])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    assert plots.bars_png("table2", [])[:8] == b"\x89PNG\r\n\x1a\n"  # a built table without claims still plots


def test_build_scorecard_returns_the_claimed_differences(tmp_path):
    one = write_tidy(tmp_path / "table1.csv", table1_seeds([35.0, 35.1], [36.0, 36.3], [36.5, 36.5]))
    _, _, differences = scorecard.build_scorecard([one], CLAIMS, PAPER)
    assert list(differences) == ["table1"]
    by_key = {(c["label"], c["metric"]): c for c in differences["table1"]}
    ld_only = by_key[("ld-only − gt-only", "AP")]
    assert ld_only["diff"] == pytest.approx(1.1) and ld_only["n"] == 2 and ld_only["lo"] < 1.1 < ld_only["hi"]
    assert ld_only["paper"] == pytest.approx(36.4 - 35.8)


def test_nothing_partial_on_error(tmp_path):
    csv = write_tidy(tmp_path / "table1.csv", table1_seeds([35.0], [36.0], [36.5]))
    bad_claims = tmp_path / "claims.yaml"
    bad_claims.write_text("claims:\n  - {id: x, table: table1, text: t, better: [ld-only], metrics: [AP]}\n")
    out = tmp_path / "out"
    with pytest.raises(ConfigError):
        scorecard.write_scorecard([csv], bad_claims, PAPER, out / "s.csv", out / "s.md", out / "fig")
    assert not out.exists()
    # a write failing half-way (the Markdown's folder is a file) rolls the CSV back
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    with pytest.raises(DataError):
        scorecard.write_scorecard([csv], CLAIMS, PAPER, out / "s.csv", blocker / "s.md")
    assert not (out / "s.csv").exists()
    assert not (out.exists() and [p for p in out.rglob("*") if p.is_file()])  # no temp files either
    # a malformed table CSV
    broken = tmp_path / "broken.csv"
    broken.write_text("table,row,metric\ntable1,ld-only,AP\n")
    with pytest.raises(DataError, match="broken.csv"):
        scorecard.write_scorecard([broken], CLAIMS, PAPER, out / "s.csv", out / "s.md")
    assert not (out / "s.csv").exists()
    with pytest.raises(DataError, match="gone.csv: table CSV does not exist"):
        scorecard.write_scorecard([tmp_path / "gone.csv"], CLAIMS, PAPER, out / "s.csv", out / "s.md")
    unreadable = tmp_path / "latin1.csv"
    unreadable.write_bytes(b"table,row\n\xff\n")
    with pytest.raises(DataError, match=r"latin1.csv: malformed CSV \('utf-8' codec can't decode"):
        scorecard.load_tidy(unreadable)


def test_same_table_twice_is_an_error(tmp_path):
    a = write_tidy(tmp_path / "a.csv", table1_seeds([35.0], [36.0], [36.5]))
    b = write_tidy(tmp_path / "b.csv", table1_seeds([35.0], [36.0], [36.5]))
    with pytest.raises(DataError, match="also given by"):
        scorecard.build_scorecard([a, b], CLAIMS, PAPER)


# ----------------------------------------------------------------------------------------------- malformed claims


GOOD = {"id": "c", "table": "table1", "text": "t", "better": ["ld-only"], "than": "gt-only", "metrics": ["AP"]}


@pytest.mark.parametrize("content, fragment", [
    (yaml.safe_dump({"claims": [{**GOOD, "colour": "red"}]}), "unknown key 'colour'"),
    (yaml.safe_dump({"claims": [{k: v for k, v in GOOD.items() if k != "than"}]}), "missing 'than'"),
    (yaml.safe_dump({"claims": [GOOD, GOOD]}), "duplicate id 'c'"),
    (yaml.safe_dump({"claims": [{**GOOD, "better": []}]}), "'better' must be a non-empty list"),
    (yaml.safe_dump({"claims": [{**GOOD, "allow_equal": "yes please"}]}), "'allow_equal' must be true or false"),
    (yaml.safe_dump({"claims": [{**GOOD, "table": "Table 1"}]}), "'table' must be tableN"),
    (yaml.safe_dump({"claims": []}), "'claims' must be a non-empty list"),
    (yaml.safe_dump({"claims": [GOOD], "extra": 1}), "unknown top-level key 'extra'"),
    ("claims:\n  - id: [unclosed\n", "malformed YAML"),
    ("- just a list\n", "expected a mapping"),
])
def test_malformed_claims_file(tmp_path, content, fragment):
    path = tmp_path / "my_claims.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        scorecard.load_claims(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and fragment in msg, msg


@pytest.mark.parametrize("change, fragment", [
    ({"better": ["ld-plus"]}, "row 'ld-plus' is not in table1"),
    ({"metrics": ["AP50"]}, "the paper has no AP50"),
])
def test_claim_rows_must_exist_in_paper(tmp_path, change, fragment):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"claims": [{**GOOD, **change}]}))
    with pytest.raises(ConfigError) as info:
        scorecard.build_scorecard([], path, PAPER)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and fragment in msg, msg


def test_missing_claims_file_and_cli_error(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="nope.yaml: claims file does not exist"):
        scorecard.load_claims(missing)
    rc = cli_main(["scorecard", "--tables", str(tmp_path / "t.csv"), "--claims", str(missing), "--paper", str(PAPER),
                         "--csv", str(tmp_path / "s.csv"), "--md", str(tmp_path / "s.md")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "s.csv").exists()


def test_figure2_claim_from_the_figures_summary(tmp_path):
    import json

    csv = write_tidy(tmp_path / "table1.csv", table1_seeds([35.0, 35.1], [36.0, 36.3], [36.5, 36.5]))
    summary = tmp_path / "figures.json"
    rec = {"boxes_per_image_nms0.6": 2.0, "boxes_per_image_nms0.95": 3.5, "surplus_per_image": 1.5}
    summary.write_text(json.dumps({"nms_redundancy": {"images": 200, "score_thr": 0.3,
                                                      "baseline": dict(rec, **{"redundant_per_image_nms0.6": 0.4}),
                                                      "ld": dict(rec, **{"redundant_per_image_nms0.6": 0.25})}}))
    _, claims, _ = scorecard.build_scorecard([csv], CLAIMS, PAPER, summary)
    fig = claim_by_id(claims, "f2-ld-fewer-redundant-boxes")
    assert fig["holds"] == "one seed" and fig["margin"] == pytest.approx(0.15) and "200 images" in fig["note"]
    summary.write_text("{}")
    with pytest.raises(DataError, match="Figure 2"):
        scorecard.build_scorecard([csv], CLAIMS, PAPER, summary)


def test_ours_only_claim_is_scored_without_a_paper_value(tmp_path):
    """LD vs the same distribution head without a teacher: the paper has no such row; paired 95 % CI decides."""
    seeds = {("atss", "AP"): [17.0, 17.2, 16.9], ("atss-ld", "AP"): [18.0, 18.3, 18.1],
             ("atss-dist", "AP"): [17.1, 17.0, 17.3]}
    csv = write_tidy(tmp_path / "tables" / "table3.csv", seeds, table="table3")
    claims = [c for c in scorecard.load_claims(CLAIMS) if c["id"] in ("t3-ld-atss", "t3-ld-vs-head-atss")]
    assert len(claims) == 2
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump({"claims": claims}))
    _, frame, diffs = scorecard.build_scorecard([csv], path, PAPER)
    rec = claim_by_id(frame, "t3-ld-vs-head-atss")
    assert rec["holds_in_paper"] == scorecard.NOT_IN_PAPER and rec["holds"] is True and rec["n"] == 3
    assert claim_by_id(frame, "t3-ld-atss")["holds_in_paper"] is True
    bars = {c["label"]: c for c in diffs["table3"]}
    assert len(bars) == 2 and any(math.isnan(c["paper"]) for c in bars.values())
    assert plots.bars_png("table3", diffs["table3"])[:4] == b"\x89PNG"
