"""`snakemake --config` overrides keys of the params file, or stops naming the key it cannot find;
the jobs read the overridden params."""

from __future__ import annotations

import re

import pytest
import yaml
from workspace import REPO, make_workspace, sh

from archscale import config as cfg


def test_overrides_merge_mappings_and_name_an_unknown_key():
    params = cfg.load(REPO / "params.yaml")
    narrowed = cfg.apply_overrides(params, {"grid": {"sizes": ["nano"]}, "seed": 3})
    assert narrowed["grid"] == {**params["grid"], "sizes": ["nano"]} and narrowed["seed"] == 3
    assert params["grid"]["sizes"] != ["nano"]  # the input is not modified
    assert cfg.runs(narrowed) == [r for r in cfg.runs(params) if r.endswith("-nano")]
    with pytest.raises(cfg.ConfigError, match=r"grid\.nosuch: no such key"):
        cfg.apply_overrides(params, {"grid": {"nosuch": 1}})
    with pytest.raises(cfg.ConfigError, match=r"train\.lrr: no such key"):
        cfg.load(REPO / "params.yaml", overrides={"train": {"lrr": 0.1}})
    per_task = cfg.apply_overrides(params, {"finetune": {"per_task": {"CB": {"steps": 5}}}})  # {} is replaced
    assert per_task["finetune"]["per_task"] == {"CB": {"steps": 5}}


def test_scalars_snakemake_reads_as_text_get_their_yaml_types():
    from snakemake.cli import parse_config  # Snakemake's own --config parser (YAML BaseLoader: all text)

    given = parse_config(["train={threads: 2, lr: 0.001, compile: true, checkpoint_every: 7}",
                          "scans={depth: {architectures: [gpt2], base: nano, values: [1, 3]}}",
                          "data={corpus_dir: '2024', max_docs: null}"])
    assert given["train"]["lr"] == "0.001"  # what Snakemake hands over
    params = cfg.load(REPO / "params.yaml", overrides=given)
    assert (params["train"]["threads"], params["train"]["lr"], params["train"]["compile"]) == (2, 0.001, True)
    assert params["scans"]["depth"]["values"] == [1, 3] and params["scans"]["depth"]["architectures"] == ["gpt2"]
    assert params["data"]["corpus_dir"] == "2024" and params["data"]["max_docs"] is None  # text stays text


def test_snakemake_config_narrows_the_grid_and_the_jobs_read_it(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(3):
        (corpus / f"doc{i}.txt").write_text(f"document {i}\n")
    ws = make_workspace(tmp_path / "ws", corpus=corpus)
    full = sh(ws, "snakemake", "-n", "--cores", "1").stdout
    assert re.search(r"^pretrain\s+9$", full, re.M)
    out = sh(ws, "snakemake", "-n", "-p", "--cores", "1", "--config", "grid={sizes: [nano]}").stdout
    assert re.search(r"^pretrain\s+3$", out, re.M)
    assert 'archscale pretrain --params "$ARCHSCALE_PARAMS"' in out  # set by the Snakefile to the merged file
    resolved = sorted((ws / ".snakemake" / "archscale").glob("params-*.yaml"))
    assert [yaml.safe_load(p.read_text())["grid"]["sizes"] for p in resolved] == [["nano"]]
    # a job really reads the merged params: every document goes to val at val_fraction 0.99
    sh(ws, "snakemake", "--cores", "1", "--config", "data={val_fraction: 0.99}", "--",
       "data/prepared/manifest-00000.json")
    assert "0 train / 3 val documents" in (ws / "data" / "prepared" / "prepare_corpus-00000.log").read_text()
    bad = sh(ws, "snakemake", "-n", "--cores", "1", "--config", "grid={sizez: [nano]}", ok=False)
    assert bad.returncode != 0 and "grid.sizez: no such key" in bad.stdout + bad.stderr
