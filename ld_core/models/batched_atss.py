"""ATSS label assignment for a whole batch in one set of tensor ops (no loop over images or GT boxes).

mmdet's ``GFLHead.get_targets`` assigns image by image (``multi_apply`` of ``ATSSAssigner.assign`` +
``PseudoSampler``) and loops over GT boxes inside; with 16 images per step that is hundreds of small kernel
launches. :func:`batched_atss_assign` computes the same assignment for all images at once, GT boxes padded to
the batch's maximum and masked; :class:`BatchedATSSTargetsMixin` builds the head's targets from it. Both equal
mmdet's per-image path exactly (``tests/unit/test_batched_atss.py``: same positives, labels, boxes, weights and
normaliser, tied distances included). Where a batch cannot be done at once (ignored boxes, a sampler other
than ``PseudoSampler``, anchors outside the image, images of different padded shapes as in keep-ratio
batches) mmdet's per-image path runs, with :class:`VectorizedATSSAssigner` (one image, all GT boxes at once)
in place of a plain ``ATSSAssigner``.
"""
from __future__ import annotations

from collections import Counter
from typing import List, Sequence

import torch
from mmdet.models.dense_heads import GFLHead
from mmdet.models.task_modules.assigners import ATSSAssigner
from mmdet.models.task_modules.samplers import PseudoSampler
from mmdet.models.task_modules.assigners import AssignResult
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor

from .regions import batched_atss_candidates

INF = 100000000  # mmdet's ATSSAssigner constant
TARGET_PATHS: Counter = Counter()  # get_targets calls per path in this process ('batched', 'per-image'): train logs it


def pad_gt_boxes(boxes: Sequence[Tensor], labels: Sequence[Tensor]) -> tuple:
    """(B, G, 4) boxes, (B, G) labels and (B, G) validity mask, G = the most GT boxes of any image."""
    num_imgs, max_gt = len(boxes), max((len(b) for b in boxes), default=0)
    ref = boxes[0]
    out_boxes = ref.new_zeros((num_imgs, max(max_gt, 1), 4))
    out_labels = labels[0].new_zeros((num_imgs, max(max_gt, 1)))
    valid = torch.zeros((num_imgs, max(max_gt, 1)), dtype=torch.bool, device=ref.device)
    for i, (b, lab) in enumerate(zip(boxes, labels)):
        out_boxes[i, :len(b)] = b
        out_labels[i, :len(b)] = lab
        valid[i, :len(b)] = True
    return out_boxes, out_labels, valid


