# Figures 1-2: GFocal baseline vs LD student on the same validation images (student models alone).

rule figures:
    input:
        baseline_config=figure_file("baseline", "config.py"),
        baseline_checkpoint=figure_file("baseline", "checkpoint.pth"),
        ld_config=figure_file("ld", "config.py"),
        ld_checkpoint=figure_file("ld", "checkpoint.pth"),
        data=dataset_inputs,
    output:
        fig1=report(f"{RESULTS}/figures/figure1.png", caption="../report/figure1.rst", category="Figures"),
        fig1_pdf=f"{RESULTS}/figures/figure1.pdf",
        fig2=report(f"{RESULTS}/figures/figure2.png", caption="../report/figure2.rst", category="Figures"),
        fig2_pdf=f"{RESULTS}/figures/figure2.pdf",
        summary=f"{RESULTS}/figures/figures.json",
    params:
        ann=val_annotations()[0],
        img_dir=val_annotations()[1],
        out_dir=output_folder("summary"),
    log:
        f"{RESULTS}/logs/figures.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures.tsv",
    threads: config["threads"]["evaluate"]
    shell:
        "python -m ld_core figures --baseline-config {input.baseline_config}"
        " --baseline-checkpoint {input.baseline_checkpoint} --ld-config {input.ld_config}"
        " --ld-checkpoint {input.ld_checkpoint} --ann {params.ann} --img-dir {params.img_dir}"
        " --out-dir {params.out_dir} --threads {threads} > {log} 2>&1"
