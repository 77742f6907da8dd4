"""A fresh machine and several runs at once: yapf's grammar cache, the results lock, a full disk, temporary files.

Real processes throughout: fresh interpreters racing on an empty cache folder, two real Snakemake processes on
one results folder, a real Snakemake job and a real training on a (simulated: tests/stubs/full_disk) full disk.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ROOT, SNAKEMAKE, resolved_config

TINY = ["--config", "scale=tiny", "tables=[table1]", "seeds=[0]"]
FULL_DISK = ROOT / "tests" / "stubs" / "full_disk"

# yapf renames its grammar pickle into place before it closes (flushes) it; a pause right after that rename
# widens the window in which another process reads a half-written file from microseconds to seconds
SLOW_RENAME = '''
import os, time
_rename = os.rename
def rename(src, dst, *args, **kwargs):
    _rename(src, dst, *args, **kwargs)
    if str(dst).endswith(".pickle"):
        time.sleep(3)
os.rename = rename
'''


def _race(tmp_path: Path, code: str, readers: int = 3) -> list:
    """One process writes yapf's cache into an empty folder; once its pickle is in place (half-written, the
    writer pausing), ``readers`` more start. Returns every process's CompletedProcess-like (rc, stderr)."""
    cache, stub = tmp_path / "cache", tmp_path / "stub"
    stub.mkdir()
    (stub / "sitecustomize.py").write_text(SLOW_RENAME)
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), PYTHONPATH=os.pathsep.join([str(stub), str(ROOT)]))
    cmd = [sys.executable, "-c", code]
    procs = [subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path)]
    deadline = time.time() + 60
    while not list(cache.glob("YAPF/*/*.pickle")) and time.time() < deadline and procs[0].poll() is None:
        time.sleep(0.02)
    procs += [subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
              for _ in range(readers)]
    return [(p.wait(timeout=120), p.stderr.read()) for p in procs]


def test_fresh_processes_do_not_race_on_yapfs_grammar_cache(tmp_path):
    """Without the lock, readers of the half-written pickle fail (EOFError: Ran out of input, as in the issue);
    importing ld_core first (every job does) makes all of them load mmengine's Config."""
    (tmp_path / "bare").mkdir()
    bare = _race(tmp_path / "bare", "import yapf")
    assert any(rc != 0 for rc, _ in bare), "the race did not show without the lock: the test proves nothing"
    assert any("EOFError" in err or "pickle" in err.lower() for _, err in bare), [e[-300:] for _, e in bare]

    (tmp_path / "locked").mkdir()
    locked = _race(tmp_path / "locked", "import ld_core; from mmengine.config import Config")
    assert [rc for rc, _ in locked] == [0] * len(locked), [err[-1000:] for _, err in locked]
    pickles = list((tmp_path / "locked" / "cache").glob("YAPF/*/*.pickle"))
    assert {p.name.split("-")[0] for p in pickles} == {"Grammar", "PatternGrammar"}
    assert not list((tmp_path / "locked" / "cache").glob("YAPF/*/*.tmp*"))


def test_a_cut_grammar_pickle_is_written_anew(tmp_path):
    """A pickle cut short by an earlier process killed mid-write (yapf never recovers from one) is rewritten."""
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    code = "import ld_core; from mmengine.config import Config; print('ok')"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).returncode == 0
    grammar = next(tmp_path.glob("YAPF/*/Grammar*.pickle"))
    grammar.write_bytes(grammar.read_bytes()[:100])  # newer than the grammar text: yapf would load it
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
    assert grammar.stat().st_size > 1000


def _errors(proc) -> list:
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("error:")]


