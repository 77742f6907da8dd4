"""The teacher: frozen, eval mode, not a submodule, tensor-only checkpoints, mismatches rejected up front."""
from __future__ import annotations

import argparse
import copy

import pytest
import torch

from helpers import make_batch, tiny_gfl_cfg


def build_distiller(teacher_cfg_path, teacher_ckpt, **head_overrides):
    from mmdet.registry import MODELS

    cfg = tiny_gfl_cfg()
    cfg.update(type="LocalizationDistiller", teacher_config=str(teacher_cfg_path),
               teacher_ckpt=None if teacher_ckpt is None else str(teacher_ckpt))
    cfg["bbox_head"].update(type="LDGFLHead", **head_overrides)
    return MODELS.build(cfg)


def test_teacher_is_frozen_eval_and_not_a_submodule(teacher_files):
    cfg_path, ckpt, reference_teacher = teacher_files
    model = build_distiller(cfg_path, ckpt)
    teacher_params = {id(p) for p in model.teacher.parameters()}
    assert teacher_params and not teacher_params & {id(p) for p in model.parameters()}
    assert not any(k.startswith("teacher") for k in model.state_dict())
    assert all(not p.requires_grad for p in model.teacher.parameters())
    model.train()
    assert model.training and not model.teacher.training
    # weights really come from the checkpoint
    for (k, v), (k2, v2) in zip(model.teacher.state_dict().items(), reference_teacher.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    # a training step leaves the teacher untouched (BN running stats included)
    before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    inputs, samples = make_batch(2, seed=2)
    losses = model.loss(inputs, samples)
    sum(v if torch.is_tensor(v) else sum(v) for v in losses.values()).backward()
    after = model.teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.teacher.parameters())
    assert any(p.grad is not None for p in model.parameters())


def test_teacher_follows_device_and_dtype_moves(teacher_files):
    cfg_path, ckpt, _ = teacher_files
    model = build_distiller(cfg_path, ckpt).double()
    assert next(model.teacher.parameters()).dtype == torch.float64


def test_checkpoint_is_tensor_only_and_loads_with_weights_only(tmp_path, teacher_files):
    from ld_core.models.checkpoints import load_tensor_state_dict

    _, ckpt, model = teacher_files
    payload = torch.load(ckpt, weights_only=True)
    assert set(payload) == {"state_dict", "meta"}
    state = load_tensor_state_dict(ckpt)
    assert state.keys() == model.state_dict().keys()


def test_pickled_checkpoint_is_refused_with_one_line(tmp_path):
    from ld_core.errors import ConfigError
    from ld_core.models.checkpoints import load_tensor_state_dict

    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": {}, "obj": argparse.Namespace(a=1)}, bad)  # what mmengine-style pickles hold
    with pytest.raises(ConfigError) as err:
        load_tensor_state_dict(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="does not exist"):
        load_tensor_state_dict(tmp_path / "missing.pth")


@pytest.mark.parametrize("change,needle", [
    (dict(reg_max=8), "reg_max 8 (teacher) vs 16 (student)"),
    (dict(strides=(4, 8, 16, 32, 64)), "anchor strides"),
    (dict(num_classes=5), "num_classes 5 (teacher) vs 3 (student)"),
])
def test_mismatched_teacher_is_rejected_naming_both_configs(tmp_path, mmdet_scope, change, needle):
    from mmengine.config import Config

    from ld_core.errors import TeacherMismatchError
    from ld_core.models.compat import check_teacher_compat

    teacher = tiny_gfl_cfg(depth=34, **change)
    student = tiny_gfl_cfg()
    with pytest.raises(TeacherMismatchError) as err:
        check_teacher_compat(student, teacher, "student.py", "teacher.py")
    msg = str(err.value)
    assert needle in msg and "student.py" in msg and "teacher.py" in msg and "\n" not in msg
    # the detector refuses it at construction as well, before any training
    path = tmp_path / "teacher.py"
    Config(dict(model=teacher)).dump(str(path))
    with pytest.raises(TeacherMismatchError):
        build_distiller(path, None)
    check_teacher_compat(student, copy.deepcopy(student), "a", "b")  # identical: accepted


def test_building_the_teacher_does_not_shift_the_students_random_stream(teacher_files):
    """Same seed -> the LD student starts from exactly the baseline's weights (a controlled comparison)."""
    from mmdet.registry import MODELS

    cfg_path, ckpt, _ = teacher_files
    torch.manual_seed(123)
    baseline = MODELS.build(tiny_gfl_cfg())
    baseline.init_weights()
    after_baseline = torch.rand(3)
    torch.manual_seed(123)
    student = build_distiller(cfg_path, ckpt)
    student.init_weights()
    assert torch.equal(torch.rand(3), after_baseline)
    base_state = baseline.state_dict()
    for key, value in student.state_dict().items():
        assert torch.equal(value, base_state[key]), key
