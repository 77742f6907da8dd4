"""Bar plots of the paper tables: paper vs reproduced per (row, metric), one panel per metric.

:func:`bars_png` renders one tidy table (the CSV of :mod:`ld_core.report.tables`, as
:func:`ld_core.report.scorecard.load_tidy` reads it) as a PNG: grey bars the paper's values, blue bars the
reproduced means, error bars the sample std over seeds where a row has several; each bar is labelled with its
value. :mod:`ld_core.report.scorecard` writes one ``<plot_dir>/<table>_bars.png`` per built table.
"""
from __future__ import annotations

import io
import math

import pandas as pd

from ..errors import DataError
from . import format as fmt


def bars_png(tidy: pd.DataFrame) -> bytes:
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
    seed_txt = "" if not seeds else (f" (reproduced: mean over {fmt.seed_count(seeds[-1])}"
                                     + (", error bars = std)" if seeds[-1] > 1 else ")"))
    fig.suptitle(f"{table_id}: paper vs reproduced{seed_txt}", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 1.0 - 0.2 / fig.get_figheight()))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
