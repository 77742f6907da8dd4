"""Scorecard: every cell of the paper's Tables 1-4 beside its reproduced value, and the supplement's claims checked.

Inputs
------
* the tidy table CSVs written by :mod:`ld_core.report.tables` (columns ``table, row, run, metric, paper, reproduced,
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
Each claim compares ``better`` rows with a ``than`` row at its metrics. On the reproduced numbers every
comparison is **paired by seed** (runs of a table trained with the same seed share initial weights and data
order): the per-seed differences ``b_s - than_s`` (the tidy CSV's ``per_seed`` column), their mean and the
two-sided 95 % Student-t interval (:mod:`ld_core.report.stats`). ``holds`` is

* ``True``  - every comparison's interval lies above 0 (at or above 0 with ``allow_equal: true``);
* ``False`` - some comparison's interval does not;
* ``"one seed"`` - no comparison fails and some comparison has a single common seed: no interval, no verdict (``margin`` still gives
  the sign);
* ``"not run"`` - a needed value is missing (its table was not built).

``margin`` is the smallest mean difference over the claim's comparisons; ``weakest`` names the comparison
with the lowest interval bound, and ``n``, ``ci_lo``, ``ci_hi`` are its number of seeds and interval.
``holds_in_paper`` is the point comparison ``paper(b) - paper(than) > 0`` (``>= 0`` with ``allow_equal``)
on the paper's numbers (every claim of ``configs/claims.yaml`` must pass it); a claim with ``ours_only: true``
compares rows this reproduction adds (Table 3's distribution heads without a teacher) and gets
``holds_in_paper = "not in the paper"``.

Outputs
-------
All written atomically (:mod:`ld_core.io`); everything is computed first, and on any error no output is created
or changed.

* a tidy CSV: ``kind`` (``cell`` | ``claim``) and the union of the cell and claim columns;
* a Markdown report: title, the summary line ``k of n claims hold on the reproduced numbers; m not run``,
  the rule above, the claims table, then one cells table per paper table (paper | reproduced (± std) | delta);
* optional bar plots ``<plot_dir>/<table>_bars.png`` per built table (:func:`ld_core.report.plots.bars_png`):
  each claimed difference (row − its baseline, per metric), the paper's beside ours with its 95 % interval.

Numbers and seed counts are written with :mod:`ld_core.report.format`, as in the LaTeX tables.
"""
from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import pandas as pd

from ..errors import ConfigError, DataError
from ..io import atomic_write_files, load_yaml_file
from . import format as fmt
from .plots import bars_png
from .stats import paired_difference
from .tables import TIDY_COLUMNS, load_paper_values, read_csv_text

NOT_RUN = "not run"
ONE_SEED = "one seed"
NOT_IN_PAPER = "not in the paper"
CLAIM_KEYS = ("id", "table", "text", "better", "than", "metrics", "allow_equal", "ours_only")
CLAIM_REQUIRED = ("id", "table", "text", "better", "than", "metrics")
CELL_COLUMNS = ["kind", "table", "row", "metric", "run", "paper", "reproduced", "reproduced_std", "n_seeds",
                "delta", "per_seed", "status"]
CLAIM_COLUMNS = ["kind", "table", "id", "text", "better", "than", "metrics", "allow_equal", "holds_in_paper",
                 "paper_margin", "holds", "margin", "n", "ci_lo", "ci_hi", "weakest", "note"]
RULE_TEXT = (
    "Each comparison is paired by seed (same seed = same initial weights and data order): the mean of the per-seed "
    "differences better − than with its two-sided 95 % Student-t interval. A claim holds when every comparison's "
    "interval lies above 0 (at or above 0 where equality is allowed); \"one seed\" when a comparison has a "
    "single seed (no interval: the margin gives the sign only). *margin*: the smallest mean difference; "
    "*95 % CI (n)*: the interval of the weakest comparison and its number of seeds."
)