def batched_atss_assign(anchors: Tensor, num_level_anchors: Sequence[int], gt_boxes: Tensor, gt_valid: Tensor,
                        topk: int) -> tuple:
    """ATSS for a batch sharing one anchor set.

    Args:
        anchors: (A, 4) anchors of all levels, level by level (the same for every image).
        num_level_anchors: anchors per level.
        gt_boxes: (B, G, 4) GT boxes, padded; gt_valid: (B, G) which of them are real.
        topk: candidates per level and GT (``ATSSAssigner.topk``).

    Returns:
        assigned_gt (B, A) long: 0 for background, else 1 + the index of the GT box (mmdet's convention),
        max_overlaps (B, A): the IoU with that GT (-INF for background, as mmdet).
    """
    num_imgs, num_gt = gt_boxes.shape[:2]
    num_anchors = anchors.size(0)
    overlaps = bbox_overlaps(anchors.expand(num_imgs, -1, -1), gt_boxes)  # (B, A, G)
    gt_points = torch.stack(((gt_boxes[..., 0] + gt_boxes[..., 2]) / 2.0,
                             (gt_boxes[..., 1] + gt_boxes[..., 3]) / 2.0), dim=-1)  # (B, G, 2)
    anchor_cx = (anchors[:, 0] + anchors[:, 2]) / 2.0
    anchor_cy = (anchors[:, 1] + anchors[:, 3]) / 2.0
    anchor_points = torch.stack((anchor_cx, anchor_cy), dim=1)  # (A, 2)
    candidates = batched_atss_candidates(anchor_points, gt_points, num_level_anchors, topk)  # (B, K, G)
    cand_overlaps = overlaps.gather(1, candidates)  # (B, K, G)
    thr = cand_overlaps.mean(1) + cand_overlaps.std(1)  # (B, G)
    is_pos = cand_overlaps >= thr[:, None, :]

    cx, cy = anchor_cx[candidates], anchor_cy[candidates]  # (B, K, G)
    boxes = gt_boxes[:, None, :, :]
    inside = torch.stack((cx - boxes[..., 0], cy - boxes[..., 1], boxes[..., 2] - cx, boxes[..., 3] - cy),
                         dim=-1).min(dim=-1)[0] > 0.01
    is_pos &= inside & gt_valid[:, None, :]

    # IoU of (anchor, GT) pairs that are positive candidates, -INF elsewhere; each anchor takes its best GT
    pos_overlaps = torch.full((num_imgs, num_anchors, num_gt), -INF, dtype=overlaps.dtype, device=overlaps.device)
    batch_idx = torch.arange(num_imgs, device=anchors.device)[:, None, None].expand_as(candidates)
    gt_idx = torch.arange(num_gt, device=anchors.device)[None, None, :].expand_as(candidates)
    pos_overlaps[batch_idx[is_pos], candidates[is_pos], gt_idx[is_pos]] = overlaps[
        batch_idx[is_pos], candidates[is_pos], gt_idx[is_pos]]
    max_overlaps, argmax = pos_overlaps.max(dim=2)
    assigned_gt = torch.where(max_overlaps != -INF, argmax + 1, torch.zeros_like(argmax))
    return assigned_gt, max_overlaps


def _is_plain_atss(assigner) -> bool:
    """An ``ATSSAssigner`` on IoU alone (no DDOD cost, 2-D IoU): what :func:`batched_atss_assign` computes."""
    return (isinstance(assigner, ATSSAssigner) and assigner.alpha is None
            and type(assigner.iou_calculator).__name__ == "BboxOverlaps2D")


@TASK_UTILS.register_module()
class VectorizedATSSAssigner(ATSSAssigner):
    """mmdet's ``ATSSAssigner`` for one image without its Python loop over GT boxes; the same result.

    Used by :class:`BatchedATSSTargetsMixin` where a batch cannot be assigned at once (e.g. images of
    different padded shapes at paper scale). Ignored boxes, an empty image or the DDOD cost go to mmdet's
    own ``assign``.
    """

    def assign(self, pred_instances, num_level_priors, gt_instances, gt_instances_ignore=None) -> AssignResult:
        ignore = gt_instances_ignore is not None and len(gt_instances_ignore) > 0 and self.ignore_iof_thr > 0
        priors = pred_instances.priors[:, :4]
        if ignore or not _is_plain_atss(self) or len(gt_instances) == 0 or priors.size(0) == 0:
            return super().assign(pred_instances, num_level_priors, gt_instances, gt_instances_ignore)
        boxes = gt_instances.bboxes
        assigned, max_overlaps = batched_atss_assign(priors, num_level_priors, boxes[None],
                                                     boxes.new_ones((1, len(boxes)), dtype=torch.bool), self.topk)
        assigned, max_overlaps = assigned[0], max_overlaps[0]
        labels = torch.where(assigned > 0, gt_instances.labels[(assigned - 1).clamp(min=0)],
                             torch.full_like(assigned, -1))
        return AssignResult(len(boxes), assigned, max_overlaps, labels=labels)


