"""The terms of the full LD method (Main KD, Main LD, VLR LD), shared by every LD head.

All terms work on rows = prior locations flattened over images and FPN levels in one order for every head,
(image, level, prior) (:func:`flatten_rows`; the batched ATSS targets come in it), the teacher's alike. A term whose config is ``None`` or has
``loss_weight`` 0 is not built and contributes no key to the losses.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from mmdet.registry import MODELS
from mmdet.utils import reduce_mean
from torch import Tensor

from .regions import VLR_WEIGHTINGS, vlr_region

LD_NORMALIZATIONS = ("reference", "per_positive")
LD_ROWS = ("edge", "anchor")
VLR_TERM_WEIGHTINGS = VLR_WEIGHTINGS + ("student_score",)
MAIN_LD = dict(type="LocalizationDistillationLoss", loss_weight=0.25, T=10)
# The keyword arguments of LDTermsMixin._init_ld_terms, which every LD head takes.
LD_TERM_KEYS = ("loss_ld", "loss_kd", "loss_ld_vlr", "ld_normalize", "ld_rows", "vlr_weighting", "vlr_avg_factor",
                "vlr_exclude_pos", "vlr_topk", "vlr_low")


def pop_ld_term_kwargs(kwargs: dict) -> dict:
    """Remove and return the LD-term keyword arguments of a head's ``__init__`` kwargs."""
    return {key: kwargs.pop(key) for key in LD_TERM_KEYS if key in kwargs}


def build_optional_loss(cfg: Optional[dict]):
    """Build a loss module, or ``None`` when the config is ``None`` or its ``loss_weight`` is 0."""
    if cfg is None or float(cfg.get("loss_weight", 1.0)) == 0.0:
        return None
    return MODELS.build(cfg)


def split_teacher_outputs(teacher_outs) -> Tuple[Optional[Sequence[Tensor]], Sequence[Tensor]]:
    """``(cls_scores, bbox_preds)`` of a teacher head's outputs; a bare list of box maps gives ``(None, it)``."""
    if len(teacher_outs) and torch.is_tensor(teacher_outs[0]):
        return None, teacher_outs
    return teacher_outs[0], teacher_outs[1]


def check_teacher_rows(student: Tensor, teacher: Tensor, what: str) -> None:
    """Teacher and student rows must align one to one (same strides, anchors, reg_max, classes)."""
    if student.shape != teacher.shape:
        raise ValueError(f"teacher {what} {tuple(teacher.shape)} do not match the student's {tuple(student.shape)} "
                         "(reg_max, strides, anchors or classes differ)")


def flatten_rows(maps: Sequence[Tensor], channels: int) -> Tensor:
    """Per-level (N, A·channels, H, W) maps -> (N·Σ_l H·W·A, channels) rows in (image, level, prior) order."""
    n = maps[0].size(0)
    return torch.cat([m.permute(0, 2, 3, 1).reshape(n, -1, channels) for m in maps], dim=1).reshape(-1, channels)


def rows_of_levels(per_level: Sequence[Tensor], num_imgs: int, *tail: int) -> Tensor:
    """Per-level targets, (N, A_l, *tail) or (N·A_l, *tail) image by image -> (N·ΣA_l, *tail) image-major rows."""
    return torch.cat([t.reshape(num_imgs, -1, *tail) for t in per_level], dim=1).reshape(-1, *tail)


def level_ids(num_level_priors: Sequence[int], num_imgs: int, device) -> Tensor:
    """FPN level of every row, (image, level, prior) order."""
    per_image = torch.cat([torch.full((n,), lvl, dtype=torch.long, device=device)
                           for lvl, n in enumerate(num_level_priors)])
    return per_image.repeat(num_imgs)


def batch_anchor_vlr(mlvl_anchors: Sequence[Tensor], batch_gt_instances, topk: int = 9, low: float = 0.25,
                     weighting: str = "mask") -> Tensor:
    """(N_img, ΣA_l) VLR weights of every image's anchors (all levels, the same anchors for every image)."""
    anchors = torch.cat(list(mlvl_anchors))
    num_level = [len(a) for a in mlvl_anchors]
    return torch.stack([vlr_region(anchors, gt.bboxes, num_level, topk, low, weighting)
                        for gt in batch_gt_instances])


