"""The validation images of the figures: every image with its ground truth, the image rule (:mod:`.figures`)
and the images it selects, the model's class names, an image's pixels."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import DataError, first_line

MIN_GT = 2


def image_rule(score_thr: float, min_gt: int = MIN_GT) -> str:
    """The stated image-selection rule (module docstring, ``figures.json`` ``image_rule``, captions)."""
    return (f"the first validation images in annotation-file order with at least {min_gt} ground-truth objects "
            f"on which the GFocal baseline has at least one detection with score >= {score_thr:g} (the LD "
            f"model is not looked at)")


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


def model_class_names(cfg, ann_file) -> tuple[list[str], dict]:
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


def load_rgb(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))
