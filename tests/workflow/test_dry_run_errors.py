"""Config mistakes through the real `snakemake -n` (the Snakefile's parse-time checks, ld_core/config/): a non-zero
exit in seconds with ONE `error:` line naming the file (or --config) and the key; what is typed on the command line
is applied or refused. The checks themselves, file by file: tests/unit/test_config_validation.py."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ROOT, edit_yaml


def test_claim_of_an_unknown_row_fails_the_real_dry_run(tmp_path):
    """The real `snakemake -n` with --config claims=<broken copy>: non-zero exit in seconds, one error line."""
    claims = edit_yaml(Path(shutil.copy(ROOT / "configs" / "claims.yaml", tmp_path / "claims.yaml")),
                       lambda d: d["claims"][2]["better"].__setitem__(0, "ld+gt2"))
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "-d", str(tmp_path / "work"),
                           "-s", str(ROOT / "Snakefile"), "--config", f"claims={claims}"],
                          capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - start
    assert proc.returncode != 0, proc.stdout[-2000:]
    errors = [line for line in (proc.stderr + proc.stdout).splitlines() if line.startswith("error:")]
    assert errors == [f"error: {claims}: claims[2].better[0]: row 'ld+gt2' is not a row of table1 "
                      "(rows: gt-only, ld-only, ld+gt)"], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert elapsed < 30, f"the dry run took {elapsed:.1f} s to fail"


def test_a_configfile_mistake_names_that_file_in_the_real_dry_run(tmp_path):
    """`snakemake -n --configfile <broken copy of configs/rehearsal.yaml>`: the error names that file, not
    configs/config.yaml; a mistake given with --config names --config."""
    broken = tmp_path / "rehearsal.yaml"
    broken.write_text((ROOT / "configs" / "rehearsal.yaml").read_text().replace("train_iters: 2", "train_iters: two"))
    base = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "-d", str(tmp_path / "work"),
            "-s", str(ROOT / "Snakefile")]
    for args, origin in ((["--configfile", str(broken)], str(broken)), (["--config", "threads=2"], "--config")):
        proc = subprocess.run([*base, *args], capture_output=True, text=True, timeout=120)
        errors = [line for line in (proc.stderr + proc.stdout).splitlines() if line.startswith("error:")]
        assert proc.returncode != 0 and len(errors) == 1, proc.stderr[-2000:]
        assert errors[0].startswith(f"error: {origin}: config key "), errors  # the work dir is elsewhere


def _dry_run(tmp_path, *args):
    """The real `snakemake -n` of the tiny Table 1 with `args`: (exit status, `error:` lines, output)."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "4", "-d", str(tmp_path / "work"),
                           "-s", str(ROOT / "Snakefile"), *args], capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[-3000:]
    return proc.returncode, [line for line in out.splitlines() if line.startswith("error:")], out


TINY = ["scale=tiny", "tables=[table1]", "seeds=[0]"]


@pytest.mark.parametrize("given,error", [
    # no space after the colon: YAML reads one key `batch_size:2` with no value, which the merge would drop
    ("scale_overrides={train:{batch_size:2}}",
     "error: --config: config key scale_overrides.train.batch_size:2: 'batch_size:2' is not a key of the scale "
     "profile (allowed: auto_scale_lr, batch_size, "),
    ("scale_overrides={train: {batch_size: }}",
     "error: --config: config key scale_overrides.train.batch_size: no value (null), which would remove "
     "'batch_size' from the scale profile"),
    ("threads={train:2}", "error: --config: unknown config key 'train:2' in threads (allowed: "),
    ("seeds=[0,0,1]", "error: --config: config key seeds: 0 is given more than once (each value once: [0, 0, 1])"),
    ("seeds=[-1]", "error: --config: config key seeds[0]: -1 is less than the minimum of 0"),
])
def test_what_is_typed_is_applied_or_refused_in_the_real_dry_run(tmp_path, given, error):
    """`snakemake -n --config ...`: one error line naming --config and the key; the space typo is named."""
    status, errors, out = _dry_run(tmp_path, "--config", *TINY, given)
    assert status != 0 and len(errors) == 1 and errors[0].startswith(error), errors or out[-2000:]
    if ":2" in given:  # the typo is named
        key = given.split("{")[-1].split(":")[0]
        assert errors[0].endswith(f"(did you mean '{key}: 2' with a space?)"), errors


def test_threads_and_allowed_nulls_from_the_command_line_are_applied(tmp_path):
    """`--config threads={train: 2}` (Snakemake hands over the string '2') reaches the training jobs; a null
    the scale schema allows (grad_clip) is accepted; `batch_size: 2` with its space is applied."""
    status, errors, out = _dry_run(tmp_path, "--config", *TINY, "threads={train: 2}",
                                   "scale_overrides={train: {grad_clip: null, batch_size: 2}}")
    assert status == 0 and not errors, out[-3000:]
    trains = [line for line in out.splitlines() if " -m ld_core train " in line]
    assert trains and all("--threads 2 " in line for line in trains), trains
    assert " -m ld_core evaluate " in out and "--threads 1 " in out  # evaluate keeps its default


def test_a_seed_error_names_the_configfile_that_set_it(tmp_path):
    bad = tmp_path / "mine.yaml"
    bad.write_text("seeds: [0, -1]\n")
    status, errors, _ = _dry_run(tmp_path, "--configfile", str(bad))
    assert status != 0 and errors == [f"error: {bad}: config key seeds[1]: -1 is less than the minimum of 0"], errors
