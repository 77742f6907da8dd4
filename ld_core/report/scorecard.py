"""Scorecard: the preconditions of the comparisons checked, then every cell of the paper's Tables 1-4 beside its
reproduced value and the supplement's claims judged: holds, contradicted or inconclusive.

Inputs
------
* the tidy table CSVs written by :mod:`ld_core.report.tables` (columns ``table, row, run, metric, paper, reproduced,
  reproduced_std, n_seeds, delta, per_seed`` + descriptive columns, + ``dataset`` on a dataset of the user's own);
  only the tables this configuration built;
* the paper's numbers (``configs/paper_tables.csv``), every cell of Tables 1-4, and the claims
  (``configs/claims.yaml``: ``claims: [{id, table, text, better: [rows], than: row, metrics: [...], allow_equal,
  ours_only}]``; rows are the ``row`` ids of the paper CSV), as the typed objects of :mod:`ld_core.config.paper`
  and :mod:`ld_core.config.claims`, loaded (and checked, once) by :func:`load_inputs`;
* for the preconditions (:class:`Preconditions`): the experiment matrix (which run distils from which teacher),
  the teachers' ``metrics.json`` and the pipeline config's ``preconditions`` (``min_ap``, ``teacher_margin_ap``).

Preconditions (reported before the verdicts)
--------------------------------------------
* **learned**: every row of a built table and every teacher of its distilled rows reaches ``min_ap`` AP (mean
  over its seeds): below it a model learned (almost) nothing and its differences are noise;
* **teacher better**: the teacher of each distilled row is better than the student baseline it distils into
  (the row of the same table whose run has the student's detector, backbone, dataset and box branch and no
  teacher): paired by seed where the two share at least two seeds (the interval above 0), otherwise by its
  margin (teacher AP - the baseline's mean AP >= ``teacher_margin_ap``; teachers of the matrix are trained once,
  at a fixed seed). Self-LD (the teacher is the student's own architecture) is exempt: "not required".

``status``: ``passed`` | ``failed`` | ``not required`` | ``not checked`` (no AP, or no baseline row in the table).
A claim comparing a row whose precondition failed (its own, or its teacher's) is **inconclusive, whatever its
interval**: a failed precondition makes the comparison uninformative about the paper's claim (a student cannot
be expected to gain from a teacher no better than itself; a model that learned nothing ranks by noise), so
neither "holds" nor "contradicted" is claimed; the note says which precondition failed and what the interval
alone would say. The Markdown's first line names the failed preconditions.

Cells
-----
One per paper cell (plus any reproduced cell the paper has no value for): ``reproduced``, ``reproduced_std``,
``n_seeds`` and ``delta`` (= reproduced - paper, 2 decimals) come from the tidy CSV of its table;
``status`` is ``"reproduced"``, or ``"not run"`` (values empty) when its table was not built or lacks the cell.
Cells without a paper value get ``status = "no paper value"``. A table built on a dataset of the user's own
(its tidy CSV's ``dataset`` column) has its reproduced cells only, with that name and no paper value or delta
(the paper's numbers are on COCO / VOC).

Claims: the rule
----------------
Each claim compares ``better`` rows with a ``than`` row at its metrics. On the reproduced numbers every
comparison is **paired by seed** (runs of a table trained with the same seed share initial weights and data
order): the per-seed differences ``b_s - than_s`` (the tidy CSV's ``per_seed`` column), their mean and the
two-sided 95 % Student-t interval; each comparison is ``holds``, ``contradicted`` or ``inconclusive``
(:mod:`ld_core.report.stats`: above 0 / below 0 / straddling 0, one seed or degenerate). A claim's ``verdict``:

* ``holds`` - every comparison holds;
* ``contradicted`` - some comparison is contradicted (the claim says "for every row and metric");
* ``inconclusive`` - otherwise (``note`` says why), or a precondition failed (above);
* ``not run`` - a needed value is missing (its table was not built).

``margin`` is the smallest mean difference over the claim's comparisons; ``weakest`` names the comparison the
verdict rests on (a contradicted one, else the inconclusive one, else the one with the lowest interval bound),
and ``n``, ``ci_lo``, ``ci_hi`` are its number of seeds and interval. ``seeds_needed`` (inconclusive claims):
about how many seeds the observed spread needs to decide an effect of the paper's size (the paper's difference
for that comparison; :func:`ld_core.report.stats.seeds_needed`), the largest over the undecided comparisons;
empty where it cannot be computed (one seed, no spread, or no paper effect). ``holds_in_paper`` is the point
comparison ``paper(b) - paper(than) > 0`` (``>= 0`` with ``allow_equal``) on the paper's numbers (every claim
of ``configs/claims.yaml`` must pass it); a claim with ``ours_only: true`` compares rows this reproduction adds
(Table 3's distribution heads without a teacher) and gets ``holds_in_paper = "not in the paper"``; on a
dataset of the user's own it is ``"own dataset"`` (the paper has no numbers there).

Outputs
-------
All written atomically (:mod:`ld_core.files`); everything is computed first, and on any error no output is created
or changed.

* a tidy CSV: ``kind`` (``precondition`` | ``claim`` | ``cell``, in that order) and the union of their columns;
* a Markdown report: title, the failed preconditions (if any), the summary line ``k hold, c contradicted, i
  inconclusive, m not run (of n claims ...)``, the datasets, the rule, the preconditions, the claims table, then
  one cells table per paper table (paper | reproduced (± std) | delta; reproduced alone on the user's dataset);
* optional bar plots ``<plot_dir>/<table>_bars.png`` per built table (:func:`ld_core.report.plots.bars_png`):
  each claimed difference (row − its baseline, per metric) with its 95 % interval, coloured by its verdict, the
  paper's beside it (not on the user's dataset).

Numbers and seed counts are written with :mod:`ld_core.report.formatting`, as in the LaTeX tables.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import pandas as pd

from ..config.claims import Claim, load_claims
from ..config.paper import PaperTable, load_paper
from ..config.file_checks import project_schemas
from ..errors import ConfigError, DataError, one_line, require_file
from ..files import atomic_write_files
from . import formatting as fmt
from .plots import bars_png
from .stats import CONTRADICTED, HOLDS, INCONCLUSIVE, MAX_SEEDS, paired_difference, seeds_needed
from .tables import TIDY_COLUMNS, load_metrics

NOT_RUN = "not run"
NOT_IN_PAPER = "not in the paper"
OWN_DATASET = "own dataset"
PASSED, FAILED, NOT_REQUIRED, NOT_CHECKED = "passed", "failed", "not required", "not checked"
LEARNED, TEACHER_BETTER = "learned", "teacher better"
PRECONDITION_METRIC = "AP"  # every table of the matrix has it (Table 4: the mean VOC mAP over IoU 0.50:0.95)
CELL_COLUMNS = ["kind", "table", "row", "metric", "run", "paper", "reproduced", "reproduced_std", "n_seeds",
                "delta", "per_seed", "status"]
CLAIM_COLUMNS = ["kind", "table", "id", "text", "better", "than", "metrics", "allow_equal", "holds_in_paper",
                 "paper_margin", "verdict", "margin", "n", "ci_lo", "ci_hi", "weakest", "seeds_needed", "note"]
PRECONDITION_COLUMNS = ["kind", "table", "id", "check", "text", "row", "run", "metric", "value", "than",
                        "than_value", "margin", "n", "ci_lo", "ci_hi", "status", "note"]
RULE_TEXT = (
    "Each comparison is paired by seed (same seed = same initial weights and data order): the mean of the per-seed "
    "differences better − than with its two-sided 95 % Student-t interval and its number of seeds n. A comparison "
    "**holds** when the interval lies above 0 (at or above 0 where equality is allowed), is **contradicted** when "
    "it lies below 0, and is *inconclusive* otherwise: the interval straddles 0, one seed (no interval), or "
    "degenerate runs (every seed's difference the same: a zero-width interval is no evidence). A claim holds when "
    "all its comparisons hold, is contradicted when one is, else inconclusive; a claim whose precondition failed "
    "(next section) is inconclusive whatever its interval. *margin*: the smallest mean difference; *95 % CI (n)*: "
    "the interval of the comparison the verdict rests on; *seeds needed*: about how many seeds the observed spread "
    "needs to decide an effect of the paper's size (n ≥ ((t(0.975, n−1) + t(0.8, n−1)) · sd / |paper difference|)², "
    "80 % power), — where it cannot be computed (one seed, no spread, or no paper difference)."
)


@dataclass(frozen=True)
class Preconditions:
    """What the precondition checks need: the experiment matrix, the teachers' metrics.json files and the
    pipeline config's thresholds (``preconditions.min_ap``, ``preconditions.teacher_margin_ap``)."""

    matrix: str | Path
    teacher_metrics: Sequence = ()
    min_ap: float = math.nan
    teacher_margin_ap: float = math.nan

    def check_values(self) -> None:
        for name in ("min_ap", "teacher_margin_ap"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"preconditions: {name} must be a number >= 0, got {value!r}")


