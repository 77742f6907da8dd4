"""The teacher-output cache: the same teacher outputs as a fresh forward, on repeated, new and mixed batches."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import make_batch, tiny_gfl_cfg
from ld_core.models.teacher_cache import TeacherOutputCache


def build_distiller(teacher_cfg_path, teacher_ckpt, teacher_cache_mb: float = 0):
    from mmdet.registry import MODELS

    cfg = tiny_gfl_cfg()
    cfg.update(type="LocalizationDistiller", teacher_config=str(teacher_cfg_path), teacher_ckpt=str(teacher_ckpt),
               teacher_cache_mb=teacher_cache_mb)
    cfg["bbox_head"].update(type="LDGFLHead")
    return MODELS.build(cfg)


def _assert_same(a, b):
    if torch.is_tensor(a):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    else:
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)


def test_cached_teacher_outputs_equal_a_fresh_forward_and_count_reuse(teacher_files):
    cfg_path, ckpt, _ = teacher_files
    model = build_distiller(cfg_path, ckpt)
    cache = TeacherOutputCache(64)
    a, _ = make_batch(3, seed=1)
    b, _ = make_batch(3, seed=2)
    mixed = torch.cat([b[:1], a[1:2], b[2:]])           # 1 of 3 seen before; then all seen; then all new
    for inputs, hits in ((a, 0), (a, 3), (mixed, 4), (torch.flip(a, dims=[3]), 4)):
        with torch.no_grad():
            fresh = model._teacher_forward(inputs)
        _assert_same(cache(model._teacher_forward, inputs), fresh)
        assert cache.hits == hits
    assert cache.misses == 3 + 2 + 3 and len(cache.entries) == 8
    assert "4 of 12 images reused" in cache.summary()


def test_a_full_cache_still_returns_every_image_and_stores_no_more(teacher_files):
    cfg_path, ckpt, _ = teacher_files
    model = build_distiller(cfg_path, ckpt)
    cache = TeacherOutputCache(1e-4)                       # ~100 bytes: not even one image fits
    inputs, _ = make_batch(2, seed=3)
    with torch.no_grad():
        fresh = model._teacher_forward(inputs)
    for _ in range(2):
        _assert_same(cache(model._teacher_forward, inputs), fresh)
    assert cache.entries == {} and cache.nbytes == 0 and cache.hits == 0 and cache.misses == 4


def test_the_distiller_with_a_cache_gives_the_same_losses_and_gradients(teacher_files):
    cfg_path, ckpt, _ = teacher_files
    torch.manual_seed(0)
    plain = build_distiller(cfg_path, ckpt).train()
    torch.manual_seed(0)
    cached = build_distiller(cfg_path, ckpt, teacher_cache_mb=64).train()
    assert plain.teacher_cache is None
    inputs, samples = make_batch(2, seed=4)
    for step in range(2):                                  # step 1 fills the cache, step 2 reads it
        losses = [m.loss(inputs, samples) for m in (plain, cached)]
        totals = [sum(sum(v) if isinstance(v, list) else v for v in loss.values()) for loss in losses]
        assert losses[0].keys() == losses[1].keys()
        torch.testing.assert_close(totals[0], totals[1])
        for total, model in zip(totals, (plain, cached)):
            model.zero_grad()
            total.backward()
        for p, q in zip(plain.parameters(), cached.parameters()):
            torch.testing.assert_close(p.grad, q.grad)
    assert cached.teacher_cache.hits == 2


@pytest.mark.parametrize("mb", [0, 16])
def test_the_builder_passes_the_scale_profiles_budget_to_distillers_only(mb, tmp_path):
    from ld_core.config.builder import build_run_config
    from ld_core.student import student_only
    from ld_core.config.matrix import load_matrix
    from ld_core.config.scale import load_scale
    from ld_core.data.synthetic import CLASSES

    root = Path(__file__).resolve().parents[2]
    scale = load_scale(root / "configs/scales/tiny.yaml", {"train": {"teacher_cache_mb": mb}})
    matrix = load_matrix(root / "configs/experiments.yaml")
    cfg = build_run_config(matrix.run("gfl_r18_ld_r101"), 0, scale, results_dir=tmp_path, classes=list(CLASSES),
                           teacher_config=str(tmp_path / "t.py"), teacher_ckpt=str(tmp_path / "t.pth"))
    assert cfg["model"]["teacher_cache_mb"] == mb
    assert "teacher_cache_mb" not in student_only(cfg)["model"]
    assert "teacher_cache_mb" not in build_run_config(matrix.run("gfl_r18"), 0, scale, results_dir=tmp_path,
                                                      classes=list(CLASSES))["model"]
