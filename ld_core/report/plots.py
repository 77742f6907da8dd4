"""Bar plots of what the claims are about: each row's difference from its baseline, paper beside reproduced.

:func:`bars_png` renders the comparisons of one table's claims (:func:`ld_core.report.scorecard.build_scorecard`)
as a PNG, one panel per metric: grey bars the paper's difference (row − baseline), blue bars the reproduced
mean of the per-seed differences with its 95 % t-interval where there are several seeds; each bar is
labelled with its value. :mod:`ld_core.report.scorecard` writes one ``<plot_dir>/<table>_bars.png`` per built
table.
"""
from __future__ import annotations

import io
import math
from typing import Sequence

from . import format as fmt


def bars_png(table_id: str, comparisons: Sequence[dict]) -> bytes:
    """Grouped bars per metric: the paper's and our difference of each compared row (error bars: 95 % CI)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metrics = list(dict.fromkeys(c["metric"] for c in comparisons)) or ["(no claims)"]
    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    most = max([sum(1 for c in comparisons if c["metric"] == m) for m in metrics] + [1])
    width = max(4.0, 1.1 * most + 1.5)
    fig = Figure(figsize=(width * ncols, 3.8 * nrows), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    w = 0.38
    for ax, metric in zip(axes, metrics):
        part = [c for c in comparisons if c["metric"] == metric]
        x = np.arange(len(part))
        paper = np.array([float(c["paper"]) for c in part])
        ours = np.array([float(c["diff"]) for c in part])
        lo = np.array([np.nan if c.get("lo") is None else float(c["lo"]) for c in part])
        hi = np.array([np.nan if c.get("hi") is None else float(c["hi"]) for c in part])
        err = np.vstack([ours - lo, hi - ours]) if len(part) else None
        ax.axhline(0.0, color="black", lw=0.8)
        ax.bar(x - w / 2, paper, w, label="paper", color="#9e9e9e")
        ax.bar(x + w / 2, ours, w, label="reproduced (95 % CI)", color="#1f77b4",
               yerr=None if err is None or np.isnan(err).all() else np.nan_to_num(err, nan=0.0), capsize=3,
               error_kw={"elinewidth": 1})
        for xi, v in zip(x, paper):
            if not np.isfinite(v):  # a row the paper does not have
                continue
            ax.annotate(f"{v:+.1f}", (xi - w / 2, v), ha="center", va="bottom" if v >= 0 else "top", fontsize=7)
        for xi, v, l_, h_, c in zip(x, ours, lo, hi, part):  # above the error bar
            y = (h_ if np.isfinite(h_) else v) if v >= 0 else (l_ if np.isfinite(l_) else v)
            ax.annotate(f"{v:+.2f} (n={c.get('n', 1)})", (xi + w / 2, y), ha="center",
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
        ax.set_ylim(values.min() - 0.2 * span, values.max() + 0.25 * span)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 1.0 - 0.3 / fig.get_figheight()))
    n = max([int(c.get("n", 1)) for c in comparisons] + [1])
    fig.suptitle(f"{table_id}: claimed differences, paper vs reproduced (paired over {fmt.seed_count(n)})",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 1.0 - 0.2 / fig.get_figheight()))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
