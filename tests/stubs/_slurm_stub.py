"""A fake SLURM for tests: sbatch records what it is asked and runs the job at once, locally.

The executables next to this file (sbatch, srun, squeue, sacct, scontrol, sinfo, sacctmgr, sshare, scancel)
call ``python _slurm_stub.py <command> <args>``; put this folder first on PATH. State lives in
``$STUB_SLURM_DIR`` (default ``$TMPDIR/slurm-stub``):

- ``sbatch.jsonl``: one JSON object per submission: ``{"argv": [...], "cmdline": "sbatch ...", "job_id": n,
  "comment": ..., "state": ...}``; ``srun.jsonl``: one per job step.
- ``jobs/<id>``: ``<job name>|<state>``, what ``sacct``/``squeue`` report (COMPLETED, FAILED, TIMEOUT).

sbatch runs ``--wrap`` (or the script given on stdin) synchronously in ``-D`` with SLURM_JOB_ID, SLURM_GPUS
(when --gpus was asked) and output to ``--output`` (``%j`` = job id), then prints the job id
(``--parsable``). ``STUB_SLURM_FAIL_FIRST=rule1,rule2`` makes the first submission of those rules end as
TIMEOUT without running (a job killed at its time limit), to exercise retries. ``srun`` drops its options
and runs the command. ``sacctmgr``/``sshare`` list ``$STUB_SLURM_ACCOUNTS`` (comma-separated).
"""
from __future__ import annotations

import fcntl
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

STATE = Path(os.environ.get("STUB_SLURM_DIR") or Path(tempfile.gettempdir()) / "slurm-stub")


def _append(name: str, record: dict) -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / name, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(json.dumps(record) + "\n")


def _next_id() -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / "next_id", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        text = handle.read().strip()
        job_id = int(text) if text else 1001
        handle.seek(0)
        handle.truncate()
        handle.write(str(job_id + 1))
    return job_id


def _options(argv):
    """sbatch options as {name: value} ('--x=v', '--x v', '-x v'; flags map to True) + positionals."""
    takes_value = {"--job-name", "--output", "--comment", "-A", "-p", "-t", "--mem", "--mem-per-cpu", "-D",
                   "-C", "--clusters", "--array"}
    opts, positional, i = {}, [], 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
            opts[key] = value
        elif arg in takes_value:
            opts[arg] = argv[i + 1]
            i += 1
        elif arg.startswith("-"):
            opts[arg] = True
        else:
            positional.append(arg)
        i += 1
    return opts, positional


def sbatch(argv) -> int:
    opts, positional = _options(argv)
    job_id = _next_id()
    name, comment = opts.get("--job-name", "sbatch"), opts.get("--comment", "")
    script = sys.stdin.read() if positional == ["/dev/stdin"] else None
    command = opts.get("--wrap") if script is None else script
    record = {"argv": argv, "cmdline": shlex.join(["sbatch", *argv]), "job_id": job_id, "comment": comment}
    rule = comment[len("rule_"):].split("_wildcards_")[0] if comment.startswith("rule_") else ""
    fail_first = {r for r in os.environ.get("STUB_SLURM_FAIL_FIRST", "").split(",") if r}
    marker = STATE / f"failed_once_{rule}"
    if rule in fail_first and not marker.exists():
        marker.touch()
        state = "TIMEOUT"
    else:
        env = dict(os.environ, SLURM_JOB_ID=str(job_id), SLURM_JOBID=str(job_id), SLURM_JOB_NAME=name)
        gpus = opts.get("--gpus")
        if gpus:
            env["SLURM_GPUS"] = str(gpus).split(":")[-1]
        output = str(opts.get("--output", "slurm-%j.out")).replace("%j", str(job_id))
        workdir = opts.get("-D") or os.getcwd()
        Path(workdir, output).parent.mkdir(parents=True, exist_ok=True)
        with open(Path(workdir, output), "w") as log:
            proc = subprocess.run(["/bin/sh", "-c", command] if script is None else ["/bin/sh", "-s"],
                                  input=script, text=True, cwd=workdir, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        state = "COMPLETED" if proc.returncode == 0 else "FAILED"
    (STATE / "jobs").mkdir(parents=True, exist_ok=True)
    (STATE / "jobs" / str(job_id)).write_text(f"{name}|{state}\n")
    _append("sbatch.jsonl", dict(record, state=state))
    print(job_id)
    return 0


def _jobs(name=None):
    folder = STATE / "jobs"
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        job_name, state = path.read_text().strip().split("|")
        if name is None or job_name == name:
            yield path.name, state


def _arg_after(argv, flag):
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def sacct(argv) -> int:
    if any("Account" in a for a in argv):  # the plugin guessing an account
        print(os.environ.get("STUB_SLURM_ACCOUNTS", "ld_project").split(",")[0])
    elif any("JobIdRaw,State" in a for a in argv):
        for job_id, state in _jobs(_arg_after(argv, "--name")):
            print(f"{job_id}|{state}")
    return 0  # anything else (e.g. failure reasons): nothing to say


def squeue(argv) -> int:
    for job_id, state in _jobs(_arg_after(argv, "--name")):
        print(f"{job_id}|{state}")
    return 0


def srun(argv) -> int:
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 1
    _append("srun.jsonl", {"options": argv[:i], "command": argv[i:]})
    sys.stdout.flush()
    os.execvp(argv[i], argv[i:])


def main() -> int:
    command, argv = sys.argv[1], sys.argv[2:]
    if command == "sbatch":
        return sbatch(argv)
    if command == "srun":
        return srun(argv)
    if command == "sacct":
        return sacct(argv)
    if command == "squeue":
        return squeue(argv)
    if command == "scontrol":
        print("MaxArraySize            = 1001\nMinJobAge               = 300 sec")
        return 0
    if command == "sinfo":
        print("PARTITION\ncpu*\ngpu")
        return 0
    if command in ("sacctmgr", "sshare"):
        print("\n".join(os.environ.get("STUB_SLURM_ACCOUNTS", "ld_project").split(",")))
        return 0
    if command == "scancel":
        _append("scancel.jsonl", {"argv": argv})
        return 0
    print(f"slurm stub: unknown command {command}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
