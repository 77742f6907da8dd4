"""Distillation regions on hand-made boxes: DIoU, ATSS thresholds, the VLR, points inside GT boxes."""
from __future__ import annotations

import math

import pytest
import torch

from ld_core.models.regions import (atss_candidates, atss_thresholds, diou_matrix, points_inside_boxes, vlr_mask,
                                    vlr_region)

GT = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
# level 0: 10-px anchors shifted right by 0, 3, 6, 12 px; level 1: a 20-px anchor centred on the GT, one far away
ANCHORS = torch.tensor([[0.0, 0.0, 10.0, 10.0], [3.0, 0.0, 13.0, 10.0], [6.0, 0.0, 16.0, 10.0],
                        [12.0, 0.0, 22.0, 10.0], [-5.0, -5.0, 15.0, 15.0], [15.0, -5.0, 35.0, 15.0]])
LEVELS = [4, 2]


def shifted_diou(d: float) -> float:
    """DIoU of a 10-px square and its copy shifted right by d px."""
    inter = max(10 - d, 0) * 10
    return inter / (200 - inter) - d * d / ((10 + d) ** 2 + 100)


def test_diou_matches_the_formula():
    diou = diou_matrix(ANCHORS, GT)[:, 0]
    far = -(20 ** 2) / (35 ** 2 + 20 ** 2)  # no overlap: minus the centre-distance term
    expected = [shifted_diou(0), shifted_diou(3), shifted_diou(6), shifted_diou(12), 0.25, far]
    torch.testing.assert_close(diou, torch.tensor(expected), atol=1e-5, rtol=0)
    iou_only = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    torch.testing.assert_close(diou_matrix(iou_only, GT), torch.ones(1, 1), atol=1e-5, rtol=0)


def test_atss_candidates_and_threshold_per_level():
    cand = atss_candidates(ANCHORS, GT, LEVELS, topk=2)
    assert sorted(cand[:, 0].tolist()) == [0, 1, 4, 5]  # 2 closest per level
    ious = torch.tensor([1.0, 7 / 13, 0.25, 0.0])
    expected = ious.mean() + ious.std()
    torch.testing.assert_close(atss_thresholds(ANCHORS, GT, LEVELS, topk=2), expected[None], atol=1e-6, rtol=0)
    # top-1 per level: IoUs 1 and 0.25
    torch.testing.assert_close(atss_thresholds(ANCHORS, GT, LEVELS, topk=1),
                               torch.tensor([0.625 + 0.75 / math.sqrt(2)]), atol=1e-6, rtol=0)


def test_vlr_mask_is_the_diou_band_over_all_levels():
    # thr = 0.876, band [0.219, 0.876): the shift-3 anchor (DIoU 0.505) and the centred level-1 anchor (0.25);
    # not the perfect anchor (1.0 >= thr) nor the shift-6 one (0.149 < 0.25·thr)
    assert vlr_mask(ANCHORS, GT, LEVELS, topk=2).tolist() == [False, True, False, False, True, False]
    torch.testing.assert_close(vlr_region(ANCHORS, GT, LEVELS, topk=2, weighting="mask"),
                               torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0, 0.0]))
    # the fork's weighting: the anchor's IoU with the GT
    torch.testing.assert_close(vlr_region(ANCHORS, GT, LEVELS, topk=2, weighting="max_iou"),
                               torch.tensor([0.0, 7 / 13, 0.0, 0.0, 0.25, 0.0]), atol=1e-6, rtol=0)
    # top-1: thr = 1.155 > 1, band [0.289, 1.155): now the perfect anchor is in, the centred one (0.25) out
    assert vlr_mask(ANCHORS, GT, LEVELS, topk=1).tolist() == [True, True, False, False, False, False]


def test_vlr_is_the_union_over_gts_and_empty_without_gts():
    far_gt = GT + 100
    two = torch.cat([GT, far_gt])
    assert vlr_mask(ANCHORS, two, LEVELS, topk=2).tolist() == [False, True, False, False, True, False]
    shifted = ANCHORS + 100  # the same configuration around the far GT, level by level
    both = torch.cat([ANCHORS[:4], shifted[:4], ANCHORS[4:], shifted[4:]])
    mask = vlr_mask(both, two, [8, 4], topk=2)
    assert mask.tolist() == [False, True, False, False] * 2 + [True, False] * 2
    assert not vlr_mask(ANCHORS, GT[:0], LEVELS).any()
    with pytest.raises(ValueError, match="weighting"):
        vlr_region(ANCHORS, GT, LEVELS, weighting="soft")


def test_points_inside_boxes_is_strict():
    points = torch.tensor([[5.0, 5.0], [0.0, 5.0], [10.0, 10.0], [15.0, 5.0], [25.0, 5.0]])
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 0.0, 30.0, 10.0]])
    assert points_inside_boxes(points, boxes).tolist() == [True, False, False, False, True]
    assert not points_inside_boxes(points, boxes[:0]).any()


def test_threshold_agrees_with_mmdet_atss_assigner():
    """The positives mmdet's ATSSAssigner picks are exactly the candidates with IoU >= our threshold
    whose centre lies inside the GT."""
    from mmdet.models.task_modules.assigners import ATSSAssigner
    from mmdet.structures.bbox import bbox_overlaps
    from mmengine.structures import InstanceData

    g = torch.Generator().manual_seed(0)
    levels, anchors = [], []
    for stride, size in ((8, 64), (16, 32)):
        ys, xs = torch.meshgrid(torch.arange(size // stride), torch.arange(size // stride), indexing="ij")
        cx, cy = (xs.reshape(-1) + 0.5) * stride, (ys.reshape(-1) + 0.5) * stride
        half = 2 * stride
        anchors.append(torch.stack([cx - half, cy - half, cx + half, cy + half], 1).float())
        levels.append(len(cx))
    anchors = torch.cat(anchors)
    xy = torch.rand(3, 2, generator=g) * 40
    gts = torch.cat([xy, xy + 8 + torch.rand(3, 2, generator=g) * 20], 1)
    result = ATSSAssigner(topk=5).assign(InstanceData(priors=anchors), levels,
                                         InstanceData(bboxes=gts, labels=torch.zeros(3, dtype=torch.long)))
    thr = atss_thresholds(anchors, gts, levels, topk=5)
    cand = atss_candidates(anchors, gts, levels, topk=5)
    ious = bbox_overlaps(anchors, gts)
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    ours = [{int(i) for i in cand[:, k] if ious[i, k] >= thr[k] and points_inside_boxes(centres[i:i + 1], gts[k:k + 1])}
            for k in range(3)]
    shared = (ours[0] & ours[1]) | (ours[0] & ours[2]) | (ours[1] & ours[2])  # go to the higher IoU
    assert sum(map(len, ours)) > 0
    for k in range(3):
        theirs = {int(i) for i in (result.gt_inds == k + 1).nonzero().reshape(-1)}
        assert theirs <= ours[k] and ours[k] - theirs <= shared
