# Input functions and helpers shared by the rules (get_* by convention).

import json


def get_corpus_files(wildcards):
    """The raw corpus files; stops the workflow at once when there are none and no hub."""
    corpus_dir = Path(PARAMS["data"]["corpus_dir"])
    files = corpus_files(corpus_dir)
    if not files and not hub_reachable():
        raise WorkflowError(missing_data_message(corpus_dir))
    return [str(p) for p in files]


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
