"""Distillation regions as pure functions of boxes (one image): ATSS thresholds, the VLR, points inside GTs.

Boxes are ``(x1, y1, x2, y2)`` tensors in pixels; ``num_level_priors`` lists how many priors (anchors or
points) each FPN level contributes, in the order they are concatenated.
"""
from __future__ import annotations

from typing import Sequence

import torch
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor

VLR_WEIGHTINGS = ("mask", "max_iou")


def box_centers(boxes: Tensor) -> Tensor:
    """(N, 4) boxes -> (N, 2) centres."""
    return torch.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], dim=1)


def diou_matrix(boxes: Tensor, gts: Tensor, eps: float = 1e-6) -> Tensor:
    """(N, K) distance-IoU: IoU minus squared centre distance over the squared enclosing-box diagonal."""
    iou = bbox_overlaps(boxes, gts, eps=eps)
    centre_dist = (box_centers(boxes)[:, None, :] - box_centers(gts)[None, :, :]).pow(2).sum(-1)
    lt = torch.min(boxes[:, None, :2], gts[None, :, :2])
    rb = torch.max(boxes[:, None, 2:], gts[None, :, 2:])
    diag = (rb - lt).pow(2).sum(-1) + eps
    return iou - centre_dist / diag


def batched_atss_candidates(points: Tensor, gt_points: Tensor, num_level_priors: Sequence[int],
                            topk: int = 9) -> Tensor:
    """(B, k·L, G) indices of the ``topk`` prior points (A, 2) per level closest to each GT centre (B, G, 2).

    Euclidean distances computed as mmdet's ``ATSSAssigner`` does, so ties resolve as there.
    """
    distances = (points[None, :, None, :] - gt_points[:, None, :, :]).pow(2).sum(-1).sqrt()  # (B, A, G)
    candidates, start = [], 0
    for count in num_level_priors:
        if count > 0:
            k = min(topk, count)
            candidates.append(distances[:, start:start + count].topk(k, dim=1, largest=False)[1] + start)
        start += count
    return torch.cat(candidates, dim=1)


def atss_candidates(priors: Tensor, gts: Tensor, num_level_priors: Sequence[int], topk: int = 9) -> Tensor:
    """(k·L, K) indices of the ``topk`` priors per level whose centres are closest to each GT's centre."""
    points = priors if priors.size(-1) == 2 else box_centers(priors)
    return batched_atss_candidates(points, box_centers(gts)[None], num_level_priors, topk)[0]


def atss_thresholds(anchors: Tensor, gts: Tensor, num_level_priors: Sequence[int], topk: int = 9) -> Tensor:
    """(K,) ATSS IoU threshold per GT: mean + std of the IoUs of its ``topk`` closest anchors per level."""
    if len(gts) == 0:
        return anchors.new_zeros((0,))
    candidates = atss_candidates(anchors, gts, num_level_priors, topk)
    ious = bbox_overlaps(anchors, gts)[candidates, torch.arange(len(gts), device=gts.device)]
    return ious.mean(0) + ious.std(0)


def vlr_region(anchors: Tensor, gts: Tensor, num_level_priors: Sequence[int], topk: int = 9, low: float = 0.25,
               weighting: str = "mask") -> Tensor:
    """(N,) valuable localization region weights of the anchors (all levels).

    An anchor is in the VLR of a GT when ``low·thr <= DIoU(anchor, GT) < thr`` with ``thr`` the GT's ATSS
    threshold. ``weighting='mask'`` (the paper) gives 1 inside the region and 0 outside; ``'max_iou'`` (the
    authors' fork) gives the anchor's largest IoU with the GTs whose region it is in.
    """
    if weighting not in VLR_WEIGHTINGS:
        raise ValueError(f"VLR weighting must be one of {VLR_WEIGHTINGS}, got {weighting!r}")
    weights = anchors.new_zeros((anchors.size(0),))
    if len(gts) == 0 or anchors.size(0) == 0:
        return weights
    thr = atss_thresholds(anchors, gts, num_level_priors, topk)
    diou = diou_matrix(anchors, gts)
    inside = (diou >= low * thr[None, :]) & (diou < thr[None, :])
    if weighting == "mask":
        return inside.any(dim=1).to(weights.dtype)
    ious = bbox_overlaps(anchors, gts).masked_fill(~inside, 0.0)
    return ious.max(dim=1)[0]


def vlr_mask(anchors: Tensor, gts: Tensor, num_level_priors: Sequence[int], topk: int = 9,
             low: float = 0.25) -> Tensor:
    """(N,) bool: the anchors in the valuable localization region of at least one GT."""
    return vlr_region(anchors, gts, num_level_priors, topk, low, "mask") > 0


def points_inside_boxes(points: Tensor, gts: Tensor) -> Tensor:
    """(N,) bool: points strictly inside at least one GT box (FCOS's 'inside a GT' test)."""
    if len(gts) == 0:
        return points.new_zeros((points.size(0),), dtype=torch.bool)
    x, y = points[:, 0, None], points[:, 1, None]
    margins = torch.stack([x - gts[:, 0], y - gts[:, 1], gts[:, 2] - x, gts[:, 3] - y], dim=-1)
    return (margins.min(dim=-1)[0] > 0).any(dim=1)
