"""A claim judged on a tidy table: paired by seed on the reproduced numbers (holds / contradicted / inconclusive,
with n and the interval), a point comparison on the paper's; the Figure 2 claim from ``figures.json``. The rule:
:mod:`.scorecard`."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pandas as pd

from ..config.claims import Claim
from ..errors import DataError, one_line
from . import formatting as fmt
from .stats import CONTRADICTED, HOLDS, INCONCLUSIVE, MAX_SEEDS, paired_difference, seeds_needed

NOT_RUN = "not run"
NOT_IN_PAPER = "not in the paper"
OWN_DATASET = "own dataset"
CLAIM_COLUMNS = ["kind", "table", "id", "text", "better", "than", "metrics", "allow_equal", "holds_in_paper",
                 "paper_margin", "verdict", "margin", "n", "ci_lo", "ci_hi", "weakest", "seeds_needed", "note"]


def _label(row: str, than: str) -> str:
    return f"{row} − {than}"


def evaluate_claim(claim: Claim, tidy: pd.DataFrame, column: str = "reproduced",
                   paper_effects: Optional[Dict[Tuple[str, str], float]] = None) -> dict:
    """Check one claim on ``tidy[column]`` (rows ``table, row, metric``); the rule: :mod:`.scorecard`.

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


FIGURE2_CLAIM = dict(
    id="f2-ld-fewer-redundant-boxes", table="figure2",
    text="Figure 2: LD's better-localized boxes leave fewer redundant boxes after the default NMS (0.6) than "
         "GFocal's (redundant: a second box on a GT already found; over the whole val split, score >= 0.3)")


def evaluate_figure2(summary_path) -> dict:
    """The Figure 2 claim as numbers over the whole val split, from the figures' ``figures.json``.

    ``margin`` = redundant boxes per image of GFocal − of LD at NMS 0.6 (positive: fewer for LD); one trained
    model each, so the verdict is ``inconclusive`` (one seed). ``note`` gives both models' boxes per image at NMS 0.6 / 0.95.
    """
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
