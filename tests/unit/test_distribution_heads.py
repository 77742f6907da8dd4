"""Distribution heads (RetinaNet/FCOS/ATSS), their LD variants (Main KD + Main LD + VLR LD) and config parts."""
from __future__ import annotations

import copy

import pytest
import torch

from helpers import TINY_PROFILE, make_batch, tiny_detector_cfg

DETECTORS = ("retinanet", "fcos", "atss", "gfl")
GT_KEYS = {"retinanet": {"loss_cls", "loss_bbox"}, "gfl": {"loss_cls", "loss_bbox", "loss_dfl"},  # no DFL:
           "fcos": {"loss_cls", "loss_bbox", "loss_centerness"},                                # the authors'
           "atss": {"loss_cls", "loss_bbox", "loss_centerness"}}                                # dist. heads
LD_KEYS = {"loss_ld", "loss_kd", "loss_ld_vlr"}
STRIDES = (8, 16, 32, 64, 128)


def build(cfg):
    from mmdet.registry import MODELS
    from mmengine.config import ConfigDict

    return MODELS.build(ConfigDict(copy.deepcopy(cfg)))


def build_head(model_cfg, seed=0):
    head_cfg = copy.deepcopy(model_cfg["bbox_head"])
    head_cfg.update(train_cfg=model_cfg["train_cfg"], test_cfg=model_cfg["test_cfg"])
    torch.manual_seed(seed)
    return build(head_cfg)


