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
                       (("data_root", config["data_root"]), ("pretrained_dir", config["pretrained_dir"])) if v),
    log:
        f"{R}/logs/resolve/{{run}}-seed{{seed}}.log",
    shell:
        "{PY} -m ld_core resolve --matrix {config[matrix]} --scale {PIPE.scale_path} --results {R}"
        " --run {wildcards.run} --seed {wildcards.seed} {params.extra} --out {output} > {log} 2>&1"


rule train:
    input:
        config=f"{R}/runs/{{run}}/seed{{seed}}/config.py",
        data=dataset_inputs,
        teacher=lambda wc: PIPE.teacher_checkpoint(wc.run),
    output:
        checkpoint=f"{R}/runs/{{run}}/seed{{seed}}/checkpoint.pth",
    log:
        f"{R}/runs/{{run}}/seed{{seed}}/train.log",
    threads: config["threads"]["train"]
    shell:
        "{PY} -m ld_core train --config {input.config} --checkpoint {output.checkpoint}"
        " --work-dir {R}/work/{wildcards.run}/seed{wildcards.seed} --threads {threads} > {log} 2>&1"
