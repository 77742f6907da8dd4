"""Boxes per image and redundant boxes (duplicates of a ground-truth object already found) at two NMS IoUs: the
``nms_redundancy`` entry of ``figures.json`` (definition: :mod:`.figures`, "NMS redundancy")."""
from __future__ import annotations

from typing import Sequence

import numpy as np

MATCH_IOU = 0.5             # a detection "overlaps" a GT box at IoU >= this (redundancy count)
ROLES = {"GFocal": "baseline", "LD": "ld"}  # figures.json nms_redundancy keys


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


def redundancy_keys(nms_ious: Sequence[float]) -> tuple[str, str, str]:
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
    ka, kb, kr = redundancy_keys((a, b))
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
