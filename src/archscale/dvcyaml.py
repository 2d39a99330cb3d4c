"""`archscale dvc-yaml`: write dvc.yaml from the workflow: one DVC stage per Snakemake job, but one
per rule for the per-run rules.

DVC is the second front door to the same DAG: each stage runs its job through Snakemake
(`snakemake --allowed-rules <rule> -- <target>`), so commands, logs and benchmarks are defined once,
in workflow/rules/. The per-run rules (pretrain, evaluate_upstream, select_lr, finetune,
finetune_from_scratch: thousands of jobs in an lr x seed sweep; and IsoFLOP's pretrain_stable and
cool_down_branch) are one stage each, which owns the
rule's results folder (`persist`: DVC leaves it in place) and runs the Snakefile's `all_<rule>` target:
Snakemake reruns only the jobs whose params slice, code (rule param `code`) or inputs changed.
DVC's cost is per stage: 6,183 one-job stages took `dvc status` 190 s (benchmarks/RESULTS.md).

What the stages hold comes from the package, as the Snakefile's does: the runs
(config.runs, scans included), the shards, tasks, fits (analysis.cli.FITS), figures
(figures.cli.FIGURES) and tables (tables.OUTPUTS), and each job's params keys
(config.stage_keys: a key a preset overlay sets is read from the overlay, any other from the file
it extends). tests/test_dag_parity.py builds Snakemake's job list for every preset and checks this
file against it: outputs, inputs and params values.

    archscale dvc-yaml                              # dvc.yaml for params.yaml (committed)
    archscale dvc-yaml --params presets/smoke.yaml  # DVC on a preset: regenerate, then dvc repro
    archscale dvc-yaml --check                      # exit 1 when dvc.yaml is not what this writes

Keys that add or remove jobs (grid, scans, data.shards, finetune.tasks, isoflop) need the file written
again; `dvc exp run -S key=value` works for every other key. Code deps: the package folders each
stage imports (CODE); the per-run rules also pass their sha256 to Snakemake (code_version).
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from pathlib import Path

import yaml

from archscale import config as cfg

SMK = "snakemake --cores all --quiet rules"
PKG = "src/archscale"
# the package code each stage runs (DVC reruns the stage when it changes)
CODE = {
    "prepare_corpus": [f"{PKG}/data/corpus.py"],
    "index_corpus": [f"{PKG}/data/corpus.py"],
    "train_tokenizer": [f"{PKG}/data/tokenizer.py"],
    "tokenize": [f"{PKG}/data/shards.py"],
    "index_shards": [f"{PKG}/data/shards.py", f"{PKG}/data/epochs.py"],
    "pretrain": [f"{PKG}/train", f"{PKG}/models", f"{PKG}/data/objectives.py", f"{PKG}/data/shards.py"],
    "evaluate_upstream": [f"{PKG}/eval/upstream.py", f"{PKG}/models", f"{PKG}/data/objectives.py"],
    "select_lr": [f"{PKG}/select_lr.py", f"{PKG}/runs.py"],
    "finetune": [f"{PKG}/eval", f"{PKG}/models"],
    "finetune_from_scratch": [f"{PKG}/eval", f"{PKG}/models"],
    "collect": [f"{PKG}/collect.py"],
    "fit_law": [f"{PKG}/analysis"],
    "draw": [f"{PKG}/figures"],
    "render_tables": [f"{PKG}/tables.py", f"{PKG}/analysis"],
    "build_paper": [f"{PKG}/paper.py"],
}
CODE["pretrain_stable"] = CODE["cool_down_branch"] = CODE["pretrain"]  # IsoFLOP jobs run `archscale pretrain`


# the per-run rules: one DVC stage each, owning the rule's folder (every job of the rule writes only there)
FOLDERS = {"pretrain": "results/runs", "evaluate_upstream": "results/upstream", "select_lr": "results/sweeps",
           "finetune": "results/finetune", "finetune_from_scratch": "results/finetune_scratch",
           "pretrain_stable": "results/isoflop/stable", "cool_down_branch": "results/isoflop/branches"}


# the keys that decide which jobs a per-run rule has: DVC-only params of its stage, so a new run or task
# reruns the stage, in which Snakemake runs only the new jobs (a job's own keys: config.stage_keys)
RUN_LIST = ["grid", "scans", "sweeps", "seeds"]
JOB_LIST = {"pretrain": RUN_LIST, "evaluate_upstream": RUN_LIST, "select_lr": RUN_LIST,
            "finetune": [*RUN_LIST, "finetune.tasks"], "finetune_from_scratch": [*RUN_LIST, "finetune.scratch_tasks"],
            "pretrain_stable": ["isoflop.architectures", "isoflop.sizes"]}
JOB_LIST["cool_down_branch"] = JOB_LIST["pretrain_stable"]


def code_files(rule: str) -> list[Path]:
    """The package files a rule's jobs run (CODE; folders walked for *.py), in the package this
    process imports (a workspace's own src/ when the Snakefile put it first), sorted."""
    package = Path(__file__).resolve().parent
    out: list[Path] = []
    for name in CODE[rule]:
        path = package / Path(name).relative_to(PKG)
        out += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return sorted(out)


def code_version(rule: str) -> str:
    """sha256 of the package code a per-run rule's jobs run (names and bytes): a rule param, so
    Snakemake reruns them when it changes, as DVC does (its stage for the rule keeps old results)."""
    import hashlib

    package = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in code_files(rule):
        h.update(f"{path.relative_to(package).as_posix()}\0".encode() + path.read_bytes() + b"\0")
    return h.hexdigest()


def under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def folder_of(path: str) -> str:
    """A path inside a per-run rule's folder stands for that folder in dvc.yaml (DVC tracks it whole)."""
    return next((folder for folder in FOLDERS.values() if under(path, folder)), path)


def _logs(stem: str) -> list[str]:
    return [f"{stem}.log", f"{stem}.benchmark.tsv"]


def jobs(params: dict) -> list[dict]:
    """Every job of the workflow for `params`, in DAG order: name, rule, target, deps, outs (plus
    metrics and plots where DVC shows them) and the params keys (config.stage_keys)."""
    from archscale.analysis.cli import FITS
    from archscale.analysis.cli import READS_CURVES as FIT_CURVES
    from archscale.analysis.cli import TABLES as FIT_TABLES
    from archscale.figures.cli import FIGURES
    from archscale.figures.cli import READS_CURVES as FIGURE_CURVES
    from archscale.tables import OUTPUTS as TABLES

    shards = [f"{k:05d}" for k in range(params["data"]["shards"])]
    runs = cfg.runs(params)
    tasks = params["finetune"].get("tasks", [])
    scratch = params["finetune"].get("scratch_tasks", [])
    out: list[dict] = []

    def add(name, rule, target, deps, outs, code=None, keys=None, **extra):
        out.append({"name": name, "rule": rule, "target": target, "deps": deps + CODE[code or rule], "outs": outs,
                    "keys": keys or [], **extra})

    prep = "data/prepared"
    for s in shards:
        add(f"prepare_corpus.{s}", "prepare_corpus", f"{prep}/manifest-{s}.json", [params["data"]["corpus_dir"]],
            [f"{prep}/train-{s}.jsonl", f"{prep}/val-{s}.jsonl", f"{prep}/manifest-{s}.json",
             *_logs(f"{prep}/prepare_corpus-{s}")], keys=cfg.stage_keys(params, "prepare_corpus"))
    add("index_corpus", "index_corpus", f"{prep}/manifest.json", [f"{prep}/manifest-{s}.json" for s in shards],
        [f"{prep}/manifest.json", *_logs(f"{prep}/index_corpus")])
    add("train_tokenizer", "train_tokenizer", "data/tokenizer/hf",
        [f"{prep}/manifest.json", *(f"{prep}/train-{s}.jsonl" for s in shards)],
        ["data/tokenizer/hf", *_logs("data/tokenizer/train_tokenizer")], keys=cfg.stage_keys(params, "train_tokenizer"))
    for s in shards:
        add(f"tokenize.{s}", "tokenize", f"data/shards/part-{s}.json",
            [f"{prep}/train-{s}.jsonl", f"{prep}/val-{s}.jsonl", "data/tokenizer/hf"],
            [f"data/shards/train-{s}.bin", f"data/shards/val-{s}.bin", f"data/shards/part-{s}.json",
             *_logs(f"data/shards/tokenize-{s}")])
    add("index_shards", "index_shards", "data/shards/meta.json", [f"data/shards/part-{s}.json" for s in shards],
        ["data/shards/meta.json", *_logs("data/shards/index_shards")])
    meta = "data/shards/meta.json"  # every token file with its sha256: the runs depend on it alone
    for run in runs:
        rdir = f"results/runs/{run}"
        add(f"pretrain.{run}", "pretrain", f"{rdir}/metrics.json", [meta, "data/tokenizer/hf"],
            [f"{rdir}/config.json", f"{rdir}/model", f"{rdir}/ckpt", f"{rdir}/train.log", f"{rdir}/benchmark.tsv"],
            keys=cfg.stage_keys(params, "pretrain", run), metrics=[f"{rdir}/metrics.json"],
            plots=[{f"{rdir}/curve.csv": {"x": "tokens", "y": "val_loss", "title": f"{run}: validation loss"}}])
        udir = f"results/upstream/{run}"
        add(f"evaluate_upstream.{run}", "evaluate_upstream", f"{udir}/upstream.json",
            [f"{rdir}/metrics.json", f"{rdir}/model", meta],
            [f"{udir}/upstream.json", f"{udir}/evaluate_upstream.log", f"{udir}/benchmark.tsv"],
            keys=cfg.stage_keys(params, "evaluate_upstream", run))
    tuned, groups = cfg.tuned_runs(params), cfg.by_base(runs)
    for base, group in groups.items():
        if cfg.swept(group) and (tasks or scratch):
            add(f"select_lr.{base}", "select_lr", f"results/sweeps/{base}.json",
                [*(f"results/runs/{r}/config.json" for r in group),
                 *(f"results/upstream/{r}/upstream.json" for r in group)],
                [f"results/sweeps/{base}.json", f"results/sweeps/{base}.log", f"results/sweeps/{base}.benchmark.tsv"])
    for rule, root, names in [("finetune", "results/finetune", tasks),
                              ("finetune_from_scratch", "results/finetune_scratch", scratch)]:
        for run in tuned:
            base = cfg.parse_run(run).base
            reads = [f"results/runs/{r}/model" for r in cfg.finetune_sources(groups[base], run)]
            if cfg.swept(groups[base]):
                reads.append(f"results/sweeps/{base}.json")
            reads.append(params["data"]["superglue_dir"])
            for task in names:
                tdir = f"{root}/{run}/{task}"
                add(f"{rule}.{run}.{task}", rule, f"{tdir}/metrics.json", reads,
                    [f"{tdir}/metrics.json", f"{tdir}/finetune.log", f"{tdir}/benchmark.tsv"],
                    keys=cfg.stage_keys(params, rule, run, task))
    iso = params.get("isoflop") or {}
    branches = []
    for base in cfg.isoflop_runs(params):
        sdir = f"results/isoflop/stable/{base}"
        add(f"pretrain_stable.{base}", "pretrain_stable", f"{sdir}/plan.json", [meta, "data/tokenizer/hf"],
            [f"{sdir}/plan.json", f"{sdir}/curve.csv", f"{sdir}/train.log", f"{sdir}/benchmark.tsv"],
            keys=cfg.stage_keys(params, "pretrain_stable", base))
        for budget in iso["budgets"]:
            bdir = f"results/isoflop/branches/{base}/{cfg.budget_label(budget)}"
            branches.append(bdir)
            add(f"cool_down_branch.{base}.{cfg.budget_label(budget)}", "cool_down_branch", f"{bdir}/metrics.json",
                [f"{sdir}/plan.json", meta, "data/tokenizer/hf"],
                [f"{bdir}/metrics.json", f"{bdir}/curve.csv", f"{bdir}/train.log", f"{bdir}/benchmark.tsv"],
                keys=cfg.stage_keys(params, "cool_down_branch", base))
    add("collect", "collect", "results/summary.csv",
        [*(f"results/runs/{r}/metrics.json" for r in runs), *(f"results/upstream/{r}/upstream.json" for r in runs),
         *(f"results/finetune/{r}/{t}/metrics.json" for r in tuned for t in tasks),
         *(f"results/finetune_scratch/{r}/{t}/metrics.json" for r in tuned for t in scratch),
         *(f"results/runs/{r}/config.json" for r in runs),
         *(f"{b}/metrics.json" for b in branches), *(f"{b}/curve.csv" for b in branches)],
        ["results/summary.csv", "results/sweep.csv", "results/throughput.csv", "results/isoflop.csv",
         *_logs("results/logs/collect")],
        keys=cfg.stage_keys(params, "collect"))
    curves = [f"results/runs/{r}/curve.csv" for r in runs]
    fits = [f"results/fits/{f}.json" for f in FITS]
    configs = [f"results/runs/{r}/config.json" for r in runs]
    for fit in FITS:
        add(f"fit_law.{fit}", "fit_law", f"results/fits/{fit}.json",
            [FIT_TABLES.get(fit, "results/summary.csv"), *(curves + configs if fit in FIT_CURVES else [])],
            [f"results/fits/{fit}.json", *_logs(f"results/logs/fit_{fit}")])
    for fig in FIGURES:
        add(f"draw_{fig}", f"draw_{fig}", f"figures/{fig}.pdf",
            ["results/summary.csv", "results/sweep.csv", *fits, *(curves if fig in FIGURE_CURVES else [])],
            [f"figures/{fig}.pdf", f"figures/{fig}.png", *_logs(f"results/logs/draw_{fig}")], code="draw")
    add("render_tables", "render_tables", "paper/generated/macros.tex",
        ["results/summary.csv", "results/throughput.csv", *fits, *(f"paper/templates/{t}.tex.j2" for t in TABLES)],
        [*(f"paper/generated/{t}.tex" for t in TABLES), *_logs("results/logs/render_tables")])
    add("build_paper", "build_paper", "paper/build/main.pdf",
        ["paper/main.tex", *(f"paper/generated/{t}.tex" for t in TABLES), *(f"figures/{f}.pdf" for f in FIGURES),
         "paper/texmf"], ["paper/build/main.pdf", *_logs("results/logs/build_paper")])
    return out


def params_files(params_file: str, root: str = ".") -> list[tuple[str, dict]]:
    """(path as dvc.yaml names it, the keys that file sets) for the file and each file it extends,
    the base first. Paths are relative to `root`, the folder of dvc.yaml (the project root)."""
    return [(os.path.relpath(path, root), data) for path, data in cfg.layers(Path(root) / params_file)]


def owner(files: list[tuple[str, dict]], key: str) -> str | list[tuple[str, str]]:
    """Which file a key's value comes from: the last layer that sets any of it. When an overlay sets
    only part of a mapping, the key is split into its children, each with its own file."""
    setters = [(path, cfg.get_key(data, key)) for path, data in files if cfg.get_key(data, key) is not KeyError]
    last_path, last = setters[-1]
    if len(setters) == 1 or not isinstance(last, dict):
        return [(last_path, key)]
    merged = cfg.merge_layers([(None, {"v": v}) for _, v in setters])["v"]
    return [pair for child in merged for pair in owner(files, f"{key}.{child}")]


def stage_params(files: list[tuple[str, dict]], keys: list[str]) -> list:
    by_file: dict[str, list[str]] = {}
    for key in keys:
        for path, k in owner(files, key):
            by_file.setdefault(path, []).append(k)
    base = files[0][0]
    entries: list = list(by_file.pop(base, [])) if base == "params.yaml" else []
    if base != "params.yaml" and base in by_file:
        entries.append({base: by_file.pop(base)})
    entries += [{path: ks} for path, ks in by_file.items()]
    return entries


def fingerprint(params_file: str = "params.yaml", root: str = ".") -> str:
    """sha256 of what dvc.yaml's stages are made of (the jobs, their keys and the files that set
    them), written into its header: the Snakefile's staleness check inside every DVC stage compares
    this (0.2 s for the paper preset) instead of rendering the whole file (4 s)."""
    import hashlib
    import json

    params = cfg.load(Path(root) / params_file)
    files = params_files(params_file, root)
    stages = [[job, stage_params(files, job["keys"])] for job in jobs(params)]
    return hashlib.sha256(json.dumps([[path for path, _ in files], stages], sort_keys=True).encode()).hexdigest()


def current_fingerprint(dvc_yaml: str | Path = "dvc.yaml") -> str | None:
    """The fingerprint in a dvc.yaml's header, None when it has none."""
    with open(dvc_yaml) as fh:
        for line in fh:
            if not line.startswith("#"):
                return None
            if line.startswith("# fingerprint: "):
                return line.split(": ", 1)[1].strip()
    return None


def render(params_file: str = "params.yaml", root: str = ".") -> str:
    """dvc.yaml's text for `params_file` (relative to `root`, the project folder)."""
    params = cfg.load(Path(root) / params_file)
    files = params_files(params_file, root)
    configfile = "" if files[-1][0] == "params.yaml" else f" --configfile {files[-1][0]}"
    parts: dict[str, dict] = {}  # stage name -> its rule, target, deps, keys and (one-job stages) job
    metrics, plots = [], []  # the per-run rules' metrics and curves, shown by top-level entries
    for job in jobs(params):
        per_rule = job["rule"] in FOLDERS
        name = job["rule"] if per_rule else job["name"]
        part = parts.setdefault(name, {"rule": job["rule"], "job": job, "deps": [], "keys": [],
                                       "target": f"all_{job['rule']}" if per_rule else job["target"]})
        part["deps"] += [folder_of(d) for d in job["deps"]]
        part["keys"] += job["keys"]
        if per_rule:
            metrics += job.get("metrics", [])
            plots += job.get("plots", [])
    stages = {}
    for name, part in parts.items():
        rule, job = part["rule"], part["job"]
        allowed = f"{rule} all_{rule}" if rule in FOLDERS else rule
        stage = {"cmd": f"{SMK} --allowed-rules {allowed}{configfile} -- {part['target']}",
                 "deps": list(dict.fromkeys(part["deps"]))}
        keys = part["keys"] + [k for k in JOB_LIST.get(rule, []) if cfg.get_key(params, k) is not KeyError]
        if keys:
            stage["params"] = stage_params(files, list(dict.fromkeys(keys)))
        if rule in FOLDERS:
            stage["outs"] = [{FOLDERS[rule]: {"persist": True}}]
        else:
            stage["outs"] = job["outs"]
            stage.update({kind: job[kind] for kind in ("metrics", "plots") if kind in job})
        stages[name] = stage
    header = (f"# GENERATED by `archscale dvc-yaml{' --params ' + params_file if configfile else ''}` from the "
              "workflow: do not edit (src/archscale/dvcyaml.py).\n"
              f"# {len(stages)} stages for {files[-1][0]}: one per Snakemake job, one per rule for the per-run rules "
              "(pretrain,\n# evaluate_upstream, select_lr, finetune[_from_scratch], pretrain_stable, "
              "cool_down_branch); each runs its\n# jobs through Snakemake. `dvc exp run -S key=value` works for any "
              "key but those that add or remove\n# jobs (grid, scans, data.shards, finetune.tasks/scratch_tasks, "
              "isoflop): after those, run `archscale dvc-yaml` again.\n"
              f"# fingerprint: {fingerprint(params_file, root)}\n")
    # flow style ([a, b]) for lists of plain strings, block style around them
    body = yaml.safe_dump({"stages": stages}, sort_keys=False, width=120, default_flow_style=None)
    shown = {"plots": [{"upstream_vs_flops": {"template": "scatter", "x": "train_flops",
                                              "y": {"results/summary.csv": "val_loss"}}}, *plots]}
    if metrics:
        shown["metrics"] = metrics
    return header + body + "\n# `dvc plots show`: upstream loss vs FLOPs and every run's learning curve; " \
        "`dvc metrics show`: every run's metrics.\n" + yaml.safe_dump(shown, sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="archscale dvc-yaml", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    ap.add_argument("--params", default="params.yaml", help="params file (a preset overlay or the base)")
    ap.add_argument("--out", default="dvc.yaml", help="file to write (or to compare with --check)")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 (with a diff) when --out differs")
    args = ap.parse_args(argv)
    out = Path(args.out)
    root = out.parent  # dvc.yaml's folder is the project root: paths in it are relative to there
    try:
        text = render(os.path.relpath(args.params, root), root=str(root))
    except cfg.ConfigError as exc:
        print(f"archscale dvc-yaml: {exc}", file=sys.stderr)
        return 2
    if args.check:
        have = out.read_text() if out.is_file() else ""
        if have == text:
            print(f"{out} is up to date with {args.params}")
            return 0
        diff = difflib.unified_diff(have.splitlines(True), text.splitlines(True), str(out), "generated")
        sys.stderr.writelines(list(diff)[:60])
        print(f"\n{out} is stale for {args.params}: run `archscale dvc-yaml --params {args.params}`", file=sys.stderr)
        return 1
    from archscale.io import write_text

    write_text(out, text)
    print(f"wrote {out}: {len(yaml.safe_load(text)['stages'])} stages for {args.params}")
    return 0
