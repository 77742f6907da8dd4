# Training: one resolved mmdet config per (run, seed), then mmengine training. Teachers before students.

wildcard_constraints:
    run="|".join(PIPE.matrix.runs),
    seed=r"\d+",


rule resolve_config:
    output:
        f"{R}/runs/{{run}}/seed{{seed}}/config.py",
    params:
        spec=lambda wc: PIPE.resolve_params(wc.run, int(wc.seed)),
        extra=" ".join(f"--{k.replace('_', '-')} {v}" for k, v in
                       (("data_root", config["data_root"]), ("voc_root", config["voc_root"]),
                        ("pretrained_dir", config["pretrained_dir"])) if v),
    log:
        f"{R}/logs/resolve/{{run}}-seed{{seed}}.log",
    shell:
        "{PY} -m ld_core resolve --matrix {config[matrix]} --scale {PIPE.scale_path} --results {R}"
        " --run {wildcards.run} --seed {wildcards.seed} {params.extra} --out {output} > {log} 2>&1"


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


rule train:
    input:
        config=f"{R}/runs/{{run}}/seed{{seed}}/config.py",
        data=dataset_inputs,
        teacher=lambda wc: PIPE.teacher_checkpoint(wc.run),
        datacheck=lambda wc: datacheck_inputs(),
    output:
        checkpoint=f"{R}/runs/{{run}}/seed{{seed}}/checkpoint.pth",
    log:
        f"{R}/runs/{{run}}/seed{{seed}}/train.log",
    threads: config["threads"]["train"]
    resources:
        **gpu_resources(config["gpus_per_train"], train_runtime, config["train_mem_mb"]),
    retries: config["train_retries"]
    shell:
        "{PY} -m ld_core train --config {input.config} --checkpoint {output.checkpoint}"
        " --work-dir {R}/work/{wildcards.run}/seed{wildcards.seed} --threads {threads}"
        " --gpus {resources.gpu} > {log} 2>&1"
