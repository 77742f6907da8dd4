"""Real Snakemake execution: dry run of the default DAG, and a tiny DAG run for real (killed and resumed)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd

from helpers import ROOT, SNAKEMAKE


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
    # 61 (run, seed) trainings x (resolve, train, evaluate): Table 1 = R-101 teacher + 3 students x 10 seeds;
    # Table 2 = 8 more (gfl_r18 is Table 1's; the R-18/R-50/X-101 Self-LD teachers are seed-1000 runs);
    # Table 3 = 3 R-101 teachers + 7 R-50 students + 3 distribution heads without a teacher (gfl_r50 is
    # Table 2's, the GFocal teacher Table 1's),
    # plus a profile job (params, FLOPs, FPS) per row; Table 4 = 5 VOC students + 4 VOC teachers;
    # 1 dataset, 4 tables, figures, scorecard, Table 1's part of the scorecard first, all
    assert counts == {"all": 1, "evaluate": 61, "resolve_config": 61, "synthetic_dataset": 1, "table": 4,
                      "profile": 11, "figures": 1, "scorecard": 1, "scorecard_first": 1, "train": 61,
                      "total": 203}, out


def test_dry_run_seed_pool_replicates_only_table1_and_trains_teachers_once(tmp_path):
    def trainings(*config):
        out = snakemake(tmp_path, "-n", "--cores", "2", "--quiet", "rules", "--config", *config).stdout
        train = [l for l in out.splitlines() if l.split()[:1] == ["train"]]
        return int(train[0].split()[1])

    # one seed: every run once; Table 1 (seeds: 10) takes its 3 students x 9 more seeds from the pool
    assert trainings("seeds=[0]") == 61 - 27
    assert trainings("seeds=[0,1,2,3,4,5]", "tables=[table1]") == 1 + 3 * 6  # the teacher once, never per seed
    assert trainings("seeds=[0,1,2,3,4,5,6,7,8,9,10,11]", "tables=[table1]") == 1 + 3 * 10  # the pool is capped


def test_dry_run_starts_teachers_before_the_students_of_their_priority_band(tmp_path):
    out = snakemake(tmp_path, "-n", "--cores", "2", "--config", "seeds=[0,1]", "tables=[table1,table2]").stdout
    prio = {}  # (rule, run, seed) -> priority, from the dry run's job blocks
    for block in re.split(r"\n(?=\[\w{3} \w{3} )", out):  # a job block starts with its [date] line
        lines = [l.strip() for l in block.splitlines()]
        head = next((l for l in lines if l.endswith(":") and l.split()[0] in ("rule", "localrule")), None)
        wc = next((l for l in lines if l.startswith("wildcards: run=")), None)
        pr = next((l for l in lines if l.startswith("priority: ")), None)
        if head and wc:  # Snakemake prints no priority line for priority 0
            run, seed = (kv.split("=")[1] for kv in wc[len("wildcards: "):].split(", "))
            prio[(head.split()[-1].rstrip(":"), run, int(seed))] = int(pr.split()[1]) if pr else 0
    for rule in ("resolve_config", "train"):
        # Table 1 first (10), its R-101 teacher before its students (11); Table 2's Self-LD teachers (seed 1000)
        # before Table 2's students (1 vs 0)
        assert prio[(rule, "gfl_r101_teacher", 1000)] == 11
        assert prio[(rule, "gfl_r18_ld_r101", 1)] == prio[(rule, "gfl_r18", 0)] == 10
        assert prio[(rule, "gfl_r50", 1000)] == prio[(rule, "gfl_x101dcn", 1000)] == 1
        assert prio[(rule, "gfl_r50", 0)] == prio[(rule, "gfl_r50_self", 0)] == 0
    assert prio[("evaluate", "gfl_r101_teacher", 1000)] == 10  # evaluations are on no one's critical path


def test_bad_config_key_is_one_clear_line(tmp_path):
    proc = snakemake(tmp_path, "-n", "--cores", "1", "--config", "epochz=3", check=False)
    assert proc.returncode != 0
    assert "unknown config key 'epochz'" in proc.stderr + proc.stdout


def test_tiny_dag_runs_for_real_and_resumes_after_a_kill(tmp_path):
    cfg = ["--config", "scale=tiny", "results=results", "seeds=[0,1]", "tables=[table1]"]
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
    # every LD student logs its teacher cache; one that trained from scratch (not resumed after the interrupt,
    # which may land after its last mmengine checkpoint) saw tiny's 4 iterations x 4 images through it
    ld_logs = [(results / f"runs/{r}/seed{s}/train.log").read_text()
               for r in ("gfl_r18_ld_r101", "gfl_r18_ld_only_r101") for s in (0, 1)]
    assert all("[train] teacher cache: " in log for log in ld_logs)
    fresh = [log for log in ld_logs if "[train] resuming from" not in log]
    assert fresh and all(" of 16 images reused" in log for log in fresh), fresh[-1][-2000:] if fresh else ld_logs
    assert "teacher cache" not in (results / "runs/gfl_r18/seed1/train.log").read_text()
    timing = subprocess.run([sys.executable, "-m", "ld_core", "timing", "--benchmarks", str(results / "benchmarks"),
                             "--out", str(tmp_path / "timing.csv")], capture_output=True, text=True, check=True)
    per_rule = pd.read_csv(tmp_path / "timing.csv").set_index("rule")
    assert per_rule.loc["train", "jobs"] == 7 and per_rule.loc["evaluate", "jobs"] == 7, timing.stdout
    assert per_rule.loc["train", "job_s"] > per_rule.loc["resolve_config", "job_s"] > 0
    assert "| **all** |" in timing.stdout and abs(per_rule["share"].sum() - 1) < 1e-9
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


def test_tiny_voc_self_ld_and_dcn_runs_for_real(tmp_path):
    """Tables 2 and 4 wiring on a reduced matrix: VOC data + VOCMetric, a DCN teacher, Self-LD with ResNeXt-DCN."""
    import yaml

    full = yaml.safe_load((ROOT / "configs/experiments.yaml").read_text())
    keep = ["gfl_x101dcn", "gfl_x101dcn_self", "gfl_r18_voc", "gfl_r101dcn_voc_teacher", "gfl_r18_voc_ld_r101dcn"]
    tables = {
        "table2": {**full["tables"]["table2"], "rows": [r for r in full["tables"]["table2"]["rows"]
                                                        if r["run"] in keep]},
        "table4": {**full["tables"]["table4"], "rows": [r for r in full["tables"]["table4"]["rows"]
                                                        if r["run"] in keep]},
    }
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(yaml.safe_dump({"runs": {k: full["runs"][k] for k in keep}, "tables": tables}))
    # the paper's numbers and the claims are checked against the matrix at parse time: only the kept rows
    rows = {(t, r["row"]) for t, spec in tables.items() for r in spec["rows"]}
    paper_lines = (ROOT / "configs/paper_tables.csv").read_text().splitlines()
    paper = tmp_path / "paper_tables.csv"
    paper.write_text("\n".join([paper_lines[0]] + [l for l in paper_lines[1:]
                                                   if (f"table{l.split(',')[0]}", l.split(",")[1]) in rows]) + "\n")
    claims = tmp_path / "claims.yaml"
    claims.write_text(yaml.safe_dump({"claims": [
        c for c in yaml.safe_load((ROOT / "configs/claims.yaml").read_text())["claims"]
        if all((c["table"], r) in rows for r in [*c["better"], c["than"]])]}))
    cfg = ["--config", "scale=tiny", f"matrix={matrix}", f"paper_tables={paper}", f"claims={claims}",
           "tables=[table2,table4]", "seeds=[0]", "figures=false"]
    snakemake(tmp_path, "--cores", "2", *cfg, timeout=600)
    results = tmp_path / "results"
    assert (results / "runs/gfl_x101dcn/seed1000/checkpoint.pth").is_file(), "the Self-LD teacher (seed 1000)"
    student_cfg = (results / "runs/gfl_x101dcn_self/seed0/config.py").read_text()
    assert "runs/gfl_x101dcn/seed1000/checkpoint.pth" in student_cfg and "DCNTorch" in student_cfg
    assert "ResNeXt" in student_cfg
    voc = json.loads((results / "runs/gfl_r18_voc_ld_r101dcn/seed0/metrics.json").read_text())
    assert voc["dataset"] == "voc" and set(voc["metrics"]) == {"AP"} | {f"AP{i}" for i in range(50, 100, 5)}
    voc_cfg = (results / "runs/gfl_r18_voc/seed0/config.py").read_text()
    assert "VOCDataset" in voc_cfg and "VOCMetric" in voc_cfg and "11points" in voc_cfg
    t4 = pd.read_csv(results / "tables/table4.csv")
    assert list(t4["row"].unique()) == ["none", "r101dcn"]
    assert set(t4["metric"]) == {"AP", "AP50", "AP60", "AP70", "AP80", "AP90"} and t4["paper"].notna().all()
    t2 = pd.read_csv(results / "tables/table2.csv")
    assert list(t2["row"].unique()) == ["x101dcn-base", "x101dcn-self"]
