"""`ld_core figures`: the supplement's two qualitative figures, GFocal baseline vs LD student.

**Figure 1** (``figure1.png`` / ``figure1.pdf``): the same validation images side by side, one row
per image, columns "GFocal" (baseline) and "LD" (distilled student). Solid boxes: detections with
score >= ``score_thr`` (default 0.3) after the model's own NMS (IoU from its config, 0.6 by
default), coloured by class and labelled "class score". Dashed boxes in one colour: ground truth.

**Figure 2** (``figure2.png`` / ``figure2.pdf``): per image a 2x2 block, rows GFocal / LD, columns
NMS IoU 0.6 (the default) / 0.95; only the NMS IoU of the head's ``test_cfg`` changes. Solid boxes:
detections with score >= ``score_thr`` (no text labels, so redundant boxes stay visible); dashed:
ground truth. Each panel title holds the number of boxes drawn. The point: with better-localized
boxes (LD) the default NMS already removes the redundant ones; raising the IoU to 0.95 shows what
NMS had to suppress.

**Image selection** is fixed before any model runs: the first ``num_images`` validation images by
image id with at least two (non-crowd) ground-truth objects; figure 2 uses the first
``num_images_fig2`` of that same list. Results never influence the choice.

**Inference**: each model is built once with ``mmdet.apis.init_detector`` from the plain-GFL
student of its config (:func:`ld_core.config.builder.student_only`, so no teacher is loaded) on the
CPU, then its tensor-only checkpoint is loaded *strictly* (a checkpoint that does not fit the
config is a one-line :class:`ConfigError`, never a silently half-random model). Images go through
the config's test pipeline (``inference_detector``); the model's own ``score_thr`` (0.05 in the
matrix configs) is kept and the drawing threshold is applied afterwards. The annotation file and
image folder are arguments: paths inside the configs (data roots) are not used.

Outputs (written to temporary files in ``out_dir`` and renamed into place only when all four
figures and ``figures.json`` rendered): ``figure1.{png,pdf}``, ``figure2.{png,pdf}`` (PNG at 200
dpi, 3.4 in wide: one paper column; fonts >= 6 pt) and ``figures.json`` (image ids, per-panel box
counts, captions, timings).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import time
import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from ..io import atomic_write_files
from . import format as fmt

MODEL_NAMES = ("GFocal", "LD")
FIG_WIDTH_IN = 3.4          # one paper column
DPI = 200
FONT_PT = 6.0               # smallest font used anywhere
TITLE_PT = 7.0
GT_COLOR = "#00e5ff"        # ground truth: dashed, one colour (cyan)
# detection colours by class label (cyan-free so GT stays distinct)
CLASS_COLORS = ("#e6194b", "#ffb000", "#b4129c", "#3cb44b", "#f58231", "#911eb4", "#fabed4", "#9a6324",
                "#800000", "#808000", "#ffe119", "#000075")
MIN_GT = 2


def caption_fig1(score_thr: float, nms_iou_desc: str = "the model's default NMS (IoU 0.6)") -> str:
    return (f"Qualitative comparison on validation images: GFocal baseline (left) vs LD student (right). "
            f"Solid boxes: detections with score >= {score_thr:g} after {nms_iou_desc}, labelled with class "
            f"and score; dashed boxes: ground truth. Images: the first validation images (by id) with at "
            f"least {MIN_GT} objects.")


def caption_fig2(score_thr: float, nms_ious: Sequence[float]) -> str:
    a, b = nms_ious
    return (f"Effect of the NMS IoU threshold: for each image, GFocal (top row) and LD (bottom row) at NMS IoU "
            f"{a:g} (left, default) and {b:g} (right). Solid boxes: detections with score >= {score_thr:g} "
            f"(coloured by class); dashed boxes: ground truth; the panel title gives the number of detections "
            f"drawn. Boxes NMS keeps at {b:g} but removes at {a:g} are redundant; LD's better localization lets "
            f"the default NMS suppress them.")


# ----------------------------------------------------------------------------------------------- inputs

def _require_file(path, what: str, error=ConfigError) -> Path:
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} file does not exist")
    return path


def select_images(ann_file, num_images: int, min_gt: int = MIN_GT) -> list[dict]:
    """The first ``num_images`` images (by id) with >= ``min_gt`` non-crowd annotations.

    Each entry: ``{'id', 'file_name', 'width', 'height', 'gt_bboxes' (n,4 xyxy), 'gt_labels' (category ids)}``.
    """
    path = Path(ann_file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read annotations ({fmt.first_line(exc)})") from None
    per_image: dict[int, list] = {}
    for ann in data.get("annotations", []):
        if ann.get("iscrowd", 0):
            continue
        per_image.setdefault(ann["image_id"], []).append(ann)
    chosen = []
    for img in sorted(data.get("images", []), key=lambda im: im["id"]):
        anns = sorted(per_image.get(img["id"], []), key=lambda a: a["id"])
        if len(anns) < min_gt:
            continue
        boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                          for a in anns], dtype=np.float32)
        chosen.append(dict(id=int(img["id"]), file_name=img["file_name"], width=img.get("width"),
                           height=img.get("height"), gt_bboxes=boxes,
                           gt_labels=[int(a["category_id"]) for a in anns]))
        if len(chosen) == num_images:
            break
    if not chosen:
        raise DataError(f"{path}: no image has at least {min_gt} ground-truth objects")
    return chosen


def _class_names(cfg, ann_file) -> tuple[list[str], dict]:
    """Label index -> name (config metainfo order, else categories by id) and category id -> name."""
    data = json.loads(Path(ann_file).read_text(encoding="utf-8"))
    cats = sorted(data.get("categories", []), key=lambda c: c["id"])
    cat_names = {int(c["id"]): str(c["name"]) for c in cats}
    classes = None
    try:
        classes = cfg["test_dataloader"]["dataset"]["metainfo"]["classes"]
    except (KeyError, TypeError):
        pass
    return (list(classes) if classes else [c["name"] for c in cats]), cat_names


# -------------------------------------------------------------------------------------------- inference

def load_model(config, checkpoint, device: str = "cpu"):
    """A plain GFL detector (``student_only`` of ``config``) with ``checkpoint``'s weights, in eval mode."""
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    from mmdet.apis import init_detector

    from ..config.builder import student_only

    config, checkpoint = _require_file(config, "config"), _require_file(checkpoint, "checkpoint")
    try:
        raw = Config.fromfile(str(config))
    except Exception as exc:  # syntax errors etc. are multi-line
        raise ConfigError(f"{config}: cannot read config ({fmt.first_line(exc)})") from None
    if "model" not in raw or "bbox_head" not in raw.model:
        raise ConfigError(f"{config}: config has no model.bbox_head")
    cfg = Config(student_only(raw.to_dict()))
    if "nms" not in (cfg.model.get("test_cfg") or {}):
        raise ConfigError(f"{config}: model.test_cfg has no 'nms' entry")
    if "pipeline" not in (cfg.get("test_dataloader", {}).get("dataset", {}) or {}):
        raise ConfigError(f"{config}: config has no test_dataloader.dataset.pipeline")
    with warnings.catch_warnings(record=True):  # "checkpoint is None, use COCO classes": not used here
        model = init_detector(cfg, None, palette="random", device=device)
    try:
        load_checkpoint(model, str(checkpoint), map_location="cpu", strict=True, logger="silent")
    except Exception as exc:
        raise ConfigError(f"{checkpoint}: checkpoint does not fit {config} ({fmt.first_line(exc)})") from None
    model.eval()
    return model


