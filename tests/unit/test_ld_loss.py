"""Our LD loss/head/detector against mmdet 3.3's stock LDHead + KnowledgeDistillationKLDivLoss."""
from __future__ import annotations

import copy

import pytest
import torch

from helpers import make_batch, tiny_gfl_cfg


def test_kl_matches_stock_function_and_true_kl_option():
    from mmdet.models.losses.kd_loss import knowledge_distillation_kl_div_loss

    from ld_core.models.ld_loss import ld_kl_divergence

    g = torch.Generator().manual_seed(0)
    pred, soft = torch.randn(40, 17, generator=g), torch.randn(40, 17, generator=g)
    ours = ld_kl_divergence(pred, soft, T=10)
    stock = knowledge_distillation_kl_div_loss(pred, soft, T=10, reduction="none")
    torch.testing.assert_close(ours, stock)
    torch.testing.assert_close(ld_kl_divergence(pred, soft, T=10, true_kl=True), 17 * ours)
    # identical distributions carry no loss; different ones a positive loss
    assert torch.allclose(ld_kl_divergence(soft, soft, T=10), torch.zeros(40), atol=1e-5)
    assert (ours > 0).all()


def test_gradient_reaches_student_only():
    from ld_core.models.ld_loss import LocalizationDistillationLoss

    pred = torch.randn(8, 17, requires_grad=True)
    soft = torch.randn(8, 17, requires_grad=True)
    LocalizationDistillationLoss()(pred, soft).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert soft.grad is None


@pytest.mark.parametrize("images", [1, 3])
def test_head_losses_equal_stock_ldhead(mmdet_scope, images):
    from mmdet.registry import MODELS

    cfg = tiny_gfl_cfg()
    stock_cfg = copy.deepcopy(cfg["bbox_head"])
    stock_cfg.update(type="LDHead", loss_ld=dict(type="KnowledgeDistillationKLDivLoss", loss_weight=0.25, T=10),
                     train_cfg=cfg["train_cfg"])
    ours_cfg = copy.deepcopy(cfg["bbox_head"])
    ours_cfg.update(type="LDGFLHead", loss_ld=dict(type="LocalizationDistillationLoss", loss_weight=0.25, T=10),
                    train_cfg=cfg["train_cfg"], box_loss_normalize="ldhead")
    torch.manual_seed(0)
    stock = MODELS.build(stock_cfg)
    ours = MODELS.build(ours_cfg)
    ours.load_state_dict(stock.state_dict())
    _, samples = make_batch(images, size=64, seed=images)
    g = torch.Generator().manual_seed(3)
    feats = [torch.randn(images, 16, 64 // s, 64 // s, generator=g) for s in (8, 16, 32, 64, 128)]
    feats[-1] = torch.randn(images, 16, 1, 1, generator=g)
    teacher_bbox = [torch.randn(images, 68, f.shape[2], f.shape[3], generator=g) * 3 for f in feats]
    teacher_cls = [torch.randn(images, 3, f.shape[2], f.shape[3], generator=g) for f in feats]

    stock_losses = stock.loss(feats, (teacher_cls, teacher_bbox), samples)
    our_losses = ours.loss(feats, teacher_bbox, samples)
    for name in ("loss_cls", "loss_bbox", "loss_dfl", "loss_ld"):
        expected = sum(stock_losses[name]) if isinstance(stock_losses[name], (list, tuple)) else stock_losses[name]
        torch.testing.assert_close(our_losses[name], expected, rtol=1e-5, atol=1e-6, msg=name)
    assert our_losses["loss_ld"] > 0
    # default normalisation: the GT losses are exactly plain GFLHead's (the baseline's)
    plain_cfg = copy.deepcopy(cfg["bbox_head"])
    plain_cfg.update(train_cfg=cfg["train_cfg"])
    plain = MODELS.build(plain_cfg)
    plain.load_state_dict(stock.state_dict())
    ours.box_loss_normalize = "gfl"
    gfl_losses = plain.loss(feats, samples)
    our_losses = ours.loss(feats, teacher_bbox, samples)
    for name in ("loss_cls", "loss_bbox", "loss_dfl"):
        torch.testing.assert_close(our_losses[name], sum(gfl_losses[name]), rtol=1e-5, atol=1e-6, msg=name)


def test_per_positive_normalisation_divides_by_positives(mmdet_scope):
    from mmdet.registry import MODELS

    cfg = tiny_gfl_cfg()
    heads = {}
    for norm in ("reference", "per_positive"):
        head_cfg = copy.deepcopy(cfg["bbox_head"])
        head_cfg.update(type="LDGFLHead", ld_normalize=norm, train_cfg=cfg["train_cfg"])
        torch.manual_seed(0)
        heads[norm] = MODELS.build(head_cfg)
    _, samples = make_batch(2, seed=5)
    feats = [torch.randn(2, 16, max(64 // s, 1), max(64 // s, 1)) for s in (8, 16, 32, 64, 128)]
    teacher = [torch.randn(2, 68, f.shape[2], f.shape[3]) for f in feats]
    ref = heads["reference"].loss(feats, teacher, samples)["loss_ld"]
    per = heads["per_positive"].loss(feats, teacher, samples)["loss_ld"]
    ratio = (ref / per).item()
    assert ratio > 2 and abs(ratio - round(ratio)) < 1e-3  # an integer number of positives


def test_distiller_losses_equal_stock_kd_detector(teacher_files):
    """Whole detector: ours vs mmdet's KnowledgeDistillationSingleStageDetector on the same batch."""
    from mmdet.registry import MODELS

    teacher_cfg_path, teacher_ckpt, _ = teacher_files
    student = tiny_gfl_cfg()
    stock_cfg = copy.deepcopy(student)
    stock_cfg.update(type="KnowledgeDistillationSingleStageDetector", teacher_config=str(teacher_cfg_path),
                     teacher_ckpt=str(teacher_ckpt))
    stock_cfg["bbox_head"].update(type="LDHead", loss_ld=dict(type="KnowledgeDistillationKLDivLoss",
                                                              loss_weight=0.25, T=10))
    ours_cfg = copy.deepcopy(student)
    ours_cfg.update(type="LocalizationDistiller", teacher_config=str(teacher_cfg_path), teacher_ckpt=str(teacher_ckpt))
    ours_cfg["bbox_head"].update(type="LDGFLHead", box_loss_normalize="ldhead")
    torch.manual_seed(0)
    stock = MODELS.build(stock_cfg)
    ours = MODELS.build(ours_cfg)
    ours.load_state_dict(stock.state_dict())
    stock.train()
    ours.train()
    inputs, samples = make_batch(2, seed=11)
    stock_losses = stock.loss(inputs, samples)
    our_losses = ours.loss(inputs, samples)
    for name in ("loss_cls", "loss_bbox", "loss_dfl", "loss_ld"):
        expected = sum(stock_losses[name]) if isinstance(stock_losses[name], (list, tuple)) else stock_losses[name]
        torch.testing.assert_close(our_losses[name], expected, rtol=1e-4, atol=1e-6, msg=name)
