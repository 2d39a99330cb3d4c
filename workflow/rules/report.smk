# summary.csv -> fits (JSON) -> figures (one rule each) + tables -> paper PDF.

# fit file (results/fits/<name>.json) -> `archscale fit` options (law and bootstrap size)
FIT_LAWS = {
    "slopes": "--law slopes",
    "lc_frontier": "--law lc --n-boot 1000",
    "approach3": "--law approach3 --points curves --n-boot 200",
    "pareto": "--law pareto",
    "prediction": "--law prediction",
}
# figures (figures/<name>.pdf/.png), one rule and one script (archscale.figures.<name>) each
FIGURES = ["upstream_vs_flops", "pareto", "scaling_per_arch", "downstream_scaling", "depth_scan", "width_scan",
           "lc_frontier", "learning_curves", "fit_residuals", "prediction_check"]
TABLES = list(TABLE_OUTPUTS)  # every file `archscale tables` writes


def get_fit_files(wildcards=None):
    return [f"results/fits/{name}.json" for name in FIT_LAWS]


def get_curves(wildcards=None):
    return [f"results/runs/{run}/curve.csv" for run in RUNS]


rule collect:
    input:
        metrics=expand("results/runs/{run}/metrics.json", run=RUNS),
        upstream=expand("results/upstream/{run}/upstream.json", run=RUNS),
        finetune=expand("results/finetune/{run}/{task}/metrics.json", run=RUNS, task=FT_TASKS),
        scratch=expand("results/finetune_scratch/{run}/{task}/metrics.json", run=RUNS, task=SCRATCH_TASKS),
    output:
        summary="results/summary.csv",
        throughput="results/throughput.csv",
    params:
        params_slice=get_params_slice("collect"),
    log:
        "results/logs/collect.log",
    benchmark:
        "results/logs/collect.benchmark.tsv"
    shell:
        "archscale collect --params {PARAMS_FILE} --out {output.summary} --throughput {output.throughput} --log {log}"


rule fit_law:
    input:
        summary="results/summary.csv",
        curves=get_curves,
    output:
        "results/fits/{fit}.json",
    params:
        law=lambda wc: FIT_LAWS[wc.fit],
    wildcard_constraints:
        fit="|".join(FIT_LAWS),
    log:
        "results/logs/fit_{fit}.log",
    benchmark:
        "results/logs/fit_{fit}.benchmark.tsv"
    shell:
        "archscale fit {params.law} --csv {input.summary} --runs-dir results/runs --out {output} 2> {log}"


for _figure in FIGURES:

    rule:
        name:
            f"draw_{_figure}"
        input:
            summary="results/summary.csv",
            fits=get_fit_files(),
            curves=get_curves(),
        output:
            pdf=f"figures/{_figure}.pdf",
            png=f"figures/{_figure}.png",
        params:
            figure=_figure,
        log:
            f"results/logs/draw_{_figure}.log",
        benchmark:
            f"results/logs/draw_{_figure}.benchmark.tsv"
        shell:
            "archscale figure {params.figure} --summary {input.summary} --fits-dir results/fits"
            " --runs-dir results/runs --out-dir figures 2> {log}"


rule render_tables:
    input:
        summary="results/summary.csv",
        throughput="results/throughput.csv",
        fits=get_fit_files(),
        templates=expand("paper/templates/{table}.tex.j2", table=TABLES),
    output:
        expand("paper/generated/{table}.tex", table=TABLES),
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
    output:
        "paper/build/main.pdf",
    log:
        "results/logs/build_paper.log",
    benchmark:
        "results/logs/build_paper.benchmark.tsv"
    shell:
        'echo "SLURM_JOB_ID=${{SLURM_JOB_ID:-none}}" > {log}; cd paper && FORCE_SOURCE_DATE=1'
        " latexmk -pdf -outdir=build main.tex >> ../{log} 2>&1"
