"""Released teachers in the DAG (`teacher_checkpoints`): an import_teacher job replaces the teacher's training, a
file that does not fit fails the dry run in seconds with one line, and a tiny DAG imports, evaluates and distils
from a released teacher for real. Loading and fitting the files: tests/unit/test_released_teacher_checks.py (the
checkpoints, written with random weights, are the `files` fixture of tests/conftest.py)."""
from __future__ import annotations

import json
import subprocess
import time

import torch

from helpers import SNAKEMAKE
from ld_core.data.synthetic import CLASSES
from weight_files import random_state, run_model_cfg, save_mmengine

TINY = ["scale=tiny", "seeds=[0]", "figures=false"]


# ----------------------------------------------------------------------------------------------- the DAG


def dry_jobs(tmp_path, *config, configfile=None):
    extra = ["--configfile", str(configfile)] if configfile else []
    out = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), "-n", "--cores", "1", *extra, "--config", *config],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    jobs = []
    for line in out.stdout.splitlines():  # "rule train:" / "localrule x:", then indented "input: ..." lines
        if line.split(" ")[0] in ("rule", "localrule") and line.endswith(":"):
            jobs.append(dict(rule=line.split(" ", 1)[1][:-1], input=[], output=""))
        elif jobs and line.startswith("    input: "):
            jobs[-1]["input"] = line[len("    input: "):].split(", ")
        elif jobs and line.startswith("    output: "):
            jobs[-1]["output"] = line[len("    output: "):]
    return jobs


def test_dry_run_imports_the_teacher_instead_of_training_it(tmp_path, files):
    jobs = dry_jobs(tmp_path, *TINY, "tables=[table1]", f"teacher_checkpoints={{gfl_r101_teacher: {files['mmcv1']}}}")
    teacher = "results/runs/gfl_r101_teacher/seed1000/checkpoint.pth"
    producers = [j["rule"] for j in jobs if j["output"] == teacher]
    assert producers == ["import_teacher"], jobs
    imp = next(j for j in jobs if j["rule"] == "import_teacher")
    assert imp["input"] == ["results/runs/gfl_r101_teacher/seed1000/config.py", str(files["mmcv1"])]
    trains = {j["output"].split("/")[2] for j in jobs if j["rule"] == "train"}
    assert trains == {"gfl_r18", "gfl_r18_ld_r101", "gfl_r18_ld_only_r101"}
    for j in jobs:
        if j["rule"] == "train" and "_ld" in j["output"]:
            assert teacher in j["input"], j  # the students still depend on the teacher's checkpoint
    evaluated = {j["output"].split("/")[2] for j in jobs if j["rule"] == "evaluate"}
    assert "gfl_r101_teacher" in evaluated  # the imported teacher is evaluated as a trained one would be


def test_dry_run_self_ld_teacher_imported_at_its_teacher_seed_only(tmp_path):
    """gfl_r18 is Table 2's baseline (seed 0, trained) and the R-18 Self-LD teacher (seed 1000, imported). The
    mapping comes from a YAML config file this time, with a path relative to the working directory."""
    (tmp_path / "wd" / "ckpt").mkdir(parents=True)
    save_mmengine(tmp_path / "wd" / "ckpt" / "r18.pth", random_state(run_model_cfg("gfl_r18")["model"]),
                  classes=CLASSES)
    mine = tmp_path / "mine.yaml"
    mine.write_text("teacher_checkpoints:\n  gfl_r18: ckpt/r18.pth\n")
    jobs = dry_jobs(tmp_path / "wd", *TINY, "tables=[table2]", configfile=mine)
    imp = next(j for j in jobs if j["rule"] == "import_teacher")
    assert imp["input"][1] == str((tmp_path / "wd" / "ckpt" / "r18.pth").resolve())
    makers = {j["output"]: j["rule"] for j in jobs if j["output"].endswith("checkpoint.pth")}
    assert makers["results/runs/gfl_r18/seed1000/checkpoint.pth"] == "import_teacher"
    assert makers["results/runs/gfl_r18/seed0/checkpoint.pth"] == "train"
    assert makers["results/runs/gfl_r50/seed1000/checkpoint.pth"] == "train"


def test_dry_run_with_a_bad_file_fails_in_seconds_with_one_line(tmp_path, files):
    start = time.perf_counter()
    out = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), "-n", "--cores", "1", "--config", *TINY,
                          "tables=[table1]", f"teacher_checkpoints={{gfl_r101_teacher: {files['reg_max8']}}}"],
                         capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start
    assert out.returncode != 0
    errors = [l for l in (out.stdout + out.stderr).splitlines() if l.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {files['reg_max8']}: does not fit"), out.stderr
    assert "reg_max 8 in the file vs 16 in the model" in errors[0]
    assert seconds < 60, seconds  # parse + one check (about 8 s on the 2 loaded cores here); nothing ran
    assert not (tmp_path / "results" / "runs").exists()


def test_tiny_dag_imports_evaluates_and_distils_from_a_released_teacher(tmp_path, files, teacher_state):
    """For real: import (mmcv 1.x file) -> evaluate the teacher, and train + evaluate an LD student from it."""
    results = tmp_path / "results"
    targets = ["results/runs/gfl_r101_teacher/seed1000/metrics.json", "results/runs/gfl_r18_ld_r101/seed0/metrics.json"]
    out = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), "--cores", "2", *targets, "--config", *TINY,
                          "tables=[table1]", f"teacher_checkpoints={{gfl_r101_teacher: {files['mmcv1']}}}"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    teacher = results / "runs/gfl_r101_teacher/seed1000"
    assert not (teacher / "train.log").exists()
    assert "[import] 656 of 656 tensors" in (teacher / "import.log").read_text()
    payload = torch.load(teacher / "checkpoint.pth", weights_only=True)  # tensor-only, as a trained teacher's
    assert set(payload) == {"state_dict", "meta"} and payload["meta"]["source_format"] == "mmcv 1.x checkpoint"
    assert payload["meta"]["imported_from"] == str(files["mmcv1"])
    assert all(torch.equal(payload["state_dict"][k], v) for k, v in teacher_state.items())
    metrics = json.loads((teacher / "metrics.json").read_text())
    assert "AP" in metrics["metrics"]
    student = results / "runs/gfl_r18_ld_r101/seed0"
    assert (student / "checkpoint.pth").is_file() and (student / "metrics.json").is_file()
    assert str(teacher.resolve() / "checkpoint.pth") in (student / "config.py").read_text()
