"""ld_core.report.tables (+ metrics_files, tidy_table, table_latex) and the `table` command: tidy table, LaTeX
rendering and atomic writing for the paper's table1."""
from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ld_core.config.matrix import load_matrix
from ld_core.config.paper import load_paper
from ld_core.config.file_checks import project_schemas
from ld_core.commands import table as table_command
from ld_core.report import metrics_files, table_latex, tables, tidy_table
from ld_core.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[2]
MATRIX = ROOT / "configs" / "experiments.yaml"
PAPER = ROOT / "configs" / "paper_tables.csv"

# made-up reproduced numbers: gfl_r18 has two seeds, the LD runs one each
RESULTS = {
    ("gfl_r18", 0): {"AP": 36.0, "AP75": 38.0},
    ("gfl_r18", 1): {"AP": 36.4, "AP75": 38.6},
    ("gfl_r18_ld_only_r101", 0): {"AP": 36.1, "AP75": 39.0},
    ("gfl_r18_ld_r101", 0): {"AP": 36.9, "AP75": 39.8},
}


@pytest.fixture(scope="module")
def spec():
    return yaml.safe_load(MATRIX.read_text())["tables"]["table1"]


def load_project_paper(path=PAPER):
    """The paper's numbers through the loader the table command uses (ld_core.config.paper)."""
    matrix = load_matrix(MATRIX)
    return load_paper(path, matrix.tables, matrix.path, project_schemas())


@pytest.fixture(scope="module")
def paper():
    return load_project_paper()


def write_metrics(root: Path, run: str, seed: int, metrics: dict) -> Path:
    path = root / "results" / "runs" / run / f"seed{seed}" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"AP50": 55.0, "APs": 20.0, "APm": 40.0, "APl": 50.0}
    path.write_text(json.dumps({"run": run, "seed": seed, "dataset": "coco", "metrics": {**extra, **metrics}}))
    return path


@pytest.fixture
def metric_files(tmp_path):
    return [write_metrics(tmp_path, run, seed, m) for (run, seed), m in RESULTS.items()]


def test_paper_values(paper):
    assert {"table", "row", "metric", "value"} <= set(paper.columns)
    assert paper.value("table1", "gt-only", "AP") == pytest.approx(35.8) and paper.has("table1", "gt-only", "AP")
    assert math.isnan(paper.value("table1", "gt-only", "AP50")) and not paper.has("table9", "gt-only", "AP")
    assert [c.metric for c in paper.of_table("table1") if c.row == "gt-only"] == ["AP", "AP75"]
    assert paper.dataset_of("table4") == "voc07_test" and paper.dataset_of("table9") == ""
    assert dict(paper.of_table("table1")[0].info)["variant"] == "baseline (L_reg + L_DFL; no LD)"


def test_the_table_command_checks_the_paper_with_the_parse_time_loader(tmp_path, metric_files):
    """A paper CSV edited after the DAG was parsed: the table command refuses it with the Snakefile's message."""
    bad = tmp_path / "paper.csv"
    bad.write_text("table,row,metric,value\n1,gt-only,AP,35.8\n 1, ld-only, AP, abc\n")
    csv_out, tex_out = tmp_path / "t.csv", tmp_path / "t.tex"
    with pytest.raises(ConfigError, match=r"paper\.csv: line 3, column 'value': must be a number, got a string 'abc'"):
        tables.write_table("table1", MATRIX, bad, metric_files, csv_out, tex_out)
    bad.write_text("table,row,metric,value\n1,gt-only,AP,35.8\n\n1,gt-only, AP ,36.0\n")
    with pytest.raises(ConfigError, match=r"line 4: duplicate value for table1, row 'gt-only', metric 'AP' "
                                          r"\(first on line 2\)"):
        tables.write_table("table1", MATRIX, bad, metric_files, csv_out, tex_out)
    bad.write_text("table,row,metric,value\n1,gt-only,AP,35.8\n1,gt-plus,AP,36.0\n")
    with pytest.raises(ConfigError, match=r"line 3, column 'row': row 'gt-plus' is not a row of table1"):
        tables.write_table("table1", MATRIX, bad, metric_files, csv_out, tex_out)
    assert not csv_out.exists() and not tex_out.exists()


