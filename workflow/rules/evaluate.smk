# Evaluation: COCO AP of every trained run (student alone) on the validation split.

rule evaluate:
    input:
        config=f"{RESULTS}/runs/{{run}}/seed{{seed}}/config.py",
        checkpoint=f"{RESULTS}/runs/{{run}}/seed{{seed}}/checkpoint.pth",
        data=dataset_inputs,
    output:
        f"{RESULTS}/runs/{{run}}/seed{{seed}}/metrics.json",
    log:
        f"{RESULTS}/runs/{{run}}/seed{{seed}}/evaluate.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{run}}-seed{{seed}}.tsv",
    threads: config["threads"]["evaluate"]
    resources:
        **gpu_resources(config["gpus_per_evaluate"], config["evaluate_runtime_min"], config["evaluate_mem_mb"]),
    priority: first_priority
    shell:
        "python -m ld_core evaluate --config {input.config} --checkpoint {input.checkpoint}"
        " --out {output} --threads {threads} > {log} 2>&1"
