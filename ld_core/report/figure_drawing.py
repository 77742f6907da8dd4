"""Drawing the figures: a panel (detections and ground truth on an image), Figure 1 and Figure 2 (layouts:
:mod:`.figures`), and their captions."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .figure_images import image_rule
from .redundant_boxes import ROLES, redundancy_keys

MODEL_NAMES = ("GFocal", "LD")
FIG_WIDTH_IN = 3.4          # one paper column
DPI = 200
FONT_PT = 6.0               # smallest font used anywhere
TITLE_PT = 7.0
GT_COLOR = "#00e5ff"        # ground truth: dashed, one colour (cyan)
# detection colours by class label (cyan-free so GT stays distinct)
CLASS_COLORS = ("#e6194b", "#ffb000", "#b4129c", "#3cb44b", "#f58231", "#911eb4", "#fabed4", "#9a6324",
                "#800000", "#808000", "#ffe119", "#000075")


def caption_fig1(score_thr: float, nms_iou_desc: str = "the model's default NMS (IoU 0.6)") -> str:
    return (f"Qualitative comparison on validation images: GFocal baseline (left) vs LD student (right). "
            f"Solid boxes: detections with score >= {score_thr:g} after {nms_iou_desc}, labelled with class "
            f"and score; dashed boxes: ground truth. Images: {image_rule(score_thr)}.")


def caption_fig2(score_thr: float, nms_ious: Sequence[float], redundancy: Optional[dict] = None) -> str:
    a, b = nms_ious
    text = (f"Effect of the NMS IoU threshold: for each image, GFocal (top row) and LD (bottom row) at NMS IoU "
            f"{a:g} (left, default) and {b:g} (right). Solid boxes: detections with score >= {score_thr:g} "
            f"(coloured by class); dashed boxes: ground truth; the panel title gives the number of detections "
            f"drawn. Boxes NMS keeps at {b:g} but removes at {a:g} are redundant; LD's better localization lets "
            f"the default NMS suppress them. Images: {image_rule(score_thr)}.")
    if redundancy:
        ka, kb, kr = redundancy_keys(nms_ious)
        parts = [f"{name} {redundancy[role][ka]:.2f} / {redundancy[role][kb]:.2f} boxes, "
                 f"{redundancy[role][kr]:.2f} redundant" for name, role in ROLES.items()]
        text += (f" Over all {redundancy['images']} validation images, per image at NMS {a:g} / {b:g} "
                 f"(redundant: duplicates of an already covered ground-truth object at NMS {a:g}): "
                 + "; ".join(parts) + ".")
    return text


def nms_desc(default_iou: dict) -> str:
    vals = sorted(set(default_iou.values()))
    return f"NMS at IoU {vals[0]:g}" if len(vals) == 1 else \
        "NMS at each model's configured IoU (" + ", ".join(f"{k} {v:g}" for k, v in default_iou.items()) + ")"


def _filter(det: dict, score_thr: float) -> dict:
    keep = det["scores"] >= score_thr
    return {k: v[keep] for k, v in det.items()}


def _draw_panel(ax, image: np.ndarray, det: dict, gt_bboxes: np.ndarray, class_names: Sequence[str], *,
                labels: bool, title: Optional[str] = None):
    from matplotlib.patches import Rectangle

    h, w = image.shape[:2]
    ax.imshow(image, extent=(0, w, h, 0), interpolation="bilinear")  # continuous pixel-edge coordinates
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_linewidth(0.4)
    lw = 0.9
    for x1, y1, x2, y2 in gt_bboxes:
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=GT_COLOR, linewidth=lw,
                               linestyle=(0, (2.5, 1.5))))
    # label height in image pixels (6-pt text plus padding), from the panel's size on the figure
    panel_h_in = ax.get_position().height * ax.figure.get_figheight()
    text_h = h * (FONT_PT * 1.45 / 72.0) / max(panel_h_in, 1e-6)
    placed: list[tuple[float, float]] = []  # label anchors (x, top y) already used, most confident first
    n = len(det["scores"])
    for rank, (box, score, label) in enumerate(zip(det["bboxes"], det["scores"], det["labels"])):
        x1, y1, x2, y2 = (float(v) for v in box)
        color = CLASS_COLORS[int(label) % len(CLASS_COLORS)]
        z = 3 + (n - rank) / max(n, 1)  # the most confident box and its label on top
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, linewidth=lw, zorder=z))
        if not labels:
            continue
        name = class_names[int(label)] if 0 <= int(label) < len(class_names) else str(int(label))
        tx = min(max(x1, 0.0), w)
        top = y1 - text_h if y1 - text_h >= 0 else max(y1, 0.0)  # above the box, else just inside it
        # stack a label below any already placed label it would cover (near-duplicate boxes)
        for _ in range(4):  # at most a few steps: a crowded panel stays cheap to draw
            if not any(abs(top - py) < text_h and abs(tx - px) < 0.3 * w for px, py in placed):
                break
            top += text_h
        placed.append((tx, top))
        ax.text(tx, top, f"{name} {score:.2f}", fontsize=FONT_PT, color="white", va="top", ha="left",
                clip_on=True, zorder=z + 2, bbox=dict(facecolor=color, alpha=0.8, pad=0.6, edgecolor="none"))
    if title:
        ax.set_title(title, fontsize=TITLE_PT, pad=2)


def _key(fig, height: float, score_thr: float) -> None:
    """The line under a figure that says what solid and dashed boxes are (``height``: the figure's, in inches)."""
    fig.text(0.5, 0.08 / height, f"solid: detections with score \u2265 {score_thr:g}    dashed: ground truth",
             ha="center", va="bottom", fontsize=FONT_PT)


def render_figure1(images: list[dict], pics: list[np.ndarray], dets: dict, class_names, score_thr: float):
    """One row per image, columns GFocal / LD; ``dets[(model, image_id)]`` are the raw detections."""
    import matplotlib.pyplot as plt

    n = len(images)
    aspects = [p.shape[0] / p.shape[1] for p in pics]
    left, right, gap = 0.16, 0.03, 0.05              # inches
    panel_w = (FIG_WIDTH_IN - left - right - gap) / 2
    top, bottom, vgap = 0.2, 0.26, 0.05
    heights = [panel_w * a for a in aspects]
    height = top + bottom + sum(heights) + vgap * (n - 1)
    fig = plt.figure(figsize=(FIG_WIDTH_IN, height))
    gs = fig.add_gridspec(n, 2, left=left / FIG_WIDTH_IN, right=1 - right / FIG_WIDTH_IN,
                          top=1 - top / height, bottom=bottom / height, height_ratios=heights,
                          wspace=gap / panel_w, hspace=vgap / (sum(heights) / n))
    counts = []
    for r, (img, pic) in enumerate(zip(images, pics)):
        for c, name in enumerate(MODEL_NAMES):
            ax = fig.add_subplot(gs[r, c])
            shown = _filter(dets[(name, img["id"])], score_thr)
            _draw_panel(ax, pic, shown, img["gt_bboxes"], class_names, labels=True,
                        title=name if r == 0 else None)
            if c == 0:
                ax.set_ylabel(f"val id {img['id']}", fontsize=FONT_PT, labelpad=2)
            counts.append(dict(image_id=img["id"], model=name, drawn=int(len(shown["scores"])),
                               detections=int(len(dets[(name, img["id"])]["scores"]))))
    _key(fig, height, score_thr)
    return fig, counts


def render_figure2(images: list[dict], pics: list[np.ndarray], dets: dict, class_names, score_thr: float,
                   nms_ious: Sequence[float]):
    """Per image a 2x2 block: rows GFocal / LD, columns NMS IoU ``nms_ious[0]`` / ``nms_ious[1]``."""
    import matplotlib.pyplot as plt

    n = len(images)
    left, right, gap = 0.16, 0.03, 0.05
    panel_w = (FIG_WIDTH_IN - left - right - gap) / 2
    title_h, block_gap, bottom = 0.17, 0.12, 0.26
    heights = [panel_w * p.shape[0] / p.shape[1] for p in pics]
    height = bottom + sum(2 * (hh + title_h) for hh in heights) + block_gap * (n - 1)
    fig = plt.figure(figsize=(FIG_WIDTH_IN, height))
    counts = []
    y = height  # running top edge in inches
    for img, pic, hh in zip(images, pics, heights):
        for r, name in enumerate(MODEL_NAMES):
            y -= title_h
            for c, iou in enumerate(nms_ious):
                x0 = left + c * (panel_w + gap)
                ax = fig.add_axes((x0 / FIG_WIDTH_IN, (y - hh) / height, panel_w / FIG_WIDTH_IN, hh / height))
                shown = _filter(dets[(name, img["id"], float(iou))], score_thr)
                k = int(len(shown["scores"]))
                _draw_panel(ax, pic, shown, img["gt_bboxes"], class_names, labels=False,
                            title=f"{name}, NMS {iou:g}: {k} box{'es' if k != 1 else ''}")
                if c == 0:
                    ax.set_ylabel(f"val id {img['id']}", fontsize=FONT_PT, labelpad=2)
                counts.append(dict(image_id=img["id"], model=name, nms_iou=float(iou), drawn=k,
                                   detections=int(len(dets[(name, img["id"], float(iou))]["scores"]))))
            y -= hh
        y -= block_gap
    _key(fig, height, score_thr)
    return fig, counts
