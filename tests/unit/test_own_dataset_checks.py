"""The user's own dataset in COCO's / VOC's place: dataset files, classes from the annotations, scale overrides,
one-line errors at parse time and in the dataset check (Table 1 on it through Snakemake:
tests/workflow/test_own_dataset.py)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT
from ld_core.data.example import IDS, NAMES, make_example
from ld_core.errors import ConfigError, LDError


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return make_example(tmp_path_factory.mktemp("own") / "parts", num_train=16, num_val=8, image_size=64)


def copy_example(example, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(example, tmp_path / "parts"))


def pipeline(tmp_path, **config):
    from ld_core.config.pipeline import load_pipeline

    return load_pipeline(dict(results=str(tmp_path / "results"), **config), ROOT)


def test_example_layout_and_classes_come_from_the_annotation_files(example):
    from ld_core.config.dataset_file import load_user_dataset

    coco = load_user_dataset(example / "dataset.yaml", "coco")
    assert coco.classes == NAMES  # file order (ids 12, 5, 30, 7), not sorted by id or name
    assert [c["id"] for c in json.loads((example / "labels/train.json").read_text())["categories"]] == list(IDS)
    voc = load_user_dataset(example / "dataset_voc.yaml", "voc")
    assert voc.classes == NAMES and voc.train == (("parts", "trainval"),) and voc.test == (("parts", "test"),)


def test_example_dataset_into_an_existing_folder_is_one_line_and_leaves_it_alone(example):
    """`python -m ld_core example-dataset --out <existing folder>`: exit 2, one line naming the folder."""
    before = sorted(p.name for p in example.iterdir())
    proc = subprocess.run([sys.executable, "-m", "ld_core", "example-dataset", "--out", str(example)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {example}: already exists (give a folder that does not exist yet)"
    assert sorted(p.name for p in example.iterdir()) == before


def test_resolved_configs_are_built_for_the_users_classes_and_files(example, tmp_path):
    pipe = pipeline(tmp_path, scale="tiny", tables=["table1", "table4"], seeds=[0],
                    dataset=str(example / "dataset.yaml"), voc_dataset=str(example / "dataset_voc.yaml"))
    assert not pipe.synthetic  # both matrix datasets replaced: nothing to generate
    from ld_core.config.weights import _run_config

    cfg = _run_config(pipe, "gfl_r18_ld_r101", 0)
    assert cfg["model"]["bbox_head"]["num_classes"] == 4
    test_set = cfg["test_dataloader"]["dataset"]
    assert test_set["metainfo"]["classes"] == NAMES and test_set["data_root"] == str(example)
    assert (test_set["ann_file"], test_set["data_prefix"]["img"]) == ("labels/val.json", "pictures/val/")
    assert cfg["test_evaluator"]["ann_file"] == str(example / "labels/val.json")
    assert cfg["ld_repro"]["dataset_file"] == str(example / "dataset.yaml")
    voc = _run_config(pipe, "gfl_r18_voc_ld_r34", 0)
    assert voc["model"]["bbox_head"]["num_classes"] == 4
    voc_test = voc["test_dataloader"]["dataset"]
    assert (voc_test["ann_file"], voc_test["data_prefix"]["sub_data_root"]) == ("parts/ImageSets/Main/test.txt",
                                                                                 "parts/")


def test_tables_on_the_users_dataset_are_named_after_it(example, tmp_path):
    pipe = pipeline(tmp_path, scale="tiny", tables=["table1", "table4"], seeds=[0], dataset=str(example / "dataset.yaml"))
    assert (pipe.table_dataset("table1"), pipe.table_dataset("table4")) == ("parts", None)  # VOC: the profile's
    assert pipe.teacher_metric_files(["table1"]) == [f"{tmp_path}/results/runs/gfl_r101_teacher/seed1000/metrics.json"]
    assert len(pipe.teacher_metric_files(["table1", "table4"])) == 5  # + the four VOC teachers


def test_paper_voc_runs_have_vocs_20_classes(tmp_path):
    from ld_core.config.builder import build_run_config
    from ld_core.config.matrix import load_matrix
    from ld_core.config.scale import load_scale

    matrix = load_matrix(ROOT / "configs/experiments.yaml")
    scale = load_scale(ROOT / "configs/scales/paper.yaml")
    voc = build_run_config(matrix.run("gfl_r18_voc"), 0, scale, results_dir=tmp_path, classes=None,
                           voc_root=str(tmp_path), pretrained_dir=str(tmp_path))
    coco = build_run_config(matrix.run("gfl_r18"), 0, scale, results_dir=tmp_path, classes=None,
                            data_root=str(tmp_path), pretrained_dir=str(tmp_path))
    assert (voc["model"]["bbox_head"]["num_classes"], coco["model"]["bbox_head"]["num_classes"]) == (20, 80)


def test_scale_overrides_and_a_profile_file_of_ones_own(example, tmp_path):
    over = {"input_size": [96, 80], "train": {"batch_size": 2}, "schedules": {"1x": {"iters": 3, "milestones": [2]}}}
    pipe = pipeline(tmp_path, scale="tiny", tables=["table1"], seeds=[0], dataset=str(example / "dataset.yaml"),
                    scale_overrides=over)
    assert pipe.scale["input_size"] == [96, 80] and pipe.scale["train"]["batch_size"] == 2
    assert pipe.scale["schedules"]["1x"] == {"iters": 3, "milestones": [2]}
    assert pipe.scale["train"]["optimizer"]["type"] == "SGD"  # the rest is the profile's
    profile = tmp_path / "mine.yaml"
    profile.write_text("_base_: tiny.yaml\nname: mine\ntrain: {batch_size: 3}\n")
    pipe = pipeline(tmp_path, scale=str(profile), tables=["table1"], seeds=[0], dataset=str(example / "dataset.yaml"))
    assert (pipe.scale["name"], pipe.scale["train"]["batch_size"], pipe.scale["input_size"]) == ("mine", 3, [64, 64])
    with pytest.raises(ConfigError, match=r"tiny\.yaml with scale_overrides: train: unknown key .batch_sise."):
        pipeline(tmp_path, scale="tiny", scale_overrides={"train": {"batch_sise": 2}})


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("case, expected", [
    ("val_categories", r"labels/val\.json: categories do not match those of .*labels/train\.json .*id 99 'nut'"),
    ("val_order", r"labels/val\.json: lists the categories of .*train\.json in another order"),
    ("duplicate_name", r"labels/train\.json: category name 'washer' is used twice"),
    ("malformed", r"labels/train\.json: malformed JSON"),
    ("missing_ann", r"dataset\.yaml: val\.ann .*labels/val\.json does not exist"),
    ("unknown_key", r"dataset\.yaml: .*trian"),
    ("classes_given", r"dataset\.yaml: classes: a COCO-format dataset takes its classes from the annotation"),
    ("voc_in_coco_slot", r"dataset_voc\.yaml: format 'voc' cannot be the dataset"),
])
def test_bad_dataset_is_one_line_at_parse_time(example, tmp_path, case, expected):
    root = copy_example(example, tmp_path)
    file = root / "dataset.yaml"
    if case == "val_categories":
        _edit(root / "labels/val.json", lambda d: d["categories"].__setitem__(1, {"id": 99, "name": "nut"}))
    elif case == "val_order":
        _edit(root / "labels/val.json", lambda d: d["categories"].reverse())
    elif case == "duplicate_name":
        _edit(root / "labels/train.json", lambda d: d["categories"][1].__setitem__("name", "washer"))
    elif case == "malformed":
        (root / "labels/train.json").write_text('{"images": [')
    elif case == "missing_ann":
        (root / "labels/val.json").unlink()
    elif case == "unknown_key":
        file.write_text(file.read_text() + "trian: {ann: a.json, img: b}\n")
    elif case == "classes_given":
        file.write_text(file.read_text() + "classes: [a, b]\n")
    elif case == "voc_in_coco_slot":
        file = root / "dataset_voc.yaml"
    with pytest.raises(LDError) as err:
        pipeline(tmp_path, scale="tiny", tables=["table1"], seeds=[0], dataset=str(file))
    message = str(err.value)
    assert "\n" not in message
    import re

    assert re.search(expected, message), message


def test_dataset_check_lists_missing_images_and_unknown_voc_names(example, tmp_path):
    root = copy_example(example, tmp_path)
    for name in sorted((root / "pictures/val").iterdir())[:2]:
        name.unlink()
    xml = next(x for x in sorted((root / "voc/parts/Annotations").glob("val_*.xml")) if "<name>" in x.read_text())
    xml.write_text(xml.read_text().replace("<name>washer</name>", "<name>nut</name>")
                   .replace("<name>rod</name>", "<name>nut</name>").replace("<name>wedge</name>", "<name>nut</name>")
                   .replace("<name>bracket</name>", "<name>nut</name>"))
    (root / "dataset.yaml").write_text((root / "dataset.yaml").read_text() + "expect: {train: 17}\n")
    proc = subprocess.run([sys.executable, "-m", "ld_core", "check-data", "--dataset", str(root / "dataset.yaml"),
                           "--voc-dataset", str(root / "dataset_voc.yaml"), "--out", str(tmp_path / "ok.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert sum("pictures/val/" in l and "image file listed in" in l for l in lines) == 2, lines
    assert any("16 images (train), expected 17" in l for l in lines), lines
    assert any(f"{xml.name}: object name 'nut' is not one of the 4 classes" in l for l in lines), lines
    assert not (tmp_path / "ok.json").exists()
