"""The SLURM profile, for real, against a fake SLURM (tests/stubs: sbatch runs each job at once, locally).

snakemake --profile <the shipped profile + a site's account/partition edits> runs the tiny scale with GPU
settings; the stub records every sbatch command line. Checked: what train/evaluate jobs ask for (GPUs of
the configured model, CPUs per GPU, wall time growing per retry, memory, GPU partition) and that CPU jobs ask
for no GPU, account/partition pass through, a training killed at its time limit is resubmitted, and the
jobs complete (training falls back to the CPU with a warning: the stub node has no GPU).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import ROOT, SNAKEMAKE, make_coco

PROFILE = ROOT / "workflow" / "profiles" / "slurm"
STUBS = ROOT / "tests" / "stubs"
TINY = ["scale=tiny", "seeds=[0]", "tables=[table1]", "figures=false"]


def site_profile(tmp_path: Path) -> Path:
    """The shipped profile with the lines a user edits filled in (account, CPU and GPU partitions)."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    profile["default-resources"].update(slurm_account="ld_project", slurm_partition="cpu")
    profile["set-resources"] = {rule: {"slurm_partition": "gpu"} for rule in ("train", "evaluate")}
    profile["latency-wait"] = 5
    folder = tmp_path / "profile"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def run_with_stubs(tmp_path, *args, fail_first=""):
    state = tmp_path / "slurm"
    env = dict(os.environ, PATH=f"{STUBS}{os.pathsep}{os.environ['PATH']}", STUB_SLURM_DIR=str(state),
               STUB_SLURM_PYTHON=sys.executable, STUB_SLURM_FAIL_FIRST=fail_first, STUB_SLURM_ACCOUNTS="ld_project",
               OMP_NUM_THREADS="1")
    env = {k: v for k, v in env.items() if not k.startswith("SLURM_")}  # not inside a real SLURM job
    proc = subprocess.run([*SNAKEMAKE, "--profile", str(site_profile(tmp_path)), "--directory", str(tmp_path / "wd"),
                           "--seconds-between-status-checks", "1", "--slurm-init-seconds-before-status-checks", "1",
                           *args], capture_output=True, text=True, env=env, timeout=900)
    submissions = [json.loads(line) for line in (state / "sbatch.jsonl").read_text().splitlines()] \
        if (state / "sbatch.jsonl").is_file() else []
    steps = [json.loads(line) for line in (state / "srun.jsonl").read_text().splitlines()] \
        if (state / "srun.jsonl").is_file() else []
    return proc, submissions, steps


def by_rule(submissions):
    out = {}
    for sub in submissions:
        rule = sub["comment"][len("rule_"):].split("_wildcards_")[0]
        out.setdefault(rule, []).append(sub)
    return out


def sbatch_options(sub) -> list:
    """The sbatch command line without the job script (--wrap=...)."""
    return [a for a in sub["argv"] if not a.startswith("--wrap")]


def assert_cpu_job(sub):
    opts = sbatch_options(sub)
    assert not any(a.startswith(("--gpus", "--gres", "--cpus-per-gpu")) for a in opts), sub["cmdline"]
    assert "--ntasks=1" in opts and "--cpus-per-task=1" in opts, sub["cmdline"]
    line = " ".join(opts)
    assert "-A ld_project" in line and "-p cpu" in line and "-t 60" in line and "--mem 8000" in line, line


def test_profile_is_valid_and_site_settings_are_placeholders():
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert "slurm_account" not in profile["default-resources"], "the account is a user setting (commented out)"
    text = (PROFILE / "config.yaml").read_text()
    assert "# slurm_account:" in text and "# slurm_partition:" in text and "EDIT" in text


@pytest.mark.parametrize("script", ["wheelhouse.sh", "offline_install.sh"])
def test_offline_install_scripts_parse_and_explain_themselves(script):
    """No network here: syntax and --help only (the steps follow /work/shared/tools/offline-*.sh)."""
    path = ROOT / "scripts" / script
    assert os.access(path, os.X_OK)
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    out = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.startswith(f"Usage: scripts/{script}")
    assert "mmcv" in out.stdout and "--wheelhouse" in out.stdout
    text = path.read_text()
    assert "setuptools>=77,<81" in text and "mmcv" in text
    assert ("--no-index --find-links" in text and "--no-build-isolation" in text) if script == "offline_install.sh" \
        else "--no-binary=:all:" in text
    bad = subprocess.run([str(path), "--bogus"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "unknown option --bogus" in bad.stderr


def test_local_gpu_resource_caps_the_gpus_a_training_gets(tmp_path):
    """`--resources gpu=N` is Snakemake's own limit on concurrent GPU jobs; a job asking more is scaled down."""
    def train_commands(*extra):
        out = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), "-n", "-p", "--cores", "2", *extra],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return [line for line in out.stdout.splitlines() if "-m ld_core train " in line]

    assert all(" --gpus 0 " in c for c in train_commands("--config", *TINY))  # the default: CPU, as before
    assert all(" --gpus 2 " in c for c in train_commands("--config", *TINY, "gpus_per_train=2"))
    capped = train_commands("--resources", "gpu=1", "--config", *TINY, "gpus_per_train=2")
    assert len(capped) == 4 and all(" --gpus 1 " in c for c in capped)


