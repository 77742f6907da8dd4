"""ImageNet backbones in the DAG: a missing or unreadable `pretrained_dir` file fails the real `snakemake -n` in
seconds with one line, before any job (the checks themselves: tests/unit/test_pretrained_backbone_checks.py; the files
are the `imagenet` fixture of tests/conftest.py)."""
from __future__ import annotations

import subprocess
import time

from helpers import SNAKEMAKE, make_coco


def test_dry_run_with_a_bad_backbone_fails_before_any_job(tmp_path, imagenet):
    coco = make_coco(tmp_path / "coco")
    folder = tmp_path / "pretrained"
    folder.mkdir()
    (folder / "resnet18.pth").write_bytes(imagenet["good"].read_bytes())
    config = ["--config", "scale=paper", f"data_root={coco}", "tables=[table1]", "seeds=[0]", "figures=false",
              f"pretrained_dir={folder}"]

    def dry_run_errors():
        start = time.perf_counter()
        out = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path / "wd"), "-n", "--cores", "1", *config],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode != 0 and time.perf_counter() - start < 60, out.stdout[-2000:]
        return [l for l in (out.stdout + out.stderr).splitlines() if l.startswith("error: ")]

    errors = dry_run_errors()
    assert len(errors) == 1 and errors[0].startswith(f"error: {folder / 'resnet101.pth'}: ImageNet weights of runs "
                                                     "gfl_r101_teacher do not exist"), errors
    (folder / "resnet101.pth").write_bytes(imagenet["bad"]["truncated"].read_bytes())
    errors = dry_run_errors()
    assert len(errors) == 1 and errors[0].startswith(
        f"error: {folder / 'resnet101.pth'}: cannot read the checkpoint (truncated"), errors
    assert not (tmp_path / "wd" / "results" / "runs").exists()
