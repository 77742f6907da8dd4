"""LD variants of the distribution heads: GT losses + Main LD (+ Main KD, VLR LD) from a teacher's outputs."""
from __future__ import annotations

from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS

from .distribution_heads import DistATSSHead, DistFCOSHead, DistRetinaHead
from .ld_terms import LDTermsMixin, pop_ld_term_kwargs


class LDDistMixin(LDTermsMixin):
    """``loss(x, teacher_outs, samples)`` for a distribution head; the LD terms are those of :class:`LDTermsMixin`.

    ``teacher_outs`` is the teacher head's forward output on the same batch: ``(cls_scores, bbox_preds, ...)``
    (a bare list of box maps is accepted when Main KD is off).
    """

    def __init__(self, *args, **kwargs):
        ld_kwargs = pop_ld_term_kwargs(kwargs)
        super().__init__(*args, **kwargs)
        self._init_ld_terms(**ld_kwargs)

    def loss(self, x, teacher_outs, batch_data_samples) -> dict:
        """Forward the student head on ``x``; GT losses plus the enabled LD terms against ``teacher_outs``."""
        outs = self(x)
        gt_instances, gt_instances_ignore, img_metas = unpack_gt_instances(batch_data_samples)
        return self.loss_with_teacher(outs, teacher_outs, gt_instances, img_metas, gt_instances_ignore)

    def loss_with_teacher(self, outs, teacher_outs, batch_gt_instances, batch_img_metas,
                          batch_gt_instances_ignore=None) -> dict:
        """GT losses and LD terms from the student's and the teacher's head outputs."""
        rows = self.rows(outs, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore)
        losses = self.loss_from_rows(rows)
        losses.update(self.distillation_losses(
            cls_score=rows.cls_score, bbox_pred=rows.bbox_pred, teacher_outs=teacher_outs,
            pos_inds=rows.pos_inds(self.num_classes), levels=rows.levels, num_levels=len(rows.mlvl_priors),
            vlr_weights=lambda: self.vlr_rows(rows, batch_gt_instances, self.vlr_topk, self.vlr_low,
                                              self.vlr_region_weighting)))
        return losses


@MODELS.register_module()
class LDDistRetinaHead(LDDistMixin, DistRetinaHead):
    """:class:`DistRetinaHead` trained with LD (authors' config: Main LD weight 5, KD T=8)."""


@MODELS.register_module()
class LDDistATSSHead(LDDistMixin, DistATSSHead):
    """:class:`DistATSSHead` trained with LD."""


@MODELS.register_module()
class LDDistFCOSHead(LDDistMixin, DistFCOSHead):
    """:class:`DistFCOSHead` trained with LD; its VLR is the non-positive points inside a GT box (a mask, or
    the student's score there: the fork's FCOS)."""

    def __init__(self, *args, vlr_weighting: str = "mask", **kwargs):
        if vlr_weighting == "max_iou":
            raise ValueError("FCOS points have no anchor box to weight the VLR by IoU: vlr_weighting must be "
                             "'mask' or 'student_score', got 'max_iou'")
        super().__init__(*args, vlr_weighting=vlr_weighting, **kwargs)
