"""Paper tables: the published numbers beside the reproduced ones, as a tidy CSV and a booktabs LaTeX table
(`python -m ld_core table`: :mod:`ld_core.commands.table`).

Inputs
------
* the experiment matrix (``configs/experiments.yaml``): a table lists ``rows`` (``row`` id, ``run`` id,
  descriptive ``cells`` for the table's ``columns``) and the ``metrics`` to show;
* the paper's numbers (``configs/paper_tables.csv``: ``table,row,...,metric,value``; ``table`` is the N of
  ``tableN``), loaded and checked by :func:`ld_core.config.paper.load_paper`;
* one ``metrics.json`` per (run, seed): ``{"run": ..., "seed": ..., "metrics": {"AP": 41.2, ...}}`` (percent), read
  by :mod:`.metrics_files`.

Outputs
-------
* the tidy table (:mod:`.tidy_table`), one row per (table row x metric), columns
  :data:`~.tidy_table.TIDY_COLUMNS` then the spec's descriptive columns; ``reproduced`` is the mean over seeds,
  ``reproduced_std`` the sample std (ddof=1; NaN for one seed), ``delta`` = reproduced - paper (2 decimals; NaN
  where the paper has no value);
* a booktabs LaTeX table (:mod:`.table_latex`) in the paper's layout (the spec's cells are raw LaTeX; the including
  document needs ``\\usepackage{booktabs}`` and ``amssymb`` for ``\\checkmark``).

On a dataset of the user's own (``--dataset-name NAME``: the pipeline's ``--config dataset=<file>``) the paper's
numbers, which are COCO's / VOC's, are not shown: ``paper`` and ``delta`` stay empty, a ``dataset`` column names
the dataset, and the LaTeX has one "Ours" column per metric and the name in its caption.

Every problem is a one-line :class:`~ld_core.errors.DataError` / :class:`~ld_core.errors.ConfigError` naming the
file (or the run / table) at fault.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from ..config.file_checks import project_schemas
from ..config.matrix import load_matrix
from ..config.paper import load_paper
from ..errors import ConfigError
from ..files import atomic_write_files
from .metrics_files import load_metrics
from .table_latex import render_latex
from .tidy_table import build_table


def write_table(table_id, matrix_path, paper_csv, metrics_paths, csv_out, tex_out,
                dataset_name: Optional[str] = None) -> pd.DataFrame:
    """Build one table and write its CSV and TeX (``dataset_name``: the user's own dataset the runs were trained
    and evaluated on, no paper values); on any failure neither file is created or changed."""
    if dataset_name is not None and not dataset_name.strip():
        raise ConfigError(f"{table_id}: --dataset-name must not be empty")
    matrix = load_matrix(matrix_path)
    spec = matrix.table(table_id)
    paper = load_paper(paper_csv, matrix.tables, matrix.path, project_schemas())
    metrics = load_metrics(metrics_paths)
    tidy = build_table(table_id, spec, metrics, paper, dataset_name)
    csv_text = tidy.to_csv(index=False, lineterminator="\n")
    tex_text = render_latex(table_id, spec, tidy, dataset_name)

    csv_out, tex_out = Path(csv_out), Path(tex_out)
    if csv_out.resolve() == tex_out.resolve():
        raise ConfigError(f"{csv_out}: the CSV and TeX outputs must be different files")
    atomic_write_files({csv_out: csv_text, tex_out: tex_text})
    return tidy
