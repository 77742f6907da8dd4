"""Real Snakemake execution: dry run of the default DAG, and a tiny DAG run for real (killed and resumed)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd


ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]


def snakemake(workdir, *args, check=True, **kwargs):
    proc = subprocess.run([*SNAKEMAKE, "--directory", str(workdir), *args], capture_output=True, text=True, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def test_dry_run_of_default_dag_lists_every_job_once(tmp_path):
    out = snakemake(tmp_path, "-n", "--cores", "2", "--quiet", "rules").stdout
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    # 1 dataset; 4 runs (teacher + 3 students) x (resolve, train, evaluate); 1 table; figures; scorecard; all
    assert counts == {"all": 1, "evaluate": 4, "resolve_config": 4, "synthetic_dataset": 1, "table": 1,
                      "figures": 1, "scorecard": 1, "train": 4, "total": 17}, out


def test_dry_run_with_three_seeds_trains_the_teacher_once(tmp_path):
    out = snakemake(tmp_path, "-n", "--cores", "2", "--quiet", "rules", "--config", "seeds=[0,1,2]").stdout
    train = [l for l in out.splitlines() if l.split()[:1] == ["train"]]
    assert train and int(train[0].split()[1]) == 1 + 3 * 3, out


def test_bad_config_key_is_one_clear_line(tmp_path):
    proc = snakemake(tmp_path, "-n", "--cores", "1", "--config", "epochz=3", check=False)
    assert proc.returncode != 0
    assert "unknown config key 'epochz'" in proc.stderr + proc.stdout


def test_tiny_dag_runs_for_real_and_resumes_after_a_kill(tmp_path):
    cfg = ["--config", "scale=tiny", "results=results", "seeds=[0,1]"]
    results = tmp_path / "results"
    proc = subprocess.Popen([*SNAKEMAKE, "--directory", str(tmp_path), "--cores", "2", *cfg],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    teacher_ckpt = results / "runs/gfl_r101_teacher/seed1000/checkpoint.pth"
    student_logs = [results / f"runs/{r}/seed0/train.log" for r in ("gfl_r18_ld_r101", "gfl_r18_ld_only_r101")]
    deadline = time.time() + 400
    while time.time() < deadline and proc.poll() is None:
        if teacher_ckpt.exists() and any(p.exists() for p in student_logs):
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the DAG finished before it could be interrupted:\n" + proc.stdout.read()[-3000:]
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal: the whole foreground process group
    proc.wait(timeout=120)
    for log in student_logs:  # an interrupted training left nothing that looks finished
        ckpt = log.with_name("checkpoint.pth")
        assert not ckpt.exists() or "[train]" in log.read_text(), f"{ckpt} exists but its training did not finish"
    teacher_mtime = teacher_ckpt.stat().st_mtime

    snakemake(tmp_path, "--cores", "2", *cfg, timeout=600)
    assert teacher_ckpt.stat().st_mtime == teacher_mtime, "the finished teacher was trained again"
    again = snakemake(tmp_path, "-n", "--cores", "2", *cfg)
    assert "Nothing to be done" in again.stdout + again.stderr

    table = pd.read_csv(results / "tables/table1.csv")
    assert list(table["row"].unique()) == ["gt-only", "ld-only", "ld+gt"]
    assert (table["n_seeds"] == 2).all()
    assert set(table["metric"]) == {"AP", "AP75"}
    assert table["paper"].notna().all() and table["reproduced"].notna().all()
    tex = (results / "tables/table1.tex").read_text()
    assert "\\toprule" in tex and "35.8" in tex
    for run, seed in [("gfl_r101_teacher", 1000), ("gfl_r18", 0), ("gfl_r18_ld_r101", 1), ("gfl_r18_ld_only_r101", 0)]:
        run_dir = results / "runs" / run / f"seed{seed}"
        for name in ("config.py", "checkpoint.pth", "train.log", "metrics.json"):
            assert (run_dir / name).is_file(), f"{run_dir / name} missing"
        metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
        assert set(metrics) >= {"AP", "AP50", "AP75", "APs", "APm", "APl"}
    assert not (results / "runs/gfl_r101_teacher/seed0").exists(), "the fixed-seed teacher was trained per seed"
    for name in ("figure1.png", "figure1.pdf", "figure2.png", "figure2.pdf", "table1_bars.png"):
        assert (results / "figures" / name).stat().st_size > 1000, name
    scorecard = pd.read_csv(results / "scorecard.csv")
    assert {"cell", "claim"} <= set(scorecard["kind"])
    report = tmp_path / "report.html"
    snakemake(tmp_path, "--report", str(report), *cfg, timeout=300)
    html = report.read_text(errors="replace")
    assert report.stat().st_size > 10000 and "figure1.png" in html and "table1.csv" in html
    # the resolved config reruns with plain mmdet/mmengine tools (student LD config incl. teacher)
    check = subprocess.run([sys.executable, "-c", (
        "import sys; from mmengine.config import Config; from mmengine.registry import init_default_scope;"
        "from mmdet.registry import MODELS; import ld_core.models; init_default_scope('mmdet');"
        "cfg = Config.fromfile(sys.argv[1]); m = MODELS.build(cfg.model);"
        "print(type(m).__name__, type(m.teacher).__name__)"),
        str(results / "runs/gfl_r18_ld_r101/seed0/config.py")], capture_output=True, text=True, cwd=ROOT)
    assert check.returncode == 0 and check.stdout.split() == ["LocalizationDistiller", "GFL"], check.stderr
