"""Training recipes (issue: tuned runs): T5's Adafactor + inverse square root schedule, and AdamW's
peak lr per size from Kaplan et al. 2020 (Eq. D.1). The expected numbers are worked out by hand
from the published formulas, and a short pretraining run with the T5 recipe records that schedule
and learns."""

from __future__ import annotations

import copy
import csv
import json
import math
import subprocess

import pytest
import yaml
from conftest import run_root

from archscale import config as cfg


def test_rsqrt_schedule_holds_the_peak_then_falls_as_one_over_sqrt_step():
    """T5: lr = 1/sqrt(max(step, 10^4)). Here w = int(T x warmup_frac) = 100 of T = 1000 steps: the
    factor is 1 for steps 0..99, sqrt(100 / (s + 1)) after: 1/2 at s = 399, 1/3 at s = 899; no floor."""
    from archscale.train.engine import lr_factor

    def f(step: int) -> float:
        return lr_factor(step, 1000, 0.1, 0.5, "rsqrt")

    assert [f(s) for s in (0, 50, 99)] == pytest.approx([1.0, 1.0, 1.0], abs=1e-12)
    assert f(399) == pytest.approx(0.5, abs=1e-12) and f(899) == pytest.approx(1 / 3, abs=1e-12)
    assert f(9999) == pytest.approx(0.1, abs=1e-12)  # below min_lr_ratio 0.5: rsqrt has no floor
    # T5's own numbers: peak 0.01, 10^4 steps held, of a 2^19-step run (warmup_frac 0.0191)
    t5 = [0.01 * lr_factor(s, 2 ** 19, 0.0191, 0.0, "rsqrt") for s in (0, 10_013, 39_999, 2 ** 19 - 1)]
    assert t5 == pytest.approx([0.01, 0.01 * math.sqrt(10_013 / 10_014), 0.01 * math.sqrt(10_013 / 40_000),
                                0.01 * math.sqrt(10_013 / 2 ** 19)], rel=1e-12)


def test_kaplan_lr_per_size_from_eq_d1():
    """LR(N) = 0.003239 - 0.0001395 ln N, N = 2 d_model n_layer (2 d_attn + d_ff).
    gpt2-tiny (4 layers, d_model 256, d_ff 1024, 4 heads x 64): N = 2*256*4*(2*256 + 1024) = 3,145,728,
    ln N = 14.96147, lr = 0.0011518. transformer-tiny counts both stacks: N = 6,291,456, lr = 0.0010552.
    An architecture's numeric lr still wins over the rule."""
    params = cfg.load(cfg.REPO / "presets" / "paper.yaml")
    gpt2 = cfg.resolve_run(params, "gpt2-tiny")["train"]
    assert gpt2["lr"] == pytest.approx(0.003239 - 0.0001395 * math.log(3_145_728), rel=1e-12)
    assert gpt2["lr"] == pytest.approx(0.0011518, abs=1e-7) and gpt2["lr_rule"] == "kaplan"
    assert (gpt2["optimizer"], gpt2["schedule"]) == ("adamw", "cosine")
    rules = copy.deepcopy(params)
    rules["architectures"]["transformer"]["train"] = {"lr": "kaplan", "optimizer": "adamw"}
    assert cfg.resolve_run(rules, "transformer-tiny")["train"]["lr"] == pytest.approx(0.0010552, abs=1e-7)
    large = cfg.resolve_run(params, "gpt2-large")["train"]["lr"]
    assert large < gpt2["lr"]  # bigger models, smaller steps
    tay = cfg.resolve_run(params, "transformer-base")["train"]
    assert (tay["optimizer"], tay["schedule"], tay["lr"], tay["weight_decay"]) == ("adafactor", "rsqrt", 0.01, 0.0)
    with pytest.raises(cfg.ConfigError, match="train.lr"):
        cfg.validate({**params, "train": {**params["train"], "lr": "kaplan2"}})


@pytest.fixture(scope="module")
def data(tiny_lm_data, tmp_path_factory):
    return run_root(tiny_lm_data, tmp_path_factory, "recipes")


@pytest.mark.slow
def test_adafactor_rsqrt_run_records_the_schedule_and_learns(data):
    root, params = data
    params["train"].update(optimizer="adafactor", schedule="rsqrt", lr=0.01, warmup_frac=0.1, weight_decay=0.0,
                           eval_every=20, checkpoint_every=1000)
    params["sizes"]["pico"]["tokens"] = 100 * params["train"]["batch_size"] * params["train"]["seq_len"]
    pfile = root / "adafactor.yaml"
    pfile.write_text(yaml.safe_dump(params))
    out = root / "adafactor"
    proc = subprocess.run(["archscale", "pretrain", "--params", str(pfile), "--run", "gpt2-pico", "--shards",
                           str(root / "shards"), "--tokenizer", str(root / "tok"), "--out", str(out), "--threads", "1"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "optimizer Adafactor, peak lr 0.01, rsqrt schedule" in proc.stderr, proc.stderr[-3000:]
    rows = list(csv.DictReader((out / "curve.csv").open()))
    # the lr logged after step s (LambdaLR has stepped s times): 0.01 * sqrt(10 / max(s + 1, 10)), w = 10
    for row in rows:
        s = int(row["step"])
        assert float(row["lr"]) == pytest.approx(0.01 * math.sqrt(10 / max(s + 1, 10)), rel=1e-6), row
    assert json.loads((out / "config.json").read_text())["train"]["optimizer"] == "adafactor"
    # it learns: val loss falls at every point, 6.20 -> 5.89 nats over steps 20..100 when measured
    losses = [float(r["val_loss"]) for r in rows]
    assert losses == sorted(losses, reverse=True) and losses[0] - losses[-1] > 0.2, losses
