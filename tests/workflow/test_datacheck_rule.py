"""The check_data rule: `ld_core check-data` runs locally before every paper-scale training, fails on the paper's
counts against a small fake COCO tree (nothing written) and passes with small ones (the command itself:
tests/unit/test_datacheck.py)."""
from __future__ import annotations

import json
import subprocess

from helpers import SNAKEMAKE


def test_check_data_runs_locally_before_every_paper_training(datasets, tmp_path):
    coco, _ = datasets
    common = [*SNAKEMAKE, "--directory", str(tmp_path / "wd"), "--cores", "1"]
    config = ["--config", "scale=paper", f"data_root={coco}", "tables=[table1]", "seeds=[0]", "figures=false",
              "allow_downloads=true"]
    dry = subprocess.run([*common, "-n", *config], capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "rule check_data:" in dry.stdout  # local on SLURM: tests/workflow/test_slurm_profile.py
    trains = [b for b in dry.stdout.split("\n\n") if "rule train:" in b]
    assert trains and all("results/checks/datasets.json" in b for b in trains)
    # for real: the paper counts fail (the fake tree is tiny) with every problem listed; small counts pass
    target = "results/checks/datasets.json"
    failed = subprocess.run([*common, target, *config], capture_output=True, text=True, timeout=300)
    assert failed.returncode != 0 and "expected 118,287" in failed.stdout + failed.stderr
    assert not (tmp_path / "wd" / target).exists()
    ok = subprocess.run([*common, target, *config, "data_check_counts={coco_train: 3, coco_val: 2}"],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    assert json.loads((tmp_path / "wd" / target).read_text())["summary"]["coco"]["val2017"]["images"] == 2
    log = (tmp_path / "wd" / "results" / "logs" / "check_data.log").read_text()
    assert "[check-data] opened 5 images in " in log and "(1 process)" in log  # threads.check_data capped at --cores
