"""`ld_core figures`: the supplement's two qualitative figures, GFocal baseline vs LD student, and the
whole-validation-split number behind Figure 2.

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

**Image rule** (:func:`image_rule`; never compares the two models, never looks at the LD model): the
first ``num_images`` validation images *in annotation-file order* that have at least two (non-crowd)
ground-truth objects and on which the GFocal **baseline** has at least one detection with score >=
``score_thr`` (at NMS IoU 0.6; the highest-scored box survives any NMS, so this does not depend on the
IoU). Figure 2 uses the first ``num_images_fig2`` of that same list. Only if fewer images meet the rule
do the first other images with >= 2 objects (file order) fill the remaining slots, after the ones that
meet it; ``figures.json`` lists them (``image_rule_fill``), normally empty.

**NMS redundancy over the whole validation split** (``figures.json`` ``nms_redundancy``): the
supplement's Figure 2 claim ("redundant boxes may still survive after the default NMS (0.6) for
GFocal; LD improves localization quality so redundant ones are suppressed by the default NMS") as a
number. Each model runs once over *every* validation image; the head's post-processing is run at
NMS IoU 0.6 and at 0.95 on the same forward pass. Per model (``baseline``, ``ld``):
``boxes_per_image_nms0.6`` / ``boxes_per_image_nms0.95`` (detections with score >= ``score_thr``,
mean per image), ``surplus_per_image`` (their difference: boxes only the default NMS removes) and
``redundant_per_image_nms0.6``: detections at NMS 0.6 with score >= ``score_thr`` that duplicate a
ground-truth object the default NMS let through: a detection's object is the GT box of its class it
overlaps most (IoU >= 0.5), and it is redundant when a higher-scored detection of the same class
already has that object (ties: NMS output order). A box that finds a new object is not redundant; a box
on no object is a false positive, not a duplicate. Plus ``images``, the number of validation images.

**Inference**: each model is built once by :func:`ld_core.models.trained.load_student` from the
plain-GFL student of its config (no teacher is loaded) on the CPU, with its tensor-only checkpoint
loaded *strictly* (a checkpoint that does not fit the config is a one-line :class:`ConfigError`, never a
silently half-random model). Images go through the config's test pipeline and the model's
``data_preprocessor`` / ``extract_feat`` / head exactly as ``inference_detector`` runs them, batched
(``batch_size``) over consecutive images of one shape after the pipeline, so padding and results are
those of one image at a time. The model's own ``score_thr`` (0.05 in the matrix configs), ``nms_pre``
and ``max_per_img`` are kept and the drawing threshold is applied afterwards. The annotation file and
image folder are arguments: paths inside the configs (data roots) are not used.

Outputs (written to temporary files in ``out_dir`` and renamed into place only when all four
figures and ``figures.json`` rendered): ``figure1.{png,pdf}``, ``figure2.{png,pdf}`` (PNG at 200
dpi, 3.4 in wide: one paper column; fonts >= 6 pt) and ``figures.json`` (image rule and ids,
per-panel box counts, captions, ``nms_redundancy``, timings).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..data.annotations import validate_coco
from ..errors import ConfigError, DataError, first_line
from ..files import atomic_write_files
from ..threads import pin_threads

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
MATCH_IOU = 0.5             # a detection "overlaps" a GT box at IoU >= this (redundancy count)
BATCH_SIZE = 16             # images per forward pass over the validation split
ROLES = {"GFocal": "baseline", "LD": "ld"}  # figures.json nms_redundancy keys


def image_rule(score_thr: float, min_gt: int = MIN_GT) -> str:
    """The stated image-selection rule (module docstring, ``figures.json`` ``image_rule``, captions)."""
    return (f"the first validation images in annotation-file order with at least {min_gt} ground-truth objects "
            f"on which the GFocal baseline has at least one detection with score >= {score_thr:g} (the LD "
            f"model is not looked at)")


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
        ka, kb, kr = _redundancy_keys(nms_ious)
        parts = [f"{name} {redundancy[role][ka]:.2f} / {redundancy[role][kb]:.2f} boxes, "
                 f"{redundancy[role][kr]:.2f} redundant" for name, role in ROLES.items()]
        text += (f" Over all {redundancy['images']} validation images, per image at NMS {a:g} / {b:g} "
                 f"(redundant: duplicates of an already covered ground-truth object at NMS {a:g}): "
                 + "; ".join(parts) + ".")
    return text


# ----------------------------------------------------------------------------------------------- inputs

def _require_file(path, what: str, error=ConfigError) -> Path:
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} file does not exist")
    return path


def _read_json(path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read annotations ({first_line(exc)})") from None


def val_images(ann_file, classes: Optional[Sequence[str]] = None) -> list[dict]:
    """Every image of ``ann_file`` in annotation-file order, with its non-crowd ground truth.

    Each entry: ``{'id', 'file_name', 'width', 'height', 'gt_bboxes' (n,4 float32 xyxy), 'gt_labels'
    (category ids), 'gt_label_idx' (n, int64: the model's label index as mmdet's ``CocoDataset`` maps it,
    -1 for a category outside ``classes``)}``.
    """
    data = _read_json(ann_file)
    cats = [c for c in data.get("categories", []) if not classes or c["name"] in set(classes)]
    cat2label = {int(c["id"]): i for i, c in enumerate(cats)}  # pycocotools' get_cat_ids order, as mmdet
    per_image: dict[int, list] = {}
    for ann in data.get("annotations", []):
        if ann.get("iscrowd", 0):
            continue
        per_image.setdefault(ann["image_id"], []).append(ann)
    out = []
    for img in data.get("images", []):
        anns = sorted(per_image.get(img["id"], []), key=lambda a: a["id"])
        boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                          for a in anns], dtype=np.float32).reshape(-1, 4)
        out.append(dict(id=int(img["id"]), file_name=img["file_name"], width=img.get("width"),
                        height=img.get("height"), gt_bboxes=boxes,
                        gt_labels=[int(a["category_id"]) for a in anns],
                        gt_label_idx=np.array([cat2label.get(int(a["category_id"]), -1) for a in anns],
                                              dtype=np.int64)))
    return out


def select_images(images: Sequence[dict], baseline_dets: Sequence[dict], num_images: int, score_thr: float,
                  min_gt: int = MIN_GT) -> tuple[list[dict], list[int]]:
    """The figures' images by :func:`image_rule`: only the baseline's detections are an input.

    ``baseline_dets[i]`` are the GFocal detections on ``images[i]``. Returns ``(chosen, filled_ids)``:
    the first ``num_images`` images (file order) with >= ``min_gt`` objects and a baseline detection with
    score >= ``score_thr``; if fewer exist, the first other images with >= ``min_gt`` objects follow them
    (their ids in ``filled_ids``). A split with no image of >= ``min_gt`` objects is a one-line
    :class:`DataError`.
    """
    if len(images) != len(baseline_dets):
        raise ValueError(f"{len(images)} images but {len(baseline_dets)} baseline detection sets")
    enough_gt = [i for i, img in enumerate(images) if len(img["gt_bboxes"]) >= min_gt]
    if not enough_gt:
        raise DataError(f"no validation image has at least {min_gt} ground-truth objects")
    rule = [i for i in enough_gt if bool((np.asarray(baseline_dets[i]["scores"]) >= score_thr).any())]
    picked = rule[:num_images]
    taken = set(picked)
    filled = [i for i in enough_gt if i not in taken][:num_images - len(picked)]
    return [images[i] for i in picked + filled], [images[i]["id"] for i in filled]


def _class_names(cfg, ann_file) -> tuple[list[str], dict]:
    """Label index -> name (config metainfo order, else categories in file order) and category id -> name."""
    data = _read_json(ann_file)
    cats = data.get("categories", [])
    cat_names = {int(c["id"]): str(c["name"]) for c in cats}
    classes = None
    try:
        classes = cfg["test_dataloader"]["dataset"]["metainfo"]["classes"]
    except (KeyError, TypeError):
        pass
    return (list(classes) if classes else [c["name"] for c in cats]), cat_names


# -------------------------------------------------------------------------------------------- inference

def load_model(config, checkpoint, device: str = "cpu"):
    """The plain GFL student of ``config`` with ``checkpoint``'s weights, in eval mode."""
    from ..models.trained import load_student, read_student_config  # torch-free CLI: `--help` imports every command

    student = read_student_config(config)
    if "nms" not in (student.cfg["model"].get("test_cfg") or {}):
        raise ConfigError(f"{student.path}: model.test_cfg has no 'nms' entry")
    if "pipeline" not in ((student.cfg.get("test_dataloader") or {}).get("dataset") or {}):
        raise ConfigError(f"{student.path}: config has no test_dataloader.dataset.pipeline")
    return load_student(student, checkpoint, device).model


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
    return _as_det(result.pred_instances)


