"""pretrain end to end on a tiny corpus: the docs/design.md metrics contract, and a clean failure on NaN."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import run_root

REPO = Path(__file__).resolve().parents[1]
METRIC_FIELDS = ["arch", "size", "objective", "params", "non_embedding_params", "flops_per_token_fwd",
                 "flops_per_token_fwd_analytic", "train_flops", "tokens", "steps", "steps_per_s", "tokens_per_s",
                 "mfu", "val_loss", "val_ppl", "neg_log_ppl", "device", "precision", "wall_s", "seed", "code_version"]


@pytest.fixture(scope="module")
def data(tiny_lm_data, tmp_path_factory):
    return run_root(tiny_lm_data, tmp_path_factory, "pretrain")


def _run(root: Path, params: dict, run: str, name: str):
    pfile = root / f"{name}.yaml"
    pfile.write_text(yaml.safe_dump(params))
    out = root / name
    proc = subprocess.run(["archscale", "pretrain", "--params", str(pfile), "--run", run, "--shards",
                           str(root / "shards"), "--tokenizer", str(root / "tok"), "--out", str(out), "--threads", "1"],
                          capture_output=True, text=True, timeout=600)
    return proc, out


# 300 steps: enough to learn more than token frequencies at these sizes (val loss measured against
# the input-blind bar below: gpt2-pico 4.90 < 5.16, transformer-pico 4.15 < 4.30). A masked LM learns
# from 15% of its tokens: it gets a 4x batch, 2x lr and 2 layers. BERT (static masks + next-sentence
# prediction, whose loss shares the small encoder) needs 600 steps here: 5.08 < 5.16 (5.31 at 300;
# MLM alone 5.01 at 300).
STEPS = 300
RUN_STEPS = {"bert_mlm-nano": 600}
LEARN = {"gpt2-pico": {}, "transformer-pico": {},
         "bert_mlm-nano": {"batch_size": 32, "micro_batch_size": 32, "lr": 0.004}}


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0] / p.sum()
    return float(-(p * np.log(p)).sum())


def input_blind_bar(shards: Path, params: dict, objective: str) -> float:
    """Loss (nats/token) of the best model that ignores its inputs (the same distribution for every
    label): the unigram entropy of the label stream, from the training token counts.

    clm and mlm: the labels are corpus tokens, so the unigram entropy of the training tokens. span
    (T5): a target is <s_0> span_0 <s_1> span_1 ... </s>, each sentinel once: the unigram entropy of
    that stream, num_noise corpus tokens beside num_spans + 1 ids seen once per target. The raw window
    is the longest whose input (kept tokens, a sentinel per span, </s>) fits seq_len."""
    from archscale.data.shards import TokenShard

    train = TokenShard(shards, "train")
    counts = np.bincount(train.take(np.arange(len(train)))).astype(float)
    if objective != "span":
        return _entropy(counts)
    span, seq = params["objectives"]["span"], params["train"]["seq_len"]

    def lengths(raw: int) -> tuple[int, int, int]:
        noise = min(max(round(raw * span["noise_density"]), 1), raw - 1)
        spans = max(round(noise / span["mean_span_length"]), 1)
        return noise, spans, raw - noise + spans + 1

    noise, spans, _ = lengths(max(r for r in range(seq, 2 * seq) if lengths(r)[2] <= seq))
    target = noise + spans + 1
    return _entropy(np.concatenate([noise / target * counts / counts.sum(), np.full(spans + 1, 1 / target)]))


@pytest.mark.slow
@pytest.mark.parametrize("run", sorted(LEARN))
def test_pretrain_writes_the_contract_and_learns_from_its_inputs(data, run):
    """One run per model kind: metrics.json has every contract field, the FLOPs probe equals the
    formula, curve.csv, the model and config are written; and the model learned more than token
    frequencies: its val loss is below the input-blind bar (unigram entropy of the labels), not
    just below log(vocab), which token frequencies alone beat (5.16 vs 6.24 nats here).

    For clm this means it uses the preceding tokens. For span it may be the target layout alone
    (where the sentinels and </s> go: ~3.4 nats without any content), for mlm copying the 10% of
    masked positions left unchanged (4.73 nats without context): passing says the model reads
    its inputs, and only clm's pass says it reads word order."""
    root, params = data
    params = json.loads(json.dumps(params))
    steps = RUN_STEPS.get(run, STEPS)
    params["train"].update(LEARN[run], eval_every=steps // 3)
    params["sizes"][run.split("-")[1]]["tokens"] = steps * params["train"]["batch_size"] * params["train"]["seq_len"]
    proc, out = _run(root, params, run, run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    missing = [f for f in METRIC_FIELDS if f not in metrics]
    assert not missing
    assert metrics["steps"] == steps
    bar = input_blind_bar(root / "shards", params, metrics["objective"])
    assert metrics["val_loss"] < bar, (f"{run}: val loss {metrics['val_loss']:.3f} is not below the input-blind "
                                       f"{bar:.3f} (log vocab {math.log(512):.3f}): it learned no more than "
                                       "token frequencies")
    assert metrics["flops_per_token_fwd"] == pytest.approx(metrics["flops_per_token_fwd_analytic"], rel=1e-9)
    curve = (out / "curve.csv").read_text().splitlines()
    assert curve[0] == "step,tokens,flops,train_loss,val_loss,lr,wall_s" and len(curve) == 1 + 3
    assert (out / "model" / "model.safetensors").is_file() and (out / "model" / "tokenizer.json").is_file()
    assert json.loads((out / "config.json").read_text())["run"] == run


@pytest.mark.slow
def test_non_finite_loss_fails_without_metrics(data):
    root, params = data
    params = json.loads(json.dumps(params))
    params["train"].update(lr=1e30, grad_clip=0.0, warmup_frac=0.0)
    proc, out = _run(root, params, "gpt2-pico", "nan_run")
    assert proc.returncode == 1
    assert "loss became" in proc.stderr
    assert not (out / "metrics.json").exists()
