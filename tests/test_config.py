"""params files: the schema names the wrong key before any job starts."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from archscale import config as cfg

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.mark.parametrize("preset", ["params.yaml", "presets/smoke.yaml", "presets/paper.yaml", "presets/tuned.yaml",
                                    "presets/modern.yaml"])
def test_shipped_presets_validate(preset):
    path = REPO / preset
    if not path.exists():
        pytest.skip(f"{preset} not shipped")
    assert cfg.runs(cfg.load(path))


ISO = {"architectures": ["gpt2"], "sizes": ["pico", "nano", "micro"], "budgets": [1e9, 2e9]}  # a valid IsoFLOP grid


@pytest.mark.parametrize("mutate, expected", [
    (lambda p: p["grid"]["architectures"].append("resnet"), "grid.architectures[3]: unknown architecture 'resnet'"),
    (lambda p: p["grid"]["sizes"].append("huge"), "grid.sizes[3]: unknown size 'huge'"),
    (lambda p: p["train"].update(learning_rate=1.0), "unknown key(s) 'learning_rate' under train"),
    (lambda p: p["train"].update(seq_len="long"), "train.seq_len: 'long' is not of type 'integer'"),
    (lambda p: p["sizes"]["nano"].update(d_model=-4), "sizes.nano.d_model"),
    (lambda p: p["architectures"]["gpt2"].update(objective="denoise"), "architectures.gpt2.objective"),
    (lambda p: p.update(extra=1), "unknown key(s) 'extra' under <top level>"),
    (lambda p: p.update(isoflop={**ISO, "architectures": ["gpt2", "gpt5"]}),
     "isoflop.architectures[1]: unknown architecture 'gpt5'"),
    (lambda p: p.update(isoflop={**ISO, "sizes": ["pico", "nano", "huge"]}), "isoflop.sizes[2]: unknown size 'huge'"),
    (lambda p: p.update(isoflop={**ISO, "budgets": ["1.5e9", 3e9]}),  # YAML's reading of 1.5e9
     "isoflop.budgets.0: '1.5e9' is not of type 'number'"),
    (lambda p: p.update(isoflop={**ISO, "budgets": [1e9, 1.0000001e9]}), "isoflop.budgets: repeated value"),
    (lambda p: p.update(isoflop={**ISO, "sizes": ["pico", "nano"]}), "isoflop.sizes"),
])
def test_bad_params_name_the_key(params, mutate, expected):
    bad = copy.deepcopy(params)
    mutate(bad)
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(bad, "params.yaml")
    assert expected in str(err.value)


def test_runs_are_the_grid_then_scans(params):
    params["scans"] = {"depth": {"architectures": ["gpt2"], "base": "nano", "values": [1, 3]}}
    runs = cfg.runs(cfg.validate(params))
    assert runs[:3] == ["transformer-nano", "transformer-micro", "transformer-mini"]
    assert runs[-2:] == ["gpt2-nano_l1", "gpt2-nano_l3"]
    rc = cfg.resolve_run(params, "gpt2-nano_l3")
    assert rc["shape"]["n_layers"] == 3 and rc["shape"]["d_model"] == params["sizes"]["nano"]["d_model"]
    assert rc["scan"] == "depth"


def test_architecture_train_override_reaches_only_its_runs(params):
    params["architectures"]["gpt2"]["train"] = {"lr": 1.5e-4, "warmup_frac": 0.25}
    cfg.validate(params)
    gpt2, other = cfg.resolve_run(params, "gpt2-nano")["train"], cfg.resolve_run(params, "transformer-nano")["train"]
    assert (gpt2["lr"], gpt2["warmup_frac"]) == (1.5e-4, 0.25)
    assert gpt2["seq_len"] == params["train"]["seq_len"]  # keys not overridden come from train:
    assert (other["lr"], other["warmup_frac"]) == (params["train"]["lr"], params["train"]["warmup_frac"])
    assert params["train"]["lr"] != 1.5e-4  # the global block is not mutated by the merge


@pytest.mark.parametrize("override, expected", [
    ({"learning_rate": 1e-4}, "unknown key(s) 'learning_rate' under architectures.gpt2.train"),
    ({"seq_len": 64}, "unknown key(s) 'seq_len' under architectures.gpt2.train"),  # only optimiser keys
    ({"lr": -1.0}, "architectures.gpt2.train.lr"),
    ({"batch_size": 12}, "architectures.gpt2.train: batch_size (12) must be a multiple of micro_batch_size (16)"),
])
def test_bad_architecture_train_override_names_the_key(params, override, expected):
    params["architectures"]["gpt2"]["train"] = override
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(params, "params.yaml")
    assert expected in str(err.value)


def test_snakemake_stops_on_bad_params_before_any_job(params, tmp_path):
    params["grid"]["architectures"] = ["gpt2", "resnet"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(params))
    proc = subprocess.run(["snakemake", "-n", "--cores", "1", "--configfile", str(bad)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "unknown architecture 'resnet'" in proc.stdout + proc.stderr
    assert "Job stats" not in proc.stdout + proc.stderr


def test_presets_are_overlays_that_hold_only_what_they_change():
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    for preset in ("presets/smoke.yaml", "presets/paper.yaml"):
        overlay = yaml.safe_load((REPO / preset).read_text())
        assert overlay["extends"] == "../params.yaml"
        assert len((REPO / preset).read_text().splitlines()) < len((REPO / "params.yaml").read_text().splitlines()) / 2

        def same(over, under, path):  # no key repeats the value it would inherit
            for key, value in over.items():
                if isinstance(value, dict) and isinstance(under.get(key), dict):
                    same(value, under[key], f"{path}{key}.")
                else:
                    assert under.get(key, KeyError) != value, f"{preset}: {path}{key} repeats the base value"

        same({k: v for k, v in overlay.items() if k != "extends"}, base, "")
    smoke = cfg.load(REPO / "presets" / "smoke.yaml")
    # set by the overlay / merged into a mapping / inherited untouched
    assert smoke["train"]["seq_len"] == 32 and smoke["sizes"]["nano"]["d_model"] == 48
    assert smoke["sizes"]["nano"]["n_layers"] == base["sizes"]["nano"]["n_layers"]
    assert smoke["train"]["lr"] == base["train"]["lr"]
    assert smoke["architectures"]["gpt2"] == base["architectures"]["gpt2"]
    assert smoke["grid"]["architectures"] == base["grid"]["architectures"]


def test_an_overlay_chain_merges_base_first_and_errors_name_the_files(tmp_path):
    (tmp_path / "base.yaml").write_text((REPO / "params.yaml").read_text())
    (tmp_path / "mid.yaml").write_text("extends: base.yaml\ntrain: {lr: 0.01}\ngrid: {sizes: [nano]}\n")
    (tmp_path / "top.yaml").write_text("extends: mid.yaml\ntrain: {lr: 0.02, seq_len: 64}\n")
    top = cfg.load(tmp_path / "top.yaml")
    assert (top["train"]["lr"], top["train"]["seq_len"], top["grid"]["sizes"]) == (0.02, 64, ["nano"])
    assert [p.name for p, _ in cfg.layers(tmp_path / "top.yaml")] == ["base.yaml", "mid.yaml", "top.yaml"]
    (tmp_path / "bad.yaml").write_text("extends: mid.yaml\ntrain: {learning_rate: 1}\n")
    names = r"bad.yaml over .*mid.yaml over .*base.yaml: unknown key\(s\) 'learning_rate'"
    with pytest.raises(cfg.ConfigError, match=names):
        cfg.load(tmp_path / "bad.yaml")
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\n")
    with pytest.raises(cfg.ConfigError, match="loops back"):
        cfg.load(tmp_path / "loop.yaml")
    (tmp_path / "orphan.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(cfg.ConfigError, match="params file not found: .*nowhere.yaml"):
        cfg.load(tmp_path / "orphan.yaml")


def test_stage_keys_are_the_keys_a_jobs_result_depends_on():
    params = cfg.load(REPO / "presets" / "paper.yaml")
    params["finetune"]["per_task"] = {"COPA": {"steps": 5}}
    pre = cfg.stage_keys(params, "pretrain", "bert_mlm-tiny")
    assert "train.lr" in pre and "train.threads" not in pre and "train.checkpoint_every" not in pre
    assert "objectives.mlm" in pre and "objectives.span" not in pre and "architectures.bert_mlm" in pre
    scan = cfg.stage_keys(params, "pretrain", "transformer-base_l4")
    assert {"sizes.base", "scans.depth", "objectives.span"} <= set(scan) and "scans.width" not in scan
    copa = cfg.stage_keys(params, "finetune", "gpt2-tiny", "COPA")
    cb = cfg.stage_keys(params, "finetune", "gpt2-tiny", "CB")
    assert "finetune.per_task.COPA" in copa and not any("per_task" in k for k in cb)
    assert "finetune.lr" in cb and not {"finetune.tasks", "finetune.scratch_tasks", "finetune.allow_missing"} & set(cb)
    # the values a job is rerun on: a threads change leaves them equal, an lr change does not
    before = cfg.params_slice(params, "pretrain", "gpt2-tiny")
    assert cfg.params_slice(cfg.apply_overrides(params, {"train": {"threads": 3}}), "pretrain", "gpt2-tiny") == before
    assert cfg.params_slice(cfg.apply_overrides(params, {"train": {"lr": 3e-4}}), "pretrain", "gpt2-tiny") != before