def test_load_metrics_rows(metric_files):
    df = metrics_files.load_metrics(metric_files)
    assert list(df.columns[:4]) == ["run", "seed", "metric", "value"]
    assert len(df) == 4 * 6
    v = df[(df["run"] == "gfl_r18") & (df["seed"] == 1) & (df["metric"] == "AP75")]["value"]
    assert v.tolist() == [38.6]


def test_build_table_values(spec, paper, metric_files):
    tidy = tidy_table.build_table("table1", spec, metrics_files.load_metrics(metric_files), paper)
    assert list(tidy.columns[:10]) == tidy_table.TIDY_COLUMNS
    assert list(tidy.columns[10:]) == spec["columns"]
    # spec row order, metrics in spec order within a row
    assert list(zip(tidy["row"], tidy["metric"])) == [
        ("gt-only", "AP"), ("gt-only", "AP75"), ("ld-only", "AP"), ("ld-only", "AP75"),
        ("ld+gt", "AP"), ("ld+gt", "AP75")]
    assert set(tidy["table"]) == {"table1"}
    by = tidy.set_index(["row", "metric"])
    gt = by.loc[("gt-only", "AP")]
    assert gt["run"] == "gfl_r18"
    assert gt["paper"] == pytest.approx(35.8)
    assert gt["reproduced"] == pytest.approx(36.2)
    assert gt["reproduced_std"] == pytest.approx(math.sqrt(0.08), abs=1e-4)  # sample std of 36.0, 36.4
    assert gt["n_seeds"] == 2
    assert gt["delta"] == pytest.approx(0.4)
    assert by.loc[("gt-only", "AP75"), "delta"] == pytest.approx(38.3 - 38.2)
    ld_only = by.loc[("ld-only", "AP")]
    assert ld_only["n_seeds"] == 1 and math.isnan(ld_only["reproduced_std"])
    assert ld_only["paper"] == pytest.approx(36.4)
    assert ld_only["delta"] == pytest.approx(-0.3) and ld_only["delta"] < 0  # 36.1 - 36.4
    assert by.loc[("ld+gt", "AP75"), "delta"] == pytest.approx(0.5)
    assert by.loc[("ld-only", "AP"), "Teacher"] == "R-101"
    # every delta is stored with at most 2 decimals
    assert all(d == round(d, 2) for d in tidy["delta"])


def test_paper_missing_metric_is_nan(spec, paper, metric_files):
    spec2 = dict(spec, metrics=["AP", "APs"])
    tidy = tidy_table.build_table("table1", spec2, metrics_files.load_metrics(metric_files), paper)
    aps = tidy[tidy["metric"] == "APs"]
    assert len(aps) == 3 and aps["paper"].isna().all() and aps["delta"].isna().all()
    assert aps["reproduced"].tolist() == [20.0, 20.0, 20.0]
    tex = table_latex.render_latex("table1", spec2, tidy)
    assert "AP$_S$" in tex and " & --" in tex


def test_missing_run_names_it(spec, paper, metric_files):
    kept = [p for p in metric_files if "gfl_r18_ld_r101" not in str(p)]
    with pytest.raises(DataError, match="gfl_r18_ld_r101"):
        tidy_table.build_table("table1", spec, metrics_files.load_metrics(kept), paper)


def test_missing_metric_names_file(tmp_path, spec, paper, metric_files):
    bad = tmp_path / "results" / "runs" / "gfl_r18" / "seed1" / "metrics.json"
    bad.write_text(json.dumps({"run": "gfl_r18", "seed": 1, "metrics": {"AP": 36.4}}))
    with pytest.raises(DataError) as err:
        tidy_table.build_table("table1", spec, metrics_files.load_metrics(metric_files), paper)
    assert str(bad) in str(err.value) and "AP75" in str(err.value)


def test_malformed_json_one_line(tmp_path, metric_files):
    bad = metric_files[2]
    bad.write_text('{"run": "gfl_r18_ld_only_r101", "seed": 0,\n "metrics": {"AP": 36.1,, }}')
    with pytest.raises(DataError) as err:
        metrics_files.load_metrics(metric_files)
    msg = str(err.value)
    assert str(bad) in msg and "malformed JSON" in msg and "\n" not in msg