def _as_det(inst) -> dict:
    scores = inst.scores.detach().cpu().numpy().astype(np.float32)
    order = np.argsort(-scores, kind="stable")
    return dict(bboxes=inst.bboxes.detach().cpu().numpy().astype(np.float32)[order].reshape(-1, 4),
                scores=scores[order], labels=inst.labels.detach().cpu().numpy().astype(np.int64)[order])


def detect_many(model, image_paths: Sequence, nms_ious: Sequence[float], batch_size: int = BATCH_SIZE) -> list[dict]:
    """Detections of ``model`` on every image at each NMS IoU of ``nms_ious``: ``[{iou: det}, ...]``.

    The same computation as :func:`detect` (test pipeline, ``data_preprocessor``, ``extract_feat``, head,
    ``predict_by_feat`` with ``rescale``), but one forward pass per batch of images for all IoUs: only the
    head's post-processing (its ``test_cfg`` NMS IoU) is repeated. A batch is a run of consecutive images
    of one shape after the pipeline (at most ``batch_size``), so the padding, and hence every result, is
    that of a single image, and at most one batch of images is held in memory.
    """
    import torch

    pipe = _pipeline(model)
    ious = [float(v) for v in nms_ious]
    batch_size = max(int(batch_size), 1)
    out: list[dict] = []
    pending: list[dict] = []

    def flush():
        if not pending:
            return
        data = model.data_preprocessor(dict(inputs=[s["inputs"] for s in pending],
                                            data_samples=[s["data_samples"] for s in pending]), False)
        feats = model.bbox_head(model.extract_feat(data["inputs"]))
        metas = [s.metainfo for s in data["data_samples"]]
        per_image = [{} for _ in pending]
        for iou in ious:
            with nms_iou_override(model, iou):
                results = model.bbox_head.predict_by_feat(*feats, batch_img_metas=metas, rescale=True)
            for slot, inst in zip(per_image, results):
                slot[iou] = _as_det(inst)
        out.extend(per_image)
        pending.clear()

    with torch.no_grad():
        for i, path in enumerate(image_paths):
            sample = pipe(dict(img_path=str(path), img_id=i))
            if pending and (len(pending) == batch_size or sample["inputs"].shape != pending[0]["inputs"].shape):
                flush()
            pending.append(sample)
        flush()
    return out


