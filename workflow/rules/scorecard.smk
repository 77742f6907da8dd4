# Scorecard: the preconditions (models learned, teachers better than their students), every paper cell beside
# its reproduced value, and the supplement's claims judged: holds, contradicted or inconclusive.

# A few seconds of pandas and matplotlib: on the submit host under SLURM.
localrules:
    scorecard,
    scorecard_first,


rule scorecard:
    input:
        tables=expand(f"{RESULTS}/tables/{{table}}.csv", table=config["tables"]),
        claims=config["claims"],
        paper=config["paper_tables"],
        matrix=config["matrix"],
        teachers=PIPELINE.teacher_metric_files(config["tables"]),
        figures=figures_summary(),
    output:
        csv=report(f"{RESULTS}/scorecard.csv", caption="../report/scorecard.rst", category="Scorecard",
                   subcategory="Preconditions, verdicts, cells"),
        md=report(f"{RESULTS}/scorecard.md", caption="../report/scorecard_md.rst", category="Scorecard",
                  subcategory="Preconditions, verdicts, cells"),
        plots=report(expand(f"{RESULTS}/figures/{{table}}_bars.png", table=config["tables"]),
                     caption="../report/bars.rst", category="Scorecard", subcategory="Bar plots"),
    params:
        plot_dir=output_folder("plots"),
        preconditions=precondition_args(),
        figures=lambda wildcards, input: f"--figures {input.figures}" if input.figures else "",
    log:
        f"{RESULTS}/logs/scorecard.log",
    benchmark:
        f"{RESULTS}/benchmarks/scorecard.tsv",
    shell:
        "python -m ld_core scorecard --tables {input.tables} --claims {input.claims} --paper {input.paper}"
        " --matrix {input.matrix} --teacher-metrics {input.teachers} {params.preconditions}"
        " --csv {output.csv} --md {output.md} --plot-dir {params.plot_dir} {params.figures} > {log} 2>&1"


rule scorecard_first:
    # The first table's part of the scorecard (Table 1 in the default order), written as soon as that table
    # is: this table's jobs have a higher priority than the others (common.smk, first_priority).
    input:
        table=f"{RESULTS}/tables/{config['tables'][0]}.csv",
        claims=config["claims"],
        paper=config["paper_tables"],
        matrix=config["matrix"],
        teachers=PIPELINE.teacher_metric_files(config["tables"][:1]),
    output:
        csv=f"{RESULTS}/scorecard/{config['tables'][0]}.csv",
        md=f"{RESULTS}/scorecard/{config['tables'][0]}.md",
    log:
        f"{RESULTS}/logs/scorecard_first.log",
    benchmark:
        f"{RESULTS}/benchmarks/scorecard_first.tsv",
    params:
        preconditions=precondition_args(),
    priority: FIRST_PRIORITY
    shell:
        "python -m ld_core scorecard --tables {input.table} --claims {input.claims} --paper {input.paper}"
        " --matrix {input.matrix} --teacher-metrics {input.teachers} {params.preconditions}"
        " --only-given --csv {output.csv} --md {output.md} > {log} 2>&1"
