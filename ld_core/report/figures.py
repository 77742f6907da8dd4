"""The supplement's two qualitative figures, GFocal baseline vs LD student, and the whole-validation-split
number behind Figure 2 (`python -m ld_core figures`: :mod:`ld_core.commands.figures`).

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

**Image rule** (:func:`.figure_images.image_rule`; never compares the two models, never looks at the LD model): the
first ``num_images`` validation images *in annotation-file order* that have at least two (non-crowd)
ground-truth objects and on which the GFocal **baseline** has at least one detection with score >=
``score_thr`` (at NMS IoU 0.6; the highest-scored box survives any NMS, so this does not depend on the
IoU). Figure 2 uses the first ``num_images_fig2`` of that same list. Only if fewer images meet the rule
do the first other images with >= 2 objects (file order) fill the remaining slots, after the ones that
meet it; ``figures.json`` lists them (``image_rule_fill``), normally empty.

**NMS redundancy over the whole validation split** (``figures.json`` ``nms_redundancy``, :mod:`.redundant_boxes`): the
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

**Inference** (:mod:`.detections`): each model is built once by :func:`ld_core.models.trained.load_student` from the
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

import io
import json
import time
from pathlib import Path
from typing import Sequence

from ..data.annotations import validate_coco
from ..errors import ConfigError, DataError, require_dir, require_file
from ..files import atomic_write_files
from .detections import BATCH_SIZE, detect, detect_many, load_model
from .figure_drawing import DPI, FONT_PT, caption_fig1, caption_fig2, nms_desc, render_figure1, render_figure2
from .figure_images import MIN_GT, image_rule, load_rgb, model_class_names, select_images, val_images
from .redundant_boxes import nms_redundancy


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
        require_file(path, f"{key.split('_')[1]} file")
    require_file(ann_file, "annotation file", DataError)
    require_dir(img_dir, "image folder", DataError)
    validate_coco(ann_file, img_dir)

    from mmengine.config import Config

    timings = {}
    t0 = time.time()
    if not any(len(img["gt_bboxes"]) >= MIN_GT for img in val_images(ann_file)):  # before any model is built
        raise DataError(f"{ann_file}: no image has at least {MIN_GT} ground-truth objects")
    models = {"GFocal": load_model(baseline_config, baseline_checkpoint),
              "LD": load_model(ld_config, ld_checkpoint)}
    class_names, _ = model_class_names(Config.fromfile(str(baseline_config)).to_dict(), ann_file)
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
    pics = {img["id"]: load_rgb(Path(img_dir) / img["file_name"]) for img in chosen}
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
                     caption=caption_fig1(score_thr, nms_desc(default_iou))),
        figure2=dict(image_ids=[i["id"] for i in fig2_imgs], panels=counts2,
                     caption=caption_fig2(score_thr, nms_ious, redundancy)),
        nms_redundancy=redundancy,
        timings=timings)
    files[targets["json"]] = json.dumps(summary, indent=2) + "\n"
    atomic_write_files(files)
    return {key: str(path) for key, path in targets.items()}