# ----------------------------------------------------------------------------------------------- claims


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
        ours_only = item.get("ours_only", False)
        if not isinstance(ours_only, bool):
            raise ConfigError(f"{path}: {label}: 'ours_only' must be true or false, got {ours_only!r}")
        claims.append({"id": cid, "table": table, "text": " ".join(item["text"].split()), "better": better,
                       "than": than, "metrics": metrics, "allow_equal": allow_equal, "ours_only": ours_only})
    return claims


def check_claims_against_paper(claims: Sequence[dict], paper: pd.DataFrame, claims_path) -> None:
    """Every (table, row, metric) a claim compares must be a cell of the paper's tables (ConfigError if not)."""
    cells = {(f"table{t}", r, m) for t, r, m in zip(paper["table"], paper["row"], paper["metric"])}
    rows = {(f"table{t}", r) for t, r in zip(paper["table"], paper["row"])}
    for claim in claims:
        if claim.get("ours_only"):  # about rows this reproduction adds: the paper has none of them
            continue
        for row in list(claim["better"]) + [claim["than"]]:
            if (claim["table"], row) not in rows:
                known = sorted({r for t, r in rows if t == claim["table"]})
                raise ConfigError(f"{claims_path}: claim '{claim['id']}': row '{row}' is not in {claim['table']} "
                                  f"of the paper tables (known: {', '.join(known) or 'none'})")
            for metric in claim["metrics"]:
                if (claim["table"], row, metric) not in cells:
                    raise ConfigError(f"{claims_path}: claim '{claim['id']}': the paper has no {metric} for row "
                                      f"'{row}' of {claim['table']}")


def evaluate_claim(claim: dict, tidy: pd.DataFrame, column: str = "reproduced") -> dict:
    """Check one claim on ``tidy[column]`` (rows ``table, row, metric``); see the module docstring for the rule.

    Returns id, table, text, better, than, metrics, allow_equal, holds, margin, n, ci_lo, ci_hi, weakest, note.
    On the reproduced column the comparisons are paired by seed (``per_seed``); on another column (the
    paper's) they are point comparisons and ``n``/``ci_*`` stay empty.
    """
    out = {"id": claim["id"], "table": claim["table"], "text": claim["text"], "better": ", ".join(claim["better"]),
           "than": claim["than"], "metrics": ", ".join(claim["metrics"]),
           "allow_equal": bool(claim.get("allow_equal", False)),
           "holds": NOT_RUN, "margin": math.nan, "n": pd.NA, "ci_lo": math.nan, "ci_hi": math.nan, "weakest": "",
           "note": ""}
    t = tidy
    if "table" in t.columns:
        t = t[t["table"].astype(str) == claim["table"]]
    if t.empty or column not in t.columns:
        out["note"] = f"{claim['table']} not built"
        return out
    lookup = {(str(r), str(m)): rec for r, m, rec in zip(t["row"], t["metric"], t.to_dict("records"))}

    comparisons = []  # (row, metric, diff of the means, better record, than record)
    for metric in claim["metrics"]:
        rec_t = lookup.get((claim["than"], metric))
        for row in claim["better"]:
            rec_b = lookup.get((row, metric))
            for name, rec in ((row, rec_b), (claim["than"], rec_t)):
                if rec is None or fmt.is_missing(rec.get(column)):
                    out["note"] = f"no {column} value for row '{name}', metric '{metric}' in {claim['table']}"
                    return out
            diff = round(float(rec_b[column]) - float(rec_t[column]), 6)  # rounding: no float noise at equality
            comparisons.append((row, metric, diff, rec_b, rec_t))

    allow_equal = out["allow_equal"]
    row, metric, margin, _, _ = min(comparisons, key=lambda c: c[2])
    out["margin"] = round(margin, 4)
    if column != "reproduced":
        out["holds"] = all((d >= 0) if allow_equal else (d > 0) for _, _, d, _, _ in comparisons)
        out["weakest"] = f"{row} − {claim['than']}, {metric}"
        out["comparisons"] = [dict(label=f"{r} − {claim['than']}", metric=m, diff=d) for r, m, d, _, _ in comparisons]
        return out

    paired = []
    for row, metric, _, rec_b, rec_t in comparisons:
        diff = paired_difference(fmt.parse_per_seed(rec_b.get("per_seed")), fmt.parse_per_seed(rec_t.get("per_seed")))
        if diff is None:
            out["note"] = f"rows '{row}' and '{claim['than']}' share no seed ({metric})"
            return out
        paired.append((row, metric, diff))
    out["comparisons"] = [dict(label=f"{r} − {claim['than']}", metric=m, diff=d.mean, lo=d.lo, hi=d.hi, n=d.n)
                          for r, m, d in paired]
    verdicts = [d.verdict(allow_equal) for _, _, d in paired]
    out["holds"] = False if "does not hold" in verdicts else (ONE_SEED if ONE_SEED in verdicts else True)
    row, metric, weakest = min(paired, key=lambda c: c[2].mean if c[2].lo is None else c[2].lo)
    out["weakest"] = f"{row} − {claim['than']}, {metric}"
    out["n"] = weakest.n
    if weakest.lo is not None:
        out["ci_lo"], out["ci_hi"] = round(weakest.lo, 4), round(weakest.hi, 4)
    return out


