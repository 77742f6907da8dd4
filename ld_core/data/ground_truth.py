"""The evaluation's ground truth made to agree with what training learns from.

mmdet's training leaves some boxes out: ``CocoDataset.parse_data_info`` drops COCO boxes of zero width,
height or area, under 1 pixel, outside the image or marked ``ignore`` (:func:`ld_core.data.annotations.mmdet_leaves_out`);
``XMLDataset`` with the training set's ``bbox_min_size: 1`` ignores VOC boxes under 1 pixel. The evaluation
would count them: CocoMetric's pycocotools ground truth is the annotation file itself, and VOCMetric scores
the test set's boxes, which ``bbox_min_size`` does not apply to (mmdet refuses it in test mode). Here the
COCO ground truth leaves out the same boxes and the VOC ones are ignored, as in training; a dataset without
such boxes (the synthetic one, ``ld_core check-data`` reports them) is evaluated exactly as before.
"""
from __future__ import annotations

import numpy as np

from .annotations import mmdet_leaves_out


def leave_out_coco_boxes(coco) -> int:
    """Drop from a pycocotools ground truth (or mmdet's COCO wrapper) the boxes training leaves out; returns
    how many (also ``ld_core noise``'s ground truth)."""
    anns = coco.dataset["annotations"]
    keep = [a for a in anns if mmdet_leaves_out(a, coco.imgs[a["image_id"]]["width"],
                                                coco.imgs[a["image_id"]]["height"]) is None]
    if len(keep) == len(anns):
        return 0
    coco.dataset["annotations"] = keep
    coco.createIndex()
    if hasattr(coco, "img_ann_map"):  # mmdet's wrapper keeps aliases of the index it built
        coco.img_ann_map, coco.cat_img_map = coco.imgToAnns, coco.catToImgs
    return len(anns) - len(keep)


def _small(bboxes) -> np.ndarray:
    """Rows of ``(x1, y1, x2, y2)`` boxes that XMLDataset's ``bbox_min_size: 1`` ignores in training."""
    bboxes = np.asarray(bboxes).reshape(-1, 4)
    return ((bboxes[:, 2] - bboxes[:, 0]) < 1) | ((bboxes[:, 3] - bboxes[:, 1]) < 1)


def ignore_small_voc_boxes(ann: dict) -> tuple[dict, int]:
    """A VOCMetric ground truth (``bboxes``, ``labels``, ``bboxes_ignore``, ``labels_ignore``) with its boxes
    under 1 pixel moved to the ignored ones, and how many were moved."""
    small = _small(ann["bboxes"])
    if not small.any():
        return ann, 0
    bboxes = np.asarray(ann["bboxes"]).reshape(-1, 4)
    labels = np.asarray(ann["labels"])
    moved = dict(ann, bboxes=bboxes[~small], labels=labels[~small],
                 bboxes_ignore=np.concatenate([np.asarray(ann["bboxes_ignore"]).reshape(-1, 4), bboxes[small]]),
                 labels_ignore=np.concatenate([np.asarray(ann["labels_ignore"]), labels[small]]))
    return moved, int(small.sum())


def _voc(metric, counted: dict) -> None:
    """Make ``metric`` (a VOCMetric) ignore the boxes under 1 pixel, counted in ``counted["boxes"]``."""
    compute = metric.compute_metrics

    def compute_metrics(results):
        fixed = []
        for ann, dets in results:
            ann, moved = ignore_small_voc_boxes(ann)
            counted["boxes"] += moved
            fixed.append((ann, dets))
        return compute(fixed)

    metric.compute_metrics = compute_metrics


def consistent_ground_truth(runner) -> dict:
    """Make the test loop's metrics (built here) leave out the boxes training leaves out. The returned dict
    holds ``boxes``: how many, final once ``runner.test()`` returned."""
    from mmdet.evaluation import CocoMetric, VOCMetric

    counted = {"boxes": 0}
    for metric in runner.test_loop.evaluator.metrics:
        if isinstance(metric, CocoMetric) and getattr(metric, "_coco_api", None) is not None:
            counted["boxes"] += leave_out_coco_boxes(metric._coco_api)
        elif isinstance(metric, VOCMetric):
            _voc(metric, counted)
    return counted
