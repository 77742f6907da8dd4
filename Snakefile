"""ld-repro: teachers -> students -> evaluation -> the LD supplement's tables, figures and scorecard.

    snakemake --cores all                       # embedded default (synthetic data, CPU)
    snakemake --cores all --config scale=paper data_root=/data/coco
    snakemake --report results/report.html      # self-contained HTML report of a finished run
"""
import sys

sys.path.insert(0, workflow.basedir)
from ld_core.errors import LDError
from ld_core.config.pipeline import load_pipeline

configfile: f"{workflow.basedir}/configs/config.yaml"

try:
    PIPELINE = load_pipeline(config, workflow.basedir, configfiles=workflow.overwrite_configfiles,
                             cli=workflow.config_settings.config)
except LDError as exc:
    sys.exit(f"error: {exc}")
config.update(PIPELINE.config)  # validated, with defaults and absolute project paths

RESULTS = PIPELINE.results


# One DAG per results folder: Snakemake's own lock is per working directory, and two runs with different ones
# and the same `results=` would resume from each other's checkpoints and overwrite each other's logs. Only a
# run that executes jobs takes the lock, in this (the main) process: not a dry run, not --report / --dag,
# not the jobs (SLURM's included, started with --no-hooks); --nolock, which drops Snakemake's lock, drops it too.
onstart:
    if workflow.execution_settings.lock:
        from ld_core.files import RESULTS_LOCK, lock_results

        try:
            stale = lock_results(RESULTS)
        except LDError as exc:
            sys.exit(f"error: {exc}")
        if stale:
            print(f"note: {RESULTS}/{RESULTS_LOCK}: took over the lock of a run that ended without releasing it ({stale})",
                  file=sys.stderr)

# One software environment for every rule, on purpose: torch, mmcv and mmdet must be identical across rules
# (teachers, students and their evaluation exchange checkpoints and run the same compiled ops), and mmcv is
# compiled from source once (scripts/setup_env.sh, or environment.yml). Hence the one lint `snakemake --lint`
# reports for each rule, "Specify a conda environment or container for each rule" (tests/workflow/test_lint.py).

include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/checks.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/profile.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/scorecard.smk"

report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        expand(f"{RESULTS}/tables/{{table}}.{{ext}}", table=config["tables"], ext=["csv", "tex"]),
        [f"{RESULTS}/runs/{run}/seed{seed}/metrics.json" for run, seed in PIPELINE.jobs()],
        f"{RESULTS}/scorecard.csv",
        f"{RESULTS}/scorecard/{config['tables'][0]}.csv",
        [f"{RESULTS}/figures/figure1.png", f"{RESULTS}/figures/figure2.png"] if PIPELINE.figure_runs() else [],