@contextlib.contextmanager
def nms_iou_override(model, iou: Optional[float]):
    """Temporarily set the head's NMS IoU threshold (``None``: leave the config's)."""
    nms = model.bbox_head.test_cfg["nms"]
    old = nms["iou_threshold"]
    if iou is not None:
        nms["iou_threshold"] = float(iou)
    try:
        yield
    finally:
        nms["iou_threshold"] = old


def _pipeline(model):
    """The config's test pipeline without annotation loading (inference needs only the image)."""
    from mmcv.transforms import Compose

    from mmdet.utils import get_test_pipeline_cfg

    pipe = getattr(model, "_ld_fig_pipeline", None)
    if pipe is None:
        steps = [copy.deepcopy(s) for s in get_test_pipeline_cfg(model.cfg)
                 if not str(s.get("type", "")).endswith("LoadAnnotations")]
        pipe = Compose(steps)
        model._ld_fig_pipeline = pipe
    return pipe


def detect(model, image_path, nms_iou: Optional[float] = None) -> dict:
    """Detections of ``model`` on one image (original image coordinates), NMS IoU overridden if given.

    Returns ``{'bboxes': (n,4) float32 xyxy, 'scores': (n,), 'labels': (n,) int}`` sorted by score; the
    model's own ``test_cfg.score_thr`` / ``max_per_img`` apply.
    """
    from mmdet.apis import inference_detector

    with nms_iou_override(model, nms_iou):
        result = inference_detector(model, str(image_path), test_pipeline=_pipeline(model))
    inst = result.pred_instances
    scores = inst.scores.detach().cpu().numpy().astype(np.float32)
    order = np.argsort(-scores, kind="stable")
    return dict(bboxes=inst.bboxes.detach().cpu().numpy().astype(np.float32)[order].reshape(-1, 4),
                scores=scores[order], labels=inst.labels.detach().cpu().numpy().astype(np.int64)[order])


