"""Scorecard: every cell of the paper's Tables 1-4 beside its reproduced value, and the supplement's claims checked.

Inputs
------
* the tidy table CSVs written by :mod:`ld_core.tables` (columns ``table, row, run, metric, paper, reproduced,
  reproduced_std, n_seeds, delta`` + descriptive columns); only the tables this configuration built;
* the paper's numbers (``configs/paper_tables.csv``), every cell of Tables 1-4;
* the claims (``configs/claims.yaml``): ``claims: [{id, table, text, better: [rows], than: row, metrics: [...],
  allow_equal: bool}]``; rows are the ``row`` ids of the paper CSV.

Cells
-----
One per paper cell (plus any reproduced cell the paper has no value for): ``reproduced``, ``reproduced_std``,
``n_seeds`` and ``delta`` (= reproduced - paper, 2 decimals) come from the tidy CSV of its table;
``status`` is ``"reproduced"``, or ``"not run"`` (values empty) when its table was not built or lacks the cell.
Cells without a paper value get ``status = "no paper value"``.

Claims: the rule
----------------
A claim **holds** iff for every ``better`` row *b* and every metric *m*:
``mean(b, m) - mean(than, m) > 0`` (``>= 0`` with ``allow_equal: true``), means over seeds. ``holds`` is
``True`` / ``False``, or ``"not run"`` when a needed value is missing (its table was not built).
``holds_in_paper`` is the same test on the paper's numbers (every claim of ``configs/claims.yaml`` must pass it).
``margin`` is the smallest difference ``mean(b, m) - mean(than, m)`` over the claim's comparisons (negative: the
claim fails by that much); ``weakest`` names that comparison.

``beyond_seed_spread`` says whether the claimed difference is larger than seed noise:

* ``True``  - every comparison's difference exceeds ``2 x max(std_better, std_than)``
  (sample std over seeds; both sides with ``n_seeds >= 2``);
* ``False`` - some comparison's difference does not (including a negative or zero difference);
* ``"one seed"`` - some side of some comparison has fewer than 2 seeds, so no spread is known;
* ``"not run"`` - the claim could not be evaluated.

Outputs
-------
All written atomically (:mod:`ld_core.io`); everything is computed first, and on any error no output is created
or changed.

* a tidy CSV: ``kind`` (``cell`` | ``claim``) and the union of the cell and claim columns;
* a Markdown report: title, the summary line ``k of n claims hold on the reproduced numbers; m not run``,
  the rule above, the claims table, then one cells table per paper table (paper | reproduced (± std) | delta);
* optional bar plots ``<plot_dir>/<table>_bars.png`` per built table: paper vs reproduced per (row, metric),
  error bars = std over seeds where there are several.
"""
from __future__ import annotations

import argparse
import io
import math
import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import pandas as pd

from .errors import ConfigError, DataError
from .io import atomic_write_bytes, atomic_write_files, load_yaml_file
from .tables import TIDY_COLUMNS, load_paper_values

NOT_RUN = "not run"
ONE_SEED = "one seed"
CLAIM_KEYS = ("id", "table", "text", "better", "than", "metrics", "allow_equal")
CLAIM_REQUIRED = ("id", "table", "text", "better", "than", "metrics")
CELL_COLUMNS = ["kind", "table", "row", "metric", "run", "paper", "reproduced", "reproduced_std", "n_seeds",
                "delta", "status"]
CLAIM_COLUMNS = ["kind", "table", "id", "text", "better", "than", "metrics", "allow_equal", "holds_in_paper",
                 "paper_margin", "holds", "margin", "beyond_seed_spread", "weakest", "note"]
RULE_TEXT = (
    "A claim holds iff for every `better` row and every metric, mean(better) − mean(than) > 0 (≥ 0 where equality "
    "is allowed), means over seeds; *margin* is the smallest such difference. *Beyond seed spread*: yes when every "
    "difference exceeds 2 × max(std_better, std_than) (sample std, both sides with ≥ 2 seeds), no when some does "
    "not, \"one seed\" when a side has fewer than 2 seeds."
)