@pytest.mark.parametrize("payload, needle", [
    ({"seed": 0, "metrics": {"AP": 1.0}}, "missing key 'run'"),
    ({"run": "gfl_r18", "seed": 0}, "missing key 'metrics'"),
    ({"run": "gfl_r18", "seed": 0, "metrics": {"AP": "high"}}, "metric 'AP'"),
    ({"run": "gfl_r18", "seed": 5, "metrics": {"AP": 1.0}}, "folder is for run 'gfl_r18' seed 0"),
])
def test_bad_metrics_file(tmp_path, payload, needle):
    path = tmp_path / "runs" / "gfl_r18" / "seed0" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(payload))
    with pytest.raises(DataError) as err:
        metrics_files.load_metrics([path])
    assert str(path) in str(err.value) and needle in str(err.value)


def test_missing_file_and_duplicate_seed(tmp_path, metric_files):
    with pytest.raises(DataError, match="nope.json: metrics file does not exist"):
        metrics_files.load_metrics(metric_files + [tmp_path / "nope.json"])
    copy = tmp_path / "copy.json"
    shutil.copy(metric_files[0], copy)
    with pytest.raises(DataError, match="already given by"):
        metrics_files.load_metrics(metric_files + [copy])


def body_lines(tex: str):
    return tex.split("\\midrule\n", 1)[1].split("\\bottomrule", 1)[0].strip().splitlines()


def test_render_latex(spec, paper, metric_files):
    tidy = tidy_table.build_table("table1", spec, metrics_files.load_metrics(metric_files), paper)
    tex = table_latex.render_latex("table1", spec, tidy)
    for token in ("\\begin{table}", "\\toprule", "\\midrule", "\\bottomrule", "\\end{tabular}", "\\end{table}",
                  "\\label{tab:table1}", "\\multicolumn{2}{c}{AP}", "\\multicolumn{2}{c}{AP$_{75}$}",
                  "\\cmidrule(lr){5-6}", "\\cmidrule(lr){7-8}", spec["caption"],
                  "Paper: the published value; Ours: reproduced by ld-repro (mean $\\pm$ std over 1--2 seeds)"):
        assert token in tex, token
    assert tex.index("\\toprule") < tex.index("\\midrule") < tex.index("\\bottomrule")
    body = body_lines(tex)
    assert len(body) == len(spec["rows"])
    cells = [[c.strip() for c in line.removesuffix("\\\\").split("&")] for line in body]
    assert all(len(c) == 4 + 2 * 2 for c in cells)
    assert cells[0] == ["", "R-18", "", "\\checkmark", "35.8", "36.2 $\\pm$ 0.3", "38.2", "38.3 $\\pm$ 0.4"]
    assert cells[1][:4] == ["R-101", "R-18", "\\checkmark", ""]
    assert cells[1][4:] == ["36.4", "36.1", "39.3", "39.0"]
    assert cells[2][4:] == ["36.5", "36.9", "39.3", "39.8"]


def test_rows_below_a_rule_follow_the_papers_rows(spec, paper, metric_files):
    """Rows the paper does not have (below_rule) come after a second \\midrule, with "--" for the paper."""
    spec2 = dict(spec, rows=[dict(r) for r in spec["rows"]])
    spec2["rows"][2]["below_rule"] = True
    tidy = tidy_table.build_table("table1", spec2, metrics_files.load_metrics(metric_files), paper)
    tex = table_latex.render_latex("table1", spec2, tidy)
    body = tex.split("\\midrule\n")
    assert len(body) == 3 and len(body[1].strip().splitlines()) == 2 and len(body[2].split("\\bottomrule")[0]
                                                                            .strip().splitlines()) == 1


def test_metric_headers():
    assert [table_latex.metric_header(m) for m in ("AP", "AP50", "AP75", "APs", "APm", "APl", "my_metric")] == [
        "AP", "AP$_{50}$", "AP$_{75}$", "AP$_S$", "AP$_M$", "AP$_L$", "my\\_metric"]


