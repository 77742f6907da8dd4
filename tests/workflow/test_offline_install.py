"""The offline install for real: scripts/wheelhouse.sh collects this machine's wheels (network needed), then
scripts/offline_install.sh builds a fresh venv from them with no package index reachable, and that venv runs
the tiny DAG. Slow (about 4 min here with a prebuilt mmcv wheel from pip's cache; 20 more without one)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from helpers import ROOT


def _online() -> bool:
    try:
        urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=10)
        return True
    except OSError:
        return False


def _cached_mmcv_wheel():
    """A wheel pip built for mmcv 2.1.0 on this machine (scripts/setup_env.sh), or None."""
    out = subprocess.run([sys.executable, "-m", "pip", "cache", "list", "--format", "abspath", "mmcv"],
                         capture_output=True, text=True)
    wheels = [line for line in out.stdout.split() if Path(line).name.startswith("mmcv-2.1.0-")]
    return wheels[0] if wheels else None


def _offline(cmd: list) -> list:
    """``cmd`` without network where that is possible (a network namespace), else with pip told no index."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-n", *cmd]
    return cmd


@pytest.mark.slow
def test_wheelhouse_offline_install_runs_the_tiny_dag(tmp_path):
    if not _online():
        pytest.skip("the package registry is not reachable: the wheelhouse cannot be collected here")
    torch_version = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__.split('+')[0])"],
                                   capture_output=True, text=True).stdout.strip()
    wheelhouse, venv = tmp_path / "wheelhouse", tmp_path / "venv"
    collect = ["bash", str(ROOT / "scripts" / "wheelhouse.sh"), "--out", str(wheelhouse), "--python", sys.executable,
               "--torch", f"torch=={torch_version}"]
    mmcv = _cached_mmcv_wheel()
    if mmcv:
        collect += ["--mmcv-wheel", mmcv]
    proc = subprocess.run(collect, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PIP_INDEX_URL": "http://127.0.0.1:9/none",
           "PIP_CONFIG_FILE": "/dev/null"}
    python = str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}")
    proc = subprocess.run(_offline(["bash", str(ROOT / "scripts" / "offline_install.sh"), "--wheelhouse",
                                    str(wheelhouse), "--venv", str(venv), "--python", python]),
                          capture_output=True, text=True, timeout=2400, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "environment ready" in proc.stdout and "mmcv 2.1.0 (ops ok" in proc.stdout
    work = tmp_path / "dag"
    work.mkdir()
    dag = subprocess.run(_offline([str(venv / "bin" / "snakemake"), "-s", str(ROOT / "Snakefile"),
                                   "--workflow-profile", str(ROOT / "workflow" / "profiles" / "default"),
                                   "--directory", str(work), "--cores", "2", "--config", "scale=tiny",
                                   "tables=[table1]", "seeds=[0]", "figures=false"]),
                         capture_output=True, text=True, timeout=1200, env=env)
    assert dag.returncode == 0, dag.stdout[-3000:] + dag.stderr[-3000:]
    assert (work / "results" / "tables" / "table1.csv").is_file()