# ----------------------------------------------------------------------------------------------- claims


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _str_list(value) -> Optional[List[str]]:
    """A non-empty list of non-empty strings (a single string is one item), else None."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(v, str) and v.strip() for v in value):
        return None
    return [v.strip() for v in value]


def load_claims(path) -> List[dict]:
    """The claims of a YAML file, validated and normalised (``allow_equal`` defaults to False).

    Any problem is a one-line :class:`ConfigError` naming the file (and the claim).
    """
    path = Path(path)
    raw = load_yaml_file(path, "claims file")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'claims' list, got {type(raw).__name__}")
    unknown = [k for k in raw if k != "claims"]
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key '{unknown[0]}' (allowed: claims)")
    items = raw.get("claims")
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{path}: 'claims' must be a non-empty list")

    claims, seen = [], set()
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise ConfigError(f"{path}: claim {i}: expected a mapping, got {type(item).__name__}")
        label = f"claim {i}" + (f" ('{item['id']}')" if isinstance(item.get("id"), str) else "")
        unknown = [k for k in item if k not in CLAIM_KEYS]
        if unknown:
            raise ConfigError(f"{path}: {label}: unknown key '{unknown[0]}' (allowed: {', '.join(CLAIM_KEYS)})")
        missing = [k for k in CLAIM_REQUIRED if k not in item or item[k] is None]
        if missing:
            raise ConfigError(f"{path}: {label}: missing '{missing[0]}' (required: {', '.join(CLAIM_REQUIRED)})")
        for key in ("id", "table", "text", "than"):
            if not isinstance(item[key], str) or not item[key].strip():
                raise ConfigError(f"{path}: {label}: '{key}' must be a non-empty string, got {item[key]!r}")
        cid = item["id"].strip()
        if cid in seen:
            raise ConfigError(f"{path}: {label}: duplicate id '{cid}'")
        seen.add(cid)
        table = item["table"].strip()
        if not re.fullmatch(r"table\d+", table):
            raise ConfigError(f"{path}: {label}: 'table' must be tableN (e.g. table1), got {table!r}")
        better, metrics = _str_list(item["better"]), _str_list(item["metrics"])
        if better is None:
            raise ConfigError(f"{path}: {label}: 'better' must be a non-empty list of row ids")
        if metrics is None:
            raise ConfigError(f"{path}: {label}: 'metrics' must be a non-empty list of metric names")
        than = item["than"].strip()
        if than in better:
            raise ConfigError(f"{path}: {label}: row '{than}' is both in 'better' and 'than'")
        allow_equal = item.get("allow_equal", False)
        if not isinstance(allow_equal, bool):
            raise ConfigError(f"{path}: {label}: 'allow_equal' must be true or false, got {allow_equal!r}")
        claims.append({"id": cid, "table": table, "text": " ".join(item["text"].split()), "better": better,
                       "than": than, "metrics": metrics, "allow_equal": allow_equal})
    return claims


def check_claims_against_paper(claims: Sequence[dict], paper: pd.DataFrame, claims_path) -> None:
    """Every (table, row, metric) a claim compares must be a cell of the paper's tables (ConfigError if not)."""
    cells = {(f"table{t}", r, m) for t, r, m in zip(paper["table"], paper["row"], paper["metric"])}
    rows = {(f"table{t}", r) for t, r in zip(paper["table"], paper["row"])}
    for claim in claims:
        for row in list(claim["better"]) + [claim["than"]]:
            if (claim["table"], row) not in rows:
                known = sorted({r for t, r in rows if t == claim["table"]})
                raise ConfigError(f"{claims_path}: claim '{claim['id']}': row '{row}' is not in {claim['table']} "
                                  f"of the paper tables (known: {', '.join(known) or 'none'})")
            for metric in claim["metrics"]:
                if (claim["table"], row, metric) not in cells:
                    raise ConfigError(f"{claims_path}: claim '{claim['id']}': the paper has no {metric} for row "
                                      f"'{row}' of {claim['table']}")


def _is_missing(value) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True


