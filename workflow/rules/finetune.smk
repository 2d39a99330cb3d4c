# SuperGLUE fine-tuning: one job per run x task (the RTE job also scores AX-b and AX-g).
# Task data is read inside the job, not declared as input (the hub may supply it): a task that
# cannot be had fails its job, unless finetune.allow_missing lists it, which yields an
# "unavailable" record that shows in the table and marks the downstream average partial.


rule finetune:
    input:
        metrics="results/runs/{run}/metrics.json",
        model="results/runs/{run}/model",
    output:
        "results/finetune/{run}/{task}/metrics.json",
    log:
        "results/finetune/{run}/{task}/finetune.log",
    benchmark:
        "results/finetune/{run}/{task}/benchmark.tsv"
    wildcard_constraints:
        task="|".join(FT_TASKS) or "none",
    threads: get_threads
    params:
        params_slice=get_params_slice("finetune"),
    shell:
        'archscale finetune --params "$ARCHSCALE_PARAMS" --run {wildcards.run} --task {wildcards.task}'
        " --runs-dir results/runs --out-root results/finetune --threads {threads} --log {log}"


# The same recipe from a random init of the run's shape (its tokenizer and config come from the
# run folder): the check that pretraining transfers (Table 3).
rule finetune_from_scratch:
    input:
        metrics="results/runs/{run}/metrics.json",
        model="results/runs/{run}/model",
    output:
        "results/finetune_scratch/{run}/{task}/metrics.json",
    log:
        "results/finetune_scratch/{run}/{task}/finetune.log",
    benchmark:
        "results/finetune_scratch/{run}/{task}/benchmark.tsv"
    wildcard_constraints:
        task="|".join(SCRATCH_TASKS) or "none",
    threads: get_threads
    params:
        params_slice=get_params_slice("finetune_from_scratch"),
    shell:
        'archscale finetune --params "$ARCHSCALE_PARAMS" --run {wildcards.run} --task {wildcards.task} --from-scratch'
        " --runs-dir results/runs --out-root results/finetune_scratch --threads {threads} --log {log}"
