"""Bar plots of what the claims are about: each row's difference from its baseline, with its verdict.

:func:`bars_png` renders the comparisons of one table's claims (:func:`ld_core.report.scorecard.build_scorecard`)
as a PNG, one panel per metric: the reproduced mean of the per-seed differences with its 95 % t-interval where
there are several seeds, coloured by its verdict (holds / contradicted / inconclusive), grey bars beside it the
paper's difference (row − baseline; none on a dataset of the user's own: the paper's numbers are COCO's / VOC's).
Each bar is labelled with its value, n and verdict ("precondition failed" where one did:
:mod:`ld_core.report.scorecard`). :mod:`ld_core.report.scorecard` writes one
``<plot_dir>/<table>_bars.png`` per built table.
"""
from __future__ import annotations

import io
import math
from typing import Optional, Sequence

from . import formatting as fmt
from .stats import CONTRADICTED, HOLDS, INCONCLUSIVE

COLOURS = {HOLDS: "#2ca02c", CONTRADICTED: "#d62728", INCONCLUSIVE: "#ff9f1c"}
PAPER_COLOUR = "#9e9e9e"


def bars_png(table_id: str, comparisons: Sequence[dict], dataset: Optional[str] = None) -> bytes:
    """Grouped bars per metric: our difference of each compared row (error bars: 95 % CI; colour: verdict) and
    the paper's (not with ``dataset``, the user's own dataset, which names the plot)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    metrics = list(dict.fromkeys(c["metric"] for c in comparisons)) or ["(no claims)"]
    with_paper = not dataset
    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    most = max([sum(1 for c in comparisons if c["metric"] == m) for m in metrics] + [1])
    width = max(4.0, 1.1 * most + 1.5)
    fig = Figure(figsize=(width * ncols, 3.8 * nrows), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    w = 0.38 if with_paper else 0.6
    shift = w / 2 if with_paper else 0.0
    for ax, metric in zip(axes, metrics):
        part = [c for c in comparisons if c["metric"] == metric]
        x = np.arange(len(part))
        paper = np.array([float(c.get("paper", math.nan)) for c in part]) if with_paper else np.array([])
        ours = np.array([float(c["diff"]) for c in part])
        lo = np.array([np.nan if c.get("lo") is None else float(c["lo"]) for c in part])
        hi = np.array([np.nan if c.get("hi") is None else float(c["hi"]) for c in part])
        err = np.vstack([ours - lo, hi - ours]) if len(part) else None
        verdicts = [c.get("verdict", INCONCLUSIVE) for c in part]
        ax.axhline(0.0, color="black", lw=0.8)
        if with_paper:
            ax.bar(x - shift, paper, w, color=PAPER_COLOUR)
            for xi, v in zip(x, paper):
                if not np.isfinite(v):  # a row the paper does not have
                    continue
                ax.annotate(f"{v:+.1f}", (xi - shift, v), ha="center", va="bottom" if v >= 0 else "top",
                            fontsize=7)
        ax.bar(x + shift, ours, w, color=[COLOURS.get(v, COLOURS[INCONCLUSIVE]) for v in verdicts],
               yerr=None if err is None or np.isnan(err).all() else np.nan_to_num(err, nan=0.0), capsize=3,
               error_kw={"elinewidth": 1})
        for xi, v, l_, h_, c, verdict in zip(x, ours, lo, hi, part, verdicts):  # above the error bar
            y = (h_ if np.isfinite(h_) else v) if v >= 0 else (l_ if np.isfinite(l_) else v)
            said = verdict + ("\n(precondition failed)" if c.get("precondition_failed") else "")
            ax.annotate(f"{v:+.2f} (n={c.get('n', 1)})\n{said}", (xi + shift, y), ha="center",
                        va="bottom" if v >= 0 else "top", fontsize=7)
        ax.set_title(f"{metric}: difference from the baseline", fontsize=10)
        ax.set_xticks(x)
        ax.set_xticklabels([c["label"] for c in part], rotation=30 if len(part) > 3 else 0,
                           ha="right" if len(part) > 3 else "center", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        values = np.concatenate([paper[np.isfinite(paper)], ours[np.isfinite(ours)], lo[np.isfinite(lo)],
                                 hi[np.isfinite(hi)], [0.0]])
        span = float(values.max() - values.min()) or 1.0
        ax.set_ylim(values.min() - 0.3 * span, values.max() + 0.35 * span)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    handles = ([Patch(color=PAPER_COLOUR, label="paper")] if with_paper else []) + [
        Patch(color=COLOURS[v], label=f"reproduced: {v}") for v in (HOLDS, CONTRADICTED, INCONCLUSIVE)]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 1.0 - 0.3 / fig.get_figheight()))
    n = max([int(c.get("n", 1)) for c in comparisons] + [1])
    where = f" on {dataset} (your dataset: no paper values)" if dataset else ", paper vs reproduced"
    fig.suptitle(f"{table_id}{where}: claimed differences with 95 % CI (paired over {fmt.seed_count(n)})",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 1.0 - 0.2 / fig.get_figheight()))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
