"""A scratch copy of the workflow (no git history, no outputs) for tests that run the DAG."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "dvc.yaml", ".dvcignore", "params.yaml", "presets", "workflow", "paper/main.tex",
                  "paper/latexmkrc", "paper/templates", "paper/texmf", "profiles"]


def make_workspace(dest: Path, preset: str | None = None, corpus: Path | None = None,
                   superglue: Path | None = None) -> Path:
    """Copy the workflow files into `dest`; `preset`, resolved over the base, replaces params.yaml."""
    for name in WORKFLOW_FILES:
        src, dst = REPO / name, dest / name
        if not src.exists() and not src.is_symlink():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(src.readlink())
        elif src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)
    if preset:  # the preset merged over the base (cfg.load), written out whole as params.yaml
        import yaml

        from archscale import config as cfg

        (dest / "params.yaml").write_text(yaml.safe_dump(cfg.load(REPO / preset), sort_keys=False))
    if (dest / "dvc.yaml").exists():  # dvc.yaml for the workspace's params.yaml, as `archscale dvc-yaml` writes it
        from archscale.dvcyaml import render

        (dest / "dvc.yaml").write_text(render("params.yaml", root=str(dest)))
    raw = dest / "data" / "raw"
    raw.mkdir(parents=True)
    if corpus:
        (raw / "corpus").symlink_to(corpus)
    if superglue:
        (raw / "superglue").symlink_to(superglue)
    return dest


def sh(ws: Path, *cmd: str, timeout: int = 600, ok: bool = True) -> subprocess.CompletedProcess:
    """Run a command in `ws` with the workspace's own package first on the path."""
    env = {**os.environ, "PYTHONPATH": str(ws / "src"), "OMP_NUM_THREADS": "1",
           "TORCH_EXTENSIONS_DIR": os.environ.get("TORCH_EXTENSIONS_DIR",
                                                  str(Path.home() / ".cache/archscale/torch_extensions"))}
    proc = subprocess.run(list(cmd), cwd=ws, env=env, capture_output=True, text=True, timeout=timeout)
    if ok:
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-4000:]}"
    return proc


def new_clone(dest: Path, data: Path) -> Path:
    """A fresh checkout of the smoke preset: the workflow files and the package, no outputs, no DVC
    cache; `data` holds corpus/ and superglue/ (tests/data, the shipped sample)."""
    ws = make_workspace(dest, preset="presets/smoke.yaml", corpus=data / "corpus", superglue=data / "superglue")
    shutil.copytree(REPO / "src" / "archscale", ws / "src" / "archscale",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return ws


def dry_run_jobs(text: str) -> list[dict]:
    """The jobs a Snakemake dry run prints (rule all left out): rule, and the input, output, log,
    benchmark (lists) and wildcards (text) fields."""
    import re

    jobs = []
    for line in text.splitlines():
        if head := re.match(r"^(?:local)?rule (\w+):$", line):
            jobs.append({"rule": head.group(1), "input": [], "output": [], "log": [], "benchmark": [], "wildcards": ""})
        elif (field := re.match(r"^    (input|output|log|benchmark|wildcards): (.*)$", line)) and jobs:
            value = field.group(2)
            jobs[-1][field.group(1)] = value if field.group(1) == "wildcards" else value.split(", ")
    return [j for j in jobs if j["rule"] != "all"]

