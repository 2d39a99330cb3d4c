# Input functions and helpers shared by the rules (get_* by convention).

import functools
import json


def dvc_yaml_current():
    """Whether dvc.yaml was written for PARAMS_SOURCE as it is now (no --config given): its header's
    fingerprint (archscale.dvcyaml) against this params file's."""
    return (
        not _overrides
        and Path("dvc.yaml").is_file()
        and current_dvc_yaml_fingerprint("dvc.yaml") == dvc_yaml_fingerprint(PARAMS_SOURCE)
    )


# Inside a DVC stage (`dvc repro` runs each job through Snakemake), a dvc.yaml written for other
# jobs (a grid or task list changed since) would build a DAG DVC does not know: stop, saying so.
if "DVC_STAGE" in os.environ and workflow.is_main_process and not dvc_yaml_current():
    raise WorkflowError(
        f"dvc.yaml is stale for {PARAMS_SOURCE} (grid, scans, shards or tasks changed since it was written): "
        f"run `archscale dvc-yaml --params {PARAMS_SOURCE}`, then `dvc repro` again"
    )

SHARDS = [f"{k:05d}" for k in range(PARAMS["data"]["shards"])]


wildcard_constraints:
    shard=r"\d{5}",


@functools.cache
def corpus_plan():
    """Per shard, the raw corpus files it reads (all or part); computed once per DAG build (file sizes
    only). Stops the workflow at once when the folder is empty and data.hf_corpus cannot be read."""
    corpus_dir = Path(PARAMS["data"]["corpus_dir"])
    files = corpus_files(corpus_dir)
    if not files:
        if not hub_usable(PARAMS["data"].get("hf_corpus")):
            raise WorkflowError(missing_data_message(corpus_dir))
        return [[] for _ in SHARDS]
    return [sorted({str(path) for path, _, _ in part}) for part in shard_ranges(files, len(SHARDS))]


def get_corpus_files_of_shard(wildcards):
    return corpus_plan()[int(wildcards.shard)]


def check_epochs_now():
    """Once the corpus is tokenized, every `snakemake` first states the epochs each run will read and
    stops, before any job, when one exceeds data.max_epochs (index_shards checks the first build)."""
    meta = Path("data/shards/meta.json")
    if not meta.is_file() or not workflow.is_main_process:
        return
    train_tokens = json.loads(meta.read_text())["splits"]["train"]["tokens"]
    try:
        print(f"archscale: {check_max_epochs(PARAMS, train_tokens, PARAMS_FILE)}", file=sys.stderr)
    except EpochsError as exc:
        raise WorkflowError(str(exc))


check_epochs_now()


def get_params_slice(stage):
    """Input function: the values of the params keys one job of `stage` depends on (cfg.stage_keys),
    as one JSON string: a rule param, so a change reruns exactly the jobs that read the key. The
    keys depend on a run's architecture and size only (its lr and seed are in its id), so the
    slice is made once per `<arch>-<size>` and task: 13k jobs of a 3 x 3 sweep share ~1.5k."""

    @functools.lru_cache(maxsize=None)
    def of(base, task):
        return json.dumps(cfg.params_slice(PARAMS, stage, run=base, task=task), sort_keys=True)

    def get(wildcards):
        run = getattr(wildcards, "run", None)
        return of(cfg.parse_run(run).base if run else None, getattr(wildcards, "task", None))

    return get


# Minutes per pretrain job (a Slurm time limit) by size; scans take their base size's. A run
# longer than this is cut: it checkpoints on Slurm's SIGTERM and the profile's `retries` resubmit
# it (workflow/profiles/default/config.yaml, "Time limits"). About a day at the sizes that need
# one; the CPU sizes finish well inside a day.
PRETRAIN_RUNTIME_MIN = {"tiny": 240, "small": 480, "base": 1440, "large": 1440, "xl": 1440}


def get_pretrain_runtime(wildcards):
    return PRETRAIN_RUNTIME_MIN.get(cfg.parse_run(wildcards.run).size.split("_")[0], 1440)


# Threads of a training or fine-tuning job: one value, not an input function (Snakemake would call
# and inspect a function once per job: a noticeable share of planning a 6k-job sweep).
THREADS = PARAMS["train"].get("threads") or 1


def get_tex_engine(wildcards):
    """Preflight for build_paper, run while the DAG is built (before any job): says which TeX engine
    will build the paper, or stops the workflow at once when this machine has none. No file input."""
    try:
        engine = find_engine()
    except PaperError as exc:
        raise WorkflowError(f"preflight: {exc}")
    if workflow.is_main_process and not getattr(get_tex_engine, "said", False):
        print(f"archscale: the paper will be built with {engine.describe()}", file=sys.stderr)
        get_tex_engine.said = True
    return []


