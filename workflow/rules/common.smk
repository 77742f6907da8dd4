# Python shared by the workflow/rules/*.smk files, included first by the Snakefile (once the config is
# validated into PIPELINE). Here: the job environment, wildcard constraints, input functions, params helpers and
# resource helpers; the other files hold only rules (what `snakemake --lint` asks for).

import json
import os
import shlex
import sys
from pathlib import Path


# Job environment. The rules run `python -m ld_core <command>` with the interpreter that runs Snakemake (the
# project environment), also when snakemake was started as .venv/bin/snakemake without activating .venv:
# its folder goes first on PATH, which every job inherits (a SLURM job reads this file again, with the same
# interpreter).
_BIN = os.path.dirname(sys.executable)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _BIN:
    os.environ.update(PATH=os.pathsep.join([_BIN, os.environ.get("PATH", "")]))

# Every job's shell keeps its own stderr (Snakemake's output) as fd 3 before the rule sends the command's
# output to its log: `python -m ld_core` writes its one-line error there too (ld_core.cli.report), so a job
# that failed says why in Snakemake's output, also when its log could not be written (a full disk).
shell.prefix(("set -euo pipefail; " if (shell.get_executable() or "").endswith("bash") else "")
             + "exec 3>&2; export LD_REPRO_ERROR_FD=3; ")


wildcard_constraints:
    run="|".join(PIPELINE.matrix.runs),
    seed=r"\d+",


# ---- priorities: the first table (Table 1 by default) and its part of the scorecard before the rest -------

FIRST_PRIORITY = 10


def first_priority(wildcards):
    """priority of a (run, seed) job: higher for the first table's runs and their teachers."""
    return FIRST_PRIORITY if (wildcards.run, int(wildcards.seed)) in PIPELINE.first_jobs else 0


def train_priority(wildcards):
    """priority of resolving and training a (run, seed): first_priority, + 1 for a teacher, which then starts
    before the students of its band that wait for it."""
    return first_priority(wildcards) + int((wildcards.run, int(wildcards.seed)) in PIPELINE.teacher_jobs)


def first_table_priority(wildcards):
    """priority of a table job: higher for the first table."""
    return FIRST_PRIORITY if wildcards.table == config["tables"][0] else 0


# ---- data -------------------------------------------------------------------------------------------------

def dataset_inputs(wildcards=None):
    """Files a training/evaluation job needs from the data stage (none for a user's dataset)."""
    return [f"{RESULTS}/data/synthetic/dataset.json"] if PIPELINE.synthetic else []


def synthetic_args():
    """Options of `ld_core data-synth`: the scale profile's data.synthetic settings."""
    synth = PIPELINE.scale["data"].get("synthetic", {})
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in synth.items())


# ---- dataset check (user datasets only) -------------------------------------------------------------------

def datacheck_needs():
    """{'coco': root, 'voc': devkit, 'dataset': file, 'voc-dataset': file} of the user's datasets the selected
    runs train on ({} when every run trains on the synthetic data)."""
    used = PIPELINE.datasets
    needs = {{"coco": "dataset", "voc": "voc-dataset"}[slot]: spec.path for slot, spec in PIPELINE.user_datasets.items()}
    if PIPELINE.scale["data"]["kind"] != "synthetic":
        roots = {"coco": config.get("data_root"), "voc": config.get("voc_root")}
        needs.update({name: roots[name] for name in ("coco", "voc")
                      if name in used and name not in PIPELINE.user_datasets and roots[name]})
    return needs


def datacheck_inputs(wildcards=None):
    """What every training job waits for: the dataset check's summary (nothing for the synthetic data)."""
    return [f"{RESULTS}/checks/datasets.json"] if datacheck_needs() else []


def datacheck_args():
    """Options of `ld_core check-data`: the datasets to check and the COCO/VOC image counts expected (a user
    dataset file states its own, `expect:`)."""
    args = [f"--{name} {shlex.quote(str(root))}" for name, root in datacheck_needs().items()]
    args += [f"--expect-{key.replace('_', '-')} {'none' if value in (None, 'null') else value}"
             for key, value in config["data_check_counts"].items()]
    return " ".join(args)


