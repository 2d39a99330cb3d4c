"""Snakemake and DVC describe the same DAG: same stages, same outputs, same params keys.

Snakemake's side is its planned job list (`--detailed-summary -F`: every output file with its
rule and log); DVC's side is its parsed stage index. Every Snakemake output and log must lie in
exactly one DVC stage of the same rule, every DVC stage must own some output, and each stage's
params keys must be the ones the Snakefile passes to the rule (archscale.config.STAGE_PARAMS).
"""

from __future__ import annotations

import csv
import io
import subprocess

import pytest
import yaml
from workspace import make_workspace

from archscale import config as cfg

PRESETS = ["presets/smoke.yaml", "params.yaml"]
# A DVC stage that owns a data folder runs a scatter rule and its gather (dvc.yaml cannot count shards).
STAGE_RULES = {"prepare_corpus": {"prepare_corpus", "index_corpus"}, "tokenize": {"tokenize", "index_shards"}}


def snakemake_jobs(ws) -> dict[str, str]:
    """output or log path -> rule name, for every job of the full DAG."""
    proc = subprocess.run(["snakemake", "--cores", "1", "--detailed-summary", "-F"], cwd=ws, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = csv.DictReader(io.StringIO(proc.stdout[proc.stdout.index("output_file"):]), delimiter="\t")
    paths = {}
    for row in rows:
        paths[row["output_file"]] = row["rule"]
        for log in filter(lambda p: p not in {"", "-"}, (row["log-file(s)"] or "").split(",")):
            paths[log] = row["rule"]
    return paths


def dvc_stages(ws):
    from dvc.repo import Repo

    out = {}
    with Repo(str(ws)) as repo:
        for stage in repo.index.stages:
            base, _, item = stage.name.partition("@")
            rule = f"draw_{item}" if base == "draw" else base
            params = sorted(k for d in stage.deps if d.__class__.__name__ == "ParamsDependency" for k in d.params)
            out[stage.name] = {"rule": rule, "item": item, "outs": [str(o.def_path) for o in stage.outs],
                               "params": params}
    return out


@pytest.mark.parametrize("preset, shards", [(p, None) for p in PRESETS] + [("presets/smoke.yaml", 3)])
def test_snakemake_and_dvc_dags_agree(tmp_path, preset, shards):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(3):
        (corpus / f"doc{i}.txt").write_text(f"document {i}\n")
    ws = make_workspace(tmp_path / "ws", preset=preset, corpus=corpus)
    if shards:  # every prepare/tokenize shard job's files must fall in the data stages too
        params = yaml.safe_load((ws / "params.yaml").read_text())
        params["data"].update(shards=shards, max_docs=None)
        (ws / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=ws, check=True)
    jobs, stages = snakemake_jobs(ws), dvc_stages(ws)
    owned = {name: [] for name in stages}
    for path, rule in jobs.items():
        holders = [n for n, s in stages.items() if any(path == o or path.startswith(o + "/") for o in s["outs"])]
        assert len(holders) == 1, f"{path} (rule {rule}) is owned by {holders or 'no DVC stage'}"
        stage_rule = stages[holders[0]]["rule"]
        assert rule in STAGE_RULES.get(stage_rule, {stage_rule}), (
            f"{path}: Snakemake rule {rule}, DVC stage {holders[0]}")
        owned[holders[0]].append(path)
    assert not [n for n, paths in owned.items() if not paths], "DVC stages with no Snakemake job"
    if shards:
        assert {f"data/shards/train-{k:05d}.bin" for k in range(shards)} <= set(jobs)
    params = cfg.load(ws / "params.yaml")
    assert sorted({s["item"] for n, s in stages.items() if n.startswith("pretrain@")}) == sorted(cfg.runs(params))
    for name, stage in stages.items():
        arch, size = (stage["item"].split("-") + [""])[:2]
        expected = sorted(k.format(arch=arch, size=size) for k in cfg.STAGE_PARAMS.get(stage["rule"], []))
        assert stage["params"] == expected, f"{name}: DVC params {stage['params']} != Snakefile {expected}"
