# Scorecard: every paper cell beside its reproduced value, and the supplement's claims checked.

rule scorecard:
    input:
        tables=expand(f"{R}/tables/{{table}}.csv", table=config["tables"]),
        claims=config["claims"],
        paper=config["paper_tables"],
        figures=figures_summary(),
    output:
        csv=report(f"{R}/scorecard.csv", caption="../report/scorecard.rst", category="Scorecard"),
        md=f"{R}/scorecard.md",
        plots=report(expand(f"{R}/figures/{{table}}_bars.png", table=config["tables"]),
                     caption="../report/bars.rst", category="Scorecard"),
    params:
        plot_dir=output_folder("plots"),
        figures=lambda wildcards, input: f"--figures {input.figures}" if input.figures else "",
    log:
        f"{R}/logs/scorecard.log",
    shell:
        "python -m ld_core scorecard --tables {input.tables} --claims {input.claims} --paper {input.paper}"
        " --csv {output.csv} --md {output.md} --plot-dir {params.plot_dir} {params.figures} > {log} 2>&1"
