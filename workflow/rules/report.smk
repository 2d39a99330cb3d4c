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
FIGURES = [
    "upstream_vs_flops",
    "pareto",
    "scaling_per_arch",
    "downstream_scaling",
    "depth_scan",
    "width_scan",
    "lc_frontier",
    "learning_curves",
    "fit_residuals",
    "prediction_check",
]
TABLES = list(TABLE_OUTPUTS)  # every file `archscale tables` writes

# `snakemake --report report.html` (Snakemake's HTML report, described by workflow/report/workflow.rst):
# report() marks outputs for it, with a caption (workflow/report/, relative to this file) and a
# category; it adds no job and no output (dvc.yaml mirrors the DAG). What a preset has no runs for
# is left out of the report: its rule still runs and draws a placeholder ("no depth-scan runs"),
# so the DAG is the same for every preset, and the paper leaves the same sections out
# (\HasDepthScan etc. in paper/generated/macros.tex).
SCAN_KINDS = {cfg.resolve_run(PARAMS, run)["scan"] for run in RUNS} - {""}  # "depth", "width"
IN_REPORT = {
    "depth_scan": "depth" in SCAN_KINDS,
    "width_scan": "width" in SCAN_KINDS,
    "downstream_scaling": bool(FT_TASKS),
    "table3_transfer": bool(SCRATCH_TASKS),
}
REPORT_DIR = "../report"


def reported(path, caption, category, subcategory=None, labels=None, item=None):
    """`path` marked for the HTML report, unless `item` is one this preset has no runs for."""
    if not IN_REPORT.get(item, True):
        return path
    return report(path, caption=f"{REPORT_DIR}/{caption}", category=category, subcategory=subcategory, labels=labels)


def get_fit_files(wildcards=None):
    return [f"results/fits/{name}.json" for name in FIT_LAWS]


def get_curves(wildcards=None):
    return [f"results/runs/{run}/curve.csv" for run in RUNS]


def get_run_configs(wildcards=None):
    """Each run's config.json: L(C), approach 3 and the prediction check read train.warmup_frac from
    it to leave the warm-up's eval points out."""
    return [f"results/runs/{run}/config.json" for run in RUNS]


rule collect:
    input:
        metrics=expand("results/runs/{run}/metrics.json", run=RUNS),
        upstream=expand("results/upstream/{run}/upstream.json", run=RUNS),
        finetune=expand("results/finetune/{run}/{task}/metrics.json", run=RUNS, task=FT_TASKS),
        scratch=expand("results/finetune_scratch/{run}/{task}/metrics.json", run=RUNS, task=SCRATCH_TASKS),
    output:
        summary=reported("results/summary.csv", "summary.rst", "Tables", "Runs and timings"),
        throughput=reported("results/throughput.csv", "throughput.rst", "Tables", "Runs and timings"),
    log:
        "results/logs/collect.log",
    benchmark:
        "results/logs/collect.benchmark.tsv"
    params:
        params_slice=get_params_slice("collect"),
    shell:
        "archscale collect --params {PARAMS_FILE} --out {output.summary} --throughput {output.throughput} --log {log}"


rule fit_law:
    input:
        summary="results/summary.csv",
        curves=get_curves,
        configs=get_run_configs,
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
            png=reported(f"figures/{_figure}.png", f"figures/{_figure}.rst", "Figures", item=_figure),
        log:
            f"results/logs/draw_{_figure}.log",
        benchmark:
            f"results/logs/draw_{_figure}.benchmark.tsv"
        params:
            figure=_figure,
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
