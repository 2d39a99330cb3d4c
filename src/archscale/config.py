"""Load and validate a params file, and resolve the run grid.

params.yaml is the one source of truth for the grid: Snakemake (Snakefile) and DVC (dvc.yaml)
both expand their per-run jobs from `runs(params)`. Validation happens before any job starts and
every error names the key that is wrong.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import string
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from archscale.runs import (  # noqa: F401 (cfg.runs etc.)
    RunIdError,
    all_sizes,
    base_runs,
    budget_label,
    by_base,
    finetune_sources,
    isoflop_runs,
    number,
    parse_run,
    runs,
    scan_sizes,
    select_lr,
    sweep_of,
    swept,
    tuned_runs,
)
from archscale.runs import check as check_runs

REPO = Path(__file__).resolve().parents[2]  # the checkout, for code_version (git) only
# Shipped inside the package (a wheel install validates too); workflow/schemas/ links to it, where
# the Snakemake workflow catalog looks for a workflow's schemas.
SCHEMA = Path(__file__).resolve().with_name("params.schema.yaml")


# params.yaml keys each stage depends on: the rerun triggers. The Snakefile passes their values as a
# rule param (a change reruns the rule's jobs) and the generated dvc.yaml lists the same keys
# (stage_keys); tests/test_dag_parity.py checks that DVC reads the same values. Placeholders are
# filled per job: {arch}, {size} (a scan's base size), {objective}, {scan} (depth/width, only for a
# scan run), {task} (only where the key exists).
STAGE_PARAMS: dict[str, list[str]] = {
    "prepare_corpus": ["seed", "data.corpus_dir", "data.text_field", "data.hf_corpus", "data.val_fraction",
                       "data.max_docs", "data.shards"],
    "train_tokenizer": ["tokenizer"],
    "pretrain": ["seed", "train", "objectives.{objective}", "sizes.{size}", "scans.{scan}", "architectures.{arch}"],
    "evaluate_upstream": ["seed", "train", "objectives.{objective}", "sizes.{size}", "scans.{scan}",
                          "architectures.{arch}"],
    "finetune": ["seed", "finetune", "finetune.per_task.{task}", "sizes.{size}", "scans.{scan}",
                 "architectures.{arch}"],
    "finetune_from_scratch": ["seed", "finetune", "finetune.per_task.{task}", "sizes.{size}", "scans.{scan}",
                              "architectures.{arch}"],
    "pretrain_stable": ["seed", "train", "objectives.{objective}", "sizes.{size}", "architectures.{arch}",
                        "isoflop.budgets", "isoflop.cooldown_frac"],
    "collect": ["grid", "scans", "sweeps", "seeds", "isoflop"],
}
STAGE_PARAMS["cool_down_branch"] = STAGE_PARAMS["pretrain_stable"]  # a branch depends on what its stable run does
# Keys that never change a job's result, left out of every stage's triggers: how fast a job runs and
# how often it checkpoints (the resume tests show a cut run gives the same bytes), and which tasks
# exist (adding a task adds its jobs; the others keep theirs). finetune.allow_missing only decides
# whether a task with no data fails its job or records "unavailable"; with the data present the
# result is the same. finetune.per_task reaches each task's jobs through finetune.per_task.{task}.
NO_RERUN = ("train.threads", "train.checkpoint_every", "train.keep_checkpoints", "train.compile",
            "finetune.tasks", "finetune.scratch_tasks", "finetune.allow_missing", "finetune.per_task")


def get_key(params: dict, key: str):
    """The value at a dotted key, or KeyError (the class) when the params lack it."""
    node = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return KeyError
        node = node[part]
    return node


def stage_keys(params: dict, stage: str, run: str | None = None, task: str | None = None) -> list[str]:
    """The dotted params keys one job of `stage` depends on (STAGE_PARAMS filled for the job). A key
    with a NO_RERUN key beneath it is split into its children; a key the params lack is left out
    (a task with no per_task entry, a run that is not a scan)."""
    fill = {"task": task}
    if run:
        rid = parse_run(run)
        arch, size = rid.arch, rid.size
        shape = all_sizes(params).get(size, {})
        scan = shape.get("scan", "")
        base = params["scans"][scan]["base"] if scan else size
        fill.update(arch=arch, size=base, scan=scan or None,
                    objective=params["architectures"].get(arch, {}).get("objective"))
    keys = []
    for pattern in STAGE_PARAMS.get(stage, []):
        names = {name for _, name, _, _ in string.Formatter().parse(pattern) if name}
        if any(fill.get(name) is None for name in names):
            continue
        pending = [pattern.format(**fill)]
        while pending:
            key = pending.pop(0)
            if key in NO_RERUN or get_key(params, key) is KeyError:
                continue
            if any(v.startswith(key + ".") for v in NO_RERUN) and isinstance(get_key(params, key), dict):
                pending[:0] = [f"{key}.{child}" for child in get_key(params, key)]
            else:
                keys.append(key)
    return keys


def params_slice(params: dict, stage: str, run: str | None = None, task: str | None = None) -> dict:
    """The values of the keys one job of `stage` depends on, keyed by their dotted names."""
    return {key: get_key(params, key) for key in stage_keys(params, stage, run, task)}


class ConfigError(ValueError):
    """A params file that cannot be used; the message names the file and the key."""


@lru_cache(maxsize=1)
def _schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def validate(params: dict, source: str = "params") -> dict:
    """Check `params` against the JSON schema and the cross-references the schema cannot express."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors:
            where = _key(err.absolute_path)
            if err.validator == "additionalProperties":
                extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
                lines.append(f"{source}: unknown key(s) {', '.join(map(repr, extra))} under {where}")
            elif err.validator == "propertyNames":
                lines.append(f"{source}: {where}: name {err.instance!r} must be lowercase [a-z0-9_]")
            else:
                lines.append(f"{source}: {where}: {err.message}")
        raise ConfigError("\n".join(lines))
    if params["data"].get("max_docs") and params["data"]["shards"] > 1:
        raise ConfigError(f"{source}: data.max_docs keeps the corpus's first documents, which one shard of "
                          f"data.shards = {params['data']['shards']} cannot know: set data.shards to 1 or "
                          "data.max_docs to null")
    for i, arch in enumerate(params["grid"]["architectures"]):
        if arch not in params["architectures"]:
            known = ", ".join(sorted(params["architectures"]))
            raise ConfigError(f"{source}: grid.architectures[{i}]: unknown architecture {arch!r} (known: {known})")
    for i, size in enumerate(params["grid"]["sizes"]):
        if size not in params["sizes"]:
            known = ", ".join(params["sizes"])
            raise ConfigError(f"{source}: grid.sizes[{i}]: unknown size {size!r} (known: {known})")
    for kind, scan in params.get("scans", {}).items():
        if scan["base"] not in params["sizes"]:
            raise ConfigError(f"{source}: scans.{kind}.base: unknown size {scan['base']!r}")
        for i, arch in enumerate(scan["architectures"]):
            if arch not in params["architectures"]:
                raise ConfigError(f"{source}: scans.{kind}.architectures[{i}]: unknown architecture {arch!r}")
    iso = params.get("isoflop") or {}
    for key, known in (("architectures", params["architectures"]), ("sizes", params["sizes"])):
        for i, item in enumerate(iso.get(key, [])):
            if item not in known:
                raise ConfigError(f"{source}: isoflop.{key}[{i}]: unknown {key[:-1]} {item!r} "
                                  f"(known: {', '.join(known)})")
    labels = [number(b) for b in iso.get("budgets", [])]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{source}: isoflop.budgets: repeated value in {labels}")
    for name, arch in params["architectures"].items():
        if arch["impl"] == "hf" and "model_type" not in arch:
            raise ConfigError(f"{source}: architectures.{name}: impl 'hf' needs a model_type")
        if arch["impl"] == "native" and "module" not in arch:
            raise ConfigError(f"{source}: architectures.{name}: impl 'native' needs a module")
        if "mlm" in arch and arch["objective"] != "mlm":
            key = ".".join(["mlm", *list(arch["mlm"])[:1]])
            raise ConfigError(f"{source}: architectures.{name}.{key}: only an mlm architecture takes mlm "
                              f"settings (this one's objective is {arch['objective']!r})")
        if "copies" in arch.get("mlm", {}) and arch["mlm"].get("masking", "dynamic") != "static":
            raise ConfigError(f"{source}: architectures.{name}.mlm.copies: copies are for static masking "
                              "(set masking: static, or drop copies)")
    for where, tr in [("train", params["train"])] + [
            (f"architectures.{name}.train", {**params["train"], **arch["train"]})
            for name, arch in params["architectures"].items() if "train" in arch]:
        if tr["batch_size"] % tr["micro_batch_size"]:
            raise ConfigError(f"{source}: {where}: batch_size ({tr['batch_size']}) must be a multiple of "
                              f"micro_batch_size ({tr['micro_batch_size']})")
    try:
        check_runs(params, source)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return params


