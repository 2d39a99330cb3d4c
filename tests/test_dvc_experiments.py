"""`dvc exp run -S key=value` (README "DVC"): in a git + DVC clone of the smoke preset, setting a
tokenizer key reruns the tokenizer stage alone (through Snakemake) with the new value and records
the experiment under its name. A stale dvc.yaml (a
grid edited without `archscale dvc-yaml`) stops `dvc repro` at its first stage, saying so.
"""

from __future__ import annotations

import json
import os

import pytest
import yaml
from workspace import new_clone, sh

GIT = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@example.org"}


@pytest.mark.slow
def test_dvc_exp_run_sets_a_key_and_reruns_its_stage(sample_data, tmp_path, monkeypatch):
    for key, value in GIT.items():
        monkeypatch.setenv(key, value)
    ws = new_clone(tmp_path / "ws", sample_data)
    sh(ws, "git", "init", "-q")
    sh(ws, "dvc", "init", "-q")
    out = sh(ws, "dvc", "repro", "train_tokenizer", timeout=900)
    assert "Running stage 'train_tokenizer'" in out.stdout, out.stdout[-3000:]
    sh(ws, "git", "add", "-A")
    sh(ws, "git", "commit", "-qm", "baseline")
    vocab = json.loads((ws / "data/tokenizer/hf/tokenizer.json").read_text())["model"]["vocab"]
    exp = sh(ws, "dvc", "exp", "run", "-S", "tokenizer.vocab_size=600", "-n", "small-vocab", "train_tokenizer",
             timeout=900)
    assert "Running stage 'train_tokenizer'" in exp.stdout, exp.stdout[-3000:]
    assert "Running stage 'prepare_corpus" not in exp.stdout, exp.stdout[-3000:]
    new_vocab = json.loads((ws / "data/tokenizer/hf/tokenizer.json").read_text())["model"]["vocab"]
    assert len(new_vocab) == 600 != len(vocab)
    show = sh(ws, "dvc", "exp", "show", "--json").stdout
    assert "small-vocab" in show and '"vocab_size": 600' in show
    # a grid edited by hand, dvc.yaml not written again: the stage's Snakemake call refuses
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["grid"]["sizes"] = params["grid"]["sizes"][:1]
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stale = sh(ws, "dvc", "repro", "-f", "index_corpus", ok=False, timeout=600)
    assert stale.returncode != 0 and "dvc.yaml is stale for params.yaml" in stale.stdout + stale.stderr
    assert os.path.isdir(ws / "data/tokenizer/hf")
