"""`archscale <stage> ...`: one thin entry per pipeline stage.

Each stage lives in its own module with a ``main(argv)`` that parses its own options, so
``archscale <stage> --help`` imports only that stage (transformers and DeepSpeed take seconds
to import; a stage that does not need them never pays for them).
"""

from __future__ import annotations

import importlib
import os
import sys

# stage name -> (module, one-line help). Modules are imported only when their stage runs.
STAGES: dict[str, tuple[str, str]] = {
    "prepare_corpus": ("archscale.data.corpus", "read .txt/.jsonl files or a hub dataset, split train/val (one shard)"),
    "index_corpus": ("archscale.data.corpus", "gather the prepared shards into manifest.json; both splits non-empty"),
    "train_tokenizer": ("archscale.data.tokenizer", "train a BPE/Unigram tokenizer with span sentinels"),
    "tokenize": ("archscale.data.shards", "encode one prepared shard into uint16/uint32 memmap token files"),
    "index_shards": ("archscale.data.shards", "gather the token shards into meta.json; check data.max_epochs"),
    "pretrain": ("archscale.train.pretrain", "pretrain one architecture x size with DeepSpeed"),
    "evaluate_upstream": ("archscale.eval.upstream", "held-out loss / perplexity of a pretrained run"),
    "select-lr": ("archscale.select_lr", "an lr sweep's choice for one arch x size (lowest mean val_loss over seeds)"),
    "finetune": ("archscale.eval.finetune", "fine-tune a pretrained run on one SuperGLUE task"),
    "collect": ("archscale.collect", "gather every run into results/summary.csv"),
    "fit": ("archscale.analysis.cli", "fit scaling laws to any CSV of runs (JSON out)"),
    "figure": ("archscale.figures.cli", "draw one figure from summary/fit files"),
    "tables": ("archscale.tables", "render LaTeX tables and macros from summary/fit files"),
    "paper": ("archscale.paper", "build the paper PDF (system latexmk, else the bundled TinyTeX pdflatex)"),
    "plan": ("archscale.plan", "params, FLOPs, tokens, epochs, disk and GPU-hours of every run, before any job"),
    "dvc-yaml": ("archscale.dvcyaml", "write dvc.yaml from the workflow (stages per job and rule) or --check it"),
    "runs": ("archscale.config", "list the run ids of a params file (one per line)"),
    "validate": ("archscale.config", "check a params file against the schema"),
}


def _usage() -> str:
    width = max(map(len, STAGES))
    lines = ["usage: archscale <stage> [options]   (archscale <stage> --help for its options; archscale --version)",
             "", "stages:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in STAGES.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv_given = argv is not None
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    if argv[0] in {"-V", "--version"}:
        from archscale import __version__

        print(f"archscale {__version__}")
        return 0
    stage, rest = argv[0], argv[1:]
    if stage not in STAGES:
        print(f"archscale: unknown stage {stage!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    if not {"-h", "--help"} & set(rest):  # every job log names its Slurm job (checked in CI)
        print(f"SLURM_JOB_ID={os.environ.get('SLURM_JOB_ID', 'none')}", file=sys.stderr)
    module = importlib.import_module(STAGES[stage][0])
    entry = getattr(module, f"main_{stage}", None) or module.main
    code = int(entry(rest) or 0)
    if argv_given:
        return code
    _exit_now(code)


def _exit_now(code: int) -> None:
    """End a command-line job without the interpreter's teardown: unloading torch, transformers and
    DeepSpeed (thousands of modules) takes 1-2 s per job, after every output is already written and
    renamed into place. Logs and stdio are flushed first; an in-process call (argv given) returns."""
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