def test_write_table_and_cli(tmp_path, metric_files):
    csv_out, tex_out = tmp_path / "tables" / "table1.csv", tmp_path / "tables" / "table1.tex"
    parser = argparse.ArgumentParser()
    table_command.add_arguments(parser)
    args = parser.parse_args(["--matrix", str(MATRIX), "--table", "table1", "--paper", str(PAPER),
                              "--metrics", *map(str, metric_files), "--csv", str(csv_out), "--tex", str(tex_out)])
    assert table_command.run(args) == 0
    back = pd.read_csv(csv_out)
    assert list(back.columns[:10]) == tidy_table.TIDY_COLUMNS and len(back) == 6
    assert back.loc[0, "reproduced"] == pytest.approx(36.2)
    assert "\\bottomrule" in tex_out.read_text()
    assert not [p for p in csv_out.parent.iterdir() if p.name.startswith(".")]  # no temp files left


def test_failed_write_leaves_nothing(tmp_path, metric_files):
    csv_out, tex_out = tmp_path / "out" / "table1.csv", tmp_path / "out" / "table1.tex"
    with pytest.raises(DataError):  # a run without metrics: fails before writing
        tables.write_table("table1", MATRIX, PAPER, metric_files[:2], csv_out, tex_out)
    assert not csv_out.exists() and not tex_out.exists()
    tex_out.mkdir(parents=True)  # the TeX cannot be written: the CSV written just before is rolled back
    with pytest.raises(DataError, match="cannot write"):
        tables.write_table("table1", MATRIX, PAPER, metric_files, csv_out, tex_out)
    assert not csv_out.exists()
    csv_out.write_text("old\n")  # an existing CSV is not updated either
    with pytest.raises(DataError):
        tables.write_table("table1", MATRIX, PAPER, metric_files, csv_out, tex_out)
    assert csv_out.read_text() == "old\n"
    assert sorted(p.name for p in csv_out.parent.iterdir()) == ["table1.csv", "table1.tex"]


def test_own_dataset_has_no_paper_column(tmp_path, spec, metric_files):
    """On a dataset of the user's own: no paper value or delta, a `dataset` column, and LaTeX without "Paper"."""
    csv_out, tex_out = tmp_path / "tables" / "table1.csv", tmp_path / "tables" / "table1.tex"
    parser = argparse.ArgumentParser()
    table_command.add_arguments(parser)
    args = parser.parse_args(["--matrix", str(MATRIX), "--table", "table1", "--paper", str(PAPER), "--metrics",
                              *map(str, metric_files), "--csv", str(csv_out), "--tex", str(tex_out),
                              "--dataset-name", "aerial_tiles"])
    assert table_command.run(args) == 0
    back = pd.read_csv(csv_out)
    assert back["paper"].isna().all() and back["delta"].isna().all()
    assert set(back["dataset"]) == {"aerial_tiles"} and back.loc[0, "reproduced"] == pytest.approx(36.2)
    tex = tex_out.read_text()
    assert "Paper" not in tex and "35.8" not in tex and "\\cmidrule" not in tex
    assert "on the dataset aerial\\_tiles" in tex
    assert "\\begin{tabular}{cccccc}" in tex  # 4 descriptive columns + one per metric
    cells = [[c.strip() for c in line.removesuffix("\\\\").split("&")] for line in body_lines(tex)]
    assert cells[0] == ["", "R-18", "", "\\checkmark", "36.2 $\\pm$ 0.3", "38.3 $\\pm$ 0.4"]
    with pytest.raises(ConfigError, match="--dataset-name must not be empty"):
        tables.write_table("table1", MATRIX, PAPER, metric_files, csv_out, tex_out, dataset_name=" ")
    clash = dict(spec, columns=["dataset", "Student", "LD", "GT"])
    with pytest.raises(ConfigError, match="column name 'dataset' clashes"):
        tidy_table.build_table("table1", clash, metrics_files.load_metrics(metric_files), load_project_paper())


def test_unknown_table(tmp_path, metric_files):
    with pytest.raises(ConfigError, match="table9"):
        tables.write_table("table9", MATRIX, PAPER, metric_files, tmp_path / "a.csv", tmp_path / "a.tex")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_latex_compiles(tmp_path, spec, paper, metric_files):
    tidy = tidy_table.build_table("table1", spec, metrics_files.load_metrics(metric_files), paper)
    doc = tmp_path / "doc.tex"
    doc.write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{amssymb}\n"
                   "\\begin{document}\n" + table_latex.render_latex("table1", spec, tidy) + "\\end{document}\n")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (tmp_path / "doc.pdf").is_file()
