# Training: one resolved mmdet config per (run, seed), then mmengine training. Teachers before students.

# Light jobs run on the submit host under SLURM (a few seconds each; a queued job would wait longer).
localrules:
    resolve_config,


rule resolve_config:
    output:
        f"{RESULTS}/runs/{{run}}/seed{{seed}}/config.py",
    params:
        spec=resolve_spec,
        extra=resolve_extra_args(),
        matrix=project_file(config["matrix"]),
        scale=project_file(PIPELINE.scale_path),
        results=results_root,
    log:
        f"{RESULTS}/logs/resolve/{{run}}-seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/resolve_config/{{run}}-seed{{seed}}.tsv",
    priority: train_priority
    shell:
        "python -m ld_core resolve --matrix {params.matrix} --scale {params.scale} --results {params.results}"
        " --run {wildcards.run} --seed {wildcards.seed} {params.extra} --out {output} > {log} 2>&1"


rule train:
    # not the teachers given as released checkpoints (teacher_checkpoints): rule import_teacher makes theirs
    wildcard_constraints:
        run=PIPELINE.checkpoint_constraint(imported=False),
    input:
        config=f"{RESULTS}/runs/{{run}}/seed{{seed}}/config.py",
        data=dataset_inputs,
        teacher=lambda wc: PIPELINE.teacher_checkpoint(wc.run),
        datacheck=datacheck_inputs,
    output:
        checkpoint=f"{RESULTS}/runs/{{run}}/seed{{seed}}/checkpoint.pth",
    params:
        work_dir=f"{RESULTS}/work/{{run}}/seed{{seed}}",
    log:
        f"{RESULTS}/runs/{{run}}/seed{{seed}}/train.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{run}}-seed{{seed}}.tsv",
    threads: config["threads"]["train"]
    resources:
        **gpu_resources(config["gpus_per_train"], train_runtime, config["train_mem_mb"]),
    retries: config["train_retries"]
    priority: train_priority
    shell:
        "python -m ld_core train --config {input.config} --checkpoint {output.checkpoint}"
        " --work-dir {params.work_dir} --threads {threads} --gpus {resources.gpu} > {log} 2>&1"


# A teacher given as a released checkpoint (`teacher_checkpoints`, checked against its resolved model when the
# Snakefile was parsed): converted into the same tensor-only checkpoint.pth a trained teacher has, so that its
# evaluation and its students are unchanged. A local job (no GPU, about a second per 200 MB file).

localrules:
    import_teacher,


rule import_teacher:
    wildcard_constraints:
        run=PIPELINE.checkpoint_constraint(imported=True),
    input:
        config=f"{RESULTS}/runs/{{run}}/seed{{seed}}/config.py",
        source=import_source,
    output:
        checkpoint=f"{RESULTS}/runs/{{run}}/seed{{seed}}/checkpoint.pth",
    log:
        f"{RESULTS}/runs/{{run}}/seed{{seed}}/import.log",
    benchmark:
        f"{RESULTS}/benchmarks/import_teacher/{{run}}-seed{{seed}}.tsv",
    priority: first_priority
    shell:
        "python -m ld_core import-teacher --config {input.config} --source {input.source}"
        " --out {output.checkpoint} > {log} 2>&1"
