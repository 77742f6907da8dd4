# Data: the embedded profile generates its synthetic dataset; paper scale reads the user's COCO folder.

# Seconds of image generation: on the submit host under SLURM.
localrules:
    synthetic_dataset,


rule synthetic_dataset:
    output:
        dataset=f"{RESULTS}/data/synthetic/dataset.json",
        train_ann=f"{RESULTS}/data/synthetic/coco/annotations/instances_train.json",
        val_ann=f"{RESULTS}/data/synthetic/coco/annotations/instances_val.json",
    params:
        out=output_folder("dataset"),
        args=synthetic_args(),
    log:
        f"{RESULTS}/logs/synthetic_dataset.log",
    benchmark:
        f"{RESULTS}/benchmarks/synthetic_dataset.tsv",
    priority: FIRST_PRIORITY
    shell:
        "python -m ld_core data-synth --out {params.out} {params.args} > {log} 2>&1"