class BatchedATSSTargetsMixin:
    """``get_targets`` of ATSS-assigned anchor heads (GFL, ATSS) for the whole batch at once.

    Same return value as ``GFLHead.get_targets``/``ATSSHead.get_targets``: per-level lists of anchors,
    labels, label weights, box targets, box weights (each (B, A_level, ...)) and the normaliser (the sum over
    images of max(#positives, 1)).
    """

    def _batched_targets_apply(self, anchor_list, valid_flag_list, batch_gt_instances_ignore) -> bool:
        """Whether the batched path computes exactly what mmdet's per-image path would."""
        cfg = self.train_cfg or {}
        return (_is_plain_atss(self.assigner) and isinstance(self.sampler, PseudoSampler)
                and self.assigner.ignore_iof_thr <= 0
                and cfg.get("allowed_border", -1) < 0 and cfg.get("pos_weight", -1) <= 0
                and (batch_gt_instances_ignore is None
                     or all(g is None or len(g) == 0 for g in batch_gt_instances_ignore))
                and bool(torch.cat([f for flags in valid_flag_list for f in flags]).all())  # one device sync
                and all(a is anchor_list[0] or all(x is y or torch.equal(x, y) for x, y in zip(a, anchor_list[0]))
                        for a in anchor_list))

    def _vectorise_assigner(self) -> None:
        """Swap mmdet's plain ``ATSSAssigner`` for :class:`VectorizedATSSAssigner` (same settings and results)."""
        old = self.assigner
        if type(old) is ATSSAssigner:
            self.assigner = VectorizedATSSAssigner(topk=old.topk, alpha=old.alpha, ignore_iof_thr=old.ignore_iof_thr)
            self.assigner.iou_calculator = old.iou_calculator

    def get_targets(self, anchor_list: List[List[Tensor]], valid_flag_list: List[List[Tensor]],
                    batch_gt_instances, batch_img_metas: List[dict], batch_gt_instances_ignore=None,
                    unmap_outputs: bool = True) -> tuple:
        """Targets of all images at once; where that would differ from mmdet's per-image path (see
        :meth:`_batched_targets_apply`), that path, with :class:`VectorizedATSSAssigner` for a plain ATSS."""
        if not (unmap_outputs and self._batched_targets_apply(anchor_list, valid_flag_list,
                                                              batch_gt_instances_ignore)):
            self._vectorise_assigner()
            TARGET_PATHS["per-image"] += 1
            return super().get_targets(anchor_list, valid_flag_list, batch_gt_instances, batch_img_metas,
                                       batch_gt_instances_ignore, unmap_outputs)
        TARGET_PATHS["batched"] += 1
        num_level_anchors = [a.size(0) for a in anchor_list[0]]
        anchors = torch.cat(anchor_list[0])
        for i in range(len(anchor_list)):  # as mmdet's get_targets: callers read the concatenated lists
            anchor_list[i] = torch.cat(anchor_list[i])
            valid_flag_list[i] = torch.cat(valid_flag_list[i])
        gt_boxes, gt_labels, gt_valid = pad_gt_boxes([g.bboxes for g in batch_gt_instances],
                                                     [g.labels for g in batch_gt_instances])
        assigned_gt, _ = batched_atss_assign(anchors, num_level_anchors, gt_boxes, gt_valid, self.assigner.topk)
        num_imgs = len(batch_gt_instances)
        pos = assigned_gt > 0
        gt_index = (assigned_gt - 1).clamp(min=0)
        labels = torch.where(pos, gt_labels.gather(1, gt_index), torch.full_like(gt_index, self.num_classes))
        bbox_targets = torch.where(pos[..., None], gt_boxes.gather(1, gt_index[..., None].expand(-1, -1, 4)),
                                   anchors.new_zeros(()))
        bbox_weights = pos[..., None].expand(-1, -1, 4).to(anchors.dtype)
        label_weights = anchors.new_ones((num_imgs, anchors.size(0)))
        avg_factor = int(pos.sum(1).clamp(min=1).sum())
        batched_anchors = anchors.expand(num_imgs, -1, -1)

        def levels(t: Tensor) -> list:
            return list(t.split(num_level_anchors, dim=1))

        return (levels(batched_anchors), levels(labels), levels(label_weights), levels(bbox_targets),
                levels(bbox_weights), avg_factor)


@MODELS.register_module()
class BatchedGFLHead(BatchedATSSTargetsMixin, GFLHead):
    """mmdet's ``GFLHead`` with batched ATSS targets: the plain student of the benchmark's fast path."""
