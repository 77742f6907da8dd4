"""Scorecard: the preconditions of the comparisons checked, then every cell of the paper's Tables 1-4 beside its
reproduced value and the supplement's claims judged: holds, contradicted or inconclusive (`python -m ld_core
scorecard`: :mod:`ld_core.commands.scorecard`). This module loads the inputs and puts the outputs together; the
judging is :mod:`.claim_verdicts` and :mod:`.preconditions`, the Markdown :mod:`.scorecard_markdown`.

Inputs
------
* the tidy table CSVs written by :mod:`ld_core.report.tables` (read by :mod:`.tidy_table`; columns ``table, row,
  run, metric, paper, reproduced, reproduced_std, n_seeds, delta, per_seed`` + descriptive columns, + ``dataset``
  on a dataset of the user's own); only the tables this configuration built;
* the paper's numbers (``configs/paper_tables.csv``), every cell of Tables 1-4, and the claims
  (``configs/claims.yaml``: ``claims: [{id, table, text, better: [rows], than: row, metrics: [...], allow_equal,
  ours_only}]``; rows are the ``row`` ids of the paper CSV), as the typed objects of :mod:`ld_core.config.paper`
  and :mod:`ld_core.config.claims`, loaded (and checked, once) by :func:`load_inputs`;
* for the preconditions (:class:`~.preconditions.Preconditions`): the experiment matrix (which run distils from
  which teacher), the teachers' ``metrics.json`` and the pipeline config's ``preconditions`` (``min_ap``, ``teacher_margin_ap``).

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

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import pandas as pd

from ..config.claims import Claim, load_claims
from ..config.file_checks import project_schemas
from ..config.matrix import load_matrix
from ..config.paper import PaperTable, load_paper
from ..errors import ConfigError
from ..files import atomic_write_files
from .claim_verdicts import CLAIM_COLUMNS, NOT_IN_PAPER, NOT_RUN, OWN_DATASET, evaluate_claim, evaluate_figure2
from .plots import bars_png
from .preconditions import PRECONDITION_COLUMNS, Preconditions, apply_preconditions, check_preconditions
from .scorecard_markdown import precondition_rule, render_markdown
from .tidy_table import load_tidies

CELL_COLUMNS = ["kind", "table", "row", "metric", "run", "paper", "reproduced", "reproduced_std", "n_seeds",
                "delta", "per_seed", "status"]


@dataclass
class Scorecard:
    """Everything the outputs are made of (:func:`build_scorecard`)."""

    cells: pd.DataFrame
    claims: pd.DataFrame
    preconditions: pd.DataFrame
    differences: Dict[str, list]             # table -> the claims' comparisons (what the bar plots show)
    datasets: Dict[str, str] = field(default_factory=dict)  # table -> the user's dataset it was built on
    checked: bool = True                     # whether preconditions were checked at all


def load_inputs(matrix_path, paper_csv, claims_path) -> Tuple[Tuple[Claim, ...], PaperTable]:
    """(claims, the paper's numbers), through the loaders the Snakefile validates them with at parse time
    (:mod:`ld_core.config.paper`, :mod:`ld_core.config.claims`), against the matrix's tables."""
    matrix = load_matrix(matrix_path)
    paper = load_paper(paper_csv, matrix.tables, matrix.path, project_schemas())
    return load_claims(claims_path, matrix.tables, matrix.path, paper, project_schemas()), paper


def build_scorecard(table_csvs, claims: Sequence[Claim], paper: PaperTable, figures_json=None,
                    preconditions: Optional[Preconditions] = None) -> Scorecard:
    """Every paper cell with its reproduced value, the preconditions (when ``preconditions`` is given) and every
    claim judged (module docstring), and per built table the claims' comparisons (what the bar plots show).
    With ``figures_json`` the Figure 2 claim is added (one seed)."""
    combined, per_table, datasets = load_tidies(table_csvs)
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
        apply_preconditions(reproduced, checks, claim)
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


def write_scorecard(table_csvs, claims: Sequence[Claim], paper: PaperTable, csv_out, md_out, plot_dir=None,
                    figures_json=None, only_given=False, preconditions: Optional[Preconditions] = None) -> Scorecard:
    """Build the scorecard and write its CSV, Markdown and (with ``plot_dir``) ``<table>_bars.png`` per built table;
    returns it. ``only_given``: the cells and claims of the given tables only (the part of one table, written
    before the others are built).

    Everything is computed before anything is written; on any error no output is created or changed.
    """
    card = build_scorecard(table_csvs, claims, paper, figures_json, preconditions)
    if only_given:
        given = set(load_tidies(table_csvs)[1])
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
