"""The tidy table (one row per table row x metric, columns :data:`TIDY_COLUMNS` then the spec's descriptive ones):
built from the matrix's table spec, the metrics and the paper's numbers (:func:`build_table`), and read back from
its CSV (:func:`load_tidy`, the scorecard's input)."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

import pandas as pd

from ..config.paper import PaperTable
from ..errors import ConfigError, DataError, one_line, require_file
from . import formatting as fmt

TIDY_COLUMNS = ["table", "row", "run", "metric", "paper", "reproduced", "reproduced_std", "n_seeds", "delta",
                "per_seed"]
OPTIONAL_COLUMNS = ("device", "dataset")  # tidy columns present only where they apply


def check_spec(table_id: str, spec: dict) -> None:
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
    check_spec(table_id, table_spec)
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


def load_tidy(csv_path) -> pd.DataFrame:
    """One tidy table CSV (:func:`build_table`, written by :mod:`.tables`); numeric columns as floats, ``n_seeds`` as int."""
    path = require_file(csv_path, "table CSV", DataError)
    try:  # every cell as a string (no NA parsing)
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: malformed CSV ({one_line(exc)})") from None
    missing = [c for c in TIDY_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column '{missing[0]}' (a tidy table needs: {', '.join(TIDY_COLUMNS)})")
    if df.empty:
        raise DataError(f"{path}: the table has no rows")
    for col in ("table", "row", "metric"):
        df[col] = df[col].str.strip()
        if (df[col] == "").any():
            line = int(df.index[df[col] == ""][0]) + 2
            raise DataError(f"{path}: line {line}: empty '{col}'")
    for col in ("paper", "reproduced", "reproduced_std", "delta", "n_seeds"):
        converted = pd.to_numeric(df[col].str.strip().replace("", "nan"), errors="coerce")
        bad = converted.isna() & ~df[col].str.strip().str.lower().isin(["", "nan"])
        if bad.any():
            line = int(df.index[bad][0]) + 2
            raise DataError(f"{path}: line {line}: '{col}' value {df.loc[bad, col].iloc[0]!r} is not a number")
        df[col] = converted.astype("float64")
    if df["reproduced"].isna().any() or df["n_seeds"].isna().any():
        line = int(df.index[df["reproduced"].isna() | df["n_seeds"].isna()][0]) + 2
        raise DataError(f"{path}: line {line}: 'reproduced' and 'n_seeds' must be given")
    df["n_seeds"] = df["n_seeds"].astype("int64")
    dup = df.duplicated(["table", "row", "metric"])
    if dup.any():
        first = df[dup].iloc[0]
        raise DataError(f"{path}: duplicate cell: table '{first['table']}', row '{first['row']}', "
                        f"metric '{first['metric']}'")
    return df.reset_index(drop=True)


def load_tidies(table_csvs: Iterable) -> Tuple[pd.DataFrame, Dict[str, pd.DataFrame], Dict[str, str]]:
    """(all tables' tidy columns, {table: its frame}, {table: the user's dataset it was built on})."""
    per_table: Dict[str, pd.DataFrame] = {}
    origin: Dict[str, Path] = {}
    datasets: Dict[str, str] = {}
    for p in table_csvs:
        df = load_tidy(p)
        for table_id, part in df.groupby("table", sort=False):
            if table_id in per_table:
                raise DataError(f"{p}: table '{table_id}' is also given by {origin[table_id]}")
            per_table[table_id] = part.reset_index(drop=True)
            origin[table_id] = Path(p)
            if "dataset" in part.columns:  # built on a dataset of the user's own
                names = sorted({str(v).strip() for v in part["dataset"]})
                if len(names) != 1 or not names[0]:
                    raise DataError(f"{p}: column 'dataset' of table '{table_id}' must name one dataset, got "
                                    f"{', '.join(repr(n) for n in names)}")
                datasets[table_id] = names[0]
    frames = [d[TIDY_COLUMNS] for d in per_table.values()]
    combined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TIDY_COLUMNS)
    return combined, per_table, datasets
