"""Table 3 as the authors ran it: the `authors` preset, heads without DFL, per-anchor LD rows, KD per class count."""
from __future__ import annotations

import copy
import re

import pytest
import torch
import torch.nn.functional as F

from helpers import ROOT, TINY_PROFILE, make_batch, tiny_detector_cfg


def parts(detector, distill, train=None, num_classes=80):
    from ld_core.config.detectors import detector_parts

    return detector_parts(detector, num_classes, TINY_PROFILE, distribution=True, distill=distill, train=train)


def build_head(cfg, seed=0):
    from mmdet.registry import MODELS
    from mmengine.config import ConfigDict

    head_cfg = copy.deepcopy(cfg["bbox_head"])
    head_cfg.update(train_cfg=cfg["train_cfg"], test_cfg=cfg["test_cfg"])
    torch.manual_seed(seed)
    return MODELS.build(ConfigDict(head_cfg))


def feats(images=2, size=64, seed=3):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(images, 16, max(size // s, 1), max(size // s, 1), generator=g) for s in (8, 16, 32, 64, 128)]


def test_authors_preset_sets_the_forks_constants_per_detector():
    """Values of docs/ld_implementation.md: VLR factor x Main LD weight, avg_factor 4, weighting, exclusions."""
    expect = {  # detector: (vlr weight, avg factor, weighting, exclude positives, ld_rows)
        "gfl": (0.25, 16, "max_iou", False, "edge"),
        "atss": (0.15 * 0.25, 4, "max_iou", False, "edge"),
        "fcos": (0.25 * 0.25, 4, "student_score", False, "edge"),
        "retinanet": (0.03 * 5, 4, "max_iou", True, "anchor"),
    }
    for detector, (weight, avg, weighting, exclude, rows) in expect.items():
        head = parts(detector, dict(ld="full", preset="authors"))["bbox_head"]
        assert head["loss_ld_vlr"]["loss_weight"] == pytest.approx(weight), detector
        assert (head["vlr_avg_factor"], head["vlr_weighting"]) == (avg, weighting), detector
        assert head.get("vlr_exclude_pos", False) is exclude and head["ld_rows"] == rows, detector
        assert head["loss_kd"] == dict(type="KnowledgeDistillationKLDivLoss", loss_weight=10,
                                       T=8 if detector == "retinanet" else 2)
        paper = parts(detector, dict(ld="full"))["bbox_head"]  # the paper's text: one setting for all
        assert (paper["loss_ld_vlr"]["loss_weight"], paper["vlr_avg_factor"], paper["vlr_weighting"],
                paper["ld_rows"]) == (0.25, 16, "mask", "edge"), detector
        assert paper["loss_ld"] == head["loss_ld"], detector  # Main LD is the same in both


def test_every_authors_constant_names_its_fork_file_and_line():
    text = (ROOT / "configs" / "models" / "distill.yaml").read_text()
    block = text.split("\n  authors:\n", 1)[1]
    lines = [ln for ln in block.splitlines() if ln.startswith("    ") and ":" in ln]
    per_detector = {}
    for ln in lines:
        m = re.match(r"\s+(gfl|atss|fcos|retinanet):", ln)
        if m:
            current = m.group(1)
        per_detector.setdefault(current, []).append(ln)
    assert set(per_detector) == {"gfl", "atss", "fcos", "retinanet"}
    for detector, chunk in per_detector.items():
        assert re.search(r"# \w+\.py L\d+", " ".join(chunk)), f"{detector}: no fork file:line comment"


def test_distribution_heads_have_no_dfl_unless_configured(mmdet_scope):
    _, samples = make_batch(2, seed=4)
    for detector in ("retinanet", "fcos", "atss"):
        cfg = tiny_detector_cfg(detector)
        assert "loss_dfl" not in cfg["bbox_head"], detector
        losses = build_head(cfg).loss(feats(), samples)
        assert "loss_dfl" not in losses and torch.isfinite(sum(losses.values())), detector
        cfg["bbox_head"]["loss_dfl"] = dict(type="DistributionFocalLoss", loss_weight=0.25)
        assert float(build_head(cfg).loss(feats(), samples)["loss_dfl"]) > 0, detector
    # Individual LD on a head without DFL: only the GIoU weight goes to 0
    head = parts("atss", dict(ld="full", gt_box_losses=False))["bbox_head"]
    assert head["loss_bbox"]["loss_weight"] == 0 and "loss_dfl" not in head


def test_anchor_rows_take_one_softmax_over_all_box_logits(mmdet_scope):
    """ld_rows='anchor': T^2 mean_j KL over the 4(reg_max+1) logits of a row, weighted once per row, / 4."""
    head = build_head(tiny_detector_cfg("retinanet", distill=dict(ld="main", ld_rows="anchor")))
    g = torch.Generator().manual_seed(0)
    rows, n = 6, 4 * (head.reg_max + 1)
    student, teacher = torch.randn(rows, n, generator=g), torch.randn(rows, n, generator=g)
    cls = torch.randn(rows, head.num_classes, generator=g)
    pos = torch.tensor([0, 2, 5])
    got = head.main_ld_loss(student, teacher, cls, pos, num_pos=3)
    T, w = head.loss_ld.T, head.loss_ld.loss_weight
    kl = F.kl_div(F.log_softmax(student[pos] / T, 1), F.softmax(teacher[pos] / T, 1), reduction="none").mean(1)
    score = cls.sigmoid().max(1)[0][pos]
    assert float(got) == pytest.approx(float(w * (kl * T * T * score).sum() / 4), rel=1e-5)
    edge = build_head(tiny_detector_cfg("retinanet", distill=dict(ld="main")))
    assert float(edge.main_ld_loss(student, teacher, cls, pos, num_pos=3)) != pytest.approx(float(got), rel=1e-3)


def test_student_score_vlr_weights_the_fcos_region_by_the_students_score(mmdet_scope):
    x = feats()
    _, samples = make_batch(2, seed=10)
    with torch.no_grad():
        teacher_outs = build_head(tiny_detector_cfg("fcos"), seed=5)(x)
    values = {}
    for weighting in ("mask", "student_score"):
        cfg = tiny_detector_cfg("fcos", distill=dict(ld="full", vlr_weighting=weighting))
        values[weighting] = float(build_head(cfg).loss(x, teacher_outs, samples)["loss_ld_vlr"])
    assert 0 < values["student_score"] < values["mask"]  # scores in (0, 1) shrink the 0/1 mask


def test_kd_weight_follows_the_class_count_where_the_profile_says_so():
    train = dict(batch_size=8, ld_reference_images=2, kd_reference_classes=80)
    head = parts("atss", dict(ld="full"), train=train, num_classes=4)["bbox_head"]
    assert head["loss_kd"]["loss_weight"] == pytest.approx(10 * 4 / 80)
    assert head["loss_ld"]["loss_weight"] == pytest.approx(0.25 * 2 / 8)
    coco = parts("atss", dict(ld="full"), train=dict(batch_size=2, ld_reference_images=2), num_classes=80)
    assert coco["bbox_head"]["loss_kd"]["loss_weight"] == 10


def test_unknown_preset_is_one_line_naming_it():
    from ld_core.config.detectors import distill_settings
    from ld_core.errors import ConfigError

    with pytest.raises(ConfigError, match="preset 'author' is not defined") as err:
        distill_settings("atss", dict(ld="full", preset="author"))
    assert "\n" not in str(err.value) and "distill.yaml" in str(err.value)


@pytest.mark.parametrize("detector", ["retinanet", "fcos", "atss", "gfl"])
def test_authors_preset_trains_every_detector(mmdet_scope, detector):
    """The full method with the fork's constants: every term present, finite, and a gradient on the box branch."""
    x = feats()
    _, samples = make_batch(2, seed=12)
    with torch.no_grad():
        teacher_outs = build_head(tiny_detector_cfg(detector), seed=5)(x)
    head = build_head(tiny_detector_cfg(detector, distill=dict(ld="full", preset="authors")))
    losses = head.loss(x, teacher_outs, samples)
    assert {"loss_ld", "loss_kd", "loss_ld_vlr"} <= set(losses)
    assert ("loss_dfl" in losses) is (detector == "gfl")
    total = sum(v if torch.is_tensor(v) else sum(v) for v in losses.values())
    assert torch.isfinite(total) and float(losses["loss_ld_vlr"]) > 0
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in head.named_parameters() if "reg" in n)