def apply_overrides(params: dict, overrides: dict, source: str = "--config") -> dict:
    """A copy of `params` with `overrides` merged in: nested mappings, as `snakemake --config
    'grid={sizes: [nano]}'` gives them. A mapping merges key by key into a non-empty mapping; any
    other value (an empty target mapping included) replaces. A key the params lack is an error
    naming its dotted path: an override never silently adds a key nothing reads."""
    out = copy.deepcopy(params)

    def merge(node: dict, update: dict, path: list[str]) -> None:
        for key, value in update.items():
            where = ".".join([*path, str(key)])
            if key not in node:
                known = ", ".join(map(str, node)) or "none"
                raise ConfigError(f"{source}: {where}: no such key in the params (keys here: {known})")
            if isinstance(value, dict) and isinstance(node[key], dict) and node[key]:
                merge(node[key], value, [*path, str(key)])
            else:
                node[key] = typed(copy.deepcopy(value), node[key])

    def typed(value, current):
        """Snakemake reads the scalars inside a --config mapping as strings ('2', 'true', 'null'):
        read them as YAML, unless the key holds text (a string, or a list of strings)."""
        if isinstance(value, str):
            return value if isinstance(current, str) else yaml.safe_load(value)
        if isinstance(value, list):
            texts = isinstance(current, list) and current and all(isinstance(c, str) for c in current)
            return [v if texts else typed(v, None) for v in value]
        if isinstance(value, dict):
            return {k: typed(v, current.get(k) if isinstance(current, dict) else None) for k, v in value.items()}
        return value

    merge(out, overrides, [])
    return out