def random_feats(images=2, size=64, seed=3):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(images, 16, max(size // s, 1), max(size // s, 1), generator=g) for s in STRIDES]


def total(losses):
    return sum(v if torch.is_tensor(v) else sum(v) for v in losses.values())


@pytest.mark.parametrize("detector", ["retinanet", "fcos", "atss"])
def test_only_the_reg_conv_widens(mmdet_scope, detector):
    stock = build(tiny_detector_cfg(detector, distribution=False))
    dist = build(tiny_detector_cfg(detector))
    assert set(dist.state_dict()) == set(stock.state_dict()) | {"bbox_head.integral.project"}  # a fixed buffer
    anchors = 9 if detector == "retinanet" else 1
    extra = anchors * (4 * 17 - 4) * (16 * 9 + 1)  # 3x3 conv from 16 channels, plus bias
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(dist) - count(stock) == extra


@pytest.mark.parametrize("detector", ["retinanet", "fcos", "atss"])
def test_classification_side_equals_the_stock_head(mmdet_scope, detector):
    """Same assignment and cls/centerness branches: focal (and centerness) losses equal the stock head's."""
    stock = build_head(tiny_detector_cfg(detector, distribution=False))
    dist = build_head(tiny_detector_cfg(detector))
    reg = ("retina_reg", "conv_reg", "atss_reg")
    state = {k: v for k, v in stock.state_dict().items() if k.split(".")[0] not in reg}
    missing, _ = dist.load_state_dict(state, strict=False)
    assert {k.split(".")[0] for k in missing} <= {*reg, "integral"}
    _, samples = make_batch(2, seed=4)
    feats = random_feats()
    ours, theirs = dist.loss(feats, samples), stock.loss(feats, samples)
    for name in ({"loss_cls", "loss_centerness"} & set(theirs)):
        expected = sum(theirs[name]) if isinstance(theirs[name], (list, tuple)) else theirs[name]
        torch.testing.assert_close(ours[name], expected, rtol=1e-5, atol=1e-6, msg=name)
    assert set(ours) == GT_KEYS[detector] and torch.isfinite(total(ours))


@pytest.mark.parametrize("detector", DETECTORS)
def test_full_ld_step_trains_the_student_only(teacher_files, tmp_path, detector):
    from mmengine.config import Config

    from ld_core.models.checkpoints import save_tensor_checkpoint

    teacher_cfg = tiny_detector_cfg(detector, depth=34)
    cfg_path = tmp_path / f"{detector}_teacher.py"
    Config(dict(model=teacher_cfg)).dump(str(cfg_path))
    torch.manual_seed(1)
    ckpt = save_tensor_checkpoint(build(teacher_cfg), tmp_path / f"{detector}_teacher.pth")
    student_cfg = tiny_detector_cfg(detector, distill=dict(ld="full"))
    student_cfg.update(type="LocalizationDistiller", teacher_config=str(cfg_path), teacher_ckpt=str(ckpt))
    torch.manual_seed(0)
    model = build(student_cfg)
    model.train()
    before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    inputs, samples = make_batch(2, seed=2)
    losses = model.loss(inputs, samples)
    assert set(losses) == GT_KEYS[detector] | LD_KEYS
    assert all(torch.isfinite(v) for v in losses.values())
    assert all(losses[k] > 0 for k in LD_KEYS), {k: float(losses[k]) for k in LD_KEYS}
    total(losses).backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    reg = {"retinanet": "retina_reg", "fcos": "conv_reg", "atss": "atss_reg", "gfl": "gfl_reg"}[detector]
    assert getattr(model.bbox_head, reg).weight.grad.abs().sum() > 0
    assert all(torch.equal(before[k], v) for k, v in model.teacher.state_dict().items())


@pytest.mark.parametrize("detector", DETECTORS)
def test_switches_and_zero_weights_leave_the_gt_losses(mmdet_scope, detector):
    plain_cfg = tiny_detector_cfg(detector)
    teacher = build_head(plain_cfg, seed=5)
    feats = random_feats()
    _, samples = make_batch(2, seed=6)
    with torch.no_grad():
        teacher_outs = teacher(feats)
    plain = build_head(plain_cfg)
    gt = plain.loss(feats, samples)
    variants = {"full": dict(ld="full"), "main": dict(ld="main"),
                "no_kd_vlr": dict(ld="full", kd_weight=0, vlr_weight=0),
                "all_zero": dict(ld="full", ld_weight=0, kd_weight=0, vlr_weight=0)}
    expected_keys = {"full": LD_KEYS, "main": {"loss_ld"}, "no_kd_vlr": {"loss_ld"}, "all_zero": set()}
    for name, distill in variants.items():
        head = build_head(tiny_detector_cfg(detector, distill=distill))
        head.load_state_dict(plain.state_dict())
        losses = head.loss(feats, teacher_outs, samples)
        assert set(losses) == GT_KEYS[detector] | expected_keys[name], name
        for key in GT_KEYS[detector]:
            want = sum(gt[key]) if isinstance(gt[key], (list, tuple)) else gt[key]
            torch.testing.assert_close(losses[key], want, rtol=1e-5, atol=1e-6, msg=f"{name} {key}")


def test_main_kd_is_averaged_per_level(mmdet_scope):
    from mmdet.models.losses.kd_loss import knowledge_distillation_kl_div_loss

    head = build_head(tiny_detector_cfg("atss", distill=dict(ld="full")))
    g = torch.Generator().manual_seed(0)
    cls, t_cls = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    pos, levels = torch.tensor([0, 1, 2, 4]), torch.tensor([0, 0, 0, 1, 1, 1])
    kd = knowledge_distillation_kl_div_loss(cls, t_cls, T=2, reduction="none")
    expected = 10 * (kd[:3].mean() + kd[4])
    torch.testing.assert_close(head.main_kd_loss(cls, t_cls, pos, levels, 2), expected)


@pytest.mark.parametrize("detector", ["retinanet", "fcos", "atss"])
def test_predict_decodes_the_distribution(mmdet_scope, detector):
    """One confident prior with one-hot edge distributions decodes to centre ± bins × stride."""
    from mmengine.config import ConfigDict

    head = build_head(tiny_detector_cfg(detector))
    anchors = 9 if detector == "retinanet" else 1
    sizes = [(max(64 // s, 1), max(64 // s, 1)) for s in STRIDES]
    cls = [torch.full((1, anchors * 3, h, w), -20.0) for h, w in sizes]
    box = [torch.zeros((1, anchors * 68, h, w)) for h, w in sizes]
    x, y, a, label, bins = 3, 2, anchors - 1, 1, (1, 2, 3, 4)
    cls[0][0, a * 3 + label, y, x] = 20.0
    for edge, b in enumerate(bins):
        box[0][0, a * 68 + edge * 17 + b, y, x] = 60.0
    extra = ([[torch.full((1, anchors, h, w), 20.0) for h, w in sizes]] if detector != "retinanet" else [])
    meta = dict(img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1.0, 1.0), pad_shape=(64, 64))
    cfg = ConfigDict(nms_pre=100, min_bbox_size=0, score_thr=0.5, nms=dict(type="nms", iou_threshold=0.6),
                     max_per_img=10)
    result = head.predict_by_feat(cls, box, *extra, batch_img_metas=[meta], cfg=cfg)[0]
    prior = head.prior_generator.grid_priors(sizes, device="cpu")[0][(y * sizes[0][1] + x) * anchors + a]
    cx, cy = (prior[0], prior[1]) if prior.numel() == 2 else ((prior[0] + prior[2]) / 2, (prior[1] + prior[3]) / 2)
    expected = torch.tensor([cx - 8, cy - 16, cx + 24, cy + 32]).clamp(0, 64)
    assert result.labels.tolist() == [label]
    torch.testing.assert_close(result.bboxes[0], expected, atol=1e-3, rtol=0)


@pytest.mark.parametrize("detector", ["retinanet", "fcos", "atss"])
def test_trained_student_predicts_boxes(mmdet_scope, detector):
    model = build(tiny_detector_cfg(detector))
    model.bbox_head.test_cfg.score_thr = 0.0
    inputs, samples = make_batch(1, seed=7)
    model.eval()
    with torch.no_grad():
        result = model.predict(inputs, samples)[0].pred_instances
    assert len(result.bboxes) > 0 and torch.isfinite(result.bboxes).all()
    assert (result.bboxes[:, 2:] >= result.bboxes[:, :2]).all()


def vlr_of_two_images(detector: str, seed: int):
    """(head, GT instances, rows, VLR weights) of a full-LD head on a 2-image fake batch."""
    head = build_head(tiny_detector_cfg(detector, distill=dict(ld="full")))
    _, samples = make_batch(2, seed=seed)
    gts = [s.gt_instances for s in samples]
    rows = head.rows(head(random_feats()), gts, [s.metainfo for s in samples])
    return head, gts, rows, head.vlr_rows(rows, gts)


def test_fcos_vlr_is_the_non_positive_points_inside_gts(mmdet_scope):
    from ld_core.models.regions import points_inside_boxes

    head, gts, rows, vlr = vlr_of_two_images("fcos", seed=8)
    pos = rows.labels < head.num_classes
    points_per_image = rows.centers.reshape(-1, 2)
    image = torch.arange(2).repeat_interleave(sum(rows.num_level_priors))
    inside = torch.stack([points_inside_boxes(points_per_image[i:i + 1], gts[image[i]].bboxes)[0]
                          for i in range(len(image))])
    assert torch.equal(vlr > 0, inside & ~pos) and vlr.max() == 1 and pos.any()


def test_teacher_of_another_family_or_without_distribution_is_rejected(tmp_path, mmdet_scope):
    from mmengine.config import Config

    from ld_core.errors import TeacherMismatchError
    from ld_core.models.compat import check_teacher_compat

    student = tiny_detector_cfg("atss", distill=dict(ld="full"))
    cases = [(tiny_detector_cfg("gfl"), "head gfl (GFLHead) (teacher) vs atss (LDDistATSSHead) (student)"),
             (tiny_detector_cfg("atss", distribution=False), "no distribution branch"),
             (tiny_detector_cfg("atss", reg_max=8), "reg_max 8 (teacher) vs 16 (student)")]
    for teacher, needle in cases:
        with pytest.raises(TeacherMismatchError) as err:
            check_teacher_compat(student, teacher, "student.py", "teacher.py")
        msg = str(err.value)
        assert needle in msg and "student.py" in msg and "teacher.py" in msg and "\n" not in msg
    fcos = tiny_detector_cfg("fcos", distill=dict(ld="full"))
    fcos_teacher = tiny_detector_cfg("fcos")
    fcos_teacher["bbox_head"]["strides"] = [4, 8, 16, 32, 64]
    with pytest.raises(TeacherMismatchError, match="point strides"):
        check_teacher_compat(fcos, fcos_teacher, "s.py", "t.py")
    check_teacher_compat(student, tiny_detector_cfg("atss", depth=34), "s.py", "t.py")  # same family: accepted
    # the distiller refuses both a mismatched teacher and a student head that takes none
    path = tmp_path / "teacher.py"
    Config(dict(model=tiny_detector_cfg("gfl"))).dump(str(path))
    student.update(type="LocalizationDistiller", teacher_config=str(path))
    with pytest.raises(TeacherMismatchError):
        build(student)
    from ld_core.errors import ConfigError

    plain = tiny_detector_cfg("gfl")
    plain.update(type="LocalizationDistiller", teacher_config=str(path))
    with pytest.raises(ConfigError, match="takes no teacher"):
        build(plain)


def test_gfl_main_parts_equal_todays_gfl_head():
    from ld_core.config.detectors import detector_parts

    expected_plain = dict(
        type="GFLHead", num_classes=4, in_channels=16, stacked_convs=1, feat_channels=16,
        norm_cfg=dict(type="GN", num_groups=4, requires_grad=True),
        anchor_generator=dict(type="AnchorGenerator", ratios=[1.0], octave_base_scale=4, scales_per_octave=1,
                              strides=[8, 16, 32, 64, 128]),
        loss_cls=dict(type="QualityFocalLoss", use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_dfl=dict(type="DistributionFocalLoss", loss_weight=0.25), reg_max=16,
        loss_bbox=dict(type="GIoULoss", loss_weight=2.0))
    for distill in (None, dict(ld="main"), dict(ld="main", gt_box_losses=False, ld_weight=1, temperature=5,
                                                      true_kl=True, ld_normalize="per_positive")):
        parts = detector_parts("gfl", 4, TINY_PROFILE, distribution=True, distill=distill)
        assert parts["type"] == "GFL" and parts["train_cfg"]["assigner"] == dict(type="ATSSAssigner", topk=9)
        if distill is None:
            assert parts["bbox_head"] == expected_plain


def test_parts_for_each_detector_and_student_head():
    from ld_core.config.detectors import DISTILL_KEYS, detector_parts
    from ld_core.student import student_head
    from ld_core.errors import ConfigError

    retina = detector_parts("retinanet", 80, TINY_PROFILE, distribution=True, distill=dict(ld="full"))
    head = retina["bbox_head"]
    assert retina["type"] == "RetinaNet" and retina["neck"] == dict(add_extra_convs="on_input")
    assert head["type"] == "LDDistRetinaHead" and head["anchor_generator"]["octave_base_scale"] == 2
    assert head["loss_ld"]["loss_weight"] == 5 and head["loss_kd"] == dict(
        type="KnowledgeDistillationKLDivLoss", loss_weight=10, T=8)
    assert head["loss_ld_vlr"]["loss_weight"] == 0.25 and head["vlr_weighting"] == "mask"
    paper = detector_parts("retinanet", 80, dict(TINY_PROFILE, heads={}), distribution=False, distill=None)
    assert paper["bbox_head"]["type"] == "RetinaHead"
    assert paper["bbox_head"]["anchor_generator"]["octave_base_scale"] == 4
    fcos = detector_parts("fcos", 80, TINY_PROFILE, distribution=True, distill=dict(ld="full", gt_box_losses=False))
    assert fcos["bbox_head"]["regress_ranges"][:2] == [[-1, 32], [32, 64]]
    assert fcos["bbox_head"]["loss_bbox"]["loss_weight"] == 0 and "loss_dfl" not in fcos["bbox_head"]
    assert fcos["bbox_head"]["loss_kd"]["T"] == 2 and fcos["neck"]["relu_before_extra_convs"] is True
    plain = student_head(head)
    assert plain["type"] == "DistRetinaHead" and not {"loss_ld", "loss_kd", "loss_ld_vlr", "vlr_weighting"} & set(plain)
    assert student_head(dict(type="LDGFLHead", loss_ld={}, loss_kd={}))["type"] == "GFLHead"
    assert {"ld", "kd_weight", "vlr_weight"} <= DISTILL_KEYS
    with pytest.raises(ConfigError, match="unknown distill key"):
        detector_parts("atss", 80, TINY_PROFILE, distribution=True, distill=dict(ld="full", colour=1))
    with pytest.raises(ConfigError, match="distribution"):
        detector_parts("atss", 80, TINY_PROFILE, distribution=False, distill=dict(ld="main"))
    with pytest.raises(ConfigError, match="distill.ld"):
        detector_parts("atss", 80, TINY_PROFILE, distribution=True, distill=dict(ld="vlr"))
    with pytest.raises(ConfigError, match="unknown detector"):
        detector_parts("yolo", 80, TINY_PROFILE, distribution=True, distill=None)


def test_anchor_vlr_rows_follow_the_row_order(mmdet_scope):
    """Rows are (image, level, anchor), as LDGFLHead's; the VLR weights of each image's anchors land on its rows."""
    from ld_core.models.regions import vlr_region

    head, gts, rows, vlr = vlr_of_two_images("retinanet", seed=9)
    anchors, counts = torch.cat(rows.mlvl_priors), rows.num_level_priors
    expected = torch.cat([vlr_region(anchors, gt.bboxes, counts) for gt in gts])
    assert torch.equal(vlr, expected) and vlr.sum() > 0
    n = sum(counts)
    assert torch.equal(rows.levels[:n], rows.levels[n:]) and torch.equal(rows.centers[:n], rows.centers[n:])


def test_vlr_iou_weighting_and_positive_exclusion_shrink_the_vlr_term(mmdet_scope):
    feats = random_feats()
    _, samples = make_batch(2, seed=10)
    with torch.no_grad():
        teacher_outs = build_head(tiny_detector_cfg("atss"), seed=5)(feats)
    values = {}
    for name, extra in {"mask": {}, "iou": dict(vlr_weighting="max_iou"), "no_pos": dict(vlr_exclude_pos=True)}.items():
        head = build_head(tiny_detector_cfg("atss", distill=dict(ld="full", **extra)))
        values[name] = float(head.loss(feats, teacher_outs, samples)["loss_ld_vlr"])
    assert 0 < values["iou"] < values["mask"] and 0 < values["no_pos"] <= values["mask"]
    with pytest.raises(Exception, match="max_iou"):
        tiny_detector_cfg("fcos", distill=dict(ld="full", vlr_weighting="max_iou"))