class LDTermsMixin:
    """Main KD, Main LD and VLR LD for a dense head with a general-distribution box branch.

    Args (of ``_init_ld_terms``):
        loss_ld: Main LD (``LocalizationDistillationLoss``) on the positives, each edge weighted by the
            student's detached max class score; the sum is divided by 4 ('reference') or also by the
            number of positives ('per_positive', see ``ld_normalize``).
        loss_kd: Main KD (``KnowledgeDistillationKLDivLoss``: softmax KD over the class logits) on the
            positives, averaged per FPN level over that level's positives, then summed over levels.
        loss_ld_vlr: VLR LD (``LocalizationDistillationLoss``) on the valuable localization region, each
            edge weighted by the region weight; the sum is divided by ``vlr_avg_factor``.
        ld_rows: 'edge' (a softmax over the reg_max + 1 bins of each box edge) or 'anchor' (one softmax over
            all 4·(reg_max + 1) box logits of a prior, weighted once: the fork's RetinaNet LD).
        vlr_weighting: 'mask' (0/1, the paper), 'max_iou' (the anchor's IoU with the GT of its region: the
            authors' fork) or 'student_score' (the student's detached max class score inside the region: the
            fork's FCOS).
        vlr_avg_factor: the weighted VLR LD sum is divided by it (the fork: 16 for GFocal, 4 elsewhere).
        vlr_exclude_pos: drop the positives from the VLR (the fork's RetinaNet head does; its GFocal does not).
        vlr_topk / vlr_low: ATSS top-k per level and the lower bound factor of the region (9, 0.25).
    """

    accepts_teacher = True

    def _init_ld_terms(self, loss_ld: Optional[dict] = MAIN_LD, loss_kd: Optional[dict] = None,
                       loss_ld_vlr: Optional[dict] = None, ld_normalize: str = "reference", ld_rows: str = "edge",
                       vlr_weighting: str = "mask", vlr_avg_factor: float = 16.0, vlr_exclude_pos: bool = False,
                       vlr_topk: int = 9, vlr_low: float = 0.25) -> None:
        if ld_normalize not in LD_NORMALIZATIONS:
            raise ValueError(f"ld_normalize must be one of {LD_NORMALIZATIONS}, got {ld_normalize!r}")
        if ld_rows not in LD_ROWS:
            raise ValueError(f"ld_rows must be one of {LD_ROWS}, got {ld_rows!r}")
        if vlr_weighting not in VLR_TERM_WEIGHTINGS:
            raise ValueError(f"vlr_weighting must be one of {VLR_TERM_WEIGHTINGS}, got {vlr_weighting!r}")
        if float(vlr_avg_factor) <= 0:
            raise ValueError(f"vlr_avg_factor must be positive, got {vlr_avg_factor!r}")
        self.loss_ld = build_optional_loss(loss_ld)
        self.loss_kd = build_optional_loss(loss_kd)
        self.loss_ld_vlr = build_optional_loss(loss_ld_vlr)
        self.ld_normalize = ld_normalize
        self.ld_rows = ld_rows
        self.vlr_weighting = vlr_weighting
        self.vlr_avg_factor = float(vlr_avg_factor)
        self.vlr_exclude_pos = bool(vlr_exclude_pos)
        self.vlr_topk = int(vlr_topk)
        self.vlr_low = float(vlr_low)

    def main_ld_loss(self, bbox_pred: Tensor, teacher_bbox: Tensor, cls_score: Tensor, pos_inds: Tensor,
                     num_pos: float) -> Tensor:
        """Main LD over the positive rows (reference normalisation: weighted sum / 4)."""
        if len(pos_inds) == 0:
            return bbox_pred.sum() * 0
        score = cls_score.detach().sigmoid().max(dim=1)[0][pos_inds]
        avg = 4.0 if self.ld_normalize == "reference" else 4.0 * max(float(num_pos), 1.0)
        return self._ld_on_rows(self.loss_ld, bbox_pred[pos_inds], teacher_bbox[pos_inds], score, avg)

    def _ld_on_rows(self, loss, bbox_pred: Tensor, teacher_bbox: Tensor, row_weights: Tensor, avg: float) -> Tensor:
        """An LD loss on (R, 4·(reg_max+1)) box logits: per edge (each edge weighted by its row's weight) or,
        with ``ld_rows='anchor'``, one distribution per row."""
        n = self.reg_max + 1 if self.ld_rows == "edge" else 4 * (self.reg_max + 1)
        per_row = bbox_pred.size(1) // n
        weights = row_weights[:, None].expand(-1, per_row).reshape(-1)
        return loss(bbox_pred.reshape(-1, n), teacher_bbox.reshape(-1, n), weight=weights, avg_factor=avg)

    def main_kd_loss(self, cls_score: Tensor, teacher_cls: Tensor, pos_inds: Tensor, levels: Tensor,
                     num_levels: int) -> Tensor:
        """Main KD over the positive rows: per level, the mean over that level's positives; summed over levels."""
        if len(pos_inds) == 0:
            return cls_score.sum() * 0
        pos_levels = levels[pos_inds]
        counts = torch.bincount(pos_levels, minlength=num_levels).to(cls_score.dtype)
        return self.loss_kd(cls_score[pos_inds], teacher_cls[pos_inds], weight=1.0 / counts[pos_levels],
                            avg_factor=1.0)

    def vlr_ld_loss(self, bbox_pred: Tensor, teacher_bbox: Tensor, vlr_weights: Tensor) -> Tensor:
        """VLR LD over the rows with a positive region weight (weighted sum / ``vlr_avg_factor``)."""
        rows = (vlr_weights > 0).nonzero().squeeze(1)
        if len(rows) == 0:
            return bbox_pred.sum() * 0
        return self._ld_on_rows(self.loss_ld_vlr, bbox_pred[rows], teacher_bbox[rows], vlr_weights[rows],
                                self.vlr_avg_factor)

    @property
    def vlr_region_weighting(self) -> str:
        """The weighting a head's region function gives (``student_score`` multiplies a 0/1 mask)."""
        return "mask" if self.vlr_weighting == "student_score" else self.vlr_weighting

    def distillation_losses(self, *, cls_score: Tensor, bbox_pred: Tensor, teacher_outs, pos_inds: Tensor,
                            levels: Tensor, num_levels: int, vlr_weights=None) -> dict:
        """The enabled LD terms on the student's rows and the teacher's per-level maps (flattened alike).

        ``vlr_weights`` is a zero-argument callable giving the (rows,) region weights of
        :attr:`vlr_region_weighting` (computed only when VLR LD is on); positives are zeroed there when
        ``vlr_exclude_pos`` is set, and multiplied by the student's max class score for 'student_score'.
        """
        teacher_cls, teacher_bbox = split_teacher_outputs(teacher_outs)
        losses = {}
        main_ld = self.loss_ld is not None
        if main_ld or self.loss_ld_vlr is not None:
            t_bbox = flatten_rows(teacher_bbox, bbox_pred.size(1))
            check_teacher_rows(bbox_pred, t_bbox, "box logits")
        if main_ld:
            num_pos = reduce_mean(torch.tensor(float(len(pos_inds)), device=bbox_pred.device)).item()
            losses["loss_ld"] = self.main_ld_loss(bbox_pred, t_bbox, cls_score, pos_inds, num_pos)
        if self.loss_kd is not None:
            if teacher_cls is None:
                raise ValueError("Main KD needs the teacher's class scores (pass the teacher head's full outputs)")
            t_cls = flatten_rows(teacher_cls, cls_score.size(1))
            check_teacher_rows(cls_score, t_cls, "class logits")
            losses["loss_kd"] = self.main_kd_loss(cls_score, t_cls, pos_inds, levels, num_levels)
        if self.loss_ld_vlr is not None:
            weights = vlr_weights()
            if self.vlr_weighting == "student_score":
                weights = weights * cls_score.detach().sigmoid().max(dim=1)[0]
            if self.vlr_exclude_pos and len(pos_inds):
                weights = weights.clone()
                weights[pos_inds] = 0
            losses["loss_ld_vlr"] = self.vlr_ld_loss(bbox_pred, t_bbox, weights)
        return losses
