"""Experiment matrix, scale profiles, pipeline config validation and resolved mmdet configs."""
from __future__ import annotations

import pytest
import yaml

from helpers import ROOT
from ld_core.errors import ConfigError
from ld_core.config.matrix import load_matrix
from ld_core.config.pipeline import load_pipeline, validate_config

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def test_matrix_declares_each_run_once_and_derives_jobs():
    m = load_matrix(ROOT / "configs" / "experiments.yaml")
    jobs = m.jobs(["table1"], [0, 1])
    assert ("gfl_r101_teacher", 1000) in jobs and ("gfl_r101_teacher", 0) not in jobs
    assert jobs.count(("gfl_r18", 0)) == 1 and ("gfl_r18", 1) in jobs
    assert m.teacher_of("gfl_r18_ld_r101") == ("gfl_r101_teacher", 1000)


def test_tables_share_runs_and_take_their_seeds_from_the_pool():
    m = load_matrix(ROOT / "configs" / "experiments.yaml")
    pool = [0, 1, 2]
    assert m.table_seeds("table1", pool) == [0, 1, 2] and m.table_seeds("table2", pool) == [0]  # seeds: 10 > pool
    both = m.jobs(["table1", "table2"], pool)
    assert len(both) == len(set(both))
    assert [p for p in both if p[0] == "gfl_r18"] == [("gfl_r18", 0), ("gfl_r18", 1), ("gfl_r18", 2), ("gfl_r18", 1000)]
    # Self-LD: the teacher is the same run trained with another seed
    assert m.teacher_of("gfl_r18_self") == ("gfl_r18", 1000)
    assert m.run("gfl_r18_self").backbone == m.run("gfl_r18").backbone
    assert ("gfl_r18", 0) in m.row_jobs("table2", pool) and ("gfl_r18", 1) not in m.row_jobs("table2", pool)
    t4 = m.jobs(["table4"], pool)
    assert {m.run(r).dataset for r, _ in t4} == {"voc"} and len(t4) == 9


def test_dcn_backbones_and_voc_datasets_resolve(tmp_path):
    from ld_core.config.builder import build_run_config
    from ld_core.config.scale import load_scale

    m = load_matrix(ROOT / "configs" / "experiments.yaml")
    embedded = load_scale(ROOT / "configs" / "scales" / "embedded.yaml")
    paper = load_scale(ROOT / "configs" / "scales" / "paper.yaml")
    classes = ("a", "b", "c", "d")
    x101 = build_run_config(m.run("gfl_x101dcn"), 0, embedded, results_dir=tmp_path, classes=classes)["model"]["backbone"]
    assert x101["type"] == "ResNeXt" and x101["depth"] == 101 and x101["base_width"] == 4
    assert x101["groups"] == 8  # 32 groups at 64 base channels -> 8 at the embedded 16
    assert x101["dcn"]["type"] == "DCNTorch" and x101["stage_with_dcn"] == (False, False, True, True)
    x101_paper = build_run_config(m.run("gfl_x101dcn"), 0, paper, results_dir=tmp_path, classes=None,
                                  data_root=str(tmp_path))["model"]["backbone"]
    assert x101_paper["groups"] == 32 and x101_paper["dcn"]["type"] == "DCN"
    assert x101_paper["init_cfg"]["checkpoint"] == "open-mmlab://resnext101_32x4d"
    r101dcn = build_run_config(m.run("gfl_r101dcn_voc_teacher"), 1000, embedded, results_dir=tmp_path,
                               classes=classes)
    assert r101dcn["model"]["backbone"]["stage_with_dcn"] == (False, True, True, True)

    voc = build_run_config(m.run("gfl_r18_voc"), 0, embedded, results_dir=tmp_path, classes=classes)
    train, test = voc["train_dataloader"]["dataset"], voc["test_dataloader"]["dataset"]
    assert train["type"] == "VOCDataset" and train["ann_file"] == "VOC2007/ImageSets/Main/trainval.txt"
    assert test["ann_file"] == "VOC2007/ImageSets/Main/test.txt" and test["metainfo"]["classes"] == classes
    ev = voc["test_evaluator"]
    assert ev["type"] == "VOCMetric" and ev["eval_mode"] == "11points"
    assert ev["iou_thrs"] == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    with pytest.raises(ConfigError, match="need `voc_root`"):
        build_run_config(m.run("gfl_r18_voc"), 0, paper, results_dir=tmp_path, classes=None)
    voc_paper = build_run_config(m.run("gfl_r18_voc"), 0, paper, results_dir=tmp_path, classes=None,
                                 voc_root=str(tmp_path))
    repeat = voc_paper["train_dataloader"]["dataset"]
    assert repeat["type"] == "RepeatDataset" and repeat["times"] == 3
    assert [d["ann_file"] for d in repeat["dataset"]["datasets"]] == [
        "VOC2007/ImageSets/Main/trainval.txt", "VOC2012/ImageSets/Main/trainval.txt"]
    assert voc_paper["train_cfg"]["max_epochs"] == 4 and voc_paper["param_scheduler"][1]["milestones"] == [3]


