# Tables: tidy CSV + booktabs LaTeX, the paper's numbers beside the reproduced ones.

# A few seconds of pandas: on the submit host under SLURM, not a queued job.
localrules:
    table,


rule table:
    input:
        metrics=lambda wc: PIPELINE.table_metric_files(wc.table),
        matrix=config["matrix"],
        paper=config["paper_tables"],
    output:
        csv=report(f"{RESULTS}/tables/{{table}}.csv", caption="../report/table.rst", category="Tables",
                   subcategory="{table}"),
        tex=report(f"{RESULTS}/tables/{{table}}.tex", caption="../report/latex.rst", category="Tables",
                   subcategory="{table}"),
    params:
        # a dataset of your own: no paper values or deltas beside it (the paper's numbers are COCO's / VOC's)
        dataset=lambda wc: (f"--dataset-name {shlex.quote(name)}"
                            if (name := PIPELINE.table_dataset(wc.table)) else ""),
    log:
        f"{RESULTS}/logs/{{table}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/table/{{table}}.tsv",
    priority: first_table_priority
    shell:
        "python -m ld_core table --matrix {input.matrix} --table {wildcards.table} --paper {input.paper}"
        " --metrics {input.metrics} --csv {output.csv} --tex {output.tex} {params.dataset} > {log} 2>&1"
