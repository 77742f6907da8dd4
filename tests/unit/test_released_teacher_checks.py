"""Released teachers (`teacher_checkpoints`): model-zoo files load with weights_only=True, fit the teacher's resolved
model key for key, and a file that does not fit fails at parse time, one line (in the DAG:
tests/workflow/test_released_teachers.py).

Every checkpoint is written by the tests with random weights (no download; the `files` fixture of tests/conftest.py,
tests/weight_files.py): mmengine's format (meta + message hub with HistoryBuffers and numpy values + optimizer +
schedulers), mmcv 1.x's ({'meta': {'mmdet_version': '2.25.0', 'CLASSES': ...}, 'state_dict': OrderedDict,
'optimizer': ...}, pre-1.6 serialisation) and bare state dicts.
"""
from __future__ import annotations

import argparse
import glob
import json
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from helpers import ROOT
from ld_core.data.synthetic import CLASSES
from ld_core.errors import ConfigError
from weight_files import run_model_cfg, save_mmcv1, save_mmengine, torchvision_backbone


# ----------------------------------------------------------------------------------------------- loading


@pytest.mark.parametrize("fmt,expected", [("mmengine", "mmengine checkpoint"), ("mmcv1", "mmcv 1.x checkpoint"),
                                          ("ddp", "bare state dict")])
def test_model_zoo_formats_load_with_weights_only_and_fit(files, teacher_state, fmt, expected):
    from ld_core.models.checkpoints import read_checkpoint
    from ld_core.models.fitting import fit_detector

    state, info = read_checkpoint(files[fmt])
    assert info["format"] == expected and list(state) == list(teacher_state)  # 'module.' stripped
    assert all(torch.equal(state[k], v) for k, v in teacher_state.items())
    if fmt != "ddp":
        assert info["classes"] == tuple(CLASSES)
    _, _, summary = fit_detector(files[fmt], run_model_cfg("gfl_r101_teacher")["model"], "gfl_r101_teacher",
                                 classes=CLASSES)
    assert summary.startswith(f"{len(teacher_state)} of {len(teacher_state)} tensors")


def test_mmengine_file_holds_exactly_the_allow_listed_types(files):
    """What makes weights_only=True refuse an mmengine file without the allow-list: only allow-listed globals."""
    from ld_core.models.checkpoints import checkpoint_safe_globals

    found = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(files["mmengine"])))
    assert "mmengine.logging.history_buffer.HistoryBuffer" in found and "builtins.getattr" in found, found
    allowed = {entry[1] if isinstance(entry, tuple) else f"{entry.__module__}.{entry.__qualname__}"
               for entry in checkpoint_safe_globals()}
    assert found <= allowed, found - allowed


# ----------------------------------------------------------------------------------------------- bad files, parse time


def pipeline(tmp_path, checkpoints, **extra):
    from ld_core.config.pipeline import load_pipeline

    return load_pipeline({"scale": "tiny", "results": str(tmp_path / "results"), "tables": ["table1"],
                          "teacher_checkpoints": checkpoints, **extra}, ROOT)


@pytest.mark.parametrize("name,needles", [
    ("r50", ["255 missing keys", "backbone.layer3.6.conv1.weight", "6 blocks in stage 3, the model 23"]),
    ("reg_max8", ["bbox_head.gfl_reg.weight: [36, 16, 3, 3] in the file vs [68, 16, 3, 3] in the model",
                  "reg_max 8 in the file vs 16 in the model"]),
    ("classes80", ["bbox_head.gfl_cls.weight: [80, 16, 3, 3] in the file vs [4, 16, 3, 3]", "80 class outputs"]),
    ("classifier", ["missing keys (backbone.conv1.weight", "unexpected keys (conv1.weight",
                    "ImageNet classification checkpoint"]),
    ("truncated", ["cannot read the checkpoint (truncated, corrupt or not a torch file"]),
    ("pickle", ["argparse.Namespace", "not on the allow-list", "weights_only=True"]),
    ("other_classes", ["its classes differ from the dataset's (class 0: 'a' in the file vs 'ellipse'"]),
])
def test_a_file_that_does_not_fit_is_one_line_at_parse_time(tmp_path, files, name, needles):
    with pytest.raises(ConfigError) as err:
        pipeline(tmp_path, {"gfl_r101_teacher": str(files[name])})
    msg = str(err.value)
    assert msg.startswith(f"{files[name]}: ") and "\n" not in msg, msg
    if name not in ("truncated", "pickle"):
        assert "does not fit teacher gfl_r101_teacher seed1000 (GFL, ResNet-101, 4 classes, reg_max 16)" in msg, msg
    for needle in needles:
        assert needle in msg, msg
    assert not list((tmp_path / "results" / "checks" / "weights").glob("*.json"))  # a failure is not cached


