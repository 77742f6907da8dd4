"""RetinaNet, FCOS and ATSS heads whose box branch predicts a general distribution (GFocal style).

The reg conv outputs 4·(reg_max+1) logits per prior (RetinaNet: per anchor, 9 per location): for each edge
(l, t, r, b) a distribution over the distances 0..reg_max from the prior's centre, in units of the FPN
stride; the box is decoded by the integral (expectation), as in ``GFLHead``. Each head keeps its own
label assignment (RetinaNet MaxIoU, FCOS points with regress ranges / centre sampling, ATSS) and its own
classification (+ centerness) losses; the box loss is GIoU on the decoded boxes (plus DFL when ``loss_dfl``
is given; the authors' heads and configs/models/*.yaml have none), with the detector's own weighting and
normalisation of its box loss. The only new parameters are those of the
wider reg conv (RetinaNet +1,327,680, FCOS/ATSS +147,520 at 256 channels, 80 classes).

Losses are computed over all levels and images at once on rows in (image, level, prior) order, the one
row order of every LD head (:func:`ld_core.models.ld_terms.flatten_rows`); the heads' level-major targets
are reordered to it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
from mmdet.models.dense_heads import ATSSHead, FCOSHead, RetinaHead
from mmdet.models.dense_heads.anchor_free_head import AnchorFreeHead
from mmdet.models.dense_heads.gfl_head import Integral
from mmdet.models.task_modules.coders import DistancePointBBoxCoder
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures.bbox import distance2bbox
from mmdet.utils import reduce_mean
from torch import Tensor

from .ld_terms import batch_anchor_vlr, build_optional_loss, flatten_rows, level_ids, rows_of_levels
from .regions import box_centers, points_inside_boxes

CENTER_CODER = dict(type="CenterDistanceBBoxCoder")


def prior_centers(priors: Tensor) -> Tensor:
    """Centres of anchor boxes (N, 4); points (N, 2) are returned as they are."""
    return priors if priors.size(-1) == 2 else box_centers(priors)


@TASK_UTILS.register_module()
class CenterDistanceBBoxCoder(DistancePointBBoxCoder):
    """Distances (l, t, r, b) from a prior's centre; priors are points (N, 2) or anchor boxes (N, 4)."""

    def encode(self, points, gt_bboxes, max_dis=None, eps=0.1):
        """Box -> distances from the prior's centre, clamped below ``max_dis - eps``."""
        return super().encode(prior_centers(points), gt_bboxes, max_dis, eps)

    def decode(self, points, pred_bboxes, max_shape=None):
        """Distances from the prior's centre -> box (clipped to ``max_shape``)."""
        return super().decode(prior_centers(points), pred_bboxes, max_shape)


@dataclass
class Rows:
    """A batch flattened to rows (image, level, prior): predictions, targets and priors."""

    cls_score: Tensor                 # (M, C) logits
    bbox_pred: Tensor                 # (M, 4·(reg_max+1)) logits
    labels: Tensor                    # (M,) class, num_classes = background
    bbox_targets: Tensor              # (M, 4) GT boxes (xyxy, pixels) at the positives
    centers: Tensor                   # (M, 2) prior centres (pixels)
    strides: Tensor                   # (M,)
    levels: Tensor                    # (M,) FPN level
    mlvl_priors: List[Tensor]         # per level (A_l, 4 or 2), the same for every image
    num_imgs: int
    extra: dict = field(default_factory=dict)

    @property
    def num_level_priors(self) -> List[int]:
        return [len(p) for p in self.mlvl_priors]

    def pos_inds(self, num_classes: int) -> Tensor:
        return ((self.labels >= 0) & (self.labels < num_classes)).nonzero().squeeze(1)


