# SuperGLUE fine-tuning: one job per run x task (the RTE job also scores AX-b and AX-g). In an lr
# sweep a job is named by the run id without lr (`<arch>-<size>[+s<seed>]`) and fine-tunes the lr
# that select_lr chose from the upstream evals (the rule of sweep.csv): each lr is pretrained,
# only the selected one is fine-tuned.


# One job per swept (arch, size), once every lr and seed of it is evaluated.
rule select_lr:
    input:
        unpack(get_sweep_files),
    output:
        "results/sweeps/{base}.json",
    log:
        "results/sweeps/{base}.log",
    benchmark:
        "results/sweeps/{base}.benchmark.tsv"
    wildcard_constraints:
        base=r"[a-z0-9_]+-[a-z0-9_]+",
    params:
        runs=get_sweep_runs,
        code=CODE_VERSION["select_lr"],
    shell:
        "archscale select-lr --out {output} --log {log} {params.runs}"


# Task data is read inside the job, not declared as input (the hub may supply it): a task that
# cannot be had fails its job, unless finetune.allow_missing lists it, which yields an
# "unavailable" record that shows in the table and marks the downstream average partial.


rule finetune:
    input:
        unpack(get_finetune_inputs),
    output:
        "results/finetune/{run}/{task}/metrics.json",
    log:
        "results/finetune/{run}/{task}/finetune.log",
    benchmark:
        "results/finetune/{run}/{task}/benchmark.tsv"
    wildcard_constraints:
        run=TUNED_RUN_RE,
        task="|".join(FT_TASKS) or "none",
    threads: THREADS
    params:
        params_slice=get_params_slice("finetune"),
        code=CODE_VERSION["finetune"],
    shell:
        'archscale finetune --params "$ARCHSCALE_PARAMS" --run {wildcards.run} --task {wildcards.task}'
        " --runs-dir results/runs --out-root results/finetune --threads {threads} --log {log}"


# The same recipe from a random init of the run's shape (its tokenizer and config come from the
# run folder): the check that pretraining transfers (Table 3).
rule finetune_from_scratch:
    input:
        unpack(get_finetune_inputs),
    output:
        "results/finetune_scratch/{run}/{task}/metrics.json",
    log:
        "results/finetune_scratch/{run}/{task}/finetune.log",
    benchmark:
        "results/finetune_scratch/{run}/{task}/benchmark.tsv"
    wildcard_constraints:
        run=TUNED_RUN_RE,
        task="|".join(SCRATCH_TASKS) or "none",
    threads: THREADS
    params:
        params_slice=get_params_slice("finetune_from_scratch"),
        code=CODE_VERSION["finetune_from_scratch"],
    shell:
        'archscale finetune --params "$ARCHSCALE_PARAMS" --run {wildcards.run} --task {wildcards.task} --from-scratch'
        " --runs-dir results/runs --out-root results/finetune_scratch --threads {threads} --log {log}"