def evaluate_claim(claim: dict, tidy: pd.DataFrame, column: str = "reproduced") -> dict:
    """Check one claim on ``tidy[column]`` (rows ``table, row, metric``); see the module docstring for the rule.

    Returns id, table, text, better, than, metrics, allow_equal, holds, margin, beyond_seed_spread, weakest, note.
    The seed spread uses the ``reproduced_std`` / ``n_seeds`` columns; evaluated on another column (e.g. the
    paper's), where no seeds exist, it is ``"n/a"``.
    """
    out = {"id": claim["id"], "table": claim["table"], "text": claim["text"], "better": ", ".join(claim["better"]),
           "than": claim["than"], "metrics": ", ".join(claim["metrics"]),
           "allow_equal": bool(claim.get("allow_equal", False)),
           "holds": NOT_RUN, "margin": math.nan, "beyond_seed_spread": NOT_RUN, "weakest": "", "note": ""}
    t = tidy
    if "table" in t.columns:
        t = t[t["table"].astype(str) == claim["table"]]
    if t.empty or column not in t.columns:
        out["note"] = f"{claim['table']} not built"
        return out
    lookup = {(str(r), str(m)): rec for r, m, rec in zip(t["row"], t["metric"], t.to_dict("records"))}

    comparisons = []  # (row, metric, diff, better record, than record)
    for metric in claim["metrics"]:
        rec_t = lookup.get((claim["than"], metric))
        for row in claim["better"]:
            rec_b = lookup.get((row, metric))
            for name, rec in ((row, rec_b), (claim["than"], rec_t)):
                if rec is None or _is_missing(rec.get(column)):
                    out["note"] = f"no {column} value for row '{name}', metric '{metric}' in {claim['table']}"
                    return out
            diff = round(float(rec_b[column]) - float(rec_t[column]), 6)  # rounding: no float noise at equality
            comparisons.append((row, metric, diff, rec_b, rec_t))

    allow_equal = out["allow_equal"]
    out["holds"] = all((d >= 0) if allow_equal else (d > 0) for _, _, d, _, _ in comparisons)
    row, metric, margin, _, _ = min(comparisons, key=lambda c: c[2])
    out["margin"] = round(margin, 4)
    out["weakest"] = f"{row} − {claim['than']}, {metric}"

    if column != "reproduced":
        out["beyond_seed_spread"] = "n/a"
        return out
    spread = True
    for _, _, diff, rec_b, rec_t in comparisons:
        n_b, n_t = rec_b.get("n_seeds"), rec_t.get("n_seeds")
        if _is_missing(n_b) or _is_missing(n_t) or int(n_b) < 2 or int(n_t) < 2:
            out["beyond_seed_spread"] = ONE_SEED
            return out
        s_b, s_t = rec_b.get("reproduced_std"), rec_t.get("reproduced_std")
        if _is_missing(s_b) or _is_missing(s_t):
            out["beyond_seed_spread"] = ONE_SEED
            return out
        if not diff > 2.0 * max(float(s_b), float(s_t)):
            spread = False
    out["beyond_seed_spread"] = spread
    return out


# ----------------------------------------------------------------------------------------------- tidy tables


def load_tidy(csv_path) -> pd.DataFrame:
    """One tidy table CSV of :mod:`ld_core.tables`; numeric columns as floats, ``n_seeds`` as int."""
    path = Path(csv_path)
    if not path.is_file():
        raise DataError(f"{path}: table CSV does not exist")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: malformed CSV ({_one_line(exc)})") from None
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


def _load_tidies(table_csvs: Iterable) -> Tuple[pd.DataFrame, Dict[str, pd.DataFrame]]:
    per_table: Dict[str, pd.DataFrame] = {}
    origin: Dict[str, Path] = {}
    for p in table_csvs:
        df = load_tidy(p)
        for table_id, part in df.groupby("table", sort=False):
            if table_id in per_table:
                raise DataError(f"{p}: table '{table_id}' is also given by {origin[table_id]}")
            per_table[table_id] = part.reset_index(drop=True)
            origin[table_id] = Path(p)
    frames = [d[TIDY_COLUMNS] for d in per_table.values()]
    combined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TIDY_COLUMNS)
    return combined, per_table


# ----------------------------------------------------------------------------------------------- scorecard