# ---- resolved configs -------------------------------------------------------------------------------------

def resolve_spec(wildcards):
    """What the resolved config of (run, seed) depends on (the params trigger of resolve_config)."""
    return PIPELINE.resolve_params(wildcards.run, int(wildcards.seed))


def import_source(wildcards):
    """The released checkpoint (teacher_checkpoints) an imported teacher's checkpoint.pth is made from."""
    return PIPELINE.import_source(wildcards.run, int(wildcards.seed))


def resolve_extra_args():
    """The user's folders and files (datasets, pretrained backbones, scale overrides) passed on to
    `ld_core resolve`."""
    given = [("data_root", config["data_root"]), ("voc_root", config["voc_root"]),
             ("pretrained_dir", config["pretrained_dir"])]
    given += [("dataset" if slot == "coco" else "voc_dataset", spec.path) for slot, spec in PIPELINE.user_datasets.items()]
    for key in ("scale_overrides", "rehearsal"):
        if config[key]:
            given.append((key, json.dumps(config[key], sort_keys=True)))
    return " ".join(f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in given if v)


def results_root(wildcards, output):
    """params function: the results folder, from the job's output <results>/runs/<run>/seed<seed>/config.py."""
    return str(Path(output[0]).parents[3])


def project_file(path):
    """params function giving a project file (the matrix, a scale profile) to a job. What the job depends on
    is the file's content (resolve_spec), not where this clone lives: a function of `input` is left out of
    Snakemake's params rerun trigger, so a moved clone does not re-resolve (and retrain) every run."""
    return lambda wildcards, input: str(path)


def profile_timing():
    """Options of the FPS measurement: the defaults, or one pass over `rehearsal.fps_images` images."""
    if not config["rehearsal"]:
        return ""
    return f"--images {config['rehearsal']['fps_images']} --warmup 0 --runs 1"


# ---- figures ----------------------------------------------------------------------------------------------

def figure_file(role, name):
    """`name` in the run folder of the figures' baseline/LD student (first pipeline seed)."""
    return f"{PIPELINE.figure_runs().get(role, '')}/{name}"


def figures_summary():
    """figures.json (Figure 2's redundancy numbers for the scorecard), or nothing when no figures are drawn."""
    return [f"{RESULTS}/figures/figures.json"] if PIPELINE.figure_runs() else []


def val_annotations():
    """(annotation file, image folder) of the validation split the figures draw."""
    return PIPELINE.val_annotations()


def output_folder(name):
    """params function: the folder of the job's output `name` (of its first file, for a list)."""
    def folder(wildcards, output):
        files = getattr(output, name)
        return os.path.dirname(files if isinstance(files, str) else files[0])
    return folder


# ---- scorecard --------------------------------------------------------------------------------------------

def precondition_args():
    """Options of `ld_core scorecard`: the config's precondition thresholds (reasons in config.schema.yaml)."""
    pre = config["preconditions"]
    return f"--min-ap {pre['min_ap']} --teacher-margin {pre['teacher_margin_ap']}"


# ---- resources --------------------------------------------------------------------------------------------

def gpu_resources(gpus, runtime, mem_mb):
    """Resources of a GPU-capable job. `gpu` is both the SLURM plugin's GPU count (--gpus) and the local
    resource `--resources gpu=N` caps; gpu_model/cpus_per_gpu only matter (and are only set) with GPUs."""
    res = dict(gpu=gpus, runtime=runtime, mem_mb=mem_mb)
    if gpus > 0:
        res["cpus_per_gpu"] = config["cpus_per_gpu"]
        if config["gpu_model"] not in (None, "", "null", "none"):  # `--config gpu_model=null` is a string
            res["gpu_model"] = config["gpu_model"]
    return res


def train_runtime(wildcards, attempt):
    """Wall time of a training attempt: grows with each retry (each resumes from its last checkpoint)."""
    return min(config["train_runtime_min"] * attempt, config["train_runtime_max_min"])