def _read(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"params file not found: {path}")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return params


def layers(path: str | Path) -> list[tuple[Path, dict]]:
    """The files a params file is made of, base first: a preset names the file it changes with
    `extends: <path>` (relative to the preset) and holds only the keys it changes."""
    chain: list[tuple[Path, dict]] = []
    path = Path(path)
    while True:
        if any(path.resolve() == seen.resolve() for seen, _ in chain):
            raise ConfigError(f"{path}: `extends` loops back to a file already read")
        params = _read(path)
        chain.append((path, params))
        if "extends" not in params:
            return chain[::-1]
        parent = params["extends"]
        if not isinstance(parent, str):
            raise ConfigError(f"{path}: extends: expected the path of a params file, got {parent!r}")
        path = Path(os.path.normpath(path.parent / parent))


def merge_layers(chain: list[tuple[Path, dict]]) -> dict:
    """Base first, each overlay merged in: a mapping merges key by key into a mapping (new keys
    allowed: the schema judges the result), any other value (a list included) replaces."""

    def merge(node: dict, update: dict) -> None:
        for key, value in update.items():
            if isinstance(value, dict) and isinstance(node.get(key), dict):
                merge(node[key], value)
            else:
                node[key] = copy.deepcopy(value)

    out: dict = {}
    for _, params in chain:
        merge(out, {k: v for k, v in params.items() if k != "extends"})
    return out


def load(path: str | Path = "params.yaml", overrides: dict | None = None) -> dict:
    """Read a params file (with the files it `extends`), merge `overrides` (a nested mapping:
    apply_overrides), and validate."""
    chain = layers(path)
    params = merge_layers(chain)
    source = " over ".join(str(p) for p, _ in chain[::-1])
    if overrides:
        params = apply_overrides(params, overrides, f"{source} overridden by --config")
    return validate(params, source)