@dataclass
class Scorecard:
    """Everything the outputs are made of (:func:`build_scorecard`)."""

    cells: pd.DataFrame
    claims: pd.DataFrame
    preconditions: pd.DataFrame
    differences: Dict[str, list]             # table -> the claims' comparisons (what the bar plots show)
    datasets: Dict[str, str] = field(default_factory=dict)  # table -> the user's dataset it was built on
    checked: bool = True                     # whether preconditions were checked at all


# ----------------------------------------------------------------------------------------------- claims


def _label(row: str, than: str) -> str:
    return f"{row} − {than}"


def evaluate_claim(claim: Claim, tidy: pd.DataFrame, column: str = "reproduced",
                   paper_effects: Optional[Dict[Tuple[str, str], float]] = None) -> dict:
    """Check one claim on ``tidy[column]`` (rows ``table, row, metric``); see the module docstring for the rule.

    Returns id, table, text, better, than, metrics, allow_equal, verdict (``holds`` | ``contradicted`` |
    ``inconclusive`` | ``not run``), margin, n, ci_lo, ci_hi, weakest, seeds_needed, note and ``comparisons``
    (label, row, metric, diff, lo, hi, n, verdict, reason, seeds_needed). On the reproduced column the comparisons
    are paired by seed (``per_seed``); ``paper_effects`` ({(label, metric): the paper's difference}) sizes
    ``seeds_needed``. On another column (the paper's) they are point comparisons: ``verdict`` is True/False (holds
    or not) and ``n``/``ci_*`` stay empty.
    """
    out = {"id": claim.id, "table": claim.table, "text": claim.text, "better": ", ".join(claim.better),
           "than": claim.than, "metrics": ", ".join(claim.metrics), "allow_equal": bool(claim.allow_equal),
           "verdict": NOT_RUN, "margin": math.nan, "n": pd.NA, "ci_lo": math.nan, "ci_hi": math.nan, "weakest": "",
           "seeds_needed": "", "note": ""}
    t = tidy
    if "table" in t.columns:
        t = t[t["table"].astype(str) == claim.table]
    if t.empty or column not in t.columns:
        out["note"] = f"{claim.table} not built"
        return out
    lookup = {(str(r), str(m)): rec for r, m, rec in zip(t["row"], t["metric"], t.to_dict("records"))}

    comparisons = []  # (row, metric, diff of the means, better record, than record)
    for metric in claim.metrics:
        rec_t = lookup.get((claim.than, metric))
        for row in claim.better:
            rec_b = lookup.get((row, metric))
            for name, rec in ((row, rec_b), (claim.than, rec_t)):
                if rec is None or fmt.is_missing(rec.get(column)):
                    out["note"] = f"no {column} value for row '{name}', metric '{metric}' in {claim.table}"
                    return out
            diff = round(float(rec_b[column]) - float(rec_t[column]), 6)  # rounding: no float noise at equality
            comparisons.append((row, metric, diff, rec_b, rec_t))

    allow_equal = out["allow_equal"]
    row, metric, margin, _, _ = min(comparisons, key=lambda c: c[2])
    out["margin"] = round(margin, 4)
    if column != "reproduced":
        out["verdict"] = all((d >= 0) if allow_equal else (d > 0) for _, _, d, _, _ in comparisons)
        out["weakest"] = f"{_label(row, claim.than)}, {metric}"
        out["comparisons"] = [dict(label=_label(r, claim.than), row=r, metric=m, diff=d)
                              for r, m, d, _, _ in comparisons]
        return out

    paired = []
    for row, metric, _, rec_b, rec_t in comparisons:
        diff = paired_difference(fmt.parse_per_seed(rec_b.get("per_seed")), fmt.parse_per_seed(rec_t.get("per_seed")))
        if diff is None:
            out["note"] = f"rows '{row}' and '{claim.than}' share no seed ({metric})"
            return out
        paired.append((row, metric, diff))
    effects = paper_effects or {}
    found = []
    for row, metric, d in paired:
        label = _label(row, claim.than)
        verdict, reason = d.verdict(allow_equal)
        need = (seeds_needed(d.sd, effects.get((label, metric), math.nan)) if verdict == INCONCLUSIVE else None)
        found.append(dict(label=label, row=row, metric=metric, diff=d.mean, lo=d.lo, hi=d.hi, n=d.n, sd=d.sd,
                          verdict=verdict, reason=reason, seeds_needed=need))
    out["comparisons"] = found
    _aggregate(out, found)
    return out


