"""Batched ATSS targets equal mmdet's per-image GFLHead.get_targets exactly (ties, empty images included)."""
from __future__ import annotations

import copy

import pytest
import torch

from helpers import tiny_gfl_cfg

SIZE = 128


def build_heads(batched_type: str = "BatchedGFLHead"):
    """mmdet's GFLHead and a head with batched targets (the plain one or the LD student's), same config."""
    from mmdet.registry import MODELS

    cfg = tiny_gfl_cfg()
    head_cfg = dict(cfg["bbox_head"], train_cfg=cfg["train_cfg"])
    head_cfg.pop("type")
    stock = MODELS.build(dict(type="GFLHead", **copy.deepcopy(head_cfg)))
    batched = MODELS.build(dict(type=batched_type, **copy.deepcopy(head_cfg)))
    return stock, batched


def gt_instances(num_gts, seed):
    """Random boxes, grid-aligned boxes (tied anchor distances), duplicates, and an image with none."""
    from mmengine.structures import InstanceData

    g = torch.Generator().manual_seed(seed)
    out = []
    for i, n in enumerate(num_gts):
        xy = torch.rand(n, 2, generator=g) * SIZE * 0.6
        wh = 4 + torch.rand(n, 2, generator=g) * SIZE * 0.5
        boxes = torch.cat([xy, (xy + wh).clamp(max=SIZE - 1)], dim=1)
        if n >= 3 and i % 2 == 0:  # centred between anchor centres: equal distances to several anchors
            boxes[0] = torch.tensor([8.0, 8.0, 40.0, 40.0])
            boxes[1] = torch.tensor([16.0, 32.0, 48.0, 96.0])
            boxes[2] = boxes[1]  # a duplicate GT
        out.append(InstanceData(bboxes=boxes, labels=torch.randint(0, 3, (n,), generator=g)))
    return out


def targets(head, gts, num_imgs, shapes=None):
    """The head's targets for a batch padded to SIZE x SIZE; ``shapes``: each image's own (padded) size."""
    shapes = shapes or [(SIZE, SIZE)] * num_imgs
    metas = [dict(img_shape=s, pad_shape=s, batch_input_shape=(SIZE, SIZE)) for s in shapes]
    sizes = [torch.Size((SIZE // s, SIZE // s)) for s in (8, 16, 32, 64, 128)]
    anchors, flags = head.get_anchors(sizes, metas, device="cpu")
    return head.get_targets(anchors, flags, gts, metas)


@pytest.mark.parametrize("num_gts,seed,head", [([3, 1, 0, 7], 0, "BatchedGFLHead"), ([5, 5], 1, "BatchedGFLHead"),
                                               ([0, 0], 2, "BatchedGFLHead"), ([12, 3, 4, 1, 9, 3], 3, "LDGFLHead")])
def test_batched_targets_equal_mmdet(mmdet_scope, num_gts, seed, head):
    from mmdet.models.dense_heads import GFLHead

    stock, batched = build_heads(head)
    per_image_calls = []
    batched._get_targets_single = lambda *a, **k: per_image_calls.append(1) or GFLHead._get_targets_single(
        batched, *a, **k)
    gts = gt_instances(num_gts, seed)
    ref, ours = targets(stock, gts, len(num_gts)), targets(batched, gts, len(num_gts))
    names = ("anchors", "labels", "label_weights", "bbox_targets", "bbox_weights")
    for name, ref_levels, our_levels in zip(names, ref[:5], ours[:5]):
        assert len(ref_levels) == len(our_levels) == 5
        for level, (r, o) in enumerate(zip(ref_levels, our_levels)):
            assert r.shape == o.shape and r.dtype == o.dtype, (name, level)
            assert torch.equal(r, o), (name, level)
    assert ref[5] == ours[5]
    assert not per_image_calls  # the batched path ran, not mmdet's per-image fallback
    if sum(num_gts):
        assert sum(int((lab < 3).sum()) for lab in ours[1]) > 0  # positives exist: the test compares something


def assert_same_targets(ref, ours):
    for r_levels, o_levels in zip(ref[:5], ours[:5]):
        for r, o in zip(r_levels, o_levels):
            assert r.shape == o.shape and torch.equal(r, o)
    assert ref[5] == ours[5]


def test_keep_ratio_batches_use_the_vectorised_assigner_and_equal_mmdet(mmdet_scope):
    """Images of different padded shapes (paper-scale keep-ratio batches): per image, all GT boxes at once."""
    from ld_core.models.batched_atss import VectorizedATSSAssigner

    stock, batched = build_heads("LDGFLHead")
    gts = gt_instances([4, 6, 3], 7)
    shapes = [(SIZE, SIZE), (96, SIZE), (SIZE, 64)]
    for g, (h, w) in zip(gts, shapes):
        g.bboxes[:, 0::2] = g.bboxes[:, 0::2].clamp(max=w - 1)
        g.bboxes[:, 1::2] = g.bboxes[:, 1::2].clamp(max=h - 1)
    ref, ours = targets(stock, gts, 3, shapes), targets(batched, gts, 3, shapes)
    assert type(batched.assigner) is VectorizedATSSAssigner
    assert_same_targets(ref, ours)
    assert int((ours[2][0] == 0).sum()) > 0  # anchors outside an image's own shape: zero weight


@pytest.mark.parametrize("seed", range(4))
def test_vectorised_assigner_equals_mmdet(seed):
    from mmdet.models.task_modules.assigners import ATSSAssigner
    from mmdet.models.task_modules.prior_generators import AnchorGenerator
    from mmengine.structures import InstanceData

    from ld_core.models.batched_atss import VectorizedATSSAssigner

    gen = AnchorGenerator(strides=[8, 16, 32, 64, 128], ratios=[1.0], octave_base_scale=8, scales_per_octave=1)
    mlvl = gen.grid_priors([(SIZE // s, SIZE // s) for s in (8, 16, 32, 64, 128)], device="cpu")
    priors = InstanceData(priors=torch.cat(mlvl))
    gts = gt_instances([1 + 3 * seed], seed)[0]
    ref = ATSSAssigner(topk=9).assign(priors, [len(m) for m in mlvl], gts)
    ours = VectorizedATSSAssigner(topk=9).assign(priors, [len(m) for m in mlvl], gts)
    assert ref.num_gts == ours.num_gts
    for name in ("gt_inds", "max_overlaps", "labels"):
        assert torch.equal(getattr(ref, name), getattr(ours, name)), name
    assert int((ours.gt_inds > 0).sum()) > 0


def test_falls_back_where_it_would_differ(mmdet_scope):
    """Anchors outside the image (allowed_border >= 0) are handled by mmdet's own per-image path."""
    stock, batched = build_heads()
    batched.train_cfg["allowed_border"] = 0
    calls = []
    original = type(batched).__mro__[2].get_targets  # GFLHead.get_targets

    def spy(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    type(batched).__mro__[2].get_targets = spy
    try:
        targets(batched, gt_instances([2, 3], 5), 2)
    finally:
        type(batched).__mro__[2].get_targets = original
    assert calls == [1]
