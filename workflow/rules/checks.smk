# Dataset check before anything trains (user datasets only): a local job on the submit host, so on SLURM a
# broken COCO/VOC folder is reported (every problem, one line each) before any GPU job is queued. It opens
# every image (decode and size) with threads.check_data processes.

localrules:
    check_data,


rule check_data:
    output:
        f"{RESULTS}/checks/datasets.json",
    params:
        args=datacheck_args(),
    log:
        f"{RESULTS}/logs/check_data.log",
    benchmark:
        f"{RESULTS}/benchmarks/check_data.tsv",
    threads: config["threads"]["check_data"]
    priority: FIRST_PRIORITY
    shell:
        "python -m ld_core check-data {params.args} --threads {threads} --out {output} 2>&1 | tee {log}"
