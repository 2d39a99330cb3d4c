"""Snakemake and the generated dvc.yaml describe the same DAG, for every preset: same jobs, same
outputs, same inputs, and DVC reads the same params values the Snakefile passes to each job.

Snakemake's side is its planned job list (a forced dry run prints every job's rule, inputs,
outputs, log and benchmark), built from the preset overlay as a user runs it (`--configfile presets/X.yaml`);
DVC's side is its parsed stage index of `archscale dvc-yaml --params presets/X.yaml`, the values
of each stage's params read by DVC from the files it names (the overlay for what it sets, the base
params.yaml for the rest).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from workspace import REPO, dry_run_jobs, make_workspace

from archscale import config as cfg
from archscale import dvcyaml
from archscale.dvcyaml import FOLDERS, render, under
from archscale.dvcyaml import main as dvc_yaml_main

PRESETS = ["params.yaml", "presets/smoke.yaml", "presets/paper.yaml", "presets/tuned.yaml"]
# presets as a user would write them: the smoke preset cut into 3 data shards; the tuned one's lr
# sweep and seeds with fine-tuning, which reads only the selected lr (one job per arch, size, seed)
SHARDED = "extends: smoke.yaml\ndata: {shards: 3, max_docs: null}\n"
SWEPT_FT = "extends: tuned.yaml\nfinetune: {tasks: [CB, RTE], scratch_tasks: [CB]}\n"


def snakemake_jobs(ws: Path, configfile: str) -> list[dict]:
    """Every job of the full DAG as a forced dry run prints it: rule, input, output, log, benchmark."""
    proc = subprocess.run(["snakemake", "--cores", "1", "-n", "-F", "--configfile", configfile],
                          cwd=ws, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return dry_run_jobs(proc.stdout + proc.stderr)


def flat(key: str, value) -> dict:
    if isinstance(value, dict) and value:
        return {k: v for child, sub in value.items() for k, v in flat(f"{key}.{child}", sub).items()}
    return {key: value}


def dvc_stages(ws: Path) -> dict[str, dict]:
    """DVC's parsed stages: outs (and which persist), deps, and the value of each params key, read by
    DVC's own reader from the file the stage names (once per file: DVC would parse it again for every stage)."""
    from dvc.dependency.param import read_param_file
    from dvc.repo import Repo

    out, files = {}, {}
    with Repo(str(ws)) as repo:
        for stage in repo.index.stages:
            values, deps = {}, []
            for dep in stage.deps:
                if dep.__class__.__name__ != "ParamsDependency":
                    deps.append(str(dep.def_path))
                    continue
                if dep.fs_path not in files:
                    files[dep.fs_path] = read_param_file(repo.fs, dep.fs_path, None, flatten=False)
                for key in dep.params:
                    node = files[dep.fs_path]
                    for part in key.split("."):
                        node = node[part]
                    values.update(flat(key, node))
            out[stage.name] = {"outs": [str(o.def_path) for o in stage.outs], "deps": deps, "params": values,
                               "persist": [str(o.def_path) for o in stage.outs if o.persist], "cmd": stage.cmd}
    return out