# ------------------------------------------------------------------------------------ NMS redundancy

def count_boxes(det: dict, gt_bboxes, gt_labels, score_thr: float, match_iou: float = MATCH_IOU) -> tuple[int, int]:
    """``(boxes, redundant)`` on one image: detections with score >= ``score_thr`` and how many duplicate a GT.

    A detection's *object* is the ground-truth box of its class it overlaps most, if that IoU is >=
    ``match_iou``; it is redundant when its object is already the object of a higher-scored detection
    (ties: the order of ``det``), i.e. it adds no new object. ``gt_labels`` are model label indices (-1: a
    category the model does not know, never an object). One :func:`mmdet.structures.bbox.bbox_overlaps`
    matrix per image, no loop over boxes.
    """
    import torch

    from mmdet.structures.bbox import bbox_overlaps

    scores = np.asarray(det["scores"], dtype=np.float32)
    keep = np.flatnonzero(scores >= score_thr)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    n = int(len(keep))
    gt_bboxes = np.asarray(gt_bboxes, dtype=np.float32).reshape(-1, 4)
    if n == 0 or len(gt_bboxes) == 0:
        return n, 0
    boxes = torch.from_numpy(np.ascontiguousarray(np.asarray(det["bboxes"], dtype=np.float32)[keep]))
    labels = torch.from_numpy(np.asarray(det["labels"], dtype=np.int64)[keep])
    gt_lab = torch.from_numpy(np.asarray(gt_labels, dtype=np.int64))
    ious = bbox_overlaps(boxes, torch.from_numpy(gt_bboxes))
    ious = torch.where(labels[:, None] == gt_lab[None, :], ious, torch.full_like(ious, -1.0))
    best_iou, obj = ious.max(dim=1)                                        # (n,): each detection's object
    owns = torch.nn.functional.one_hot(obj, len(gt_bboxes)) * (best_iou >= match_iou)[:, None]
    before = torch.cumsum(owns, dim=0) - owns                              # higher-scored boxes on each GT
    redundant = (best_iou >= match_iou) & (before.gather(1, obj[:, None]).squeeze(1) > 0)
    return n, int(redundant.sum())


