"""`ld_core timing`: where a DAG's time went, per rule, from the Snakemake benchmark files of its jobs.

Input: ``--benchmarks`` (default ``results/benchmarks``), the folder the rules write their ``benchmark:``
files to (``<rule>.tsv`` or ``<rule>/<wildcards>.tsv``; Snakemake's columns, of which ``s`` = the job's wall
seconds and ``cpu_time`` = its CPU seconds are used). Output: a Markdown table on stdout, one row per rule
(jobs, job-seconds in all, mean, min, max, CPU seconds, share of all job-seconds) and the total; ``--out``
also writes it as CSV.
"""
from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from ..errors import ConfigError, require_dir
from ..files import atomic_write_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--benchmarks", default="results/benchmarks", help="folder of the rules' benchmark files")
    parser.add_argument("--out", help="also write the table as CSV here")


def _read(path: Path) -> dict:
    rows = list(csv.DictReader(path.read_text().splitlines(), delimiter="\t"))
    if not rows or "s" not in rows[0]:
        raise ConfigError(f"{path}: not a Snakemake benchmark file (no 's' column)")
    row = rows[-1]  # a repeat(...) benchmark has one row per repetition: the last

    def number(key):
        try:
            return float(row.get(key) or "nan")
        except ValueError:
            return float("nan")

    return dict(s=number("s"), cpu=number("cpu_time"))


def summarise(folder: Path) -> list[dict]:
    """One dict per rule: rule, jobs, job_s, mean_s, min_s, max_s, cpu_s, share (of all job-seconds)."""
    require_dir(folder, "benchmark folder", hint="run the DAG first")
    per_rule: dict = {}
    for path in sorted(folder.rglob("*.tsv")):
        rule = path.stem if path.parent == folder else path.relative_to(folder).parts[0]
        per_rule.setdefault(rule, []).append(_read(path))
    if not per_rule:
        raise ConfigError(f"{folder}: no benchmark files")
    total = sum(j["s"] for jobs in per_rule.values() for j in jobs)
    rows = []
    for rule, jobs in per_rule.items():
        secs = [j["s"] for j in jobs]
        rows.append(dict(rule=rule, jobs=len(jobs), job_s=round(sum(secs), 2), mean_s=round(sum(secs) / len(secs), 2),
                         min_s=min(secs), max_s=max(secs), cpu_s=round(sum(j["cpu"] for j in jobs), 2),
                         share=sum(secs) / total if total else 0))
    return sorted(rows, key=lambda r: -r["job_s"])


def render(rows: list[dict]) -> str:
    lines = ["| rule | jobs | job-s | mean s | min s | max s | CPU s | share |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['rule']} | {r['jobs']} | {r['job_s']:.0f} | {r['mean_s']:.1f} | {r['min_s']:.1f} | "
                     f"{r['max_s']:.1f} | {r['cpu_s']:.0f} | {100 * r['share']:.1f} % |")
    lines.append(f"| **all** | {sum(r['jobs'] for r in rows)} | {sum(r['job_s'] for r in rows):.0f} | | | | "
                 f"{sum(r['cpu_s'] for r in rows):.0f} | 100 % |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    rows = summarise(Path(args.benchmarks))
    print(render(rows))
    if args.out:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(args.out, buf.getvalue())
    return 0