def test_paper_scale_needs_voc_root_only_for_voc_tables(tmp_path):
    with pytest.raises(ConfigError, match="needs voc_root"):
        load_pipeline({"scale": "paper", "data_root": str(tmp_path), "tables": ["table4"]}, ROOT)
    pipe = load_pipeline({"scale": "paper", "data_root": str(tmp_path), "tables": ["table1"], "allow_downloads": True},
                         ROOT)
    assert pipe.jobs()


def test_voc_metrics_in_percent():
    from ld_core.evaluation.metrics import voc_metrics

    raw = {"pascal_voc/mAP": 0.5, **{f"pascal_voc/AP{i}": i / 100 for i in range(50, 100, 5)}}
    out = voc_metrics(raw)
    assert out["AP"] == 50.0 and out["AP50"] == 50.0 and out["AP95"] == 95.0 and len(out) == 11
    assert voc_metrics({}) == {"AP": 0.0, **{f"AP{i}": 0.0 for i in range(50, 100, 5)}}


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d["runs"]["gfl_r18"].update(colour="red"), "unknown key 'colour'"),
    (lambda d: d["runs"]["gfl_r18_ld_r101"].update(teacher="nope"), "teacher 'nope' is not a declared run"),
    (lambda d: d["runs"]["gfl_r101_teacher"].pop("seed"), "needs a fixed 'seed'"),
    (lambda d: d["runs"]["gfl_r18"].update(backbone="R-7"), "backbone 'R-7' not supported"),
    (lambda d: d["tables"]["table1"]["rows"][0].update(run="ghost"), "unknown run 'ghost'"),
    (lambda d: d["runs"]["gfl_r18_self"].update(teacher={"run": "gfl_r18"}), "teacher.seed must be an integer"),
    (lambda d: d["runs"]["gfl_r18_self"].update(teacher={"run": "gfl_r18", "seed": 1, "x": 2}), "unknown key 'x'"),
    (lambda d: d["runs"]["gfl_r18_self"].update(teacher={"run": "gfl_r101_teacher", "seed": 7}),
     "has the fixed seed 1000, not 7"),
    (lambda d: d["runs"]["gfl_r18_voc_ld_r34"].update(teacher="gfl_r101_teacher"), "is a gfl on coco"),
    (lambda d: d["tables"]["table2"].update(seeds=0), "seeds must be a positive integer"),
    (lambda d: d["runs"]["gfl_r18"].update(distribution=False), "always predicts a distribution"),
    (lambda d: d["runs"]["gfl_r18"].update(dataset="kitti"), "dataset 'kitti' not supported"),
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
    assert cfg["scale"] == "embedded" and cfg["threads"]["train"] == 1 and cfg["seeds"] == list(range(10))
    assert validate_config({"figures": "false"}, SCHEMA)["figures"] is False  # `--config figures=false`
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
    from ld_core.config.matrix import load_matrix
    from ld_core.config.builder import build_run_config
    from ld_core.student import student_only
    from ld_core.config.scale import load_scale

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
    # the reference LD sums over the batch: 0.25 at 2 images/GPU -> x 2/8 at the embedded batch of 8
    assert head["loss_ld"]["T"] == 10 and head["loss_ld"]["loss_weight"] == 0.25 * 2 / 8
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
    ld_paper = build_run_config(m.run("gfl_r18_ld_r101"), 0, paper, results_dir=tmp_path, classes=None,
                                data_root=str(tmp_path), teacher_config="t/config.py")
    assert ld_paper["model"]["bbox_head"]["loss_ld"]["loss_weight"] == 0.25  # 2 images/GPU: the paper's weight
