"""Fixtures that several test files use (the helpers they use live in ``tests/helpers.py`` and
``tests/weight_files.py``); a fixture that one file uses lives in that file."""
from __future__ import annotations

import argparse
import copy
from collections import OrderedDict

import pytest

torch = pytest.importorskip("torch")

from helpers import make_coco, make_voc, tiny_gfl_cfg  # noqa: E402  (after the torch check)
from weight_files import (paper_backbone, random_state, run_model_cfg, save_mmcv1, save_mmengine,  # noqa: E402
                          torchvision_backbone)


@pytest.fixture
def mmdet_scope():
    from mmdet.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    import ld_core.models  # noqa: F401  (registers LD components)


@pytest.fixture
def teacher_files(tmp_path, mmdet_scope):
    """A teacher config file (R-34 GFL) and a tensor-only checkpoint of random weights."""
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from ld_core.models.checkpoints import save_tensor_checkpoint

    cfg = tiny_gfl_cfg(depth=34)
    path = tmp_path / "teacher_config.py"
    Config(dict(model=cfg)).dump(str(path))
    torch.manual_seed(1)
    model = MODELS.build(copy.deepcopy(cfg))
    ckpt = save_tensor_checkpoint(model, tmp_path / "teacher.pth", {"run": "teacher"})
    return path, ckpt, model


@pytest.fixture
def datasets(tmp_path):
    """A small fake COCO tree and VOCdevkit (tests/unit/test_datacheck.py, tests/workflow/test_datacheck_rule.py)."""
    return make_coco(tmp_path / "coco"), make_voc(tmp_path / "VOCdevkit")


@pytest.fixture(scope="module")
def teacher_state():
    """Random weights of the tiny-scale R-101 GFocal teacher (gfl_r101_teacher), as the pipeline resolves it."""
    return random_state(run_model_cfg("gfl_r101_teacher")["model"], seed=3)


@pytest.fixture(scope="module")
def files(tmp_path_factory, teacher_state):
    """Good and bad candidate files for gfl_r101_teacher at the tiny scale (the released-teacher tests)."""
    from ld_core.data.synthetic import CLASSES

    tmp = tmp_path_factory.mktemp("released")
    model = run_model_cfg("gfl_r101_teacher")["model"]
    out = dict(
        mmengine=save_mmengine(tmp / "gfl_mmengine.pth", teacher_state, classes=CLASSES),
        mmcv1=save_mmcv1(tmp / "gfl_mmcv1.pth", teacher_state, classes=CLASSES),
    )
    torch.save(OrderedDict((f"module.{k}", v) for k, v in teacher_state.items()), tmp / "gfl_ddp.pth")
    out["ddp"] = tmp / "gfl_ddp.pth"

    def variant(name, **changes):
        cfg = run_model_cfg("gfl_r101_teacher")["model"]
        for part, values in changes.items():
            cfg[part].update(values)
        return save_mmcv1(tmp / f"{name}.pth", random_state(cfg), classes=CLASSES)

    out["r50"] = variant("gfl_r50", backbone=dict(depth=50))
    out["reg_max8"] = variant("gfl_reg_max8", bbox_head=dict(reg_max=8))
    out["classes80"] = variant("gfl_80_classes", bbox_head=dict(num_classes=80))
    out["classifier"] = torchvision_backbone(tmp / "resnet101.pth", model["backbone"])
    out["truncated"] = tmp / "truncated.pth"
    out["truncated"].write_bytes(out["mmengine"].read_bytes()[:100_000])
    out["pickle"] = tmp / "pickled.pth"
    torch.save({"state_dict": teacher_state, "args": argparse.Namespace(lr=0.01)}, out["pickle"])
    out["other_classes"] = save_mmcv1(tmp / "gfl_other_classes.pth", teacher_state, classes=("a", "b", "c", "d"))
    return out


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    """A pretrained_dir with a good resnet18.pth and bad candidates for it (the pretrained-backbone tests)."""
    tmp = tmp_path_factory.mktemp("imagenet")
    r18, r34 = paper_backbone("gfl_r18", tmp), paper_backbone("gfl_r34_voc_teacher", tmp)
    (tmp / "good").mkdir()
    good = torchvision_backbone(tmp / "good" / "resnet18.pth", r18)
    bad = {"missing": torchvision_backbone(tmp / "missing.pth", r18, drop=("layer4.",)),
           "depth": torchvision_backbone(tmp / "resnet34.pth", r34),
           "truncated": tmp / "truncated.pth", "corrupt": tmp / "corrupt.pth", "empty": tmp / "empty.pth"}
    bad["truncated"].write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    bad["corrupt"].write_bytes(bytes(range(256)) * 400)
    bad["empty"].write_bytes(b"")
    detector = run_model_cfg("gfl_r18", "tiny")["model"]
    bad["detector"] = save_mmcv1(tmp / "detector.pth", random_state(detector))
    return dict(dir=tmp, good=good, bad=bad, r18=r18)
