"""`ld_core table`: one paper table as a tidy CSV and a booktabs LaTeX table (:mod:`ld_core.report.tables`)."""
from __future__ import annotations

import argparse

from ..report.tables import write_table


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
