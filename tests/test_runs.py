"""Sweeps and seeds (issue: tuned and repeated runs): `sweeps:` and `seeds:` expand into runs whose
ids say their lr and seed, adding them keeps every run a study already has, a run's config takes
the lr and seed from its id, bad sections are refused naming the key, and a repeat trains
differently but is evaluated on the same held-out draws."""

from __future__ import annotations

import copy
import csv
import json
import shutil
import subprocess

import pytest
import yaml
from conftest import run_root

from archscale import config as cfg
from archscale.runs import RunIdError, format_run, parse_run


def _params() -> dict:
    params = cfg.load(cfg.REPO / "presets" / "smoke.yaml")
    params["grid"] = {"architectures": ["gpt2", "transformer"], "sizes": ["pico", "nano"]}
    return params


def test_run_ids_round_trip_and_bad_ids_are_refused():
    for run, parts in [("gpt2-nano", ("gpt2", "nano", None, False, None)),
                       ("bert_mlm-base_l4+lr0.003", ("bert_mlm", "base_l4", 0.003, False, None)),
                       ("gpt2-nano+lrx0.5+s2", ("gpt2", "nano", 0.5, True, 2)),
                       ("gpt2-nano+lr1e-05+s11", ("gpt2", "nano", 1e-05, False, 11))]:
        rid = parse_run(run)
        assert (rid.arch, rid.size, rid.lr, rid.lr_scale, rid.seed) == parts
        assert str(rid) == run and rid.base == run.split("+")[0]
    assert format_run("gpt2", "nano", 0.0030, False, 1) == "gpt2-nano+lr0.003+s1"
    for bad in ("gpt2", "gpt2-nano+s", "gpt2-nano+seed1", "gpt2-nano+s1+lr0.1", "GPT2-nano", "gpt2-nano+lr1e-3e"):
        with pytest.raises(RunIdError, match="run id"):
            parse_run(bad)


def test_sweeps_and_seeds_expand_the_grid_and_keep_the_runs_it_had():
    params = _params()
    before = cfg.runs(params)
    params["sweeps"] = {"small": {"architectures": ["gpt2"], "sizes": ["pico"], "lr": [0.001, 0.003]}}
    params["seeds"] = [7]
    cfg.validate(params)
    assert cfg.runs(params) == [
        "gpt2-pico+lr0.001", "gpt2-pico+lr0.001+s7", "gpt2-pico+lr0.003", "gpt2-pico+lr0.003+s7",
        "gpt2-nano", "gpt2-nano+s7", "transformer-pico", "transformer-pico+s7", "transformer-nano",
        "transformer-nano+s7"]
    assert set(before) - set(cfg.runs(params)) == {"gpt2-pico"}, "only the swept run is replaced by its values"
    # 2 architectures x 2 sizes x 3 factors x 3 seeds
    params["sweeps"] = {"all": {"lr_scale": [0.5, 1, 2]}}
    params["seeds"] = [1, 2]
    assert len(cfg.runs(params)) == 2 * 2 * 3 * 3 and len(set(cfg.runs(params))) == 36


def test_a_run_takes_its_lr_and_seed_from_its_id():
    params = _params()
    base = cfg.resolve_run(params, "gpt2-nano")
    swept = cfg.resolve_run(params, "gpt2-nano+lr0.0005+s3")
    assert (swept["train"]["lr"], swept["seed"], swept["eval_seed"]) == (0.0005, 3, params["seed"])
    assert (base["seed"], base["eval_seed"]) == (params["seed"], params["seed"])
    scaled = cfg.resolve_run(params, "gpt2-nano+lrx2")["train"]
    assert scaled["lr"] == 2 * base["train"]["lr"] and scaled["lr_scale"] == 2.0
    # with a per-run rule the factor multiplies the run's own lr (Kaplan's, from its shape)
    paper = cfg.load(cfg.REPO / "presets" / "paper.yaml")
    kaplan = cfg.resolve_run(paper, "gpt2-tiny")["train"]["lr"]
    assert cfg.resolve_run(paper, "gpt2-tiny+lrx0.5")["train"]["lr"] == pytest.approx(kaplan / 2, rel=1e-12)
    with pytest.raises(cfg.ConfigError, match="is not of the form"):
        cfg.resolve_run(params, "gpt2-nano+lr")


@pytest.mark.parametrize("section, message", [
    ({"sweeps": {"a": {"lr": [0.001, 0.002], "lr_scale": [1, 2]}}}, "sweeps.a: give exactly one of lr"),
    ({"sweeps": {"a": {"lr": [0.001]}}}, "sweeps.a.lr"),
    ({"sweeps": {"a": {"lr": [0.001, 0.0010]}}}, "sweeps.a: repeated value"),
    ({"sweeps": {"a": {"architectures": ["roberta"], "lr": [0.001, 0.002]}}},
     r"sweeps.a.architectures\[0\]: 'roberta'"),
    ({"sweeps": {"a": {"sizes": ["mini"], "lr": [0.001, 0.002]}}}, r"sweeps.a.sizes\[0\]: 'mini'"),
    ({"sweeps": {"a": {"lr": [0.001, 0.002]}, "b": {"architectures": ["gpt2"], "lr_scale": [1, 2]}}},
     "sweeps.b: run gpt2-pico is already swept by sweeps.a"),
    ({"seeds": [1, 1]}, "seeds"),
    ({"seeds": [1234]}, "seeds: 1234 is `seed` itself"),
])
def test_bad_sweeps_and_seeds_are_refused_naming_the_key(section, message):
    params = {**copy.deepcopy(_params()), **section}
    params["seed"] = 1234
    with pytest.raises(cfg.ConfigError, match=message):
        cfg.validate(params)