def write_resolved(params: dict, folder: str | Path = ".snakemake/archscale") -> str:
    """Write params (after overrides) to <folder>/params-<sha256 prefix>.yaml, the file the jobs
    then read; the name follows the content, so every process that resolves the same overrides
    writes the same file. Returns its path."""
    from archscale.io import write_text

    text = yaml.safe_dump(params, sort_keys=False)
    path = Path(folder) / f"params-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
    if not path.is_file() or path.read_text() != text:
        write_text(path, text)
    return str(path)


def code_version() -> str:
    """The git commit of the code (with '+dirty' when the tree has changes), or 'unknown'."""
    try:
        sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha + ("+dirty" if dirty else "")) if sha else "unknown"


def kaplan_lr(shape: dict, objective: str) -> float:
    """Peak lr from model size, Kaplan et al. 2020 (Eq. D.1, fitted to their AdamW decoder runs):
    LR(N) = 0.003239 - 0.0001395 ln N, with N = 2 d_model n_layer (2 d_attn + d_ff) their non-embedding
    count (Eq. 2.1; d_attn = n_heads d_kv), n_layer counting both stacks of an encoder-decoder."""
    layers = shape["n_layers"] * (2 if objective == "span" else 1)
    n = 2 * shape["d_model"] * layers * (2 * shape["n_heads"] * shape["d_kv"] + shape["d_ff"])
    return 0.003239 - 0.0001395 * math.log(n)


def resolve_run(params: dict, run: str) -> dict[str, Any]:
    """The fully resolved config of one run: everything that determines its outputs."""
    try:
        rid = parse_run(run)
    except RunIdError as exc:
        raise ConfigError(str(exc)) from None
    arch, size = rid.arch, rid.size
    if arch not in params["architectures"]:
        raise ConfigError(f"run {run!r}: unknown architecture {arch!r}")
    if size not in all_sizes(params):
        raise ConfigError(f"run {run!r}: unknown size {size!r}")
    arch_cfg = params["architectures"][arch]
    shape = {**all_sizes(params)[size], **arch_cfg.get("shape", {})}
    scan = shape.pop("scan", "")
    # An architecture may override batch and optimiser keys of train: (the schema's whitelist); the
    # merged values are what the run uses and records.
    train = {**params["train"], **arch_cfg.get("train", {})}
    if train["lr"] == "kaplan":
        train["lr"], train["lr_rule"] = kaplan_lr(shape, arch_cfg["objective"]), "kaplan"
    if rid.lr is not None and rid.lr_scale:  # a sweep by factors of the run's own lr (runs.py)
        train["lr"], train["lr_scale"] = train["lr"] * rid.lr, rid.lr
    elif rid.lr is not None:
        train["lr"] = rid.lr
    objectives = params["objectives"]
    if arch_cfg["objective"] == "mlm":  # the architecture's masking and sentence task join objectives.mlm
        from archscale.data.objectives import mlm_settings

        objectives = {**objectives, "mlm": mlm_settings({**objectives["mlm"], **arch_cfg.get("mlm", {})})}
    return {
        "run": run,
        "arch": arch,
        "size": size,
        "preset": params["preset"],
        # a repeat's own seed (init, data order, masking, fine-tuning); every run of a study is evaluated
        # on the same held-out draws (eval_seed), so repeats differ by training alone
        "seed": params["seed"] if rid.seed is None else rid.seed,
        "eval_seed": params["seed"],
        "architecture": arch_cfg,
        "objective": arch_cfg["objective"],
        "scan": scan,
        "shape": shape,
        "train": train,
        "objectives": objectives,
        "tokenizer": params["tokenizer"],
    }


def main_runs(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="archscale runs", description="List the run ids of a params file.")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    print("\n".join(runs(load(args.params))))
    return 0


def main_validate(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="archscale validate", description="Validate a params file against the schema.")
    ap.add_argument("params", nargs="?", default="params.yaml")
    args = ap.parse_args(argv)
    try:
        params = load(args.params)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(json.dumps({"params": args.params, "runs": len(runs(params))}))
    return 0
