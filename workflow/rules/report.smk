# summary.csv -> fits (JSON) -> figures (one rule each) + tables -> paper PDF.

# The lists live in the package, read by this file and by the generated dvc.yaml alike.
FIT_LAWS = FITS  # fit file (results/fits/<name>.json) -> `archscale fit` options (archscale.analysis.cli)
FIGURES = list(FIGURE_NAMES)  # figures/<name>.pdf/.png, one rule and one script each (archscale.figures.cli)
TABLES = list(TABLE_OUTPUTS)  # every file `archscale tables` writes


# Small jobs that read a few files and take seconds run on the submitting host, not through the
# cluster queue (a Slurm job costs its queue wait and its start-up); the draw_* rules say so below.
localrules:
    select_lr,
    collect,
    fit_law,
    render_tables,
    build_paper,


rule collect:
    input:
        metrics=RUN_OUTPUTS["pretrain"],
        upstream=RUN_OUTPUTS["evaluate_upstream"],
        finetune=RUN_OUTPUTS["finetune"],
        scratch=RUN_OUTPUTS["finetune_from_scratch"],
        configs=get_run_configs,
        isoflop=RUN_OUTPUTS["cool_down_branch"],
        isoflop_curves=get_isoflop_curves(),
    output:
        summary=reported("results/summary.csv", "summary.rst", "Tables", "Runs and timings"),
        sweep="results/sweep.csv",
        isoflop="results/isoflop.csv",
        throughput=reported("results/throughput.csv", "throughput.rst", "Tables", "Runs and timings"),
    log:
        "results/logs/collect.log",
    benchmark:
        "results/logs/collect.benchmark.tsv"
    params:
        params_slice=get_params_slice("collect"),
    shell:
        'archscale collect --params "$ARCHSCALE_PARAMS" --out {output.summary} --sweep {output.sweep}'
        " --throughput {output.throughput} --isoflop {output.isoflop} --log {log}"


rule fit_law:
    input:
        unpack(get_fit_runs),
        table=lambda wc: FIT_TABLES.get(wc.fit, "results/summary.csv"),
    output:
        reported("results/fits/{fit}.json", "fit.rst", "Fits"),
    log:
        "results/logs/fit_{fit}.log",
    benchmark:
        "results/logs/fit_{fit}.benchmark.tsv"
    wildcard_constraints:
        fit="|".join(FIT_LAWS),
    params:
        law=lambda wc: FIT_LAWS[wc.fit],
    shell:
        "archscale fit {params.law} --csv {input.table} --runs-dir results/runs --out {output} 2> {log}"


for _figure in FIGURES:

    rule:
        name:
            f"draw_{_figure}"
        input:
            summary="results/summary.csv",
            sweep="results/sweep.csv",
            fits=get_fit_files(),
            curves=get_curves() if _figure in FIGURES_READING_CURVES else [],
        output:
            pdf=f"figures/{_figure}.pdf",
            png=reported(f"figures/{_figure}.png", f"figures/{_figure}.rst", "Figures", item=_figure),
        log:
            f"results/logs/draw_{_figure}.log",
        benchmark:
            f"results/logs/draw_{_figure}.benchmark.tsv"
        localrule: True
        params:
            figure=_figure,
        shell:
            "archscale figure {params.figure} --summary {input.summary} --sweep {input.sweep} --fits-dir results/fits"
            " --runs-dir results/runs --out-dir figures 2> {log}"


rule render_tables:
    input:
        summary="results/summary.csv",
        throughput="results/throughput.csv",
        fits=get_fit_files(),
        templates=expand("paper/templates/{table}.tex.j2", table=TABLES),
    output:
        [
            reported(f"paper/generated/{table}.tex", f"tables/{table}.rst", "Tables", "LaTeX (paper)", item=table)
            for table in TABLES
        ],
    log:
        "results/logs/render_tables.log",
    benchmark:
        "results/logs/render_tables.benchmark.tsv"
    shell:
        "archscale tables --summary {input.summary} --throughput {input.throughput} --fits-dir results/fits"
        " --out-dir paper/generated 2> {log}"


rule build_paper:
    input:
        tex="paper/main.tex",
        tables=expand("paper/generated/{table}.tex", table=TABLES),
        figures=expand("figures/{figure}.pdf", figure=FIGURES),
        texmf="paper/texmf/booktabs.sty",
        engine=get_tex_engine,
    output:
        "paper/build/main.pdf",
    log:
        "results/logs/build_paper.log",
    benchmark:
        "results/logs/build_paper.benchmark.tsv"
    shell:
        "archscale paper --tex {input.tex} --out {output} --log {log} 2>> {log}"
