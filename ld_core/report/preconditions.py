"""The scorecard's preconditions, checked before any verdict: every model learned (AP floor), every teacher better
than the student baseline it distils into; a claim that depends on a failed one becomes inconclusive. The rule:
:mod:`.scorecard`."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

import pandas as pd

from ..config.claims import Claim
from ..config.matrix import load_matrix
from ..errors import ConfigError, DataError
from . import formatting as fmt
from .claim_verdicts import NOT_RUN
from .metrics_files import load_metrics
from .stats import HOLDS, INCONCLUSIVE, paired_difference

PASSED, FAILED, NOT_REQUIRED, NOT_CHECKED = "passed", "failed", "not required", "not checked"
LEARNED, TEACHER_BETTER = "learned", "teacher better"
PRECONDITION_METRIC = "AP"  # every table of the matrix has it (Table 4: the mean VOC mAP over IoU 0.50:0.95)
PRECONDITION_COLUMNS = ["kind", "table", "id", "check", "text", "row", "run", "metric", "value", "than",
                        "than_value", "margin", "n", "ci_lo", "ci_hi", "status", "note"]


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
    """The precondition records of the built tables (:mod:`.scorecard`), in table and row order; each has the
    internal key ``rows``: the table rows whose comparisons depend on it."""
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


def apply_preconditions(rec: dict, records: Sequence[dict], claim: Claim) -> None:
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