@pytest.fixture(scope="module")
def data(tiny_lm_data, tmp_path_factory):
    return run_root(tiny_lm_data, tmp_path_factory, "repeats")


def _archscale(*args: str) -> None:
    proc = subprocess.run(["archscale", *args, "--threads", "1"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_a_repeat_trains_differently_and_is_scored_on_the_study_s_eval_draws(data):
    """transformer-pico and its +s5 repeat (span corruption: the eval's noise masks are random
    draws): the repeat records seed 5 and trains differently from the first step, and its model is
    scored the same whichever of the two runs' config.json the eval reads, so two repeats differ by
    training alone, not by which spans their evals happened to mask."""
    root, params = data
    params["train"].update(eval_every=5, checkpoint_every=1000)
    params["sizes"]["pico"]["tokens"] = 10 * params["train"]["batch_size"] * params["train"]["seq_len"]
    pfile = root / "params.yaml"
    pfile.write_text(yaml.safe_dump(params))
    for run in ("transformer-pico", "transformer-pico+s5"):
        _archscale("pretrain", "--params", str(pfile), "--run", run, "--shards", str(root / "shards"),
                   "--tokenizer", str(root / "tok"), "--out", str(root / run))
    base, rep = root / "transformer-pico", root / "transformer-pico+s5"
    base_cfg, rep_cfg = (json.loads((d / "config.json").read_text()) for d in (base, rep))
    assert (base_cfg["seed"], rep_cfg["seed"], rep_cfg["eval_seed"]) == (params["seed"], 5, params["seed"])
    curves = [list(csv.DictReader((d / "curve.csv").open())) for d in (base, rep)]
    assert curves[0][0]["train_loss"] != curves[1][0]["train_loss"]
    swapped = root / "swapped"  # the repeat's model under the base run's config
    shutil.copytree(rep, swapped)
    shutil.copy(base / "config.json", swapped / "config.json")
    for d in (rep, swapped):
        _archscale("evaluate_upstream", "--run-dir", str(d), "--shards", str(root / "shards"),
                   "--out", str(d / "upstream.json"))
    rep_up, swapped_up = (json.loads((d / "upstream.json").read_text()) for d in (rep, swapped))
    assert rep_up["val_loss"] == swapped_up["val_loss"]


def test_a_sweep_s_fine_tune_reads_the_lr_its_upstream_evals_select(data, sample_data):
    """In a sweep (lrs 0.001, 0.004; seeds `seed` and 3), `archscale select-lr` reads the two lrs'
    upstream evals over both seeds and picks the lower mean (0.004, though 0.001 has the better
    single seed); `archscale finetune --run gpt2-pico` fine-tunes this seed's model at that lr and
    writes under the id without lr, recording the run it read. Without the selection it stops."""
    root, params = data
    params["grid"] = {"architectures": ["gpt2"], "sizes": ["pico"]}
    params["sweeps"] = {"lr": {"lr": [0.001, 0.004]}}
    params["seeds"] = [3]
    params["finetune"].update(steps=2, eval_every=2, max_eval_examples=16)
    params["sizes"]["pico"]["tokens"] = 4 * params["train"]["batch_size"] * params["train"]["seq_len"]
    pfile = root / "sweep.yaml"
    pfile.write_text(yaml.safe_dump(params))
    runs = {"gpt2-pico+lr0.001": 5.0, "gpt2-pico+lr0.001+s3": 6.2,
            "gpt2-pico+lr0.004": 5.4, "gpt2-pico+lr0.004+s3": 5.5}
    assert sorted(cfg.runs(params)) == sorted(runs)
    for run, loss in runs.items():
        (root / "up" / run).mkdir(parents=True)
        (root / "up" / run / "upstream.json").write_text(json.dumps({"val_loss": loss}))
    for run in ("gpt2-pico+lr0.001", "gpt2-pico+lr0.004"):  # the fine-tuned seed's models
        _archscale("pretrain", "--params", str(pfile), "--run", run, "--shards", str(root / "shards"),
                   "--tokenizer", str(root / "tok"), "--out", str(root / "runs" / run))
    for run in ("gpt2-pico+lr0.001+s3", "gpt2-pico+lr0.004+s3"):  # the other seed: only its lr matters here
        (root / "runs" / run).mkdir(parents=True)
        (root / "runs" / run / "config.json").write_text(json.dumps(cfg.resolve_run(params, run)))
    finetune = ["finetune", "--params", str(pfile), "--run", "gpt2-pico", "--task", "CB", "--runs-dir",
                str(root / "runs"), "--sweeps-dir", str(root / "sweeps"), "--data", str(sample_data / "superglue"),
                "--out-root", str(root / "ft"), "--no-hub"]
    proc = subprocess.run(["archscale", *finetune], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 1 and "gpt2-pico.json does not select a run for gpt2-pico" in proc.stderr
    proc = subprocess.run(["archscale", "select-lr", *runs, "--runs-dir", str(root / "runs"), "--upstream-dir",
                           str(root / "up"), "--out", str(root / "sweeps" / "gpt2-pico.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    _archscale(*finetune)
    rec = json.loads((root / "ft" / "gpt2-pico" / "CB" / "metrics.json").read_text())
    assert (rec["run"], rec["pretrained_run"]) == ("gpt2-pico", "gpt2-pico+lr0.004")
    assert not (root / "ft" / "gpt2-pico+lr0.004").exists()