FIGURE2_CLAIM = dict(
    id="f2-ld-fewer-redundant-boxes", table="figure2",
    text="Figure 2: LD's better-localized boxes leave fewer redundant boxes after the default NMS (0.6) than "
         "GFocal's (redundant: a second box on a GT already found; over the whole val split, score >= 0.3)")


def evaluate_figure2(summary_path) -> dict:
    """The Figure 2 claim as numbers over the whole val split, from the figures' ``figures.json``.

    ``margin`` = redundant boxes per image of GFocal − of LD at NMS 0.6 (positive: fewer for LD); one trained
    model each, so the verdict is ``"one seed"``. ``note`` gives both models' boxes per image at NMS 0.6 / 0.95.
    """
    import json

    path = Path(summary_path)
    try:
        red = json.loads(path.read_text())["nms_redundancy"]
        base, ld = red["baseline"], red["ld"]
        b_red, l_red = float(base["redundant_per_image_nms0.6"]), float(ld["redundant_per_image_nms0.6"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: no Figure 2 redundancy numbers ({fmt.one_line(exc)})") from None

    def boxes(rec):
        return f"{rec['boxes_per_image_nms0.6']:.2f} / {rec['boxes_per_image_nms0.95']:.2f}"

    note = (f"{red['images']} images; redundant per image at NMS 0.6: GFocal {b_red:.3f}, LD {l_red:.3f}; boxes per "
            f"image at NMS 0.6 / 0.95: GFocal {boxes(base)}, LD {boxes(ld)}")
    return {"kind": "claim", **FIGURE2_CLAIM, "better": "ld", "than": "baseline",
            "metrics": "redundant_per_image_nms0.6 (lower is better)", "allow_equal": False, "holds_in_paper": "n/a",
            "paper_margin": math.nan, "holds": ONE_SEED, "margin": round(b_red - l_red, 4), "n": 1,
            "ci_lo": math.nan, "ci_hi": math.nan, "weakest": "", "note": note}


# ----------------------------------------------------------------------------------------------- tidy tables


def load_tidy(csv_path) -> pd.DataFrame:
    """One tidy table CSV of :mod:`ld_core.report.tables`; numeric columns as floats, ``n_seeds`` as int."""
    path = Path(csv_path)
    df = read_csv_text(path, "table CSV")
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


def build_scorecard(table_csvs, claims_path, paper_csv,
                    figures_json=None) -> Tuple[pd.DataFrame, pd.DataFrame, Dict[str, list]]:
    """(cells, claims, differences): every paper cell with its reproduced value, every claim evaluated (module
    docstring), and per built table the claims' comparisons (label, metric, paper and reproduced difference,
    interval, n: what the bar plots show). With ``figures_json`` the Figure 2 claim is added (one seed)."""
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
                "n_seeds": pd.NA, "delta": math.nan, "per_seed": "", "status": NOT_RUN}
        if got is not None:
            used.add(key)
            cell.update(run=got["run"], reproduced=got["reproduced"], reproduced_std=got["reproduced_std"],
                        n_seeds=int(got["n_seeds"]), delta=round(got["reproduced"] - float(rec["value"]), 2),
                        per_seed=got["per_seed"], status="reproduced")
        cell.update({c: rec[c] for c in descriptive})
        rows.append(cell)
    for key, got in lookup.items():  # reproduced cells the paper has no value for (kept, marked)
        if key in used:
            continue
        rows.append({"kind": "cell", "table": key[0], "row": key[1], "metric": key[2], "run": got["run"],
                     "paper": math.nan, "reproduced": got["reproduced"], "reproduced_std": got["reproduced_std"],
                     "n_seeds": int(got["n_seeds"]), "delta": math.nan, "per_seed": got["per_seed"],
                     "status": "no paper value"})
    cells = pd.DataFrame(rows, columns=CELL_COLUMNS + descriptive)
    cells["n_seeds"] = cells["n_seeds"].astype("Int64")
    for col in ("paper", "reproduced", "reproduced_std", "delta"):
        cells[col] = cells[col].astype("float64")

    paper_frame = cells[["table", "row", "metric", "paper"]]
    records, differences = [], {}
    for claim in claims:
        on_paper = (dict(holds=NOT_IN_PAPER, margin=math.nan, comparisons=[]) if claim.get("ours_only")
                    else evaluate_claim(claim, paper_frame, column="paper"))
        reproduced = evaluate_claim(claim, combined, column="reproduced")
        rec = {"kind": "claim", **reproduced, "holds_in_paper": on_paper["holds"], "paper_margin": on_paper["margin"]}
        records.append(rec)
        if claim["table"] in per_table and "comparisons" in reproduced:
            paper_diff = {(c["label"], c["metric"]): c["diff"] for c in on_paper["comparisons"]}
            for c in reproduced["comparisons"]:
                differences.setdefault(claim["table"], {})[(c["label"], c["metric"])] = dict(
                    c, paper=paper_diff.get((c["label"], c["metric"]), math.nan))
    if figures_json is not None:
        records.append(evaluate_figure2(figures_json))
    claims_df = pd.DataFrame(records, columns=CLAIM_COLUMNS)
    return cells, claims_df, {t: list(d.values()) for t, d in differences.items()}


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


def _interval(rec: dict) -> str:
    """``[lo, hi] (n = k)`` of a claim's weakest comparison; ``n = 1`` for one seed; empty when not run."""
    if fmt.is_missing(rec.get("n")):
        return ""
    if fmt.is_missing(rec.get("ci_lo")):
        return f"(n = {int(rec['n'])})"
    return (f"[{fmt.number(rec['ci_lo'], 2, signed=True)}, {fmt.number(rec['ci_hi'], 2, signed=True)}] "
            f"(n = {int(rec['n'])})")


def _summary(claims: pd.DataFrame) -> str:
    n = len(claims)
    k = sum(1 for v in claims["holds"] if v is True)
    o = sum(1 for v in claims["holds"] if isinstance(v, str) and v == ONE_SEED)
    m = sum(1 for v in claims["holds"] if isinstance(v, str) and v == NOT_RUN)
    return (f"{k} of {n} claims hold on the reproduced numbers (paired 95 % interval above 0); {o} one seed; "
            f"{m} not run")


def render_markdown(cells: pd.DataFrame, claims: pd.DataFrame) -> str:
    """The report: title, summary line, the rule, the claims table, then one cells table per paper table."""
    n_paper = sum(1 for v in claims["holds_in_paper"] if v is True)
    n_checked = sum(1 for v in claims["holds_in_paper"] if isinstance(v, bool))
    lines = ["# LD supplement scorecard", "", f"**{_summary(claims)}** "
             f"(on the paper's own numbers: {n_paper} of {n_checked}).", "",
             RULE_TEXT, "", "## Claims", "",
             "| id | table | claim | holds (paper) | holds (reproduced) | margin | 95 % CI (n) | weakest |",
             "|---|---|---|---|---|---|---|---|"]
    for rec in claims.to_dict("records"):
        margin = fmt.number(rec["margin"], 2, signed=True)
        if not fmt.is_missing(rec.get("paper_margin")):
            margin += f" (paper {fmt.number(rec['paper_margin'], 2, signed=True)})"
        weakest = rec.get("weakest") or rec.get("note") or ""
        lines.append(f"| {_md(rec['id'])} | {_md(rec['table'])} | {_md(rec['text'])} | "
                     f"{_verdict(rec['holds_in_paper'])} | {_verdict(rec['holds'])} | {margin} | "
                     f"{_interval(rec)} | {_md(weakest)} |")

    for table_id in dict.fromkeys(cells["table"]):
        part = cells[cells["table"] == table_id]
        built = (part["status"] != NOT_RUN).any()
        seeds = sorted({int(n) for n in part["n_seeds"].dropna()})
        seed_note = fmt.seed_range(seeds)
        lines += ["", f"## {table_id}" + ("" if built else " (not run)"), ""]
        if seed_note:
            what = "value of" if seeds == [1] else "mean ± sample std over"
            lines += [f"Reproduced: {what} {seed_note}.", ""]
        lines += ["| row | metric | paper | reproduced (± std) | delta | status |", "|---|---|---|---|---|---|"]
        for rec in part.to_dict("records"):
            metric_vals = part.loc[part["metric"] == rec["metric"], "paper"]
            d = fmt.decimals(metric_vals)
            if rec["status"] == NOT_RUN:
                ours = NOT_RUN
            else:
                ours = fmt.mean_std(rec["reproduced"], rec["reproduced_std"], rec["n_seeds"], d)
            lines.append(f"| {_md(rec['row'])} | {_md(rec['metric'])} | {fmt.number(rec['paper'], d)} | {ours} | "
                         f"{fmt.number(rec['delta'], d, signed=True)} | {rec['status']} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- files + CLI


def write_scorecard(table_csvs, claims_path, paper_csv, csv_out, md_out, plot_dir=None,
                    figures_json=None, only_given=False) -> pd.DataFrame:
    """Build the scorecard and write its CSV, Markdown and (with ``plot_dir``) ``<table>_bars.png`` per built table;
    returns the evaluated claims. ``only_given``: the cells and claims of the given tables only (the part of
    one table, written before the others are built).

    Everything is computed before anything is written; on any error no output is created or changed.
    """
    cells, claims, differences = build_scorecard(table_csvs, claims_path, paper_csv, figures_json)
    if only_given:
        given = set(_load_tidies(table_csvs)[1])
        cells = cells[cells["table"].isin(given)].reset_index(drop=True)
        claims = claims[claims["table"].isin(given)].reset_index(drop=True)
    outputs: Dict[Path, "str | bytes"] = {
        Path(csv_out): scorecard_frame(cells, claims).to_csv(index=False, lineterminator="\n"),
        Path(md_out): render_markdown(cells, claims),
    }
    if plot_dir is not None:
        for table_id in dict.fromkeys(cells.loc[cells["status"] != NOT_RUN, "table"]):
            outputs[Path(plot_dir) / f"{table_id}_bars.png"] = bars_png(table_id, differences.get(table_id, []))
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
    parser.add_argument("--figures", default=None, help="figures.json of the figures (adds the Figure 2 claim)")
    parser.add_argument("--only-given", action="store_true",
                        help="only the cells and claims of the given tables (not 'not run' for the others)")


def run(args: argparse.Namespace) -> int:
    claims = write_scorecard(args.tables, args.claims, args.paper, args.csv, args.md, args.plot_dir, args.figures,
                             args.only_given)
    print(f"scorecard: {_summary(claims)} -> {args.csv}, {args.md}"
          + (f", {args.plot_dir}/<table>_bars.png" if args.plot_dir else ""))
    return 0