def prior_rows(mlvl_priors: Sequence[Tensor], strides: Sequence, num_imgs: int):
    """Prior centres, strides and level ids of all rows, (image, level, prior) order."""
    centers = torch.cat([prior_centers(p) for p in mlvl_priors]).repeat(num_imgs, 1)
    stride_rows = torch.cat([p.new_full((len(p),), float(s[0] if isinstance(s, tuple) else s))
                             for p, s in zip(mlvl_priors, strides)]).repeat(num_imgs)
    levels = level_ids([len(p) for p in mlvl_priors], num_imgs, mlvl_priors[0].device)
    return centers, stride_rows, levels


class DistributionHeadMixin:
    """General-distribution box branch: integral decoding, GIoU (+ DFL) box losses, decoding at inference.

    ``loss_dfl``: DFL on the positives' edge distributions, or ``None`` (the default: no DFL and no
    ``loss_dfl`` key in the losses, as the authors' RetinaNet/FCOS/ATSS distribution heads).
    """

    accepts_teacher = False
    fixed_options: dict = {}  # options of the stock head a distribution head fixes (given values are overridden)

    def __init__(self, *args, reg_max: int = 16, loss_dfl: Optional[dict] = None, bbox_coder: dict = CENTER_CODER,
                 **kwargs):
        self.reg_max = reg_max  # before the stock __init__, which builds the layers (box_channels needs it)
        super().__init__(*args, bbox_coder=bbox_coder, **{**kwargs, **self.fixed_options})
        self.integral = Integral(self.reg_max)
        self.loss_dfl = build_optional_loss(loss_dfl)

    @property
    def box_channels(self) -> int:
        """Box logits per prior: 4 edges × (reg_max + 1) bins."""
        return 4 * (self.reg_max + 1)

    def distance_maps(self, bbox_preds: Sequence[Tensor]) -> List[Tensor]:
        """Per-level box logits (N, A·4n, H, W) -> expected distances in pixels (N, A·4, H, W)."""
        out = []
        for pred, stride in zip(bbox_preds, self.prior_generator.strides):
            n, _, h, w = pred.shape
            rows = pred.permute(0, 2, 3, 1).reshape(-1, self.box_channels)
            dist = self.integral(rows).reshape(n, h, w, -1) * float(stride[0])
            out.append(dist.permute(0, 3, 1, 2).contiguous())
        return out

    def box_terms(self, losses: dict) -> dict:
        """The losses dict without ``loss_dfl`` when the head has no DFL."""
        if self.loss_dfl is None:
            losses.pop("loss_dfl", None)
        return losses

    def predict_by_feat(self, cls_scores, bbox_preds, score_factors=None, batch_img_metas=None, cfg=None,
                        rescale=False, with_nms=True):
        """Decode the distributions to distances, then the stock post-processing (score filter, NMS)."""
        return super().predict_by_feat(cls_scores, self.distance_maps(bbox_preds), score_factors,
                                       batch_img_metas=batch_img_metas, cfg=cfg, rescale=rescale, with_nms=with_nms)

    def box_losses(self, rows: Rows, pos_inds: Tensor, weight: Tensor, avg_factor: float):
        """GIoU on the integral-decoded positives and DFL on their edge distributions (stride units).

        Both are weighted by ``weight`` (per positive) and divided by ``avg_factor`` (DFL: 4·avg_factor);
        the DFL is ``None`` when the head has none.
        """
        strides = rows.strides[pos_inds][:, None]
        centers = rows.centers[pos_inds] / strides
        targets = rows.bbox_targets[pos_inds] / strides
        pred = rows.bbox_pred[pos_inds]
        decoded = distance2bbox(centers, self.integral(pred))
        loss_bbox = self.loss_bbox(decoded, targets, weight=weight, avg_factor=avg_factor)
        if self.loss_dfl is None:
            return loss_bbox, None
        target_corners = self.bbox_coder.encode(centers, targets, self.reg_max).reshape(-1)
        loss_dfl = self.loss_dfl(pred.reshape(-1, self.reg_max + 1), target_corners,
                                 weight=weight[:, None].expand(-1, 4).reshape(-1), avg_factor=4.0 * avg_factor)
        return loss_bbox, loss_dfl

    def vlr_rows(self, rows: Rows, batch_gt_instances, topk: int = 9, low: float = 0.25,
                 weighting: str = "mask") -> Tensor:
        """(M,) VLR weights of the rows (anchor heads: the DIoU band of ``regions.vlr_region``)."""
        return batch_anchor_vlr(rows.mlvl_priors, batch_gt_instances, topk, low, weighting).reshape(-1)