def test_two_dags_on_one_results_folder(tmp_path):
    """A second Snakemake with another working directory and the same results= refuses at once, naming the lock
    and the running one; a dry run needs no lock; the lock of a killed run is taken over."""
    results = tmp_path / "results"
    cfg = [*TINY, f"results={results}"]
    first = subprocess.Popen([*SNAKEMAKE, "-d", str(tmp_path / "a"), "--cores", "1", *cfg],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lock = results / ".ld-repro.lock"
    try:
        deadline = time.time() + 120
        while time.time() < deadline and first.poll() is None and f"pid {first.pid} " not in (
                lock.read_text() if lock.is_file() else ""):
            time.sleep(0.2)
        assert first.poll() is None, first.stdout.read()[-3000:]
        start = time.monotonic()
        second = subprocess.run([*SNAKEMAKE, "-d", str(tmp_path / "b"), "--cores", "1", *cfg],
                                capture_output=True, text=True, timeout=120)
        elapsed = time.monotonic() - start
        assert second.returncode != 0 and "Traceback" not in second.stderr, second.stderr[-3000:]
        errors = _errors(second)
        assert len(errors) == 1 and errors[0].startswith(
            f"error: {lock}: results folder {results} is in use by another Snakemake (pid {first.pid} on "
            f"{os.uname().nodename}, working directory {tmp_path / 'a'}, since "), errors
        assert elapsed < 30, f"the refusal took {elapsed:.1f} s"
        assert "jobid:" not in second.stdout + second.stderr, "the second run started jobs"
        dry = subprocess.run([*SNAKEMAKE, "-d", str(tmp_path / "b"), "-n", "--cores", "1", *cfg],
                             capture_output=True, text=True, timeout=120)
        assert dry.returncode == 0 and not _errors(dry), dry.stderr[-2000:]
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # a crash: the lock file keeps its text, the kernel drops the lock
        first.wait(timeout=60)
    assert f"pid {first.pid} " in lock.read_text()
    (results / "runs/gfl_r18/seed0/config.py").unlink(missing_ok=True)  # a job to run (the first may have made it)
    third = subprocess.run([*SNAKEMAKE, f"{results}/runs/gfl_r18/seed0/config.py", "-d", str(tmp_path / "b"),
                            "--cores", "1", *cfg], capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr[-3000:]
    assert f"note: {results}/.ld-repro.lock: took over the lock of a run that ended without releasing it " \
           f"(pid {first.pid} on" in third.stderr, third.stderr[-3000:]
    assert lock.read_text() == "", "a run that ended normally leaves the lock file empty"


def test_a_job_on_a_full_disk_says_so_in_snakemakes_output(tmp_path):
    """The resolve job's write fails with ENOSPC (tests/stubs/full_disk): Snakemake's own output says "No space
    left on device" with the file (not only the job's log), and no output or temporary file remains."""
    env = dict(os.environ, PYTHONPATH=str(FULL_DISK), LD_TEST_FULL_DISK=str(tmp_path / "results" / "runs"))
    proc = subprocess.run([*SNAKEMAKE, "results/runs/gfl_r18/seed0/config.py", "-d", str(tmp_path), "--cores", "1",
                           *TINY], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode != 0
    assert ("error: python -m ld_core resolve: results/runs/gfl_r18/seed0/config.py: No space left on device"
            in proc.stdout + proc.stderr), (proc.stdout + proc.stderr)[-3000:]
    left = [p for p in (tmp_path / "results" / "runs").rglob("*") if p.is_file()]
    assert left == [], left


def test_a_training_on_a_full_disk_fails_saying_so_and_leaves_no_checkpoint(tmp_path):
    """A real tiny training whose final checkpoint hits a full disk: non-zero exit, the one-line error on the
    job's stderr (fd 3, as in the workflow's jobs), no checkpoint.pth and no temporary file beside it."""
    config = resolved_config(tmp_path)
    run_dir = config.parent
    ckpt = run_dir / "checkpoint.pth"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(FULL_DISK), str(ROOT)]), LD_TEST_FULL_DISK=str(run_dir),
               OMP_NUM_THREADS="1")
    shell = (f"exec 3>&2; export LD_REPRO_ERROR_FD=3; {sys.executable} -m ld_core train --config {config} "
             f"--checkpoint {ckpt} --work-dir {tmp_path / 'work'} > {tmp_path / 'train.log'} 2>&1")
    proc = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert proc.returncode != 0
    assert proc.stderr.strip() == (f"error: python -m ld_core train: {ckpt}: No space left on device "
                                   "(OSError; traceback in the job's log)"), proc.stderr[-2000:]
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.py"]


def test_temporary_files_are_unique_and_removed_on_failure(tmp_path):
    from ld_core.files import atomic_output

    target = tmp_path / "checkpoint.pth"
    with atomic_output(target) as a, atomic_output(target) as b:  # two writers of one file at once
        temps = sorted(p.name for p in tmp_path.iterdir())
        assert len(temps) == 2 and all(n.startswith(".checkpoint.pth.") and n.endswith(".tmp") for n in temps)
        a.write(b"a")
        b.write(b"b")
    assert target.read_bytes() == b"a"  # the last to finish (the outer block) wins, whole
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as handle:
            handle.write(b"half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"a" and sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pth"]
