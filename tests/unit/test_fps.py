"""FPS of a student: batch 1, the config's test pipeline, test_step with NMS, no teacher built."""
from __future__ import annotations

import argparse
import importlib
import json

import pytest
import torch

from helpers import tiny_detector_cfg


@pytest.fixture(scope="module")
def fps_setup(tmp_path_factory):
    """A synthetic val split, an LD config whose teacher does not exist, and a student checkpoint."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config, ConfigDict

    importlib.import_module("ld_core.models")  # registers the LD heads
    from ld_core.data.synthetic import CLASSES, generate
    from ld_core.models.checkpoints import save_tensor_checkpoint

    register_all_modules(init_default_scope=True)
    root = tmp_path_factory.mktemp("fps")
    generate(root / "data", seed=0, num_train=1, num_val=3, image_size=64, max_objects=3)
    model = tiny_detector_cfg("atss", distill=dict(ld="full"), num_classes=len(CLASSES))
    model.update(type="LocalizationDistiller", teacher_config=str(root / "missing_teacher.py"), teacher_ckpt=None)
    pipeline = [dict(type="LoadImageFromFile"), dict(type="Resize", scale=(64, 64), keep_ratio=True),
                dict(type="LoadAnnotations", with_bbox=True),
                dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor"))]
    dataset = dict(type="CocoDataset", data_root=str(root / "data" / "coco"), ann_file="annotations/instances_val.json",
                   data_prefix=dict(img="images/"), pipeline=pipeline, test_mode=True, metainfo=dict(classes=CLASSES))
    cfg_path = root / "config.py"
    Config(dict(default_scope="mmdet", model=model, test_dataloader=dict(batch_size=1, dataset=dataset))).dump(
        str(cfg_path))
    student = tiny_detector_cfg("atss", num_classes=len(CLASSES))
    torch.manual_seed(0)
    ckpt = save_tensor_checkpoint(MODELS.build(ConfigDict(student)), root / "student.pth")
    return cfg_path, ckpt, root


def test_fps_of_the_student_alone(fps_setup):
    from ld_core.commands.fps import measure_fps

    cfg_path, ckpt, _ = fps_setup
    result = measure_fps(cfg_path, ckpt, images=3, warmup=1, runs=2, threads=1)
    assert result["fps"] > 0 and len(result["fps_runs"]) == 2 and result["fps_std"] >= 0
    assert result["head"] == "DistATSSHead" and result["threads"] == 1 and result["batch_size"] == 1
    assert result["device"] == "cpu" and result["device_name"]


def test_fps_cli_writes_json_and_refuses_a_foreign_checkpoint(fps_setup, tmp_path):
    from mmdet.registry import MODELS
    from mmengine.config import ConfigDict

    from ld_core.commands import fps
    from ld_core.errors import ConfigError
    from ld_core.models.checkpoints import save_tensor_checkpoint

    cfg_path, ckpt, _ = fps_setup
    parser = argparse.ArgumentParser()
    fps.add_arguments(parser)
    out = tmp_path / "fps.json"
    args = parser.parse_args(["--config", str(cfg_path), "--checkpoint", str(ckpt), "--out", str(out),
                              "--images", "2", "--warmup", "1", "--runs", "1"])
    assert fps.run(args) == 0
    data = json.loads(out.read_text())
    assert data["fps"] > 0 and data["images"] == 2 and data["runs"] == 1 and data["fps_std"] == 0.0
    other = save_tensor_checkpoint(MODELS.build(ConfigDict(tiny_detector_cfg("fcos", num_classes=4))),
                                   tmp_path / "fcos.pth")
    with pytest.raises(ConfigError) as err:
        fps.measure_fps(cfg_path, other, images=1, warmup=0, runs=1)
    assert str(other) in str(err.value) and "\n" not in str(err.value)