def _aggregate(out: dict, comparisons: List[dict]) -> None:
    """A claim's verdict, weakest comparison, interval, seeds needed and note from its comparisons' (in place)."""
    verdicts = [c["verdict"] for c in comparisons]
    if CONTRADICTED in verdicts:
        verdict = CONTRADICTED
        weakest = min((c for c in comparisons if c["verdict"] == CONTRADICTED), key=lambda c: c["hi"])
    elif INCONCLUSIVE in verdicts:
        verdict = INCONCLUSIVE
        weakest = min((c for c in comparisons if c["verdict"] == INCONCLUSIVE),
                      key=lambda c: c["diff"] if c["lo"] is None else c["lo"])
    else:
        verdict = HOLDS
        weakest = min(comparisons, key=lambda c: c["lo"])
    out["verdict"] = verdict
    out["weakest"] = f"{weakest['label']}, {weakest['metric']}"
    out["n"] = weakest["n"]
    out["ci_lo"], out["ci_hi"] = ((math.nan, math.nan) if weakest["lo"] is None
                                  else (round(weakest["lo"], 4), round(weakest["hi"], 4)))
    out["seeds_needed"] = ""
    out["note"] = ""
    if verdict == INCONCLUSIVE:
        undecided = [c["seeds_needed"] for c in comparisons if c["verdict"] == INCONCLUSIVE]
        if all(n is not None for n in undecided):
            most = max(undecided)
            out["seeds_needed"] = f">{MAX_SEEDS}" if most > MAX_SEEDS else str(most)
        out["note"] = weakest["reason"]


# ----------------------------------------------------------------------------------------------- preconditions


def _ap_by_seed(part: pd.DataFrame, row: str) -> Dict[int, float]:
    """{seed: AP} of a row of a tidy table (empty when the table has no AP)."""
    rec = part[(part["row"] == row) & (part["metric"] == PRECONDITION_METRIC)]
    return fmt.parse_per_seed(rec.iloc[0]["per_seed"]) if len(rec) else {}


def _mean(values: Dict[int, float]) -> float:
    return sum(values.values()) / len(values) if values else math.nan


def _precondition(table: str, pid: str, check: str, text: str, row: str, run: str, rows: Iterable[str],
                  **values) -> dict:
    rec = {"kind": "precondition", "table": table, "id": pid, "check": check, "text": text, "row": row, "run": run,
           "metric": PRECONDITION_METRIC, "value": math.nan, "than": "", "than_value": math.nan, "margin": math.nan,
           "n": pd.NA, "ci_lo": math.nan, "ci_hi": math.nan, "status": NOT_CHECKED, "note": "", "rows": set(rows)}
    rec.update(values)
    return rec


def _learned(table: str, pid: str, what: str, row: str, run: str, rows, values: Dict[int, float],
             floor: float) -> dict:
    text = f"{what} learned: AP ≥ {floor:g} (mean over its seeds)"
    if not values:
        return _precondition(table, pid, LEARNED, text, row, run, rows, note=f"no {PRECONDITION_METRIC} values")
    mean = _mean(values)
    ok = mean >= floor
    return _precondition(table, pid, LEARNED, text, row, run, rows, value=round(mean, 4), n=len(values),
                         status=PASSED if ok else FAILED,
                         note="" if ok else f"{what}: AP {mean:.2f} < {floor:g}: it learned (almost) nothing")


