"""The paper-scale rehearsal (`make rehearse`): every run of Tables 1-4 at the paper profile, capped at two
iterations, on generated inputs in COCO's and VOC's exact layouts. The fast tests check what the rehearsal
changes in a resolved config; the slow one runs the whole DAG."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, SNAKEMAKE

REHEARSAL = dict(train_iters=2, test_images=2, fps_images=1)


def paper_config(run_id: str, tmp_path: Path, rehearsal=REHEARSAL) -> dict:
    from ld_core.config.builder import build_run_config
    from ld_core.config.matrix import load_matrix
    from ld_core.config.scale import load_scale

    run = load_matrix(ROOT / "configs" / "experiments.yaml").run(run_id)
    teacher = dict(teacher_config="/t/config.py", teacher_ckpt="/t/checkpoint.pth") if run.teacher else {}
    return build_run_config(run, run.seed if run.seed is not None else 0,
                            load_scale(ROOT / "configs" / "scales" / "paper.yaml"), results_dir=tmp_path,
                            classes=None, data_root=str(tmp_path), voc_root=str(tmp_path),
                            pretrained_dir=str(tmp_path), rehearsal=rehearsal, **teacher)


def assert_paper_settings(cfg: dict, *, voc: bool, teacher_2x: bool) -> None:
    """What every rehearsal config must carry unchanged from the paper profile."""
    model, loop = cfg["model"], cfg["train_cfg"]
    assert cfg["optim_wrapper"]["optimizer"] == dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=0.0001)
    assert cfg["auto_scale_lr"] == dict(enable=True, base_batch_size=16)
    assert cfg["train_dataloader"]["batch_size"] == 2
    warmup, step = cfg["param_scheduler"]
    assert (warmup["type"], warmup["end"], warmup["start_factor"]) == ("LinearLR", 500, 0.001)
    epochs, milestones = (4, [3]) if voc else ((24, [16, 22]) if teacher_2x else (12, [8, 11]))
    assert (loop["max_epochs"], step["milestones"], step["by_epoch"]) == (epochs, milestones, True)
    backbone = model["backbone"]
    assert (backbone["frozen_stages"], backbone["norm_eval"], backbone["init_cfg"]["type"]) == (1, True, "Pretrained")
    train_set = cfg["train_dataloader"]["dataset"]
    while "pipeline" not in train_set:  # RepeatDataset / ConcatDataset of VOC 07+12
        train_set = train_set.get("dataset") or train_set["datasets"][0]
    resize, = [t for t in train_set["pipeline"] if "Resize" in t["type"]]
    assert tuple(map(tuple, resize["scale"])) == ((1333, 480), (1333, 800)) if teacher_2x \
        else tuple(resize["scale"]) == (1333, 800)
    test_resize, = [t for t in cfg["test_dataloader"]["dataset"]["pipeline"] if t["type"] == "Resize"]
    assert tuple(test_resize["scale"]) == (1333, 800)
    test = model["test_cfg"]
    assert (test["score_thr"], test["nms"]["iou_threshold"], test["max_per_img"]) == (0.05, 0.6, 100)
    assert cfg["custom_hooks"][0]["dtype"] == "bfloat16"
    if voc:
        assert cfg["train_dataloader"]["dataset"]["type"] == "RepeatDataset"
        assert cfg["train_dataloader"]["dataset"]["times"] == 3


def test_rehearsal_caps_training_and_evaluation_and_keeps_the_paper_settings(tmp_path):
    cfg = paper_config("gfl_r18_ld_r101", tmp_path)
    assert cfg["train_cfg"]["type"] == "CappedEpochBasedTrainLoop" and cfg["train_cfg"]["iters"] == 2
    assert dict(type="CheckInvalidLossHook", interval=1) in cfg["custom_hooks"]
    assert cfg["test_dataloader"]["dataset"]["indices"] == 2
    assert_paper_settings(cfg, voc=False, teacher_2x=False)
    plain = paper_config("gfl_r18_ld_r101", tmp_path, rehearsal=None)
    assert plain["train_cfg"]["type"] == "EpochBasedTrainLoop" and "indices" not in plain["test_dataloader"]["dataset"]
    assert_paper_settings(paper_config("gfl_r18_voc_ld_r101", tmp_path), voc=True, teacher_2x=False)
    assert_paper_settings(paper_config("gfl_r101_teacher", tmp_path), voc=False, teacher_2x=True)


def test_rehearsal_of_an_iteration_based_profile_is_one_line(tmp_path):
    from ld_core.config.builder import build_run_config
    from ld_core.config.matrix import load_matrix
    from ld_core.config.scale import load_scale
    from ld_core.errors import ConfigError

    run = load_matrix(ROOT / "configs" / "experiments.yaml").run("gfl_r18")
    with pytest.raises(ConfigError, match=r"tiny\.yaml: the rehearsal caps epoch-based training"):
        build_run_config(run, 0, load_scale(ROOT / "configs" / "scales" / "tiny.yaml"), results_dir=tmp_path,
                         classes=("a",), rehearsal=REHEARSAL)


@pytest.mark.slow
def test_paper_rehearsal_runs_every_table(tmp_path):
    """`make rehearse` in a temporary folder: inputs, the whole paper DAG, then one run again with 2 processes."""
    work = tmp_path / "work"
    work.mkdir()
    gen = subprocess.run([sys.executable, "-m", "ld_core", "rehearsal-data", "--out", "rehearsal/inputs"], cwd=work,
                         capture_output=True, text=True, timeout=600)
    assert gen.returncode == 0, gen.stderr[-2000:]
    counts = json.loads((work / "rehearsal/inputs/counts.json").read_text())
    import yaml

    assert yaml.safe_load((ROOT / "configs" / "rehearsal.yaml").read_text())["data_check_counts"] == counts
    proc = subprocess.run([*SNAKEMAKE, "--directory", str(work), "--cores", "2", "--keep-going", "--configfile",
                           str(ROOT / "configs" / "rehearsal.yaml")], capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    results = work / "rehearsal" / "results"
    for table in ("table1", "table2", "table3", "table4"):
        assert (results / "tables" / f"{table}.csv").is_file() and (results / "tables" / f"{table}.tex").is_file()
    assert (results / "scorecard.csv").is_file() and (results / "figures" / "figure2.png").is_file()
    assert (results / "scorecard" / "table1.csv").is_file()

    configs = sorted(results.glob("runs/*/seed*/config.py"))
    assert len(configs) >= 30
    from mmengine.config import Config

    paths = set()
    for path in configs:
        cfg = Config.fromfile(path).to_dict()
        meta = cfg["ld_repro"]
        assert cfg["train_cfg"]["iters"] == 2, path
        assert_paper_settings(cfg, voc=meta["dataset"] == "voc",
                              teacher_2x=cfg["param_scheduler"][1]["milestones"] == [16, 22])
        log = path.with_name("train.log")
        if log.is_file():  # not the imported teacher
            text = log.read_text()
            assert "[train] pretrained backbone:" in text and "loaded from" in text, log
            last = re.search(r"iterations in [0-9.]+ s, last loss ([-0-9.a-z]+) ->", text)
            assert last and float(last.group(1)) == float(last.group(1)) and abs(float(last.group(1))) < 1e6, log
            assert "real batch 2 = 1 process(es) x 2 images; base batch 16: lr 0.01 x 2/16 = 0.00125" in text, log
            paths.update(re.findall(r"\[train\] ATSS targets: (.*)", text))
        metrics = json.loads(path.with_name("metrics.json").read_text())
        assert all(v == v for v in metrics["metrics"].values()), path  # no NaN
    found = " ".join(paths)
    assert "batched" in found and "per-image" in found, paths  # both assignment paths ran
    teacher = json.loads((results / "runs/gfl_r101_teacher/seed1000/metrics.json").read_text())
    assert "AP" in teacher["metrics"]  # the imported (released-format) teacher is evaluated

    run_dir = results / "runs" / "gfl_r18" / "seed0"
    ddp = subprocess.run([sys.executable, "-m", "ld_core", "train", "--config", str(run_dir / "config.py"),
                          "--checkpoint", str(tmp_path / "ddp.pth"), "--work-dir", str(tmp_path / "ddp"),
                          "--procs", "2"], cwd=work, capture_output=True, text=True, timeout=900)
    assert ddp.returncode == 0, ddp.stdout[-3000:] + ddp.stderr[-3000:]
    assert "2 processes (cpu, gloo)" in ddp.stdout and (tmp_path / "ddp.pth").is_file()
    assert "real batch 4 = 2 process(es) x 2 images; base batch 16: lr 0.01 x 4/16 = 0.0025" in ddp.stdout
