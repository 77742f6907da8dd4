"""`ld_core scorecard`: the preconditions, every paper cell and the claims judged (:mod:`ld_core.report.scorecard`)."""
from __future__ import annotations

import argparse

from ..report.preconditions import Preconditions
from ..report.scorecard import load_inputs, write_scorecard
from ..report.scorecard_markdown import precondition_line, summary_line


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
