"""Paper tables: the published numbers beside the reproduced ones, as a tidy CSV and a booktabs LaTeX table.

Inputs
------
* the experiment matrix (``configs/experiments.yaml``): a table lists ``rows`` (``row`` id, ``run`` id,
  descriptive ``cells`` for the table's ``columns``) and the ``metrics`` to show;
* the paper's numbers (``configs/paper_tables.csv``: ``table,row,...,metric,value``; ``table`` is the N of
  ``tableN``), loaded and checked by :func:`ld_core.config.paper.load_paper`;
* one ``metrics.json`` per (run, seed): ``{"run": ..., "seed": ..., "metrics": {"AP": 41.2, ...}}`` (percent).

Outputs
-------
* the tidy table, one row per (table row x metric), columns :data:`TIDY_COLUMNS` then the spec's descriptive
  columns; ``reproduced`` is the mean over seeds, ``reproduced_std`` the sample std (ddof=1; NaN for one seed),
  ``delta`` = reproduced - paper (2 decimals; NaN where the paper has no value);
* a booktabs LaTeX table in the paper's layout (the spec's cells are raw LaTeX; the including document needs
  ``\\usepackage{booktabs}`` and ``amssymb`` for ``\\checkmark``).

On a dataset of the user's own (``--dataset-name NAME``: the pipeline's ``--config dataset=<file>``) the paper's
numbers, which are COCO's / VOC's, are not shown: ``paper`` and ``delta`` stay empty, a ``dataset`` column names
the dataset, and the LaTeX has one "Ours" column per metric and the name in its caption.

Every problem is a one-line :class:`~ld_core.errors.DataError` / :class:`~ld_core.errors.ConfigError` naming the
file (or the run / table) at fault.
"""
from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

import pandas as pd

from ..config.paper import PaperTable, load_paper
from ..config.file_checks import project_schemas
from ..errors import ConfigError, DataError, one_line, require_file
from ..files import atomic_write_files
from . import formatting as fmt

TIDY_COLUMNS = ["table", "row", "run", "metric", "paper", "reproduced", "reproduced_std", "n_seeds", "delta",
                "per_seed"]
METRICS_REQUIRED = ("run", "seed", "metrics")
METRIC_HEADERS = {
    "AP": "AP",
    "AP50": "AP$_{50}$",
    "AP75": "AP$_{75}$",
    "APs": "AP$_S$",
    "APm": "AP$_M$",
    "APl": "AP$_L$",
    "AR": "AR",
    "AR100": "AR$_{100}$",
    "params_M": "Params (M)",
    "GFLOPs": "GFLOPs",
    "FPS_2080Ti": "FPS (2080Ti)",
    "FPS": "FPS",
}
OURS_NOTE = "Paper: the published value; Ours: reproduced by ld-repro (mean $\\pm$ std over {n})"
OWN_NOTE = ("Reproduced by ld-repro on the dataset {name} (mean $\\pm$ std over {n}); the paper's values are on "
            "its own datasets and not shown")
OPTIONAL_COLUMNS = ("device", "dataset")  # tidy columns present only where they apply


# ----------------------------------------------------------------------------------------------- loading