@pytest.mark.parametrize("preset", PRESETS + ["presets/sharded.yaml", "presets/swept_ft.yaml"])
def test_snakemake_and_generated_dvc_yaml_agree(tmp_path, preset):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(3):
        (corpus / f"doc{i}.txt").write_text(f"document {i}\n" * (i + 1))
    ws = make_workspace(tmp_path / "ws", corpus=corpus)
    (ws / "presets" / "sharded.yaml").write_text(SHARDED)
    (ws / "presets" / "swept_ft.yaml").write_text(SWEPT_FT)
    assert dvc_yaml_main(["--params", str(ws / preset), "--out", str(ws / "dvc.yaml")]) == 0
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=ws, check=True)
    jobs, stages = snakemake_jobs(ws, preset), dvc_stages(ws)
    params = cfg.load(ws / preset)
    owned: dict[str, list] = {name: [] for name in stages}
    read: dict[str, dict] = {name: {} for name in stages}  # the params values a stage's jobs read
    inputs: dict[str, list] = {name: [] for name in stages}
    for job in jobs:
        written = job["output"] + job["log"] + job["benchmark"]
        holders = {n for path in written for n, s in stages.items() if any(under(path, o) for o in s["outs"])}
        assert len(holders) == 1, f"{written} (rule {job['rule']}) are owned by {holders or 'no DVC stage'}"
        name = holders.pop()
        stage = stages[name]
        if name in FOLDERS:  # a per-run rule: one stage, which owns the rule's folder and keeps it (persist)
            assert name == job["rule"] and stage["outs"] == stage["persist"] == [FOLDERS[name]], (name, stage)
            assert stage["cmd"].endswith(f"-- all_{name}"), stage["cmd"]
        else:  # one stage per job, owning exactly what the job writes (and the checkpoints, for resume)
            assert name.split(".")[0] == job["rule"], f"Snakemake rule {job['rule']}, DVC stage {name}"
            assert not owned[name], f"DVC stage {name} owns the files of two Snakemake jobs"
            extra = [o for o in stage["outs"] if o not in written and not o.endswith("/ckpt")]
            assert not extra, f"{name}: DVC outputs no Snakemake job declares: {extra}"
            assert not stage["persist"], f"{name}: a one-job stage's outputs are DVC's to remove"
        owned[name] += written
        inputs[name] += job["input"]
        missing = [p for p in written if not any(under(p, o) for o in stage["outs"])]
        assert not missing, f"{name}: Snakemake writes {missing}, which DVC does not track"
        # every Snakemake input is a DVC dep (or lies in one: the raw corpus folder, paper/texmf, a rule's folder)
        for inp in job["input"]:
            assert any(under(inp, d) for d in stage["deps"]), f"{name}: input {inp} is not a DVC dep"
        # DVC reads, from the files it names, the values the Snakefile passes to this job
        wildcards = dict(w.split("=", 1) for w in job["wildcards"].split(", ")) if job["wildcards"] else {}
        rule = job["rule"]
        expected = {k: v for key, value in cfg.params_slice(params, rule, wildcards.get("run"), wildcards.get("task"))
                    .items() for k, v in flat(key, value).items()}
        got = {k: stage["params"].get(k, "<not a DVC param>") for k in expected}
        assert got == expected, f"{name}: DVC reads {got}, Snakemake passes {expected}"
        read[name].update(expected)
    for name, stage in stages.items():
        # every DVC dep holds a Snakemake input, but code, the SuperGLUE folder (read inside the job)
        # and the corpus folder (a shard's byte range follows the size of every file before it)
        for dep in stage["deps"]:
            if dep.startswith("src/") or dep in {params["data"]["superglue_dir"], params["data"]["corpus_dir"]}:
                continue
            assert any(under(inp, dep) for inp in inputs[name]), f"{name}: DVC dep {dep} is no Snakemake input"
        # beyond the jobs' own keys, a per-run rule's stage reads the keys that list its jobs (DVC only)
        listing = {k: v for key in dvcyaml.JOB_LIST.get(name, []) if cfg.get_key(params, key) is not KeyError
                   for k, v in flat(key, cfg.get_key(params, key)).items()}
        assert stage["params"] == {**read[name], **listing}, f"{name}: DVC params {stage['params']}"
    assert not [n for n, written in owned.items() if not written], "DVC stages with no Snakemake job"
    pretrained = sorted(dict(w.split("=", 1) for w in j["wildcards"].split(", "))["run"] for j in jobs
                        if j["rule"] == "pretrain")
    assert pretrained == sorted(cfg.runs(params))
    by_rule = {}
    for job in jobs:
        by_rule.setdefault(job["rule"], []).append(job)
    if "paper" in preset:  # the scans are in DVC's DAG too
        assert {"results/runs/transformer-base_l16/metrics.json", "results/runs/transformer-base_d1536/metrics.json"} \
            <= {out for job in by_rule["pretrain"] for out in job["output"]}
    if "sharded" in preset:
        assert {f"tokenize.{k:05d}" for k in range(3)} <= set(stages)
    if "swept_ft" in preset:  # 4 archs x 3 sizes x 3 lrs x 3 seeds pretrained; fine-tuned once per lr triple
        tuned = [f"{a}-{s}{seed}" for a in ("transformer", "glu", "gpt2", "bert_clm")
                 for s in ("pico", "nano", "micro") for seed in ("", "+s1", "+s2")]
        cb = [j["output"][0].split("/")[2] for j in by_rule["finetune"] if j["output"][0].endswith("/CB/metrics.json")]
        assert sorted(cb) == sorted(tuned)
        assert len(by_rule["finetune"]) + len(by_rule["finetune_from_scratch"]) == 36 * 3
        assert len(cfg.runs(params)) == 108
        rte = next(j for j in by_rule["finetune"] if j["output"][0] == "results/finetune/gpt2-nano+s1/RTE/metrics.json")
        assert sorted(d for d in rte["input"] if d.endswith("/model")) == [
            f"results/runs/gpt2-nano+lrx{f}+s1/model" for f in ("0.5", "1", "2")], "its seed, every lr"
        assert "results/sweeps/gpt2-nano.json" in rte["input"]
        assert {"results/runs", "results/sweeps"} <= set(stages["finetune"]["deps"])
        select = next(j for j in by_rule["select_lr"] if j["output"] == ["results/sweeps/gpt2-nano.json"])
        assert len([d for d in select["input"] if d.endswith("upstream.json")]) == 9, "every lr and seed selects the lr"
        assert len(by_rule["select_lr"]) == 12
        assert {"results/runs", "results/upstream"} <= set(stages["select_lr"]["deps"])
    # the sweep's thousands of jobs are a handful of DVC stages (DVC's cost is per stage)
    assert len(stages) == len(jobs) - sum(len(by_rule.get(r, [])) - 1 for r in FOLDERS if r in by_rule)


def test_committed_dvc_yaml_is_current_and_a_stale_one_fails_the_check(tmp_path, capsys):
    assert (REPO / "dvc.yaml").read_text() == render("params.yaml", root=str(REPO)), (
        "dvc.yaml is stale: run `archscale dvc-yaml` and commit it")
    ws = make_workspace(tmp_path / "ws")
    assert dvc_yaml_main(["--params", str(ws / "params.yaml"), "--out", str(ws / "dvc.yaml"), "--check"]) == 0
    text = (ws / "params.yaml").read_text()
    (ws / "params.yaml").write_text(text.replace("sizes: [nano, micro, mini]", "sizes: [nano, micro]"))
    assert dvc_yaml_main(["--params", str(ws / "params.yaml"), "--out", str(ws / "dvc.yaml"), "--check"]) == 1
    err = capsys.readouterr().err
    assert "sizes.mini" in err and "is stale" in err