# Fine-tuning jobs' run ids (no lr: runs.tuned_runs) and each (arch, size)'s runs (every lr and seed).
TUNED = cfg.tuned_runs(PARAMS)
TUNED_RUN_RE = r"[a-z0-9_]+-[a-z0-9_]+(\+s[0-9]+)?"
RUNS_BY_BASE = cfg.by_base(RUNS)


def get_finetune_inputs(wildcards):
    """The models a fine-tune may read (its seed at every lr of a sweep; else its run's) and, in a
    sweep, the file that says which lr was selected (rule select_lr)."""
    base = cfg.parse_run(wildcards.run).base
    group = RUNS_BY_BASE[base]
    inputs = {"model": [f"results/runs/{run}/model" for run in cfg.finetune_sources(group, wildcards.run)]}
    if cfg.swept(group):
        inputs["selection"] = f"results/sweeps/{base}.json"
    return inputs


def get_sweep_files(wildcards):
    """Every run of one (arch, size)'s sweep: its config.json (the lr) and upstream.json (the loss)."""
    group = RUNS_BY_BASE[wildcards.base]
    return {
        "configs": [f"results/runs/{run}/config.json" for run in group],
        "upstream": [f"results/upstream/{run}/upstream.json" for run in group],
    }


def get_sweep_runs(wildcards):
    return " ".join(RUNS_BY_BASE[wildcards.base])


# fine-tuning tasks (finetune.smk) and the scratch ones
FT_TASKS = PARAMS.get("finetune", {}).get("tasks", [])
SCRATCH_TASKS = PARAMS.get("finetune", {}).get("scratch_tasks", [])

# Per per-run rule, every job's main output: collect's inputs and the rule's target all_<rule>
# (what its DVC stage runs). select_lr runs per swept (arch, size) when anything is fine-tuned.
RUN_OUTPUTS = {
    "pretrain": expand("results/runs/{run}/metrics.json", run=RUNS),
    "evaluate_upstream": expand("results/upstream/{run}/upstream.json", run=RUNS),
    "select_lr": [
        f"results/sweeps/{base}.json"
        for base, group in RUNS_BY_BASE.items()
        if cfg.swept(group) and (FT_TASKS or SCRATCH_TASKS)
    ],
    "finetune": expand("results/finetune/{run}/{task}/metrics.json", run=TUNED, task=FT_TASKS),
    "finetune_from_scratch": expand(
        "results/finetune_scratch/{run}/{task}/metrics.json", run=TUNED, task=SCRATCH_TASKS
    ),
    "pretrain_stable": expand("results/isoflop/stable/{run}/plan.json", run=ISOFLOP_RUNS),
    "cool_down_branch": expand(
        "results/isoflop/branches/{run}/{budget}/metrics.json",
        run=ISOFLOP_RUNS,
        budget=[cfg.budget_label(b) for b in (PARAMS.get("isoflop") or {}).get("budgets", [])],
    ),
}

# Per per-run rule, the sha256 of the package code its jobs run (archscale.dvcyaml.CODE), a param of
# theirs: an edit reruns their jobs, as their DVC stage does (which keeps the old results in place).
CODE_VERSION = {name: code_version(name) for name in PER_RUN_RULES}


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
    "lr_sweep": bool(PARAMS.get("sweeps")),
    "isoflop": bool(ISOFLOP_RUNS),
}
REPORT_DIR = "../report"


def reported(path, caption, category, subcategory=None, labels=None, item=None):
    """`path` marked for the HTML report, unless `item` is one this preset has no runs for."""
    if not IN_REPORT.get(item, True):
        return path
    return report(path, caption=f"{REPORT_DIR}/{caption}", category=category, subcategory=subcategory, labels=labels)


def get_fit_files(wildcards=None):
    return [f"results/fits/{name}.json" for name in FIT_LAWS]


def get_fit_runs(wildcards):
    """Every run's curve.csv and config.json, for the fits that read them (analysis.cli.READS_CURVES);
    L(C), approach 3 and the prediction check read train.warmup_frac from config.json to leave the
    warm-up's eval points out."""
    if wildcards.fit not in FITS_READING_CURVES:
        return {}
    return {"curves": get_curves(), "configs": get_run_configs()}


def get_curves(wildcards=None):
    return [f"results/runs/{run}/curve.csv" for run in RUNS]


def get_isoflop_curves(wildcards=None):
    """Every IsoFLOP branch's curve.csv: collect writes each of their rows to results/isoflop.csv."""
    return [path.replace("metrics.json", "curve.csv") for path in RUN_OUTPUTS["cool_down_branch"]]


def get_run_configs(wildcards=None):
    """Each run's config.json: L(C), approach 3 and the prediction check read train.warmup_frac from
    it to leave the warm-up's eval points out."""
    return [f"results/runs/{run}/config.json" for run in RUNS]