# --------------------------------------------------------------------------------------------- drawing

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


def _load_rgb(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


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


# ---------------------------------------------------------------------------------------------- driver

def make_figures(baseline_config, baseline_checkpoint, ld_config, ld_checkpoint, ann_file, img_dir, out_dir,
                 *, num_images_fig1: int = 4, num_images_fig2: int = 2, score_thr: float = 0.3,
                 nms_ious: Sequence[float] = (0.6, 0.95)) -> dict:
    """Render figures 1 and 2 (PNG + PDF) and ``figures.json`` into ``out_dir``; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from ..data.validate import validate_coco

    if num_images_fig1 < 1 or num_images_fig2 < 1:
        raise ConfigError(f"number of images must be >= 1 (got {num_images_fig1}, {num_images_fig2})")
    nms_ious = tuple(float(v) for v in nms_ious)
    if len(nms_ious) != 2 or not all(0.0 < v <= 1.0 for v in nms_ious):
        raise ConfigError(f"nms_ious must be two IoU thresholds in (0, 1], got {nms_ious}")
    paths = dict(baseline_config=baseline_config, baseline_checkpoint=baseline_checkpoint,
                 ld_config=ld_config, ld_checkpoint=ld_checkpoint)
    for key, path in paths.items():  # every input checked before any model is built
        _require_file(path, key.split("_")[1])
    _require_file(ann_file, "annotation", DataError)
    if not Path(img_dir).is_dir():
        raise DataError(f"{img_dir}: image folder does not exist")
    validate_coco(ann_file, img_dir)

    timings = {}
    t0 = time.time()
    images = select_images(ann_file, max(num_images_fig1, num_images_fig2))
    fig1_imgs, fig2_imgs = images[:num_images_fig1], images[:num_images_fig2]
    fig1_ids, fig2_ids = {i["id"] for i in fig1_imgs}, {i["id"] for i in fig2_imgs}
    pics = {img["id"]: _load_rgb(Path(img_dir) / img["file_name"]) for img in images}

    from mmengine.config import Config

    models = {"GFocal": load_model(baseline_config, baseline_checkpoint),
              "LD": load_model(ld_config, ld_checkpoint)}
    class_names, _ = _class_names(Config.fromfile(str(baseline_config)).to_dict(), ann_file)
    default_iou = {name: float(m.bbox_head.test_cfg["nms"]["iou_threshold"]) for name, m in models.items()}
    timings["load_s"] = round(time.time() - t0, 2)

    t0 = time.time()
    dets = {}
    for name, model in models.items():
        for img in images:
            path = Path(img_dir) / img["file_name"]
            if img["id"] in fig1_ids:
                dets[(name, img["id"])] = detect(model, path)
            if img["id"] in fig2_ids:
                for iou in nms_ious:
                    dets[(name, img["id"], iou)] = detect(model, path, nms_iou=iou)
    timings["inference_s"] = round(time.time() - t0, 2)
    n_inf = len(dets)

    out = Path(out_dir)
    targets = {f"{stem}_{ext}": out / f"{stem}.{ext}" for stem in ("figure1", "figure2") for ext in ("png", "pdf")}
    targets["json"] = out / "figures.json"
    files = {}
    t0 = time.time()
    try:
        with plt.rc_context({"font.size": FONT_PT, "pdf.fonttype": 42, "ps.fonttype": 42,
                             "savefig.dpi": DPI}):
            fig1, counts1 = render_figure1(fig1_imgs, [pics[i["id"]] for i in fig1_imgs], dets, class_names,
                                           score_thr)
            fig2, counts2 = render_figure2(fig2_imgs, [pics[i["id"]] for i in fig2_imgs], dets, class_names,
                                           score_thr, nms_ious)
            for stem, fig in (("figure1", fig1), ("figure2", fig2)):
                for ext in ("png", "pdf"):
                    buf = io.BytesIO()
                    fig.savefig(buf, format=ext, dpi=DPI)
                    files[targets[f"{stem}_{ext}"]] = buf.getvalue()
    finally:
        plt.close("all")
    timings["render_s"] = round(time.time() - t0, 2)
    timings["per_inference_s"] = round(timings["inference_s"] / max(n_inf, 1), 3)
    summary = dict(
        score_thr=float(score_thr), nms_ious=list(nms_ious), default_nms_iou=default_iou,
        selection=f"first images by id with >= {MIN_GT} non-crowd ground-truth objects",
        models={"GFocal": dict(config=str(baseline_config), checkpoint=str(baseline_checkpoint)),
                "LD": dict(config=str(ld_config), checkpoint=str(ld_checkpoint))},
        figure1=dict(image_ids=[i["id"] for i in fig1_imgs], panels=counts1,
                     caption=caption_fig1(score_thr, _nms_desc(default_iou))),
        figure2=dict(image_ids=[i["id"] for i in fig2_imgs], panels=counts2,
                     caption=caption_fig2(score_thr, nms_ious)),
        timings=timings)
    files[targets["json"]] = json.dumps(summary, indent=2) + "\n"
    atomic_write_files(files)
    return {key: str(path) for key, path in targets.items()}


def _nms_desc(default_iou: dict) -> str:
    vals = sorted(set(default_iou.values()))
    return f"NMS at IoU {vals[0]:g}" if len(vals) == 1 else \
        "NMS at each model's configured IoU (" + ", ".join(f"{k} {v:g}" for k, v in default_iou.items()) + ")"


# ------------------------------------------------------------------------------------------------- CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline-config", required=True, help="GFocal baseline config.py")
    parser.add_argument("--baseline-checkpoint", required=True)
    parser.add_argument("--ld-config", required=True, help="LD student config.py (teacher is not loaded)")
    parser.add_argument("--ld-checkpoint", required=True)
    parser.add_argument("--ann", required=True, help="COCO val annotation file")
    parser.add_argument("--img-dir", required=True, help="folder the COCO file_name entries are relative to")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--num-images-fig1", type=int, default=4)
    parser.add_argument("--num-images-fig2", type=int, default=2)
    parser.add_argument("--score-thr", type=float, default=0.3)
    parser.add_argument("--threads", type=int, default=1)


def run(args: argparse.Namespace) -> int:
    from ..threads import pin_threads

    pin_threads(getattr(args, "threads", 1))
    written = make_figures(args.baseline_config, args.baseline_checkpoint, args.ld_config, args.ld_checkpoint,
                           args.ann, args.img_dir, args.out_dir, num_images_fig1=args.num_images_fig1,
                           num_images_fig2=args.num_images_fig2, score_thr=args.score_thr)
    summary = json.loads(Path(written["json"]).read_text())
    boxes = ", ".join(f"{p['model']}@{p['nms_iou']:g} {p['drawn']}" for p in summary["figure2"]["panels"])
    print(f"[figures] images {summary['figure1']['image_ids']}; fig 2 boxes: {boxes}; "
          f"wrote {', '.join(Path(p).name for p in written.values())} to {args.out_dir}")
    return 0
