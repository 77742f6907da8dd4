"""The localization distillation (LD) loss: KL(teacher || student) over per-edge box distributions."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS


def ld_kl_divergence(pred: torch.Tensor, soft_label: torch.Tensor, T: float, true_kl: bool = False) -> torch.Tensor:
    """Per-row ``T² · KL(softmax(soft/T) ‖ softmax(pred/T))`` for (M, n) edge-distribution logits.

    The reference implementation averages the KL over the n bins (1/n of the true KL); published LD numbers
    use that convention, so it is the default. ``true_kl=True`` sums over the bins instead.
    The teacher side (``soft_label``) is always detached.
    """
    if pred.shape != soft_label.shape:
        raise ValueError(f"LD: student logits {tuple(pred.shape)} and teacher logits {tuple(soft_label.shape)} differ")
    target = F.softmax(soft_label.detach() / T, dim=1)
    kl = F.kl_div(F.log_softmax(pred / T, dim=1), target, reduction="none")
    kl = kl.sum(dim=1) if true_kl else kl.mean(dim=1)
    return kl * (T * T)


@MODELS.register_module()
class LocalizationDistillationLoss(nn.Module):
    """LD loss module (``loss_ld`` of :class:`LDGFLHead`).

    Args:
        loss_weight: weight of the loss (0.25 in the paper's GFocal configs).
        T: distillation temperature (10 in the paper).
        true_kl: sum the KL over bins instead of the reference mean over bins.
        reduction: 'none' | 'mean' | 'sum', as mmdet losses.
    """

    def __init__(self, loss_weight: float = 0.25, T: float = 10.0, true_kl: bool = False, reduction: str = "mean"):
        super().__init__()
        if T <= 0:
            raise ValueError(f"LD temperature must be positive, got T={T}")
        self.loss_weight = loss_weight
        self.T = T
        self.true_kl = true_kl
        self.reduction = reduction

    def forward(self, pred, soft_label, weight=None, avg_factor=None, reduction_override=None):
        """Weighted LD over the rows of ``pred``/``soft_label``; ``avg_factor`` divides the weighted sum."""
        reduction = reduction_override or self.reduction
        loss = ld_kl_divergence(pred, soft_label, self.T, self.true_kl)
        if weight is not None:
            weight = weight.float()
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)
