# IsoFLOP profiles (params `isoflop:`, archscale.train.isoflop): per architecture and size one
# warmup-stable-decay run, saved where each budget's cool-down starts, then one short cool-down
# branch per budget from that checkpoint. collect gathers the branches into results/isoflop.csv.


wildcard_constraints:
    budget=r"C[0-9][0-9.e+-]*",


rule pretrain_stable:
    input:
        shards="data/shards/meta.json",
        tokenizer="data/tokenizer/hf",
    output:
        # plan.json: each budget's steps and where its branch starts; the branch checkpoints are in
        # ckpt/branches/ (kept across a time-limit cut, dropped with ckpt/ when the params change)
        plan="results/isoflop/stable/{run}/plan.json",
        curve="results/isoflop/stable/{run}/curve.csv",
    log:
        "results/isoflop/stable/{run}/train.log",
    benchmark:
        "results/isoflop/stable/{run}/benchmark.tsv"
    threads: THREADS
    resources:
        nproc_per_node=1,
        tasks=1,
        runtime=get_pretrain_runtime,
    params:
        params_slice=get_params_slice("pretrain_stable"),
        code=CODE_VERSION["pretrain_stable"],
    shell:
        'archscale pretrain --params "$ARCHSCALE_PARAMS" --run {wildcards.run} --isoflop stable --shards data/shards'
        " --tokenizer {input.tokenizer} --out results/isoflop/stable/{wildcards.run} --threads {threads} --log {log}"
        " --nproc-per-node {resources.nproc_per_node} --nnodes {resources.tasks}"


rule cool_down_branch:
    input:
        plan="results/isoflop/stable/{run}/plan.json",
        shards="data/shards/meta.json",
        tokenizer="data/tokenizer/hf",
    output:
        metrics="results/isoflop/branches/{run}/{budget}/metrics.json",
        curve="results/isoflop/branches/{run}/{budget}/curve.csv",
    log:
        "results/isoflop/branches/{run}/{budget}/train.log",
    benchmark:
        "results/isoflop/branches/{run}/{budget}/benchmark.tsv"
    threads: THREADS
    resources:
        nproc_per_node=1,
        tasks=1,
        runtime=get_pretrain_runtime,
    params:
        params_slice=get_params_slice("cool_down_branch"),
        code=CODE_VERSION["cool_down_branch"],
    shell:
        'archscale pretrain --params "$ARCHSCALE_PARAMS" --run {wildcards.run} --isoflop {wildcards.budget}'
        " --stable results/isoflop/stable/{wildcards.run} --shards data/shards --tokenizer {input.tokenizer}"
        " --out results/isoflop/branches/{wildcards.run}/{wildcards.budget} --threads {threads} --log {log}"
        " --nproc-per-node {resources.nproc_per_node} --nnodes {resources.tasks}"
