"""GFocal head trained with localization distillation (Main LD; optionally Main KD and VLR LD)."""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from mmdet.models.dense_heads import GFLHead
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps
from mmdet.utils import reduce_mean
from torch import Tensor

from .batched_atss import BatchedATSSTargetsMixin
from .ld_terms import (LDTermsMixin, batch_anchor_vlr, flatten_rows, level_ids, pop_ld_term_kwargs,
                       split_teacher_outputs)

BOX_NORMALIZATIONS = ("gfl", "ldhead")


@MODELS.register_module()
class LDGFLHead(BatchedATSSTargetsMixin, LDTermsMixin, GFLHead):
    """GFLHead whose loss adds LD from a teacher: Main LD, and optionally Main KD and VLR LD (the full method).

    Label assignment (ATSS) and losses are computed over all FPN levels and images at once (one set of
    tensor ops instead of loops over images and levels; the targets equal mmdet's per-image ones exactly). With the defaults (Main LD only) the result equals mmdet's ``LDHead`` (which loops over
    levels) for identical inputs.

    Args:
        loss_ld: config of the Main LD loss (``LocalizationDistillationLoss``); ``None``/weight 0: off.
        ld_normalize: 'reference' divides the weighted LD sum by 4 (edges) only, as the reference code
            does (its magnitude then grows with images per GPU); 'per_positive' also divides by the
            number of positives (averaged over GPUs).
        box_loss_normalize: divisor of L_reg and L_DFL, the summed quality weights of the positives:
            'gfl' clamps it at 1 like ``GFLHead`` (so an LD student's GT losses equal the baseline's);
            'ldhead' adds 1e-6 instead, like mmdet's stock ``LDHead``.
        ld_rows, loss_kd, loss_ld_vlr, vlr_*: Main KD and VLR LD (off by default) and the other LD-term
            options of :class:`~ld_core.models.ld_terms.LDTermsMixin`.
    """

    def __init__(self, *args, box_loss_normalize: str = "gfl", **kwargs):
        ld_kwargs = pop_ld_term_kwargs(kwargs)
        super().__init__(*args, **kwargs)
        if box_loss_normalize not in BOX_NORMALIZATIONS:
            raise ValueError(f"box_loss_normalize must be one of {BOX_NORMALIZATIONS}, got {box_loss_normalize!r}")
        self.box_loss_normalize = box_loss_normalize
        self._init_ld_terms(**ld_kwargs)

    def loss(self, x: Sequence[Tensor], teacher_outs, batch_data_samples) -> dict:
        """Forward the student head on ``x``; GT losses plus LD against the teacher head's outputs.

        ``teacher_outs``: the teacher head's ``(cls_scores, bbox_preds)``, or just its list of box maps.
        """
        cls_scores, bbox_preds = self(x)
        teacher_cls, teacher_bbox = split_teacher_outputs(teacher_outs)
        gt_instances, gt_instances_ignore, img_metas = unpack_gt_instances(batch_data_samples)
        return self.loss_by_feat(cls_scores, bbox_preds, gt_instances, img_metas,
                                 teacher_bbox_preds=teacher_bbox, batch_gt_instances_ignore=gt_instances_ignore,
                                 teacher_cls_scores=teacher_cls)

    def loss_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor], batch_gt_instances,
                     batch_img_metas: List[dict], teacher_bbox_preds: Optional[List[Tensor]] = None,
                     batch_gt_instances_ignore=None, teacher_cls_scores: Optional[List[Tensor]] = None) -> dict:
        """QFL + GIoU + DFL (GT losses) and the enabled LD terms, all levels in one pass."""
        if teacher_bbox_preds is None:
            raise ValueError("LDGFLHead.loss_by_feat needs the teacher's bbox predictions")
        featmap_sizes = [featmap.size()[-2:] for featmap in cls_scores]
        device = cls_scores[0].device
        anchor_list, valid_flag_list = self.get_anchors(featmap_sizes, batch_img_metas, device=device)
        mlvl_anchors = list(anchor_list[0])  # get_targets concatenates anchor_list in place
        (anchors, labels, label_weights, bbox_targets, _bbox_weights,
         num_pos_local) = self.get_targets(anchor_list, valid_flag_list, batch_gt_instances, batch_img_metas,
                                           batch_gt_instances_ignore=batch_gt_instances_ignore)
        num_pos = reduce_mean(torch.tensor(num_pos_local, dtype=torch.float, device=device)).item()

        num_imgs = cls_scores[0].size(0)
        num_level = [len(a) for a in mlvl_anchors]
        level_strides = torch.cat([
            lvl_anchors.new_full((lvl_anchors.size(1),), float(stride[0]))
            for lvl_anchors, stride in zip(anchors, self.prior_generator.strides)])
        strides = level_strides.repeat(num_imgs)
        anchors = torch.cat(anchors, dim=1).reshape(-1, 4)
        labels = torch.cat(labels, dim=1).reshape(-1)
        label_weights = torch.cat(label_weights, dim=1).reshape(-1)
        bbox_targets = torch.cat(bbox_targets, dim=1).reshape(-1, 4)
        cls_score = flatten_rows(cls_scores, self.cls_out_channels)
        bbox_pred = flatten_rows(bbox_preds, 4 * (self.reg_max + 1))

        pos_inds = ((labels >= 0) & (labels < self.num_classes)).nonzero().squeeze(1)
        score = label_weights.new_zeros(labels.shape)
        n_bins = self.reg_max + 1
        if len(pos_inds) > 0:
            pos_strides = strides[pos_inds][:, None]
            pos_centers = self.anchor_center(anchors[pos_inds]) / pos_strides
            weight_targets = cls_score.detach().sigmoid().max(dim=1)[0][pos_inds]
            pos_bbox_pred = bbox_pred[pos_inds]
            pos_decoded = self.bbox_coder.decode(pos_centers, self.integral(pos_bbox_pred))
            pos_decoded_targets = bbox_targets[pos_inds] / pos_strides
            score[pos_inds] = bbox_overlaps(pos_decoded.detach(), pos_decoded_targets, is_aligned=True)
            pred_corners = pos_bbox_pred.reshape(-1, n_bins)
            target_corners = self.bbox_coder.encode(pos_centers, pos_decoded_targets, self.reg_max).reshape(-1)
            edge_weights = weight_targets[:, None].expand(-1, 4).reshape(-1)
            loss_bbox = self.loss_bbox(pos_decoded, pos_decoded_targets, weight=weight_targets, avg_factor=1.0)
            loss_dfl = self.loss_dfl(pred_corners, target_corners, weight=edge_weights, avg_factor=4.0)
            weight_sum = weight_targets.sum()
        else:
            loss_bbox = loss_dfl = bbox_pred.sum() * 0
            weight_sum = bbox_pred.new_tensor(0.0)

        loss_cls = self.loss_cls(cls_score, (labels, score), weight=label_weights, avg_factor=num_pos)
        if self.box_loss_normalize == "gfl":
            box_avg = reduce_mean(weight_sum).clamp_(min=1).item()
        else:
            box_avg = reduce_mean(weight_sum + 1e-6).item()
        losses = dict(loss_cls=loss_cls, loss_bbox=loss_bbox / box_avg, loss_dfl=loss_dfl / box_avg)
        teacher_outs = (teacher_cls_scores, teacher_bbox_preds) if teacher_cls_scores is not None \
            else teacher_bbox_preds
        losses.update(self.distillation_losses(
            cls_score=cls_score, bbox_pred=bbox_pred, teacher_outs=teacher_outs, pos_inds=pos_inds,
            levels=level_ids(num_level, num_imgs, device=device), num_levels=len(num_level),
            vlr_weights=lambda: batch_anchor_vlr(mlvl_anchors, batch_gt_instances, self.vlr_topk, self.vlr_low,
                                                 self.vlr_region_weighting).reshape(-1)))
        return losses