@MODELS.register_module()
class DistRetinaHead(DistributionHeadMixin, RetinaHead):
    """RetinaHead with a general-distribution box branch (9 anchors × 4·(reg_max+1) reg outputs).

    MaxIoU assignment and focal loss as stock; GIoU (weight 2, the authors' config; + DFL if configured) on the
    positives, each divided by the number of positives like RetinaNet's box loss.
    """

    fixed_options = dict(reg_decoded_bbox=True)

    def __init__(self, *args, loss_bbox: dict = dict(type="GIoULoss", loss_weight=2.0), **kwargs):
        super().__init__(*args, loss_bbox=loss_bbox, **kwargs)

    def _init_layers(self) -> None:
        super()._init_layers()
        self.retina_reg = nn.Conv2d(self.retina_reg.in_channels, self.num_base_priors * self.box_channels, 3,
                                    padding=1)

    def rows(self, outs, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore=None) -> Rows:
        """Targets (MaxIoU) and predictions as rows."""
        cls_scores, bbox_preds = outs[:2]
        num_imgs = cls_scores[0].size(0)
        featmap_sizes = [f.shape[-2:] for f in cls_scores]
        anchor_list, valid_flags = self.get_anchors(featmap_sizes, batch_img_metas, device=cls_scores[0].device)
        mlvl_priors = list(anchor_list[0])
        labels, label_weights, bbox_targets, _, avg_factor = self.get_targets(
            anchor_list, valid_flags, batch_gt_instances, batch_img_metas,
            batch_gt_instances_ignore=batch_gt_instances_ignore)
        centers, strides, levels = prior_rows(mlvl_priors, self.prior_generator.strides, num_imgs)
        return Rows(cls_score=flatten_rows(cls_scores, self.cls_out_channels),
                    bbox_pred=flatten_rows(bbox_preds, self.box_channels),
                    labels=rows_of_levels(labels, num_imgs), bbox_targets=rows_of_levels(bbox_targets, num_imgs, 4),
                    centers=centers, strides=strides, levels=levels, mlvl_priors=mlvl_priors, num_imgs=num_imgs,
                    extra=dict(label_weights=rows_of_levels(label_weights, num_imgs), avg_factor=avg_factor))

    def loss_from_rows(self, rows: Rows) -> dict:
        """Focal loss + GIoU + DFL, as RetinaNet normalises them (by the number of positives)."""
        avg_factor = rows.extra["avg_factor"]
        loss_cls = self.loss_cls(rows.cls_score, rows.labels, rows.extra["label_weights"], avg_factor=avg_factor)
        pos_inds = rows.pos_inds(self.num_classes)
        if len(pos_inds) > 0:
            weight = rows.bbox_pred.new_ones(len(pos_inds))
            loss_bbox, loss_dfl = self.box_losses(rows, pos_inds, weight, avg_factor)
        else:
            loss_bbox = loss_dfl = rows.bbox_pred.sum() * 0
        return self.box_terms(dict(loss_cls=loss_cls, loss_bbox=loss_bbox, loss_dfl=loss_dfl))

    def loss_by_feat(self, cls_scores, bbox_preds, batch_gt_instances, batch_img_metas,
                     batch_gt_instances_ignore=None) -> dict:
        """GT losses of the distribution head."""
        return self.loss_from_rows(self.rows((cls_scores, bbox_preds), batch_gt_instances, batch_img_metas,
                                             batch_gt_instances_ignore))


class CenternessLossByFeat:
    """``loss_by_feat`` of the heads with a centerness branch (ATSS, FCOS): rows, then the GT losses."""

    def loss_by_feat(self, cls_scores, bbox_preds, centernesses, batch_gt_instances, batch_img_metas,
                     batch_gt_instances_ignore=None) -> dict:
        """GT losses of the distribution head."""
        return self.loss_from_rows(self.rows((cls_scores, bbox_preds, centernesses), batch_gt_instances,
                                             batch_img_metas, batch_gt_instances_ignore))