def _load_one_metrics(path: Path) -> Tuple[str, int, List[dict]]:
    require_file(path, "metrics file", DataError)
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read metrics file ({one_line(exc)})") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    for key in METRICS_REQUIRED:
        if key not in raw:
            raise DataError(f"{path}: missing key '{key}' (required: {', '.join(METRICS_REQUIRED)})")
    run, seed, metrics = raw["run"], raw["seed"], raw["metrics"]
    if not isinstance(run, str) or not run:
        raise DataError(f"{path}: 'run' must be a non-empty string, got {run!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DataError(f"{path}: 'seed' must be an integer, got {seed!r}")
    if not isinstance(metrics, dict) or not metrics:
        raise DataError(f"{path}: 'metrics' must be a non-empty mapping of metric name to value")
    # a file inside the pipeline layout (.../runs/<run>/seed<seed>/metrics.json) must describe that run and seed
    m = re.fullmatch(r"seed(-?\d+)", path.parent.name)
    if m and path.parent.parent.parent.name == "runs":
        if path.parent.parent.name != run or int(m.group(1)) != seed:
            raise DataError(f"{path}: holds run '{run}' seed {seed}, but its folder is for run "
                            f"'{path.parent.parent.name}' seed {m.group(1)}")
    rows = []
    for name, value in metrics.items():
        if value is None:  # not applicable (e.g. APl without large objects): as if absent
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise DataError(f"{path}: metric '{name}' must be a finite number, got {value!r}")
        rows.append({"run": run, "seed": seed, "metric": str(name), "value": float(value), "source": str(path),
                     "device": raw.get("device_name")})
    return run, seed, rows


def load_metrics(paths: Iterable) -> pd.DataFrame:
    """Per-run metrics files -> one row per (run, seed, metric): run, seed, metric, value, source, device.

    ``source`` is the file the value came from (used to name it in later errors); ``device`` the file's
    ``device_name`` (speed measurements), else None. Several files may describe one (run, seed), but a metric
    given twice for the same (run, seed) is a :class:`DataError`.
    """
    rows: List[dict] = []
    seen = {}
    for p in paths:
        path = Path(p)
        run, seed, file_rows = _load_one_metrics(path)
        for rec in file_rows:  # several files may describe one (run, seed), e.g. metrics.json + complexity.json
            key = (run, seed, rec["metric"])
            if key in seen:
                raise DataError(f"{path}: metric '{rec['metric']}' of run '{run}' seed {seed} already given by "
                                f"{seen[key]}")
            seen[key] = path
        rows.extend(file_rows)
    df = pd.DataFrame(rows, columns=["run", "seed", "metric", "value", "source", "device"])
    df["seed"] = df["seed"].astype("int64")
    df["value"] = df["value"].astype("float64")
    return df


# ----------------------------------------------------------------------------------------------- the table


def _check_spec(table_id: str, spec: dict) -> None:
    if not isinstance(spec, dict):
        raise ConfigError(f"table '{table_id}': expected a mapping")
    metrics, rows = spec.get("metrics"), spec.get("rows")
    if not metrics or not isinstance(metrics, list):
        raise ConfigError(f"table '{table_id}': 'metrics' must be a non-empty list")
    if not rows or not isinstance(rows, list):
        raise ConfigError(f"table '{table_id}': 'rows' must be a non-empty list")
    columns = list(spec.get("columns") or [])
    clash = [c for c in columns if c in TIDY_COLUMNS or c in OPTIONAL_COLUMNS]
    if clash:
        raise ConfigError(f"table '{table_id}': column name '{clash[0]}' clashes with a tidy-table column")
    ids = set()
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not row.get("row") or not row.get("run"):
            raise ConfigError(f"table '{table_id}' row {i}: needs 'row' and 'run'")
        if row["row"] in ids:
            raise ConfigError(f"table '{table_id}': duplicate row id '{row['row']}'")
        ids.add(row["row"])
        cells = row.get("cells") or []
        if len(cells) != len(columns):
            raise ConfigError(f"table '{table_id}' row '{row['row']}': {len(cells)} cells for "
                              f"{len(columns)} columns")


def _paper_table_number(table_id: str) -> Optional[int]:
    m = re.fullmatch(r"table(\d+)", str(table_id))
    return int(m.group(1)) if m else None


def build_table(table_id: str, table_spec: dict, metrics: pd.DataFrame, paper: PaperTable,
                dataset_name: Optional[str] = None) -> pd.DataFrame:
    """The tidy table: one row per (spec row x metric), in the spec's order (see :data:`TIDY_COLUMNS`); with
    ``dataset_name`` (the user's own dataset) no paper values or deltas, and a ``dataset`` column."""
    _check_spec(table_id, table_spec)
    columns = list(table_spec.get("columns") or [])
    number = _paper_table_number(table_id)
    paper_t = paper.of_table(f"table{number}") if number is not None and not dataset_name else ()
    paper_lookup = {(c.row, c.metric): c.value for c in paper_t}
    aliases = dict(table_spec.get("paper_metrics") or {})  # our metric -> the paper's (e.g. FPS -> FPS_2080Ti)
    with_device = "device" in metrics.columns and metrics["device"].notna().any()

    out = []
    for row in table_spec["rows"]:
        run = row["run"]
        run_df = metrics[metrics["run"] == run]
        if run_df.empty:
            raise DataError(f"table '{table_id}' row '{row['row']}': no metrics file for run '{run}' "
                            f"(expected results/runs/{run}/seed<N>/metrics.json)")
        seeds = list(dict.fromkeys(run_df["seed"]))
        for metric in table_spec["metrics"]:
            for seed in seeds:  # every seed needs every metric, from one of its files
                seed_df = run_df[run_df["seed"] == seed]
                if not (seed_df["metric"] == metric).any():
                    files = list(dict.fromkeys(seed_df["source"]))
                    raise DataError(f"{', '.join(files)}: metric '{metric}' missing (table '{table_id}' needs "
                                    f"it; file has: {', '.join(sorted(seed_df['metric'])) or 'none'})")
            by_seed = run_df.loc[run_df["metric"] == metric].sort_values("seed")
            values = by_seed["value"].astype(float)
            n = int(len(values))
            mean = float(values.mean())
            std = float(values.std(ddof=1)) if n > 1 else math.nan
            paper_value = paper_lookup.get((row["row"], aliases.get(metric, metric)), math.nan)
            comparable = metric not in aliases  # another device/protocol: shown beside ours, no delta
            delta = round(mean - paper_value, 2) if comparable and not math.isnan(paper_value) else math.nan
            rec = {
                "table": table_id,
                "row": row["row"],
                "run": run,
                "metric": metric,
                "paper": float(paper_value),
                "reproduced": round(mean, 4),
                "reproduced_std": round(std, 4) if n > 1 else math.nan,
                "n_seeds": n,
                "delta": delta,
                "per_seed": fmt.per_seed_text(dict(zip(by_seed["seed"].astype(int), values))),
            }
            rec.update(dict(zip(columns, row.get("cells") or [])))
            if with_device and metric in aliases:  # the device of device-dependent metrics (FPS)
                devices = run_df.loc[run_df["metric"] == metric, "device"].dropna()
                rec["device"] = "; ".join(dict.fromkeys(devices)) if len(devices) else ""
            elif with_device:
                rec["device"] = ""
            if dataset_name:
                rec["dataset"] = dataset_name
            out.append(rec)
    df = pd.DataFrame(out, columns=TIDY_COLUMNS + columns + (["device"] if with_device else [])
                      + (["dataset"] if dataset_name else []))
    df["n_seeds"] = df["n_seeds"].astype("int64")
    for col in ("paper", "reproduced", "reproduced_std", "delta"):
        df[col] = df[col].astype("float64")
    return df


# ----------------------------------------------------------------------------------------------- LaTeX


def _latex_escape(text: str) -> str:
    specials = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(specials.get(ch, ch) for ch in str(text))


def metric_header(metric: str) -> str:
    """LaTeX header of a metric: AP -> AP, AP75 -> AP$_{75}$, APs -> AP$_S$ ..."""
    if metric in METRIC_HEADERS:
        return METRIC_HEADERS[metric]
    m = re.fullmatch(r"AP(\d+)", metric)
    if m:
        return f"AP$_{{{m.group(1)}}}$"
    return _latex_escape(metric)


def render_latex(table_id: str, table_spec: dict, tidy: pd.DataFrame, dataset_name: Optional[str] = None) -> str:
    """A booktabs ``table`` in the paper's layout: descriptive columns, then Paper / Ours per metric (Ours alone,
    the dataset named in the caption, with ``dataset_name``: the user's own dataset)."""
    _check_spec(table_id, table_spec)
    metrics = list(table_spec["metrics"])
    columns = list(table_spec.get("columns") or [])
    show_ids = not columns  # without descriptive columns the row ids label the rows
    lead = ["Row"] if show_ids else columns
    n_lead = len(lead)
    cells = {(r, m): rec for r, m, rec in zip(tidy["row"], tidy["metric"], tidy.to_dict("records"))}
    decimals = {m: fmt.decimals(tidy.loc[tidy["metric"] == m, "paper"]) for m in metrics}
    per_metric = 1 if dataset_name else 2  # Ours alone on the user's dataset, else Paper and Ours

    notes = []  # metrics measured on another device than the paper's (FPS): name both devices
    for metric, paper_metric in (table_spec.get("paper_metrics") or {}).items():
        if metric not in metrics:
            continue
        paper_device = metric_header(paper_metric).split("(")[-1].rstrip(")")
        devices = tidy["device"][tidy["metric"] == metric] if "device" in tidy.columns else []
        ours = "; ".join(dict.fromkeys(d for d in devices if isinstance(d, str) and d))
        if dataset_name:
            notes += [f"{metric_header(metric)}: on {_latex_escape(ours)}"] if ours else []
        else:
            notes.append(f"{metric_header(metric)}: Paper on {paper_device}"
                         + (f", Ours on {_latex_escape(ours)}" if ours else ""))
    device_note = (" " + "; ".join(notes) + ".") if notes else ""
    seeds = fmt.seed_range(tidy["n_seeds"], dash="--")  # LaTeX en dash
    note = OWN_NOTE.format(name=_latex_escape(dataset_name), n=seeds) if dataset_name else OURS_NOTE.format(n=seeds)
    lines = [
        "% generated by ld-repro (python -m ld_core table); needs \\usepackage{booktabs} (and amssymb for \\checkmark)",
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{str(table_spec.get('caption') or '').strip()} "
        f"{note}.{device_note}}}",
        f"\\label{{tab:{table_id}}}",
        f"\\begin{{tabular}}{{{'c' * n_lead}{'c' * per_metric * len(metrics)}}}",
        "\\toprule",
    ]
    if dataset_name:  # one header row: the descriptive columns, then each metric (Ours)
        lines.append(" & ".join(lead + [metric_header(m) for m in metrics]) + " \\\\")
    else:
        head = [""] * n_lead + [f"\\multicolumn{{2}}{{c}}{{{metric_header(m)}}}" for m in metrics]
        lines.append(" & ".join(head) + " \\\\")
        rules = [f"\\cmidrule(lr){{{n_lead + 2 * i + 1}-{n_lead + 2 * i + 2}}}" for i in range(len(metrics))]
        lines.append(" ".join(rules))
        sub = lead + ["Paper", "Ours"] * len(metrics)
        lines.append(" & ".join(sub) + " \\\\")
    lines.append("\\midrule")
    below = False
    for row in table_spec["rows"]:
        if row.get("below_rule") and not below:  # rows the paper does not have, after its own
            lines.append("\\midrule")
            below = True
        body = [_latex_escape(row["row"])] if show_ids else [str(c) for c in row.get("cells") or []]
        for m in metrics:
            rec = cells.get((row["row"], m))
            if rec is None:
                raise DataError(f"table '{table_id}': no value for row '{row['row']}', metric '{m}'")
            d = decimals[m]
            if not dataset_name:
                body.append(fmt.number(rec["paper"], d, missing="--"))
            body.append(fmt.mean_std(rec["reproduced"], rec["reproduced_std"], rec["n_seeds"], d, pm="$\\pm$",
                                     missing="--"))
        lines.append(" & ".join(body) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- files + CLI


def write_table(table_id, matrix_path, paper_csv, metrics_paths, csv_out, tex_out,
                dataset_name: Optional[str] = None) -> pd.DataFrame:
    """Build one table and write its CSV and TeX (``dataset_name``: the user's own dataset the runs were trained
    and evaluated on, no paper values); on any failure neither file is created or changed."""
    if dataset_name is not None and not dataset_name.strip():
        raise ConfigError(f"{table_id}: --dataset-name must not be empty")
    from ..config.matrix import load_matrix  # reads configs/models/ when imported: not at every command's start

    matrix = load_matrix(matrix_path)
    spec = matrix.table(table_id)
    paper = load_paper(paper_csv, matrix.tables, matrix.path, project_schemas())
    metrics = load_metrics(metrics_paths)
    tidy = build_table(table_id, spec, metrics, paper, dataset_name)
    csv_text = tidy.to_csv(index=False, lineterminator="\n")
    tex_text = render_latex(table_id, spec, tidy, dataset_name)

    csv_out, tex_out = Path(csv_out), Path(tex_out)
    if csv_out.resolve() == tex_out.resolve():
        raise ConfigError(f"{csv_out}: the CSV and TeX outputs must be different files")
    atomic_write_files({csv_out: csv_text, tex_out: tex_text})
    return tidy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--matrix", default="configs/experiments.yaml", help="experiment matrix (YAML)")
    parser.add_argument("--table", required=True, help="table id of the matrix, e.g. table1")
    parser.add_argument("--paper", default="configs/paper_tables.csv", help="the paper's numbers (CSV)")
    parser.add_argument("--metrics", nargs="+", required=True, help="metrics.json files (one per run and seed)")
    parser.add_argument("--csv", required=True, help="output: tidy CSV")
    parser.add_argument("--tex", required=True, help="output: booktabs LaTeX table")
    parser.add_argument("--dataset-name", default=None,
                        help="the runs are on a dataset of your own of this name: no paper values or deltas")


def run(args: argparse.Namespace) -> int:
    tidy = write_table(args.table, args.matrix, args.paper, args.metrics, args.csv, args.tex, args.dataset_name)
    where = f" on {args.dataset_name} (no paper values)" if args.dataset_name else ""
    print(f"{args.table}: {tidy['row'].nunique()} rows x {tidy['metric'].nunique()} metrics{where} "
          f"-> {args.csv}, {args.tex}")
    return 0