def test_slurm_submissions_of_a_training_chain(tmp_path):
    """Data, config and a GPU training killed at its time limit once, then resubmitted (about 30 s here)."""
    proc, subs, steps = run_with_stubs(
        tmp_path, "results/runs/gfl_r18/seed0/checkpoint.pth", "--config", *TINY, "gpus_per_train=2",
        "gpu_model=h100", "cpus_per_gpu=3", "train_runtime_min=30", "train_mem_mb=12000", fail_first="train")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    jobs = by_rule(subs)
    assert set(jobs) == {"train"}, list(jobs)  # data and config: local rules, on the submit host
    assert (tmp_path / "wd" / "results" / "runs" / "gfl_r18" / "seed0" / "config.py").is_file()
    first, retry = jobs["train"]
    assert (first["state"], retry["state"]) == ("TIMEOUT", "COMPLETED")
    for sub, minutes in ((first, 30), (retry, 60)):  # wall time grows with the attempt
        opts = sbatch_options(sub)
        line = " ".join(opts)
        assert "--gpus=h100:2" in opts and "--cpus-per-gpu=3" in opts, line
        assert f"-t {minutes} " in line and "--mem 12000" in line and "-A ld_project" in line and "-p gpu" in line
        assert "--requeue" in opts and not any(a.startswith("--ntasks") for a in opts), line
    # inside the job, the job step asks for the job's GPUs too, and the command gets their number
    train_steps = [s for s in steps if any("train:" in a for a in s["command"])]
    assert train_steps and all("--gpus=2" in s["options"] for s in train_steps), steps
    assert " --gpus 2 " in proc.stdout + proc.stderr
    run_dir = tmp_path / "wd" / "results" / "runs" / "gfl_r18" / "seed0"
    log = (run_dir / "train.log").read_text()
    assert "[train] warning: 2 GPU(s) requested but torch.cuda is not available" in log  # the stub has no GPU
    assert (run_dir / "checkpoint.pth").is_file()


def test_dataset_check_runs_on_the_submit_host(tmp_path):
    """Paper scale: check_data is a local rule: it runs before anything is submitted, without sbatch."""
    coco = make_coco(tmp_path / "coco")
    proc, subs, _ = run_with_stubs(tmp_path, "results/checks/datasets.json", "--config", "scale=paper",
                                   f"data_root={coco}", "tables=[table1]", "seeds=[0]", "figures=false",
                                   "data_check_counts={coco_train: 3, coco_val: 2}", "allow_downloads=true")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert subs == [] and (tmp_path / "wd" / "results" / "checks" / "datasets.json").is_file()
    assert "coco: train2017 3 images, val2017 2 images: ok" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_slurm_profile_runs_the_tiny_table_dag(tmp_path):
    """The whole tiny Table 1 DAG through the fake SLURM (about 2.5 min here)."""
    proc, subs, _ = run_with_stubs(tmp_path, "--config", *TINY, "figures=true", "gpus_per_train=2",
                                   "gpu_model=h100", "gpus_per_evaluate=1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    jobs = by_rule(subs)
    assert len(jobs["train"]) == 4 and len(jobs["evaluate"]) == 4
    local = {"synthetic_dataset", "resolve_config", "table", "scorecard", "scorecard_first"}
    assert not local & set(jobs), sorted(jobs)  # light jobs: on the submit host, never queued
    assert len(jobs["figures"]) == 1 and all(assert_cpu_job(s) is None for s in jobs["figures"])
    assert all("--gpus=h100:2" in sbatch_options(s) for s in jobs["train"])
    for sub in jobs["evaluate"]:
        line = " ".join(sbatch_options(sub))
        assert "--gpus=h100:1" in line and "-p gpu" in line and "-t 120" in line and "--mem 16000" in line, line
    assert "check_data" not in jobs  # a local rule, and not needed for the synthetic data
    results = tmp_path / "wd" / "results"
    assert (results / "tables" / "table1.csv").is_file() and (results / "scorecard.csv").is_file()


@pytest.mark.slow
def test_rehearsal_table1_through_the_stub_slurm(tmp_path):
    """The paper-scale rehearsal's Table 1 (imported released-format teacher, 3 students at 1333x800, 2
    iterations each) submitted through the SLURM profile to the stub sbatch (one job at a time: about 5 min)."""
    work = tmp_path / "wd"
    work.mkdir()
    gen = subprocess.run([sys.executable, "-m", "ld_core", "rehearsal-data", "--out", "rehearsal/inputs"], cwd=work,
                         capture_output=True, text=True, timeout=600)
    assert gen.returncode == 0, gen.stderr[-2000:]
    proc, subs, _ = run_with_stubs(tmp_path, "--configfile", str(ROOT / "configs" / "rehearsal.yaml"),
                                   "--config", "tables=[table1]")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    jobs = by_rule(subs)
    assert sorted(jobs) == ["evaluate", "figures", "train"], sorted(jobs)  # the light jobs stayed local
    assert len(jobs["train"]) == 3 and len(jobs["evaluate"]) == 4  # the teacher is imported, not trained
    assert all(s["state"] == "COMPLETED" for s in subs)
    results = work / "rehearsal" / "results"
    assert (results / "tables" / "table1.csv").is_file() and (results / "scorecard" / "table1.csv").is_file()
    assert "iterations in" in (results / "runs" / "gfl_r18_ld_r101" / "seed0" / "train.log").read_text()