@MODELS.register_module()
class DistATSSHead(CenternessLossByFeat, DistributionHeadMixin, ATSSHead):
    """ATSSHead with a general-distribution box branch (4·(reg_max+1) reg outputs, same Scale per level).

    ATSS assignment, focal and centerness losses as stock; GIoU (weight 2; + DFL if configured) on the positives
    weighted by the centerness targets and divided by their sum, like ATSS's box loss.
    """

    fixed_options = dict(reg_decoded_bbox=True)

    def _init_layers(self) -> None:
        super()._init_layers()
        self.atss_reg = nn.Conv2d(self.feat_channels, self.num_base_priors * self.box_channels,
                                  self.pred_kernel_size, padding=self.pred_kernel_size // 2)

    def rows(self, outs, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore=None) -> Rows:
        """Targets (ATSS) and predictions as rows."""
        cls_scores, bbox_preds, centernesses = outs[:3]
        num_imgs = cls_scores[0].size(0)
        featmap_sizes = [f.shape[-2:] for f in cls_scores]
        anchor_list, valid_flags = self.get_anchors(featmap_sizes, batch_img_metas, device=cls_scores[0].device)
        mlvl_priors = list(anchor_list[0])  # get_targets concatenates anchor_list in place
        _, labels, label_weights, bbox_targets, _, avg_factor = self.get_targets(
            anchor_list, valid_flags, batch_gt_instances, batch_img_metas,
            batch_gt_instances_ignore=batch_gt_instances_ignore)
        centers, strides, levels = prior_rows(mlvl_priors, self.prior_generator.strides, num_imgs)
        anchors = torch.cat(mlvl_priors).repeat(num_imgs, 1)
        return Rows(cls_score=flatten_rows(cls_scores, self.cls_out_channels),
                    bbox_pred=flatten_rows(bbox_preds, self.box_channels),
                    labels=rows_of_levels(labels, num_imgs), bbox_targets=rows_of_levels(bbox_targets, num_imgs, 4),
                    centers=centers, strides=strides, levels=levels, mlvl_priors=mlvl_priors, num_imgs=num_imgs,
                    extra=dict(label_weights=rows_of_levels(label_weights, num_imgs), anchors=anchors,
                               centerness=flatten_rows(centernesses, 1).reshape(-1), avg_factor=avg_factor))

    def loss_from_rows(self, rows: Rows) -> dict:
        """Focal + GIoU + DFL + centerness, as ATSS normalises them."""
        device = rows.cls_score.device
        avg_factor = reduce_mean(torch.tensor(rows.extra["avg_factor"], dtype=torch.float, device=device)).item()
        loss_cls = self.loss_cls(rows.cls_score, rows.labels, rows.extra["label_weights"], avg_factor=avg_factor)
        pos_inds = rows.pos_inds(self.num_classes)
        targets = (self.centerness_target(rows.extra["anchors"][pos_inds], rows.bbox_targets[pos_inds])
                   if len(pos_inds) > 0 else rows.bbox_pred.new_zeros((0,)))
        box_avg = reduce_mean(targets.sum()).clamp_(min=1).item()
        if len(pos_inds) > 0:
            loss_bbox, loss_dfl = self.box_losses(rows, pos_inds, targets, box_avg)
            loss_centerness = self.loss_centerness(rows.extra["centerness"][pos_inds], targets,
                                                   avg_factor=avg_factor)
        else:
            loss_bbox = loss_dfl = rows.bbox_pred.sum() * 0
            loss_centerness = rows.extra["centerness"].sum() * 0
        return self.box_terms(dict(loss_cls=loss_cls, loss_bbox=loss_bbox, loss_dfl=loss_dfl,
                                   loss_centerness=loss_centerness))


@MODELS.register_module()
class DistFCOSHead(CenternessLossByFeat, DistributionHeadMixin, FCOSHead):
    """FCOSHead with a general-distribution box branch (4·(reg_max+1) reg outputs, learnable Scale on logits).

    FCOS points, regress ranges and (optional) centre sampling, focal and centerness losses as stock; GIoU
    (+ DFL if configured) on the positives weighted by the centerness targets and divided by their sum, like
    FCOS's box loss. Targets are always in stride units (``norm_on_bbox`` has no meaning here).
    """

    fixed_options = dict(norm_on_bbox=False)

    def _init_predictor(self) -> None:
        super()._init_predictor()
        self.conv_reg = nn.Conv2d(self.feat_channels, self.box_channels, 3, padding=1)

    def forward_single(self, x: Tensor, scale, stride: int):
        """Class logits, box-distribution logits (times the level's Scale) and centerness of one level."""
        cls_score, bbox_pred, cls_feat, reg_feat = AnchorFreeHead.forward_single(self, x)
        centerness = self.conv_centerness(reg_feat if self.centerness_on_reg else cls_feat)
        return cls_score, scale(bbox_pred).float(), centerness

    def rows(self, outs, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore=None) -> Rows:
        """Targets (FCOS points) and predictions as rows."""
        cls_scores, bbox_preds, centernesses = outs[:3]
        num_imgs = cls_scores[0].size(0)
        featmap_sizes = [f.shape[-2:] for f in cls_scores]
        points = self.prior_generator.grid_priors(featmap_sizes, dtype=bbox_preds[0].dtype,
                                                  device=bbox_preds[0].device)
        labels, distances = self.get_targets(points, batch_gt_instances)
        centers, strides, levels = prior_rows(points, self.prior_generator.strides, num_imgs)
        distances = rows_of_levels(distances, num_imgs, 4)
        return Rows(cls_score=flatten_rows(cls_scores, self.cls_out_channels),
                    bbox_pred=flatten_rows(bbox_preds, self.box_channels),
                    labels=rows_of_levels(labels, num_imgs), bbox_targets=distance2bbox(centers, distances),
                    centers=centers, strides=strides, levels=levels, mlvl_priors=list(points), num_imgs=num_imgs,
                    extra=dict(distances=distances, centerness=flatten_rows(centernesses, 1).reshape(-1)))

    def loss_from_rows(self, rows: Rows) -> dict:
        """Focal + GIoU + DFL + centerness, as FCOS normalises them."""
        pos_inds = rows.pos_inds(self.num_classes)
        num_pos = max(reduce_mean(rows.cls_score.new_tensor(float(len(pos_inds)))), 1.0)
        loss_cls = self.loss_cls(rows.cls_score, rows.labels, avg_factor=num_pos)
        targets = self.centerness_target(rows.extra["distances"][pos_inds])
        denorm = max(reduce_mean(targets.sum().detach()), 1e-6)
        if len(pos_inds) > 0:
            loss_bbox, loss_dfl = self.box_losses(rows, pos_inds, targets, denorm)
            loss_centerness = self.loss_centerness(rows.extra["centerness"][pos_inds], targets, avg_factor=num_pos)
        else:
            loss_bbox = loss_dfl = rows.bbox_pred.sum() * 0
            loss_centerness = rows.extra["centerness"].sum() * 0
        return self.box_terms(dict(loss_cls=loss_cls, loss_bbox=loss_bbox, loss_dfl=loss_dfl,
                                   loss_centerness=loss_centerness))

    def vlr_rows(self, rows: Rows, batch_gt_instances, topk: int = 9, low: float = 0.25,
                 weighting: str = "mask") -> Tensor:
        """(M,) FCOS VLR: the non-positive points inside a GT box, a 0/1 mask (points have no box for DIoU)."""
        points = torch.cat(rows.mlvl_priors)
        inside = torch.stack([points_inside_boxes(points, gt.bboxes) for gt in batch_gt_instances]).reshape(-1)
        return (inside & (rows.labels == self.num_classes)).to(rows.bbox_pred.dtype)


