# archscale: raw corpus -> tokenizer -> shards -> pretraining runs -> upstream eval -> summary
# -> fits -> figures and tables -> paper PDF. This file only wires; every step is an `archscale`
# CLI stage (src/archscale/). The grid comes from params.yaml (or the file given with
# --configfile; `--config` overrides its keys), validated against workflow/schemas/params.schema.yaml
# before any job starts.

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from archscale import config as cfg  # noqa: E402
from archscale.data.corpus import corpus_files, hub_usable, missing_data_message, shard_ranges  # noqa: E402
from archscale.data.epochs import EpochsError, check_max_epochs  # noqa: E402
from archscale.paper import PaperError, find_engine  # noqa: E402
from archscale.analysis.cli import FITS  # noqa: E402
from archscale.analysis.cli import TABLES as FIT_TABLES  # noqa: E402
from archscale.analysis.cli import READS_CURVES as FITS_READING_CURVES  # noqa: E402
from archscale.dvcyaml import FOLDERS as PER_RUN_RULES  # noqa: E402
from archscale.dvcyaml import code_version  # noqa: E402
from archscale.dvcyaml import current_fingerprint as current_dvc_yaml_fingerprint  # noqa: E402
from archscale.dvcyaml import fingerprint as dvc_yaml_fingerprint  # noqa: E402
from archscale.figures.cli import FIGURES as FIGURE_NAMES  # noqa: E402
from archscale.figures.cli import READS_CURVES as FIGURES_READING_CURVES  # noqa: E402
from archscale.tables import OUTPUTS as TABLE_OUTPUTS  # noqa: E402

_given = workflow.config_settings.configfiles
PARAMS_SOURCE = os.path.relpath(_given[-1]) if _given else "params.yaml"
PARAMS_FILE = PARAMS_SOURCE
# `--config 'grid={sizes: [nano]}'` overrides keys of that file (cfg.apply_overrides; an unknown key
# stops the workflow); the jobs then read the resolved params from .snakemake/archscale/.
_overrides = dict(workflow.config_settings.config or {})
try:
    PARAMS = cfg.load(PARAMS_FILE, overrides=_overrides)
except cfg.ConfigError as exc:
    raise WorkflowError(f"invalid params: {exc}")
if _overrides:
    PARAMS_FILE = cfg.write_resolved(PARAMS)
# The jobs' shell commands read the params file as "$ARCHSCALE_PARAMS" (set here, in every process
# that runs this file, Slurm job steps included): a shell variable, not a rule param, so a --config
# run, whose file is another, reruns only the jobs whose params slice it changes.
os.environ["ARCHSCALE_PARAMS"] = PARAMS_FILE


envvars:
    "ARCHSCALE_PARAMS",


RUNS = cfg.runs(PARAMS)
ISOFLOP_RUNS = cfg.isoflop_runs(PARAMS)  # <arch>-<size> of the IsoFLOP grid (its own folder)

os.environ.setdefault("SOURCE_DATE_EPOCH", "1700000000")  # reproducible PDF/figure metadata


# `snakemake --report report.html`: figures with captions, tables, fits and run configs (report() marks
# them in workflow/rules/); this page introduces them.
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/isoflop.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "results/summary.csv",
        "paper/build/main.pdf",


# Every job of one per-run rule: what its DVC stage runs (`--allowed-rules <rule> all_<rule>`;
# archscale.dvcyaml). Snakemake reruns only the jobs whose inputs, params slice or code changed.
rule all_pretrain:
    input:
        RUN_OUTPUTS["pretrain"],


rule all_evaluate_upstream:
    input:
        RUN_OUTPUTS["evaluate_upstream"],


rule all_select_lr:
    input:
        RUN_OUTPUTS["select_lr"],


rule all_finetune:
    input:
        RUN_OUTPUTS["finetune"],


rule all_finetune_from_scratch:
    input:
        RUN_OUTPUTS["finetune_from_scratch"],


rule all_pretrain_stable:
    input:
        RUN_OUTPUTS["pretrain_stable"],


rule all_cool_down_branch:
    input:
        RUN_OUTPUTS["cool_down_branch"],


onsuccess:
    # In a DVC repository, record what this run built in dvc.lock (checksums of every stage's deps,
    # params and outs, without rerunning), so `dvc status` / `dvc repro` agree with Snakemake.
    # --no-relink: DVC would otherwise rewrite outputs from its cache with new dates, in no DAG order.
    # Skipped inside a DVC stage (DVC_STAGE: `dvc repro` locks the repo and writes the lock itself),
    # when dvc.yaml was written for other params (or --config overrides them), or with ARCHSCALE_DVC_COMMIT=0.
    if (
        Path(".dvc").is_dir()
        and "DVC_STAGE" not in os.environ
        and os.environ.get("ARCHSCALE_DVC_COMMIT", "1") != "0"
        and dvc_yaml_current()
    ):
        done = subprocess.run(
            ["dvc", "commit", "--force", "--no-relink", "--quiet"], capture_output=True, text=True
        )
        if done.returncode != 0:
            print(
                f"dvc.lock not updated (run `dvc commit --force` once every output exists):\n{done.stderr[-2000:]}",
                file=sys.stderr,
            )
