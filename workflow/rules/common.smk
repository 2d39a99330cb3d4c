# Input functions and helpers shared by the rules (get_* by convention).

import functools
import json

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


def get_split_shards(split):
    """Input function: the token files of one split, in shard order (what TokenShard reads)."""

    def get(wildcards):
        return ["data/shards/meta.json"] + [f"data/shards/{split}-{shard}.bin" for shard in SHARDS]

    return get


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


def get_run_config(wildcards):
    """The resolved config of one run, as a rule param (a change reruns the run)."""
    return json.dumps(cfg.resolve_run(PARAMS, wildcards.run), sort_keys=True)


def get_params_slice(stage):
    """Input function: the params keys `stage` depends on (cfg.STAGE_PARAMS), as one JSON string."""

    def get(wildcards):
        run = getattr(wildcards, "run", None)
        arch, size = cfg.split_run(run) if run else (None, None)
        return json.dumps(cfg.params_slice(PARAMS, stage, arch=arch, size=size), sort_keys=True)

    return get


# Minutes per pretrain job (a Slurm time limit) by size; scans take their base size's. A run
# longer than this is cut: it checkpoints on Slurm's SIGTERM and the profile's `retries` resubmit
# it (workflow/profiles/default/config.yaml, "Time limits"). About a day at the sizes that need
# one; the CPU sizes finish well inside a day.
PRETRAIN_RUNTIME_MIN = {"tiny": 240, "small": 480, "base": 1440, "large": 1440, "xl": 1440}


def get_pretrain_runtime(wildcards):
    return PRETRAIN_RUNTIME_MIN.get(cfg.split_run(wildcards.run)[1].split("_")[0], 1440)


def get_threads(wildcards=None):
    return PARAMS["train"].get("threads") or 1


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