def _redundancy_keys(nms_ious: Sequence[float]) -> tuple[str, str, str]:
    a, b = nms_ious
    return f"boxes_per_image_nms{a:g}", f"boxes_per_image_nms{b:g}", f"redundant_per_image_nms{a:g}"


def nms_redundancy(images: Sequence[dict], dets: dict, score_thr: float, nms_ious: Sequence[float],
                   match_iou: float = MATCH_IOU) -> dict:
    """The ``nms_redundancy`` entry of ``figures.json`` over all ``images``.

    ``dets[model][i][iou]``: detections of ``model`` ("GFocal", "LD") on ``images[i]`` at NMS IoU ``iou``
    (both of ``nms_ious``). Per model role (``baseline`` / ``ld``): boxes per image with score >=
    ``score_thr`` at each IoU, ``surplus_per_image`` (second IoU minus first) and the redundant boxes per
    image at the first (default) IoU, see :func:`count_boxes`.
    """
    a, b = (float(v) for v in nms_ious)
    ka, kb, kr = _redundancy_keys((a, b))
    n = len(images)
    out = dict(score_thr=float(score_thr), match_iou=float(match_iou), nms_ious=[a, b], images=n)
    for name, role in ROLES.items():
        boxes_a = boxes_b = redundant = 0
        for img, per_iou in zip(images, dets[name]):
            k, r = count_boxes(per_iou[a], img["gt_bboxes"], img["gt_label_idx"], score_thr, match_iou)
            boxes_a, redundant = boxes_a + k, redundant + r
            boxes_b += int((np.asarray(per_iou[b]["scores"]) >= score_thr).sum())
        mean = (lambda v: round(v / n, 4)) if n else (lambda v: 0.0)
        out[role] = {ka: mean(boxes_a), kb: mean(boxes_b), "surplus_per_image": mean(boxes_b - boxes_a),
                     kr: mean(redundant)}
    return out


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
                 nms_ious: Sequence[float] = (0.6, 0.95), batch_size: int = BATCH_SIZE) -> dict:
    """Render figures 1 and 2 (PNG + PDF) and ``figures.json`` into ``out_dir``; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

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

    from mmengine.config import Config

    timings = {}
    t0 = time.time()
    if not any(len(img["gt_bboxes"]) >= MIN_GT for img in val_images(ann_file)):  # before any model is built
        raise DataError(f"{ann_file}: no image has at least {MIN_GT} ground-truth objects")
    models = {"GFocal": load_model(baseline_config, baseline_checkpoint),
              "LD": load_model(ld_config, ld_checkpoint)}
    class_names, _ = _class_names(Config.fromfile(str(baseline_config)).to_dict(), ann_file)
    images = val_images(ann_file, class_names)  # labels mapped to the model's label indices
    default_iou = {name: float(m.bbox_head.test_cfg["nms"]["iou_threshold"]) for name, m in models.items()}
    timings["load_s"] = round(time.time() - t0, 2)

    # every validation image, both models, both NMS IoUs (one forward pass per batch)
    t0 = time.time()
    image_paths = [Path(img_dir) / img["file_name"] for img in images]
    all_dets = {name: detect_many(model, image_paths, nms_ious, batch_size) for name, model in models.items()}
    timings["val_inference_s"] = round(time.time() - t0, 2)
    t0 = time.time()
    redundancy = nms_redundancy(images, all_dets, score_thr, nms_ious)
    timings["redundancy_s"] = round(time.time() - t0, 2)

    # the figures' images: by the baseline's detections only
    chosen, filled = select_images(images, [d[nms_ious[0]] for d in all_dets["GFocal"]],
                                   max(num_images_fig1, num_images_fig2), score_thr)
    fig1_imgs, fig2_imgs = chosen[:num_images_fig1], chosen[:num_images_fig2]
    index = {img["id"]: i for i, img in enumerate(images)}
    pics = {img["id"]: _load_rgb(Path(img_dir) / img["file_name"]) for img in chosen}
    t0 = time.time()
    dets = {}
    for name, model in models.items():
        for img in fig1_imgs:  # figure 1: the model's own NMS IoU (reused from the split pass when it is one)
            per_iou = all_dets[name][index[img["id"]]]
            dets[(name, img["id"])] = per_iou[default_iou[name]] if default_iou[name] in per_iou else \
                detect(model, Path(img_dir) / img["file_name"])
        for img in fig2_imgs:
            for iou in nms_ious:
                dets[(name, img["id"], iou)] = all_dets[name][index[img["id"]]][iou]
    timings["figure_inference_s"] = round(time.time() - t0, 2)
    timings["per_image_s"] = round(timings["val_inference_s"] / max(len(models) * len(images), 1), 4)

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
    summary = dict(
        score_thr=float(score_thr), nms_ious=list(nms_ious), default_nms_iou=default_iou,
        image_rule=image_rule(score_thr), image_rule_fill=filled,
        models={"GFocal": dict(config=str(baseline_config), checkpoint=str(baseline_checkpoint)),
                "LD": dict(config=str(ld_config), checkpoint=str(ld_checkpoint))},
        figure1=dict(image_ids=[i["id"] for i in fig1_imgs], panels=counts1,
                     caption=caption_fig1(score_thr, _nms_desc(default_iou))),
        figure2=dict(image_ids=[i["id"] for i in fig2_imgs], panels=counts2,
                     caption=caption_fig2(score_thr, nms_ious, redundancy)),
        nms_redundancy=redundancy,
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
    pin_threads(getattr(args, "threads", 1))
    written = make_figures(args.baseline_config, args.baseline_checkpoint, args.ld_config, args.ld_checkpoint,
                           args.ann, args.img_dir, args.out_dir, num_images_fig1=args.num_images_fig1,
                           num_images_fig2=args.num_images_fig2, score_thr=args.score_thr)
    summary = json.loads(Path(written["json"]).read_text())
    boxes = ", ".join(f"{p['model']}@{p['nms_iou']:g} {p['drawn']}" for p in summary["figure2"]["panels"])
    red = summary["nms_redundancy"]
    per_model = "; ".join(f"{role} " + ", ".join(f"{k} {v:g}" for k, v in red[role].items())
                          for role in ROLES.values())
    print(f"[figures] images {summary['figure1']['image_ids']}; fig 2 boxes: {boxes}; "
          f"wrote {', '.join(Path(p).name for p in written.values())} to {args.out_dir}")
    print(f"[figures] NMS redundancy over {red['images']} val images (score >= {red['score_thr']:g}): {per_model}")
    return 0