def _build(table_csvs, claims_path, paper_csv) -> Tuple[pd.DataFrame, pd.DataFrame, Dict[str, pd.DataFrame]]:
    claims = load_claims(claims_path)
    paper = load_paper_values(paper_csv)
    check_claims_against_paper(claims, paper, claims_path)
    combined, per_table = _load_tidies(table_csvs)

    descriptive = [c for c in paper.columns if c not in ("table", "row", "metric", "value")
                   and c not in CELL_COLUMNS and c not in CLAIM_COLUMNS]
    lookup = {(t, r, m): rec for t, r, m, rec in
              zip(combined["table"], combined["row"], combined["metric"], combined.to_dict("records"))}
    rows, used = [], set()
    for rec in paper.to_dict("records"):
        table_id = f"table{rec['table']}"
        key = (table_id, rec["row"], rec["metric"])
        got = lookup.get(key)
        cell = {"kind": "cell", "table": table_id, "row": rec["row"], "metric": rec["metric"], "run": "",
                "paper": float(rec["value"]), "reproduced": math.nan, "reproduced_std": math.nan,
                "n_seeds": pd.NA, "delta": math.nan, "status": NOT_RUN}
        if got is not None:
            used.add(key)
            cell.update(run=got["run"], reproduced=got["reproduced"], reproduced_std=got["reproduced_std"],
                        n_seeds=int(got["n_seeds"]), delta=round(got["reproduced"] - float(rec["value"]), 2),
                        status="reproduced")
        cell.update({c: rec[c] for c in descriptive})
        rows.append(cell)
    for key, got in lookup.items():  # reproduced cells the paper has no value for (kept, marked)
        if key in used:
            continue
        rows.append({"kind": "cell", "table": key[0], "row": key[1], "metric": key[2], "run": got["run"],
                     "paper": math.nan, "reproduced": got["reproduced"], "reproduced_std": got["reproduced_std"],
                     "n_seeds": int(got["n_seeds"]), "delta": math.nan, "status": "no paper value"})
    cells = pd.DataFrame(rows, columns=CELL_COLUMNS + descriptive)
    cells["n_seeds"] = cells["n_seeds"].astype("Int64")
    for col in ("paper", "reproduced", "reproduced_std", "delta"):
        cells[col] = cells[col].astype("float64")

    paper_frame = cells[["table", "row", "metric", "paper"]]
    records = []
    for claim in claims:
        on_paper = evaluate_claim(claim, paper_frame, column="paper")
        reproduced = evaluate_claim(claim, combined, column="reproduced")
        rec = {"kind": "claim", **reproduced, "holds_in_paper": on_paper["holds"], "paper_margin": on_paper["margin"]}
        records.append(rec)
    claims_df = pd.DataFrame(records, columns=CLAIM_COLUMNS)
    return cells, claims_df, per_table


def build_scorecard(table_csvs: list, claims_path, paper_csv) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """(cells, claims): every paper cell with its reproduced value, and every claim evaluated (module docstring)."""
    cells, claims, _ = _build(table_csvs, claims_path, paper_csv)
    return cells, claims


def scorecard_frame(cells: pd.DataFrame, claims: pd.DataFrame) -> pd.DataFrame:
    """The one tidy scorecard: ``kind`` then the union of the cell and claim columns."""
    columns = list(dict.fromkeys(["kind", "table"] + [c for c in cells.columns if c not in ("kind", "table")]
                                 + [c for c in claims.columns if c not in ("kind", "table")]))
    frames = [f.reindex(columns=columns) for f in (cells, claims) if not f.empty]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat([f.astype(object) for f in frames], ignore_index=True)[columns]


# ----------------------------------------------------------------------------------------------- markdown


