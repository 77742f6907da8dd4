"""Experiment matrix, scale profiles, pipeline config validation and resolved mmdet configs."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ld_core.errors import ConfigError
from ld_core.matrix import load_matrix
from ld_core.pipeline import load_pipeline, validate_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def test_matrix_declares_each_run_once_and_derives_jobs():
    m = load_matrix(ROOT / "configs" / "experiments.yaml")
    jobs = m.jobs(["table1"], [0, 1])
    assert ("gfl_r101_teacher", 1000) in jobs and ("gfl_r101_teacher", 0) not in jobs
    assert jobs.count(("gfl_r18", 0)) == 1 and ("gfl_r18", 1) in jobs
    assert m.teacher_of("gfl_r18_ld_r101") == ("gfl_r101_teacher", 1000)


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d["runs"]["gfl_r18"].update(colour="red"), "unknown key 'colour'"),
    (lambda d: d["runs"]["gfl_r18_ld_r101"].update(teacher="nope"), "teacher 'nope' is not a declared run"),
    (lambda d: d["runs"]["gfl_r101_teacher"].pop("seed"), "needs a fixed 'seed'"),
    (lambda d: d["runs"]["gfl_r18"].update(backbone="R-7"), "backbone 'R-7' not supported"),
    (lambda d: d["tables"]["table1"]["rows"][0].update(run="ghost"), "unknown run 'ghost'"),
])
def test_matrix_errors_are_one_line_and_name_the_file(tmp_path, mutate, needle):
    data = yaml.safe_load((ROOT / "configs" / "experiments.yaml").read_text())
    mutate(data)
    path = tmp_path / "experiments.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_matrix(path)
    assert needle in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_pipeline_config_defaults_and_unknown_keys():
    cfg = validate_config({}, SCHEMA)
    assert cfg["scale"] == "embedded" and cfg["threads"]["train"] == 1 and cfg["seeds"] == [0]
    with pytest.raises(ConfigError, match="unknown config key 'epochs'"):
        validate_config({"epochs": 3}, SCHEMA, "configs/config.yaml")
    with pytest.raises(ConfigError, match="unknown config key 'gpus' in threads"):
        validate_config({"threads": {"gpus": 2}}, SCHEMA)
    with pytest.raises(ConfigError, match="seeds"):
        validate_config({"seeds": ["a"]}, SCHEMA)


def test_paper_scale_needs_an_existing_data_root(tmp_path):
    with pytest.raises(ConfigError, match="needs data_root"):
        load_pipeline({"scale": "paper"}, ROOT)
    with pytest.raises(ConfigError, match="data_root does not exist"):
        load_pipeline({"scale": "paper", "data_root": str(tmp_path / "coco")}, ROOT)


def test_resolved_configs(tmp_path):
    from ld_core.matrix import load_matrix
    from ld_core.mmdet_config import build_run_config, student_only
    from ld_core.scale import load_scale

    m = load_matrix(ROOT / "configs" / "experiments.yaml")
    scale = load_scale(ROOT / "configs" / "scales" / "embedded.yaml")
    classes = ("a", "b", "c", "d")
    base = build_run_config(m.run("gfl_r18"), 0, scale, results_dir=tmp_path, classes=classes)
    assert base["model"]["type"] == "GFL" and base["model"]["backbone"]["depth"] == 18
    assert base["model"]["bbox_head"]["num_classes"] == 4
    assert base["randomness"]["seed"] == 0
    assert any(step["type"] == "Resize" for step in base["test_dataloader"]["dataset"]["pipeline"])
    ld_only = build_run_config(m.run("gfl_r18_ld_only_r101"), 0, scale, results_dir=tmp_path, classes=classes,
                               teacher_config="t/config.py", teacher_ckpt="t/checkpoint.pth")
    head = ld_only["model"]["bbox_head"]
    assert ld_only["model"]["type"] == "LocalizationDistiller" and head["type"] == "LDGFLHead"
    assert head["loss_bbox"]["loss_weight"] == 0 and head["loss_dfl"]["loss_weight"] == 0
    assert head["loss_ld"]["T"] == 10 and head["loss_ld"]["loss_weight"] == 0.25
    teacher = build_run_config(m.run("gfl_r101_teacher"), 1000, scale, results_dir=tmp_path, classes=classes)
    assert teacher["train_cfg"]["max_iters"] == 2 * base["train_cfg"]["max_iters"]
    plain = student_only(ld_only)
    assert plain["model"]["type"] == "GFL" and plain["model"]["bbox_head"]["type"] == "GFLHead"
    assert "teacher_config" not in plain["model"] and "loss_ld" not in plain["model"]["bbox_head"]
    paper = load_scale(ROOT / "configs" / "scales" / "paper.yaml")
    cfg = build_run_config(m.run("gfl_r18"), 0, paper, results_dir=tmp_path, classes=None, data_root=str(tmp_path))
    assert cfg["model"]["backbone"]["init_cfg"]["checkpoint"] == "torchvision://resnet18"
    assert cfg["auto_scale_lr"] == {"enable": True, "base_batch_size": 16}
    assert cfg["train_cfg"]["max_epochs"] == 12 and cfg["param_scheduler"][1]["milestones"] == [8, 11]