def _teacher_better(table: str, row: str, teacher: str, teacher_seed: int, t_values: Dict[int, float],
                    base_row: str, b_values: Dict[int, float], margin_ap: float) -> dict:
    text = (f"the teacher {teacher} (seed {teacher_seed}) of {row} is better than the student baseline {base_row}")
    rec = _precondition(table, f"teacher-better:{row}:{base_row}", TEACHER_BETTER, text, row, teacher, [row],
                        value=round(_mean(t_values), 4), than=base_row, than_value=round(_mean(b_values), 4))
    if not b_values:
        rec["note"] = f"no {PRECONDITION_METRIC} values of {base_row}"
        return rec
    paired = paired_difference(t_values, b_values)
    if paired is not None and paired.n > 1:  # the teacher trained with the baseline's seeds: paired
        verdict, reason = paired.verdict(allow_equal=False)
        rec.update(margin=round(paired.mean, 4), n=paired.n, ci_lo=round(paired.lo, 4), ci_hi=round(paired.hi, 4),
                   status=PASSED if verdict == HOLDS else FAILED,
                   note="" if verdict == HOLDS else f"paired over {paired.n} seeds: not above 0 ({reason or verdict})")
        return rec
    margin = _mean(t_values) - _mean(b_values)
    ok = margin >= margin_ap
    rec.update(margin=round(margin, 4), n=len(b_values), status=PASSED if ok else FAILED,
               note="" if ok else (f"teacher not better than student: {teacher} {_mean(t_values):.2f} AP vs "
                                   f"{base_row} {_mean(b_values):.2f} AP ({fmt.seed_count(len(b_values))}), "
                                   f"{margin:+.2f} < +{margin_ap:g}"))
    return rec


def check_preconditions(per_table: Dict[str, pd.DataFrame], pre: Preconditions) -> List[dict]:
    """The precondition records of the built tables (module docstring), in table and row order; each has the
    internal key ``rows``: the table rows whose comparisons depend on it."""
    from ..config.matrix import load_matrix

    pre.check_values()
    matrix = load_matrix(pre.matrix)
    teachers = load_metrics(pre.teacher_metrics)
    teachers = teachers[teachers["metric"] == PRECONDITION_METRIC]
    records: List[dict] = []
    for table, part in per_table.items():
        row_runs = dict(zip(part["row"], part["run"]))
        for row, run in row_runs.items():
            records.append(_learned(table, f"learned:{row}", f"{row} ({run})", row, run, [row],
                                    _ap_by_seed(part, row), pre.min_ap))
        distilled: Dict[Tuple[str, int], List[str]] = {}
        for row, run in row_runs.items():
            pair = matrix.teacher_of(run)
            if pair is not None:
                distilled.setdefault(pair, []).append(row)
        for (teacher, seed), rows in distilled.items():  # each teacher once per table
            t = teachers[(teachers["run"] == teacher) & (teachers["seed"] == seed)]
            if t.empty:
                raise DataError(f"no {PRECONDITION_METRIC} of teacher run '{teacher}' seed {seed} (needed by "
                                f"{table} row '{rows[0]}'): give its metrics.json with --teacher-metrics")
            t_values = {int(seed): float(t["value"].iloc[0])}
            records.append(_learned(table, f"learned:teacher:{teacher}", f"teacher {teacher} (seed {seed})", "",
                                    teacher, rows, t_values, pre.min_ap))
            t_spec = matrix.run(teacher)
            for row in rows:
                spec = matrix.run(row_runs[row])
                if (t_spec.detector, t_spec.backbone) == (spec.detector, spec.backbone):
                    records.append(_precondition(
                        table, f"teacher-better:{row}", TEACHER_BETTER,
                        f"the teacher {teacher} (seed {seed}) of {row} is better than its student baseline", row,
                        teacher, [row], value=t_values[seed], status=NOT_REQUIRED,
                        note="self-distillation: the teacher is the student's own architecture"))
                    continue
                bases = [r for r, run in row_runs.items() if matrix.run(run).teacher is None
                         and (matrix.run(run).detector, matrix.run(run).backbone, matrix.run(run).dataset,
                              matrix.run(run).distribution) == (spec.detector, spec.backbone, spec.dataset,
                                                                spec.distribution)]
                if not bases:
                    records.append(_precondition(
                        table, f"teacher-better:{row}", TEACHER_BETTER,
                        f"the teacher {teacher} (seed {seed}) of {row} is better than its student baseline", row,
                        teacher, [row], value=t_values[seed],
                        note="no baseline row in this table (the student's architecture without a teacher)"))
                for base in bases:
                    records.append(_teacher_better(table, row, teacher, seed, t_values, base,
                                                   _ap_by_seed(part, base), pre.teacher_margin_ap))
    return records


def _failed_for(records: Sequence[dict], table: str, rows: Iterable[str]) -> List[dict]:
    """The failed preconditions a comparison of ``rows`` in ``table`` depends on."""
    rows = set(rows)
    return [p for p in records if p["table"] == table and p["status"] == FAILED and p["rows"] & rows]


def _failure_text(failed: Sequence[dict]) -> str:
    parts = []
    for p in failed:
        if p["check"] == TEACHER_BETTER:
            parts.append(f"teacher not better than student ({p['row']}: {p['run']} {p['value']:.2f} AP vs "
                         f"{p['than']} {p['than_value']:.2f})")
        else:
            who = p["row"] or f"teacher {p['run']}"
            parts.append(f"{who} below the AP floor ({p['value']:.2f})")
    return "precondition failed: " + "; ".join(dict.fromkeys(parts))


