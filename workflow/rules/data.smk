# Data: the embedded profile generates its synthetic dataset; paper scale reads the user's COCO folder.

SYNTH = PIPE.scale["data"].get("synthetic", {})


def dataset_inputs(wildcards=None):
    """Files a training/evaluation job needs from the data stage (none for a user's dataset)."""
    return [f"{R}/data/synthetic/dataset.json"] if PIPE.synthetic else []


rule synthetic_dataset:
    output:
        f"{R}/data/synthetic/dataset.json",
        f"{R}/data/synthetic/coco/annotations/instances_train.json",
        f"{R}/data/synthetic/coco/annotations/instances_val.json",
    params:
        args=" ".join(f"--{k.replace('_', '-')} {v}" for k, v in SYNTH.items()),
    log:
        f"{R}/logs/synthetic_dataset.log",
    shell:
        "{PY} -m ld_core data-synth --out {R}/data/synthetic {params.args} > {log} 2>&1"
