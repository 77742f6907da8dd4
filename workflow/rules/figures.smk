# Figures 1-2: GFocal baseline vs LD student on the same validation images (student models alone).

FIG_RUNS = PIPE.figure_runs()
VAL_ANN, VAL_IMG = PIPE.val_annotations()


rule figures:
    input:
        baseline_config=f"{FIG_RUNS.get('baseline', '')}/config.py",
        baseline_checkpoint=f"{FIG_RUNS.get('baseline', '')}/checkpoint.pth",
        ld_config=f"{FIG_RUNS.get('ld', '')}/config.py",
        ld_checkpoint=f"{FIG_RUNS.get('ld', '')}/checkpoint.pth",
        data=dataset_inputs,
    output:
        fig1=report(f"{R}/figures/figure1.png", caption="../report/figure1.rst", category="Figures"),
        fig1_pdf=f"{R}/figures/figure1.pdf",
        fig2=report(f"{R}/figures/figure2.png", caption="../report/figure2.rst", category="Figures"),
        fig2_pdf=f"{R}/figures/figure2.pdf",
        summary=f"{R}/figures/figures.json",
    log:
        f"{R}/logs/figures.log",
    threads: config["threads"]["evaluate"]
    shell:
        "{PY} -m ld_core figures --baseline-config {input.baseline_config}"
        " --baseline-checkpoint {input.baseline_checkpoint} --ld-config {input.ld_config}"
        " --ld-checkpoint {input.ld_checkpoint} --ann {VAL_ANN} --img-dir {VAL_IMG}"
        " --out-dir {R}/figures --threads {threads} > {log} 2>&1"
