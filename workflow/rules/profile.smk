# Table 3's complexity and speed columns: params/GFLOPs of the paper architecture, FPS of the trained student.

rule profile:
    input:
        config=f"{RESULTS}/runs/{{run}}/seed{{seed}}/config.py",
        checkpoint=f"{RESULTS}/runs/{{run}}/seed{{seed}}/checkpoint.pth",
        data=dataset_inputs,
    output:
        f"{RESULTS}/runs/{{run}}/seed{{seed}}/complexity.json",
    log:
        f"{RESULTS}/runs/{{run}}/seed{{seed}}/profile.log",
    benchmark:
        f"{RESULTS}/benchmarks/profile/{{run}}-seed{{seed}}.tsv",
    threads: config["threads"]["evaluate"]
    resources:
        **gpu_resources(config["gpus_per_evaluate"], config["evaluate_runtime_min"], config["evaluate_mem_mb"]),
    params:
        device="cuda" if config["gpus_per_evaluate"] > 0 else "cpu",
        timing=profile_timing(),
    shell:
        "python -m ld_core profile --config {input.config} --checkpoint {input.checkpoint}"
        " --device {params.device} {params.timing} --out {output} --threads {threads} > {log} 2>&1"
