"""The scorecard as Markdown: the failed preconditions first, the summary line, the rule, the preconditions, the
claims, then one cells table per paper table."""
from __future__ import annotations

from typing import Dict, List, Optional

import pandas as pd

from . import formatting as fmt
from .claim_verdicts import NOT_RUN
from .preconditions import FAILED, LEARNED, PRECONDITION_COLUMNS, TEACHER_BETTER, Preconditions
from .stats import CONTRADICTED, HOLDS, INCONCLUSIVE

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
