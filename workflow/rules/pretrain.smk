# One pretraining run per {arch}-{size} of the grid, then its upstream evaluation.


rule pretrain:
    input:
        shards="data/shards/meta.json",
        train="data/shards/train.bin",
        val="data/shards/val.bin",
        tokenizer="data/tokenizer/hf",
    output:
        metrics="results/runs/{run}/metrics.json",
        curve="results/runs/{run}/curve.csv",
        # in the HTML report (`snakemake --report`), one subcategory per architecture
        config=report("results/runs/{run}/config.json", caption="../report/run_config.rst", category="Runs",
                      subcategory=lambda wc: cfg.split_run(wc.run)[0], labels={"run": "{run}"}),
        model=directory("results/runs/{run}/model"),
    params:
        params_slice=get_params_slice("pretrain"),
        run_config=get_run_config,
    log:
        "results/runs/{run}/train.log",
    benchmark:
        "results/runs/{run}/benchmark.tsv"
    threads: get_threads
    shell:
        "archscale pretrain --params {PARAMS_FILE} --run {wildcards.run} --shards data/shards"
        " --tokenizer {input.tokenizer} --out results/runs/{wildcards.run} --threads {threads} --log {log}"


rule evaluate_upstream:
    input:
        metrics="results/runs/{run}/metrics.json",
        model="results/runs/{run}/model",
        val="data/shards/val.bin",
    output:
        "results/upstream/{run}/upstream.json",
    params:
        params_slice=get_params_slice("evaluate_upstream"),
    log:
        "results/upstream/{run}/evaluate_upstream.log",
    benchmark:
        "results/upstream/{run}/benchmark.tsv"
    threads: get_threads
    shell:
        "archscale evaluate_upstream --run-dir results/runs/{wildcards.run} --shards data/shards --out {output}"
        " --threads {threads} --log {log}"