@pytest.mark.parametrize("checkpoints,needle", [
    ({"gfl_r101": "x.pth"}, "teacher_checkpoints.gfl_r101: 'gfl_r101' is not a run of"),
    ({"gfl_r18_ld_r101": "x.pth"}, "run 'gfl_r18_ld_r101' is not the teacher of any run"),
    ({"gfl_r101_teacher": "/nowhere/gfl.pth"}, "/nowhere/gfl.pth: teacher checkpoint of 'gfl_r101_teacher' "
                                               "(teacher_checkpoints) does not exist"),
])
def test_teacher_checkpoints_references_are_checked(tmp_path, checkpoints, needle):
    with pytest.raises(ConfigError) as err:
        pipeline(tmp_path, checkpoints)
    assert needle in str(err.value) and "\n" not in str(err.value)
    if "is not" in needle:
        assert "teacher runs: gfl_r101_teacher, gfl_r18, gfl_r50, gfl_x101dcn" in str(err.value)


def test_a_good_file_is_checked_once_then_cached(tmp_path, files):
    pipe = pipeline(tmp_path, {"gfl_r101_teacher": str(files["mmcv1"])})
    assert pipe.imported == {("gfl_r101_teacher", 1000): str(files["mmcv1"])}
    cached = list((tmp_path / "results" / "checks" / "weights").glob("*.json"))
    assert len(cached) == 1 and "656 of 656 tensors" in json.loads(cached[0].read_text())["summary"]
    code = ("import sys, time; t = time.perf_counter(); from ld_core.config.pipeline import load_pipeline\n"
            f"load_pipeline({{'scale': 'tiny', 'results': {str(tmp_path / 'results')!r}, 'tables': ['table1'],"
            f" 'teacher_checkpoints': {{'gfl_r101_teacher': {str(files['mmcv1'])!r}}}}}, {str(ROOT)!r})\n"
            "print('torch' in sys.modules, round(time.perf_counter() - t, 2))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0 and out.stdout.split()[0] == "False", out.stdout + out.stderr  # no torch import


# ----------------------------------------------------------------------------------------------- the paper's teachers


def _released_config(name: str):
    from mmengine.config import Config

    found = glob.glob(str(Path(sys.prefix) / "lib" / "python3*" / "site-packages" / "mmdet" / ".mim" / "configs" /
                          "gfl" / f"{name}.py"))
    if not found:
        pytest.skip("mmdet's configs (mmdet/.mim/configs) are not installed")
    return Config.fromfile(found[0])


@pytest.mark.parametrize("released,run_id,fmt", [
    ("gfl_r101_fpn_ms-2x_coco", "gfl_r101_teacher", "mmengine"),
    ("gfl_x101-32x4d-dconv-c4-c5_fpn_ms-2x_coco", "gfl_x101dcn", "mmcv1"),
])
def test_released_gfocal_architecture_imports_into_the_paper_teacher(tmp_path, released, run_id, fmt):
    """mmdet 3.3's released GFocal configs, built here with random weights (no download), saved in model-zoo
    format, import into the pipeline's resolved paper-scale teacher with no missing or unexpected key."""
    from mmdet.datasets import CocoDataset

    from ld_core.commands import import_teacher
    from ld_core.config.resolve import config_text
    from ld_core.models.fitting import build_model

    rel = _released_config(released)
    state = OrderedDict(build_model(rel.model.to_dict(), device="cpu").state_dict())  # init_cfg: never loaded
    classes = CocoDataset.METAINFO["classes"]
    src = (save_mmengine if fmt == "mmengine" else save_mmcv1)(tmp_path / f"{released}.pth", state, classes=classes)
    cfg = run_model_cfg(run_id, "paper", results=str(tmp_path / "results"), data_root=str(tmp_path))
    config = tmp_path / "config.py"
    config.write_text(config_text(cfg))
    out = tmp_path / "checkpoint.pth"
    assert import_teacher.run(argparse.Namespace(config=str(config), source=str(src), out=str(out), threads=1)) == 0
    saved = torch.load(out, weights_only=True)["state_dict"]
    assert list(saved) == list(state) and all(torch.equal(saved[k], v) for k, v in state.items())
    # the paper profile trains its 2x teachers with the released recipe: multi-scale 1333 x 480..800
    resize = cfg["train_dataloader"]["dataset"]["pipeline"][2]
    if run_id == "gfl_r101_teacher":
        assert resize == dict(type="RandomResize", scale=[(1333, 480), (1333, 800)], keep_ratio=True)
        assert [dict(s) for s in rel.train_dataloader.dataset.pipeline][2]["type"] == "RandomResize"
        assert list(map(tuple, rel.train_dataloader.dataset.pipeline[2]["scale"])) == resize["scale"]


def test_paper_scale_parse_check_of_a_full_size_r101_teacher(tmp_path):
    """Paper scale, tables=[table1] with the R-101 teacher released: its full-size file (51.5 M parameters) is
    checked at parse time, its ImageNet backbone is not needed (only resnet18.pth), and the verdict is cached."""
    from ld_core.config.pipeline import load_pipeline

    rel = _released_config("gfl_r101_fpn_ms-2x_coco")
    from ld_core.models.fitting import build_model
    from mmdet.datasets import CocoDataset

    state = OrderedDict(build_model(rel.model.to_dict(), device="cpu").state_dict())
    src = save_mmcv1(tmp_path / "gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth", state,
                     classes=CocoDataset.METAINFO["classes"])
    folder = tmp_path / "pretrained"
    folder.mkdir()
    torchvision_backbone(folder / "resnet18.pth", run_model_cfg("gfl_r18", "paper", data_root=str(tmp_path))["model"]
                         ["backbone"])
    config = {"scale": "paper", "data_root": str(tmp_path), "pretrained_dir": str(folder), "tables": ["table1"],
              "results": str(tmp_path / "results"), "teacher_checkpoints": {"gfl_r101_teacher": str(src)}}
    times = []
    for _ in range(2):
        start = time.perf_counter()
        pipe = load_pipeline(dict(config), ROOT)
        times.append(time.perf_counter() - start)
    assert pipe.imported == {("gfl_r101_teacher", 1000): str(src)}
    summaries = [json.loads(p.read_text())["summary"] for p in (tmp_path / "results/checks/weights").glob("*.json")]
    assert any(s.startswith(f"{len(state)} of {len(state)} tensors of teacher gfl_r101_teacher seed1000 (GFL, "
                            "ResNet-101, 80 classes, reg_max 16)") for s in summaries), summaries
    assert any("backbone tensors (ResNet-18)" in s for s in summaries) and len(summaries) == 2
    assert times[1] < times[0]


def test_check_weights_command(tmp_path, files):
    from ld_core.config.resolve import config_text

    config = tmp_path / "config.py"
    config.write_text(config_text(run_model_cfg("gfl_r101_teacher", results=str(tmp_path / "results"))))

    def check(file):
        return subprocess.run([sys.executable, "-m", "ld_core", "check-weights", "--config", str(config), "--detector",
                               str(file)], capture_output=True, text=True, cwd=ROOT, timeout=120)

    good = check(files["mmcv1"])
    assert good.returncode == 0 and good.stdout.strip().endswith("(mmcv 1.x checkpoint, 2.25.0): fits"), good.stderr
    bad = check(files["r50"])
    lines = [l for l in bad.stderr.splitlines() if l.strip()]
    assert bad.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {files['r50']}: does not fit")