def _apply_preconditions(rec: dict, records: Sequence[dict], claim: Claim) -> None:
    """A claim whose comparisons depend on a failed precondition: inconclusive, the note says which (in place)."""
    if rec["verdict"] == NOT_RUN or "comparisons" not in rec:
        return
    for c in rec["comparisons"]:
        failed = _failed_for(records, claim.table, [c["row"], claim.than])
        if failed:
            c.update(verdict=INCONCLUSIVE, reason=_failure_text(failed), seeds_needed=None, precondition_failed=True)
    failed = _failed_for(records, claim.table, list(claim.better) + [claim.than])
    if failed:
        said = rec["verdict"] + (f" ({rec['note']})" if rec["note"] else "")
        rec.update(verdict=INCONCLUSIVE, seeds_needed="",
                   note=f"{_failure_text(failed)}; the interval alone says: {said}")


FIGURE2_CLAIM = dict(
    id="f2-ld-fewer-redundant-boxes", table="figure2",
    text="Figure 2: LD's better-localized boxes leave fewer redundant boxes after the default NMS (0.6) than "
         "GFocal's (redundant: a second box on a GT already found; over the whole val split, score >= 0.3)")


def evaluate_figure2(summary_path) -> dict:
    """The Figure 2 claim as numbers over the whole val split, from the figures' ``figures.json``.

    ``margin`` = redundant boxes per image of GFocal − of LD at NMS 0.6 (positive: fewer for LD); one trained
    model each, so the verdict is ``inconclusive`` (one seed). ``note`` gives both models' boxes per image at NMS 0.6 / 0.95.
    """
    import json

    path = Path(summary_path)
    try:
        red = json.loads(path.read_text())["nms_redundancy"]
        base, ld = red["baseline"], red["ld"]
        b_red, l_red = float(base["redundant_per_image_nms0.6"]), float(ld["redundant_per_image_nms0.6"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: no Figure 2 redundancy numbers ({one_line(exc)})") from None

    def boxes(rec):
        return f"{rec['boxes_per_image_nms0.6']:.2f} / {rec['boxes_per_image_nms0.95']:.2f}"

    note = (f"{red['images']} images; redundant per image at NMS 0.6: GFocal {b_red:.3f}, LD {l_red:.3f}; boxes per "
            f"image at NMS 0.6 / 0.95: GFocal {boxes(base)}, LD {boxes(ld)}")
    return {"kind": "claim", **FIGURE2_CLAIM, "better": "ld", "than": "baseline",
            "metrics": "redundant_per_image_nms0.6 (lower is better)", "allow_equal": False, "holds_in_paper": "n/a",
            "paper_margin": math.nan, "verdict": INCONCLUSIVE, "margin": round(b_red - l_red, 4), "n": 1,
            "ci_lo": math.nan, "ci_hi": math.nan, "weakest": "", "seeds_needed": "",
            "note": f"one seed: one trained model each, no interval; {note}"}


# ----------------------------------------------------------------------------------------------- tidy tables


def load_tidy(csv_path) -> pd.DataFrame:
    """One tidy table CSV of :mod:`ld_core.report.tables`; numeric columns as floats, ``n_seeds`` as int."""
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


def _load_tidies(table_csvs: Iterable) -> Tuple[pd.DataFrame, Dict[str, pd.DataFrame], Dict[str, str]]:
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


# ----------------------------------------------------------------------------------------------- scorecard


def build_scorecard(table_csvs, claims: Sequence[Claim], paper: PaperTable, figures_json=None,
                    preconditions: Optional[Preconditions] = None) -> Scorecard:
    """Every paper cell with its reproduced value, the preconditions (when ``preconditions`` is given) and every
    claim judged (module docstring), and per built table the claims' comparisons (what the bar plots show).
    With ``figures_json`` the Figure 2 claim is added (one seed)."""
    combined, per_table, datasets = _load_tidies(table_csvs)
    checks = check_preconditions(per_table, preconditions) if preconditions is not None else []

    descriptive = [c for c in paper.descriptive if c not in CELL_COLUMNS and c not in CLAIM_COLUMNS]
    lookup = {(t, r, m): rec for t, r, m, rec in
              zip(combined["table"], combined["row"], combined["metric"], combined.to_dict("records"))}
    paper_desc = {(c.table, c.row): {k: v for k, v in c.info if k in descriptive} for c in paper.cells}
    rows, used = [], set()
    for pc in paper.cells:
        if pc.table in datasets:  # the user's dataset: its own cells only, below
            continue
        key = (pc.table, pc.row, pc.metric)
        got = lookup.get(key)
        cell = {"kind": "cell", "table": pc.table, "row": pc.row, "metric": pc.metric, "run": "",
                "paper": pc.value, "reproduced": math.nan, "reproduced_std": math.nan,
                "n_seeds": pd.NA, "delta": math.nan, "per_seed": "", "status": NOT_RUN}
        if got is not None:
            used.add(key)
            cell.update(run=got["run"], reproduced=got["reproduced"], reproduced_std=got["reproduced_std"],
                        n_seeds=int(got["n_seeds"]), delta=round(got["reproduced"] - pc.value, 2),
                        per_seed=got["per_seed"], status="reproduced")
        cell.update({k: v for k, v in pc.info if k in descriptive})
        rows.append(cell)
    for key, got in lookup.items():  # reproduced cells the paper has no value for, or on the user's dataset
        if key in used:
            continue
        own = key[0] in datasets
        cell = {"kind": "cell", "table": key[0], "row": key[1], "metric": key[2], "run": got["run"],
                "paper": math.nan, "reproduced": got["reproduced"], "reproduced_std": got["reproduced_std"],
                "n_seeds": int(got["n_seeds"]), "delta": math.nan, "per_seed": got["per_seed"],
                "status": "reproduced" if own else "no paper value"}
        if own:
            cell.update(paper_desc.get(key[:2], {}))
            if "dataset" in descriptive:
                cell["dataset"] = datasets[key[0]]
        rows.append(cell)
    cells = pd.DataFrame(rows, columns=CELL_COLUMNS + descriptive)
    cells["n_seeds"] = cells["n_seeds"].astype("Int64")
    for col in ("paper", "reproduced", "reproduced_std", "delta"):
        cells[col] = cells[col].astype("float64")

    paper_frame = pd.DataFrame({"table": [c.table for c in paper.cells], "row": [c.row for c in paper.cells],
                                "metric": [c.metric for c in paper.cells],
                                "paper": pd.Series([c.value for c in paper.cells], dtype="float64")})
    records, differences = [], {}
    for claim in claims:
        on_paper = (dict(verdict=NOT_IN_PAPER, margin=math.nan, comparisons=[]) if claim.ours_only
                    else evaluate_claim(claim, paper_frame, column="paper"))
        paper_diff = {(c["label"], c["metric"]): c["diff"] for c in on_paper["comparisons"]}
        reproduced = evaluate_claim(claim, combined, column="reproduced", paper_effects=paper_diff)
        _apply_preconditions(reproduced, checks, claim)
        in_paper, paper_margin = on_paper["verdict"], on_paper["margin"]
        if claim.table in datasets:  # the paper's numbers are on its datasets, not the user's
            in_paper, paper_margin = OWN_DATASET, math.nan
            paper_diff = {}
        rec = {"kind": "claim", **reproduced, "holds_in_paper": in_paper, "paper_margin": paper_margin}
        records.append(rec)
        if claim.table in per_table and "comparisons" in reproduced:
            for c in reproduced["comparisons"]:
                differences.setdefault(claim.table, {})[(c["label"], c["metric"])] = dict(
                    c, paper=paper_diff.get((c["label"], c["metric"]), math.nan))
    if figures_json is not None:
        records.append(evaluate_figure2(figures_json))
    claims_df = pd.DataFrame(records, columns=CLAIM_COLUMNS)
    pre_df = pd.DataFrame([{k: v for k, v in p.items() if k != "rows"} for p in checks], columns=PRECONDITION_COLUMNS)
    return Scorecard(cells=cells, claims=claims_df, preconditions=pre_df,
                     differences={t: list(d.values()) for t, d in differences.items()}, datasets=datasets,
                     checked=preconditions is not None)


def scorecard_frame(cells: pd.DataFrame, claims: pd.DataFrame,
                    preconditions: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """The one tidy scorecard: ``kind`` then the union of the columns; preconditions first, then claims, cells."""
    parts = [f for f in (preconditions, claims, cells) if f is not None]
    columns = list(dict.fromkeys(["kind", "table"] + [c for f in parts for c in f.columns if c not in ("kind", "table")]))
    frames = [f.reindex(columns=columns) for f in parts if not f.empty]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat([f.astype(object) for f in frames], ignore_index=True)[columns]


# ----------------------------------------------------------------------------------------------- markdown


def _md(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _verdict(value) -> str:
    """A verdict as the Markdown shows it: decided ones in bold."""
    if value is True:
        return "holds"
    if value is False:
        return "does not hold"
    return f"**{value}**" if value in (HOLDS, CONTRADICTED) else str(value)


def _interval(rec: dict) -> str:
    """``[lo, hi] (n = k)`` of a claim's weakest comparison; ``n = 1`` for one seed; empty when not run."""
    if fmt.is_missing(rec.get("n")):
        return ""
    if fmt.is_missing(rec.get("ci_lo")):
        return f"(n = {int(rec['n'])})"
    return (f"[{fmt.number(rec['ci_lo'], 2, signed=True)}, {fmt.number(rec['ci_hi'], 2, signed=True)}] "
            f"(n = {int(rec['n'])})")


def summary_line(claims: pd.DataFrame) -> str:
    """``k hold, c contradicted, i inconclusive, m not run (of n claims, on the reproduced numbers)``."""
    counts = {v: sum(1 for x in claims["verdict"] if x == v) for v in (HOLDS, CONTRADICTED, INCONCLUSIVE, NOT_RUN)}
    return (f"{counts[HOLDS]} hold, {counts[CONTRADICTED]} contradicted, {counts[INCONCLUSIVE]} inconclusive, "
            f"{counts[NOT_RUN]} not run (of {len(claims)} claim{'' if len(claims) == 1 else 's'}, on the reproduced "
            "numbers)")


def precondition_line(pre: pd.DataFrame, checked: bool = True) -> str:
    """The failed preconditions in one sentence (``""`` when none failed)."""
    if not checked:
        return "Preconditions not checked (no experiment matrix given)"
    failed = pre[pre["status"] == FAILED] if len(pre) else pre
    if failed.empty:
        return ""
    parts = []
    teacher = failed[failed["check"] == TEACHER_BETTER]
    if len(teacher):
        where = "; ".join(f"{t}: {', '.join(dict.fromkeys(g['row']))}" for t, g in teacher.groupby("table", sort=False))
        parts.append(f"the teacher is not better than the student baseline ({where})")
    learned = failed[failed["check"] == LEARNED]
    if len(learned):
        where = "; ".join(f"{t}: {', '.join(r or 'teacher ' + run for r, run in zip(g['row'], g['run']))}"
                          for t, g in learned.groupby("table", sort=False))
        parts.append(f"models below the AP floor ({where})")
    return ("PRECONDITIONS FAILED: " + "; ".join(parts)
            + ". The claims that depend on them are inconclusive, whatever their intervals.")


def _precondition_table(pre: pd.DataFrame) -> List[str]:
    lines = ["| table | check | model | AP | against | margin | status | note |", "|---|---|---|---|---|---|---|---|"]
    for rec in pre.to_dict("records"):
        if rec["check"] == TEACHER_BETTER:
            model = f"teacher {rec['run']} of {rec['row']}"
        else:
            model = f"{rec['row']} ({rec['run']})" if rec["row"] else f"teacher {rec['run']}"
        against = (f"{rec['than']} ({fmt.number(rec['than_value'], 2)}, {fmt.seed_count(int(rec['n']))})"
                   if rec["than"] and not fmt.is_missing(rec["n"]) else _md(rec["than"]))
        margin = fmt.number(rec["margin"], 2, signed=True, missing="")
        if not fmt.is_missing(rec["ci_lo"]):
            margin += f" [{fmt.number(rec['ci_lo'], 2, signed=True)}, {fmt.number(rec['ci_hi'], 2, signed=True)}]"
        status = f"**{rec['status']}**" if rec["status"] == FAILED else rec["status"]
        lines.append(f"| {_md(rec['table'])} | {rec['check']} | {_md(model)} | {fmt.number(rec['value'], 2)} | "
                     f"{against} | {margin} | {status} | {_md(rec['note'])} |")
    return lines


def render_markdown(cells: pd.DataFrame, claims: pd.DataFrame, preconditions: Optional[pd.DataFrame] = None,
                    datasets: Optional[Dict[str, str]] = None, precondition_rule: str = "",
                    paper_datasets: Optional[Dict[str, str]] = None) -> str:
    """The report: title, failed preconditions, summary line, datasets, the rule, preconditions, the claims
    table, then one cells table per paper table."""
    datasets = datasets or {}
    pre = preconditions if preconditions is not None else pd.DataFrame(columns=PRECONDITION_COLUMNS)
    n_paper = sum(1 for v in claims["holds_in_paper"] if v is True)
    n_checked = sum(1 for v in claims["holds_in_paper"] if isinstance(v, bool))
    lines = ["# LD supplement scorecard", ""]
    first = precondition_line(pre, preconditions is not None)
    if first:
        lines += [f"**{first}**", ""]
    on_paper = f" (on the paper's own numbers: {n_paper} of {n_checked} hold)" if n_checked else ""
    lines += [f"**{summary_line(claims)}**{on_paper}.", ""]
    if datasets:
        own = ", ".join(f"{t} on `{name}`" for t, name in datasets.items())
        lines += [f"Datasets of your own: {own}. No paper values or deltas there: the paper's numbers are on its "
                  "own datasets (COCO, VOC); its claims are judged on the reproduced numbers alone.", ""]
    lines += [RULE_TEXT, "", "## Preconditions", ""]
    if preconditions is None:
        lines += ["Not checked (no experiment matrix given)."]
    elif pre.empty:
        lines += [precondition_rule or "No table built."]
    else:
        lines += ([precondition_rule, ""] if precondition_rule else []) + _precondition_table(pre)
    lines += ["", "## Claims", "",
              "| id | table | claim | paper | verdict | margin | 95 % CI (n) | seeds needed | note |",
              "|---|---|---|---|---|---|---|---|---|"]
    for rec in claims.to_dict("records"):
        margin = fmt.number(rec["margin"], 2, signed=True)
        if not fmt.is_missing(rec.get("paper_margin")):
            margin += f" (paper {fmt.number(rec['paper_margin'], 2, signed=True)})"
        need = ""
        if rec["verdict"] == INCONCLUSIVE:
            need = rec.get("seeds_needed") or "—"
        note = "; ".join(x for x in (rec.get("weakest") or "", rec.get("note") or "") if x)
        lines.append(f"| {_md(rec['id'])} | {_md(rec['table'])} | {_md(rec['text'])} | "
                     f"{_verdict(rec['holds_in_paper'])} | {_verdict(rec['verdict'])} | {margin} | "
                     f"{_interval(rec)} | {need} | {_md(note)} |")

    for table_id in dict.fromkeys(cells["table"]):
        part = cells[cells["table"] == table_id]
        built = (part["status"] != NOT_RUN).any()
        seeds = sorted({int(n) for n in part["n_seeds"].dropna()})
        seed_note = fmt.seed_range(seeds)
        own = datasets.get(table_id)
        title = f"## {table_id}" + ("" if built else " (not run)")
        if own:
            where = (paper_datasets or {}).get(table_id)
            title += f" on `{own}` (your dataset; no paper values: the paper's are on {where or 'its datasets'})"
        lines += ["", title, ""]
        if seed_note:
            what = "value of" if seeds == [1] else "mean ± sample std over"
            lines += [f"Reproduced: {what} {seed_note}.", ""]
        if own:
            lines += ["| row | metric | reproduced (± std) | status |", "|---|---|---|---|"]
        else:
            lines += ["| row | metric | paper | reproduced (± std) | delta | status |", "|---|---|---|---|---|---|"]
        for rec in part.to_dict("records"):
            metric_vals = part.loc[part["metric"] == rec["metric"], "paper"]
            d = fmt.decimals(metric_vals)
            if rec["status"] == NOT_RUN:
                ours = NOT_RUN
            else:
                ours = fmt.mean_std(rec["reproduced"], rec["reproduced_std"], rec["n_seeds"], d)
            if own:
                lines.append(f"| {_md(rec['row'])} | {_md(rec['metric'])} | {ours} | {rec['status']} |")
            else:
                lines.append(f"| {_md(rec['row'])} | {_md(rec['metric'])} | {fmt.number(rec['paper'], d)} | {ours} | "
                             f"{fmt.number(rec['delta'], d, signed=True)} | {rec['status']} |")
    return "\n".join(lines) + "\n"


def precondition_rule(pre: Optional[Preconditions]) -> str:
    """The precondition rule with this run's thresholds, as the Markdown states it."""
    if pre is None:
        return ""
    return (f"Checked before any verdict (thresholds: the pipeline config's `preconditions`). **learned**: every "
            f"model of a built table, and every teacher, reaches {pre.min_ap:g} AP (mean over its seeds). **teacher "
            f"better**: each distilled row's teacher beats the student baseline it distils into (the same "
            f"architecture without a teacher): paired by seed where they share seeds, otherwise by its margin, "
            f"teacher AP − the baseline's mean AP ≥ {pre.teacher_margin_ap:g}; Self-LD (the teacher is the "
            f"student's own architecture) is exempt. A claim comparing a row whose precondition failed is "
            f"inconclusive whatever its interval.")


# ----------------------------------------------------------------------------------------------- files + CLI


def write_scorecard(table_csvs, claims: Sequence[Claim], paper: PaperTable, csv_out, md_out, plot_dir=None,
                    figures_json=None, only_given=False, preconditions: Optional[Preconditions] = None) -> Scorecard:
    """Build the scorecard and write its CSV, Markdown and (with ``plot_dir``) ``<table>_bars.png`` per built table;
    returns it. ``only_given``: the cells and claims of the given tables only (the part of one table, written
    before the others are built).

    Everything is computed before anything is written; on any error no output is created or changed.
    """
    card = build_scorecard(table_csvs, claims, paper, figures_json, preconditions)
    if only_given:
        given = set(_load_tidies(table_csvs)[1])
        card.cells = card.cells[card.cells["table"].isin(given)].reset_index(drop=True)
        card.claims = card.claims[card.claims["table"].isin(given)].reset_index(drop=True)
    paper_datasets = {t: paper.dataset_of(t) for t in dict.fromkeys(c.table for c in paper.cells)}
    outputs: Dict[Path, "str | bytes"] = {
        Path(csv_out): scorecard_frame(card.cells, card.claims, card.preconditions).to_csv(
            index=False, lineterminator="\n"),
        Path(md_out): render_markdown(card.cells, card.claims, card.preconditions if card.checked else None,
                                      card.datasets, precondition_rule(preconditions), paper_datasets),
    }
    if plot_dir is not None:
        for table_id in dict.fromkeys(card.cells.loc[card.cells["status"] != NOT_RUN, "table"]):
            outputs[Path(plot_dir) / f"{table_id}_bars.png"] = bars_png(
                table_id, card.differences.get(table_id, []), dataset=card.datasets.get(table_id))
    resolved = [p.resolve() for p in outputs]
    if len(set(resolved)) != len(resolved):
        raise ConfigError(f"{csv_out}: the scorecard outputs (CSV, Markdown, plots) must be different files")
    atomic_write_files(outputs)
    return card


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tables", nargs="+", required=True, help="tidy table CSVs (python -m ld_core table)")
    parser.add_argument("--claims", default="configs/claims.yaml", help="the supplement's claims (YAML)")
    parser.add_argument("--paper", default="configs/paper_tables.csv", help="the paper's numbers (CSV)")
    parser.add_argument("--matrix", required=True,
                        help="experiment matrix (YAML): which row distils from which teacher (preconditions)")
    parser.add_argument("--teacher-metrics", nargs="*", default=[],
                        help="metrics.json of the teachers of the tables' distilled rows")
    parser.add_argument("--min-ap", type=float, required=True,
                        help="precondition: the AP every model must reach (config: preconditions.min_ap)")
    parser.add_argument("--teacher-margin", type=float, required=True,
                        help="precondition: the AP a teacher must lead its student baseline by, unpaired "
                             "(config: preconditions.teacher_margin_ap)")
    parser.add_argument("--csv", required=True, help="output: tidy scorecard CSV (kind = precondition | claim | cell)")
    parser.add_argument("--md", required=True, help="output: Markdown report")
    parser.add_argument("--plot-dir", default=None, help="output folder for <table>_bars.png (optional)")
    parser.add_argument("--figures", default=None, help="figures.json of the figures (adds the Figure 2 claim)")
    parser.add_argument("--only-given", action="store_true",
                        help="only the cells and claims of the given tables (not 'not run' for the others)")


def load_inputs(matrix_path, paper_csv, claims_path) -> Tuple[Tuple[Claim, ...], PaperTable]:
    """(claims, the paper's numbers), through the loaders the Snakefile validates them with at parse time
    (:mod:`ld_core.config.paper`, :mod:`ld_core.config.claims`), against the matrix's tables."""
    from ..config.matrix import load_matrix  # reads configs/models/ when imported: not at every command's start

    matrix = load_matrix(matrix_path)
    paper = load_paper(paper_csv, matrix.tables, matrix.path, project_schemas())
    return load_claims(claims_path, matrix.tables, matrix.path, paper, project_schemas()), paper


def run(args: argparse.Namespace) -> int:
    claims, paper = load_inputs(args.matrix, args.paper, args.claims)
    pre = Preconditions(matrix=args.matrix, teacher_metrics=args.teacher_metrics, min_ap=args.min_ap,
                        teacher_margin_ap=args.teacher_margin)
    card = write_scorecard(args.tables, claims, paper, args.csv, args.md, args.plot_dir, args.figures,
                           args.only_given, pre)
    first = precondition_line(card.preconditions)
    print(f"scorecard: {first + ' ' if first else ''}{summary_line(card.claims)} -> {args.csv}, {args.md}"
          + (f", {args.plot_dir}/<table>_bars.png" if args.plot_dir else ""))
    return 0
