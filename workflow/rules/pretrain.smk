# One pretraining run per {arch}-{size} of the grid, then its upstream evaluation.


rule pretrain:
    input:
        # meta.json lists every token file with its sha256 (data/shards.py): it changes when any does
        shards="data/shards/meta.json",
        tokenizer="data/tokenizer/hf",
    output:
        metrics="results/runs/{run}/metrics.json",
        curve="results/runs/{run}/curve.csv",
        # in the HTML report (`snakemake --report`), one subcategory per architecture
        config=report(
            "results/runs/{run}/config.json",
            caption="../report/run_config.rst",
            category="Runs",
            subcategory=lambda wc: cfg.parse_run(wc.run).arch,
            labels={"run": "{run}"},
        ),
        model=directory("results/runs/{run}/model"),
    log:
        "results/runs/{run}/train.log",
    benchmark:
        "results/runs/{run}/benchmark.tsv"
    threads: THREADS
    # Ranks: nproc_per_node per launcher (= the job's GPUs; gloo processes on a CPU) x `tasks`
    # launchers (one per node; >1 only under Slurm with `mpi` set, so srun is ours to call). The
    # workflow profile sets them with the GPU request; the values never change results.
    resources:
        nproc_per_node=1,
        tasks=1,
        runtime=get_pretrain_runtime,
    params:
        params_slice=get_params_slice("pretrain"),
        code=CODE_VERSION["pretrain"],
    shell:
        'archscale pretrain --params "$ARCHSCALE_PARAMS" --run {wildcards.run} --shards data/shards'
        " --tokenizer {input.tokenizer} --out results/runs/{wildcards.run} --threads {threads} --log {log}"
        " --nproc-per-node {resources.nproc_per_node} --nnodes {resources.tasks}"


rule evaluate_upstream:
    input:
        metrics="results/runs/{run}/metrics.json",
        model="results/runs/{run}/model",
        shards="data/shards/meta.json",
    output:
        "results/upstream/{run}/upstream.json",
    log:
        "results/upstream/{run}/evaluate_upstream.log",
    benchmark:
        "results/upstream/{run}/benchmark.tsv"
    threads: THREADS
    params:
        params_slice=get_params_slice("evaluate_upstream"),
        code=CODE_VERSION["evaluate_upstream"],
    shell:
        "archscale evaluate_upstream --run-dir results/runs/{wildcards.run} --shards data/shards --out {output}"
        " --threads {threads} --log {log}"
