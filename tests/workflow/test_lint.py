"""`snakemake --lint` is clean, except for the lint about per-rule conda environments.

All rules share one environment on purpose (see the Snakefile): torch/mmcv/mmdet must be identical across rules
and mmcv is compiled from source once. So the conda-environment lint is the only one allowed. It takes a few
seconds: the Snakefile is parsed, nothing runs.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from helpers import SNAKEMAKE

CONDA_LINT = "Specify a conda environment or container for each rule."


def parse_text_lints(text: str) -> list[tuple[str, str]]:
    """(what, lint title) pairs from the text format: 'Lints for rule <name> (...):' / '    * <title>:'."""
    found, where = [], None
    for line in text.splitlines():
        head = re.match(r"Lints for (?:rule (\S+) \(.*\)|snakefile (.+)):$", line)
        if head:
            where = f"rule {head.group(1)}" if head.group(1) else f"snakefile {head.group(2)}"
            continue
        item = re.match(r"    \* (.+):$", line)
        if item and where is not None:
            found.append((where, item.group(1)))
    return found


def lints(workdir: Path) -> list[tuple[str, str]]:
    """Every lint of the workflow as (rule or snakefile, title). `--lint json` prints JSON where Snakemake
    supports it (9.27.1 accepts the option but prints the text format), else the text format is parsed."""
    proc = subprocess.run([*SNAKEMAKE, "--directory", str(workdir), "--lint", "json"], capture_output=True,
                          text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1), f"snakemake --lint failed ({proc.returncode}):\n{output[-3000:]}"
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        found = [(f"snakefile {item['for']['snakefile']}", lint["title"])
                 for item in data.get("snakefiles", []) for lint in item["lints"]]
        found += [(f"rule {item['for']['rule']}", lint["title"]) for item in data.get("rules", [])
                  for lint in item["lints"]]
    else:
        found = parse_text_lints(output)
    assert bool(found) == (proc.returncode == 1), f"lints not understood:\n{output[-3000:]}"
    return found


def test_text_lint_parser_reads_rule_and_snakefile_lints():
    text = ("Lints for snakefile /x/workflow/rules/data.smk:\n"
            "    * Mixed rules and functions in same snakefile.:\n"
            "      Small one-liner functions used only once should be\n\n"
            "Lints for rule train (line 3, /x/workflow/rules/train.smk):\n"
            f"    * {CONDA_LINT}:\n      This way, the used software ...\n"
            "    * Shell command directly uses variable PY from outside of the rule:\n      It is recommended\n")
    assert parse_text_lints(text) == [
        ("snakefile /x/workflow/rules/data.smk", "Mixed rules and functions in same snakefile."),
        ("rule train", CONDA_LINT),
        ("rule train", "Shell command directly uses variable PY from outside of the rule"),
    ]


def test_only_the_one_environment_lint_remains(tmp_path):
    found = lints(tmp_path)
    others = [(where, title) for where, title in found if title != CONDA_LINT]
    assert not others, "lints besides the conda-environment one:\n" + "\n".join(f"{w}: {t}" for w, t in others)
    flagged = {where for where, _ in found}
    assert {"rule train", "rule evaluate", "rule resolve_config"} <= flagged, flagged  # the lint run saw the rules
    assert "rule all" not in flagged  # a target rule runs nothing