def _md(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _verdict(value) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "**no**"
    return str(value)


def _decimals(values: Iterable) -> int:
    """Decimals to print a metric with: those of the paper's values (1 or 2), 1 without paper values."""
    best = 1
    for v in values:
        if _is_missing(v):
            continue
        frac = f"{float(v):.2f}".rstrip("0").split(".")[1]
        best = max(best, len(frac))
    return best


def _fmt(value, decimals: int = 1, signed: bool = False) -> str:
    if _is_missing(value):
        return "–"
    return f"{float(value):{'+' if signed else ''}.{decimals}f}"


def _summary(claims: pd.DataFrame) -> str:
    n = len(claims)
    k = sum(1 for v in claims["holds"] if v is True)
    m = sum(1 for v in claims["holds"] if isinstance(v, str) and v == NOT_RUN)
    return f"{k} of {n} claims hold on the reproduced numbers; {m} not run"


def render_markdown(cells: pd.DataFrame, claims: pd.DataFrame) -> str:
    """The report: title, summary line, the rule, the claims table, then one cells table per paper table."""
    n_paper = sum(1 for v in claims["holds_in_paper"] if v is True)
    lines = ["# LD supplement scorecard", "", f"**{_summary(claims)}** "
             f"(on the paper's own numbers: {n_paper} of {len(claims)}).", "",
             RULE_TEXT, "", "## Claims", "",
             "| id | table | claim | holds (paper) | holds (reproduced) | margin | beyond seed spread | weakest |",
             "|---|---|---|---|---|---|---|---|"]
    for rec in claims.to_dict("records"):
        margin = _fmt(rec["margin"], 2, signed=True)
        if not _is_missing(rec.get("paper_margin")):
            margin += f" (paper {_fmt(rec['paper_margin'], 2, signed=True)})"
        weakest = rec.get("weakest") or rec.get("note") or ""
        lines.append(f"| {_md(rec['id'])} | {_md(rec['table'])} | {_md(rec['text'])} | "
                     f"{_verdict(rec['holds_in_paper'])} | {_verdict(rec['holds'])} | {margin} | "
                     f"{_verdict(rec['beyond_seed_spread'])} | {_md(weakest)} |")

    for table_id in dict.fromkeys(cells["table"]):
        part = cells[cells["table"] == table_id]
        built = (part["status"] != NOT_RUN).any()
        seeds = sorted({int(n) for n in part["n_seeds"].dropna()})
        seed_note = (f"{seeds[0]} seed{'s' if seeds[0] != 1 else ''}" if len(seeds) == 1
                     else f"{seeds[0]}–{seeds[-1]} seeds") if seeds else ""
        lines += ["", f"## {table_id}" + ("" if built else " (not run)"), ""]
        if seed_note:
            what = "value of" if seeds == [1] else "mean ± sample std over"
            lines += [f"Reproduced: {what} {seed_note}.", ""]
        lines += ["| row | metric | paper | reproduced (± std) | delta | status |", "|---|---|---|---|---|---|"]
        for rec in part.to_dict("records"):
            metric_vals = part.loc[part["metric"] == rec["metric"], "paper"]
            d = _decimals(metric_vals)
            if rec["status"] == NOT_RUN:
                ours = NOT_RUN
            else:
                ours = _fmt(rec["reproduced"], d)
                if not _is_missing(rec["n_seeds"]) and int(rec["n_seeds"]) > 1 and not _is_missing(rec["reproduced_std"]):
                    ours += f" ± {_fmt(rec['reproduced_std'], d)}"
            lines.append(f"| {_md(rec['row'])} | {_md(rec['metric'])} | {_fmt(rec['paper'], d)} | {ours} | "
                         f"{_fmt(rec['delta'], d, signed=True)} | {rec['status']} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- plots


def _plot_png(tidy: pd.DataFrame) -> bytes:
    """Grouped bars, one panel per metric: paper vs reproduced per row (error bars: std over seeds)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if tidy.empty:
        raise DataError("cannot plot an empty table")
    table_id = str(tidy["table"].iloc[0]) if "table" in tidy.columns else "table"
    metrics = list(dict.fromkeys(tidy["metric"]))
    rows = list(dict.fromkeys(tidy["row"]))
    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    width = max(4.0, 0.9 * len(rows) + 1.5)
    fig = Figure(figsize=(width * ncols, 3.6 * nrows), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    x = np.arange(len(rows))
    w = 0.38
    for ax, metric in zip(axes, metrics):
        part = tidy[tidy["metric"] == metric].set_index("row").reindex(rows)
        paper = part["paper"].astype(float).to_numpy()
        ours = part["reproduced"].astype(float).to_numpy()
        n = pd.to_numeric(part["n_seeds"], errors="coerce").fillna(0).to_numpy()
        std = part["reproduced_std"].astype(float).to_numpy()
        err = np.where((n >= 2) & np.isfinite(std), std, np.nan)
        ax.bar(x - w / 2, np.nan_to_num(paper, nan=0.0), w, label="paper", color="#9e9e9e")
        ax.bar(x + w / 2, np.nan_to_num(ours, nan=0.0), w, label="reproduced", color="#1f77b4",
               yerr=None if np.isnan(err).all() else np.nan_to_num(err, nan=0.0), capsize=3,
               error_kw={"elinewidth": 1})
        for xi, v in zip(x, paper):
            if np.isfinite(v):
                ax.annotate(f"{v:g}", (xi - w / 2, v), ha="center", va="bottom", fontsize=7)
        for xi, v in zip(x, ours):
            if np.isfinite(v):
                ax.annotate(f"{v:.1f}", (xi + w / 2, v), ha="center", va="bottom", fontsize=7)
        ax.set_title(metric, fontsize=10)
        ax.set_xticks(x)
        ax.set_xticklabels(rows, rotation=30 if len(rows) > 3 else 0, ha="right" if len(rows) > 3 else "center",
                           fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        top = np.nanmax(np.concatenate([paper, ours + np.nan_to_num(err, nan=0.0)]))
        if np.isfinite(top) and top > 0:
            ax.set_ylim(0, top * 1.15)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 1.0 - 0.3 / fig.get_figheight()))
    seeds = sorted({int(v) for v in pd.to_numeric(tidy["n_seeds"], errors="coerce").dropna()})
    seed_txt = "" if not seeds else (f" (reproduced: mean over {seeds[-1]} seed{'s' if seeds[-1] != 1 else ''}"
                                     + (", error bars = std)" if seeds[-1] > 1 else ")"))
    fig.suptitle(f"{table_id}: paper vs reproduced{seed_txt}", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 1.0 - 0.2 / fig.get_figheight()))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def plot_table(tidy: pd.DataFrame, out_png) -> Path:
    """Bar plot of one tidy table (paper vs reproduced per row and metric), written atomically as PNG."""
    return atomic_write_bytes(out_png, _plot_png(tidy))


# ----------------------------------------------------------------------------------------------- files + CLI


def write_scorecard(table_csvs, claims_path, paper_csv, csv_out, md_out, plot_dir=None) -> None:
    """Build the scorecard and write its CSV, Markdown and (with ``plot_dir``) ``<table>_bars.png`` per built table.

    Everything is computed before anything is written; on any error no output is created or changed.
    """
    _write_scorecard(table_csvs, claims_path, paper_csv, csv_out, md_out, plot_dir)


def _write_scorecard(table_csvs, claims_path, paper_csv, csv_out, md_out, plot_dir=None) -> pd.DataFrame:
    cells, claims, per_table = _build(table_csvs, claims_path, paper_csv)
    outputs: Dict[Path, "str | bytes"] = {
        Path(csv_out): scorecard_frame(cells, claims).to_csv(index=False, lineterminator="\n"),
        Path(md_out): render_markdown(cells, claims),
    }
    if plot_dir is not None:
        for table_id, tidy in per_table.items():
            outputs[Path(plot_dir) / f"{table_id}_bars.png"] = _plot_png(tidy)
    resolved = [p.resolve() for p in outputs]
    if len(set(resolved)) != len(resolved):
        raise ConfigError(f"{csv_out}: the scorecard outputs (CSV, Markdown, plots) must be different files")
    atomic_write_files(outputs)
    return claims


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tables", nargs="+", required=True, help="tidy table CSVs (python -m ld_core table)")
    parser.add_argument("--claims", default="configs/claims.yaml", help="the supplement's claims (YAML)")
    parser.add_argument("--paper", default="configs/paper_tables.csv", help="the paper's numbers (CSV)")
    parser.add_argument("--csv", required=True, help="output: tidy scorecard CSV (kind = cell | claim)")
    parser.add_argument("--md", required=True, help="output: Markdown report")
    parser.add_argument("--plot-dir", default=None, help="output folder for <table>_bars.png (optional)")


def run(args: argparse.Namespace) -> int:
    claims = _write_scorecard(args.tables, args.claims, args.paper, args.csv, args.md, args.plot_dir)
    print(f"scorecard: {_summary(claims)} -> {args.csv}, {args.md}"
          + (f", {args.plot_dir}/<table>_bars.png" if args.plot_dir else ""))
    return 0
