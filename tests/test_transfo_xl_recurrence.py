"""Transformer-XL's segment-level recurrence across steps (Dai et al. 2019, Sec. 3.2) and bits per byte.

- Contiguous stream batches: row b at step t + 1 continues row b at step t, a pure function of (seed, step).
- A copy task only memory can solve: the stream is random blocks of seg_len tokens, each written twice
  (A A B B ...). A window of seg_len tokens never holds a token and its copy, so only the memory (the
  previous step's segment) can tell the second copy; a TXL trained with memory carried across steps
  scores far below ln(vocab), and the same weights with the memory reset every window do not.
- evaluate(): the same held-out windows and target count as a non-recurrent model, scored as
  micro_batch contiguous runs with the memory carried (checked against a one-row-at-a-time loop).
- Resume: a nano TXL run resumed from a mid-run checkpoint ends with the uninterrupted run's curve.
- val_bpb: NLL / ln 2 / bytes, with the bytes of a known string counted by hand.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from conftest import run_root

from archscale.data.shards import TokenShard
from archscale.eval.upstream import evaluate
from archscale.models.transfo_xl import TransfoXLConfig, TransfoXLLMHeadModel, is_recurrent
from archscale.train import checkpoint
from archscale.train.pretrain import stream_batch

torch.set_num_threads(1)
VOCAB, SEG, BATCH, STEPS = 32, 16, 8, 400
OBJECTIVES = {"span": {"noise_density": 0.15, "mean_span_length": 3.0}}


def write_shard(root: Path, splits: dict, vocab: int, dtype: str = "uint16", eos: int = 1) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "meta.json").write_text(json.dumps({"vocab_size": vocab, "dtype": dtype, "eos_id": eos}))
    for split, tokens in splits.items():
        (root / f"{split}.bin").write_bytes(np.asarray(tokens, dtype=dtype).tobytes())
    return root


def doubled_blocks(n_blocks: int, seed: int) -> np.ndarray:
    """Random blocks of SEG tokens (ids 4..VOCAB-1), each written twice in a row."""
    blocks = np.random.default_rng(seed).integers(4, VOCAB, (n_blocks, SEG))
    return np.repeat(blocks, 2, axis=0).reshape(-1)


def rc(batch: int = BATCH, seed: int = 0) -> dict:
    return {"seed": seed, "train": {"batch_size": batch}, "objectives": OBJECTIVES}


def tiny_txl(mem_len: int = SEG) -> TransfoXLLMHeadModel:
    torch.manual_seed(0)
    return TransfoXLLMHeadModel(TransfoXLConfig(vocab_size=VOCAB, d_model=32, n_head=2, d_head=16, d_inner=64,
                                                n_layer=1, seg_len=SEG, mem_len=mem_len))


def eval_kw(micro_batch: int = 4) -> dict:
    return dict(seq_len=SEG, eval_tokens=10 ** 6, micro_batch=micro_batch, objectives=OBJECTIVES, special={}, seed=0)


@pytest.fixture(scope="module")
def copy_task(tmp_path_factory):
    """A TXL trained STEPS steps on the doubled-block stream, memory carried across steps (~3 s)."""
    # val: 22 blocks x 2 = 44 windows of SEG; eval_starts takes them all; 44 = 4 runs of 11 per row
    # with micro_batch 4, and 3 runs of 15, 15, 14 with micro_batch 3 (a last batch of two rows).
    root = write_shard(tmp_path_factory.mktemp("copy") / "shards",
                       {"train": doubled_blocks(400, 0), "val": doubled_blocks(22, 1)}, VOCAB)
    shard = TokenShard(root, "train")
    model = tiny_txl()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    mems, losses = None, []
    for step in range(STEPS):
        batch = {k: torch.from_numpy(v) for k, v in stream_batch(shard, step, "decoder", rc(), SEG, {}).items()}
        out = model(**batch, mems=mems)
        mems = out.mems
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    return root, model, losses


def test_stream_batches_are_contiguous_streams_and_a_pure_function_of_seed_and_step(tmp_path):
    n = 1000
    shard = TokenShard(write_shard(tmp_path, {"train": np.arange(n)}, n), "train")
    length = 7
    batches = [stream_batch(shard, t, "decoder", rc(4), length, {})["input_ids"] for t in range(300)]
    first = batches[0][:, 0]
    assert np.array_equal((first - first[0]) % n, np.arange(4) * (n // 4)), "streams start evenly spaced"
    for t in range(299):  # 300 x 7 > 1000: every stream wraps at the end of the file
        assert np.array_equal((batches[t][:, -1] + 1) % n, batches[t + 1][:, 0]), f"row b at step {t + 1} jumps"
        assert np.array_equal(np.diff(batches[t], axis=1) % n, np.ones((4, length - 1))), f"step {t} not contiguous"
    again = stream_batch(shard, 123, "decoder", rc(4), length, {})
    assert np.array_equal(again["input_ids"], batches[123]) and np.array_equal(again["labels"], batches[123])
    other_seed = stream_batch(shard, 123, "decoder", rc(4, seed=1), length, {})["input_ids"]
    assert not np.array_equal(other_seed, batches[123])
    with pytest.raises(ValueError, match="train.batch_size"):
        stream_batch(shard, 0, "decoder", rc(200), length, {})


def test_memory_carried_across_steps_solves_what_one_window_cannot(copy_task):
    """With memory, the second copy of every block is predictable: loss about half of ln(vocab)
    (1-layer optimum ~2.35 nats); with the memory reset every window nothing is (>= ln 28)."""
    root, model, losses = copy_task
    assert is_recurrent(model.config)
    val = evaluate(model, TokenShard(root, "val"), "decoder", **eval_kw())
    assert val["val_loss"] < math.log(VOCAB) - 0.7, val
    assert val["val_loss"] < val["val_loss_no_memory"] - 1.0, val
    assert np.mean(losses[-20:]) < math.log(VOCAB) - 0.7


@pytest.mark.parametrize("micro_batch", [4, 3])
def test_evaluate_carries_memory_over_the_same_windows(copy_task, micro_batch):
    """Same windows and target count as the non-recurrent model (these weights with mem_len 0,
    whose loss is then val_loss_no_memory exactly), and the carried loss equals scoring each
    row's contiguous run of windows one at a time with the memory passed along."""
    root, model, _ = copy_task
    val_shard = TokenShard(root, "val")
    val = evaluate(model, val_shard, "decoder", **eval_kw(micro_batch))
    flat = TransfoXLLMHeadModel(TransfoXLConfig(**{**model.config.to_dict(), "mem_len": 0}))
    flat.load_state_dict(model.state_dict())
    assert not is_recurrent(flat.config)
    plain = evaluate(flat, val_shard, "decoder", **eval_kw(micro_batch))
    assert plain["val_loss_no_memory"] is None
    counts = (val["target_tokens"], val["eval_tokens"])
    assert counts == (plain["target_tokens"], plain["eval_tokens"]) == (44 * (SEG - 1), 44 * SEG)
    assert val["val_loss_no_memory"] == pytest.approx(plain["val_loss"], rel=1e-6)
    windows = torch.from_numpy(val_shard.take(np.arange(44 * SEG))).long().view(44, SEG)
    total = 0.0
    model.eval()
    with torch.no_grad():
        for run in np.array_split(np.arange(44), micro_batch):
            mems = None
            for w in run:
                out = model(input_ids=windows[w:w + 1], mems=mems)
                mems = out.mems
                total += F.cross_entropy(out.logits[0, :-1], windows[w, 1:], reduction="sum").item()
    assert val["val_loss"] == pytest.approx(total / (44 * 15), rel=1e-5)


def test_val_bpb_is_nll_in_bits_over_utf8_bytes(tmp_path):
    """A byte-level BPE tokenizer, val.bin = [</s>, text, </s>] x 6, one window each: the targets are
    the text's tokens and the closing </s> (0 bytes). Bytes of the text by hand: "Zoë's café: naïve
    façade." is 25 characters, four of them two-byte (ë, é, ï, ç): 29; " 5€" is 1 + 1 + 3 (€ is
    E2 82 AC, never seen by the tokenizer, so three one-byte tokens, none a whole character): 34."""
    from transformers import PreTrainedTokenizerFast

    from archscale.data.tokenizer import special_ids, train_tokenizer
    from archscale.models.registry import build_model

    seen = "Zoë's café: naïve façade."
    corpus = tmp_path / "prepared"
    corpus.mkdir()
    (corpus / "train.jsonl").write_text("".join(json.dumps({"text": f"{seen} plain words {i}\n"}) + "\n"
                                              for i in range(50)))
    (corpus / "manifest.json").write_text(json.dumps({"train": {"files": ["train.jsonl"]}}))
    text = seen + " 5€"
    train_tokenizer(corpus, tmp_path / "tok", kind="bpe", vocab_size=300, min_frequency=2, n_sentinels=2)
    tok = PreTrainedTokenizerFast.from_pretrained(str(tmp_path / "tok"))
    special = special_ids(tok)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    window = [special["eos"], *ids, special["eos"]]
    root = write_shard(tmp_path / "shards", {"val": window * 6}, len(tok), eos=special["eos"])
    spec = {"impl": "hf", "model_type": "gpt2", "objective": "clm"}
    shape = {"n_layers": 1, "d_model": 32, "d_ff": 64, "n_heads": 2, "d_kv": 16}
    run = {"architecture": spec, "objective": "clm", "shape": shape, "seed": 0,
           "train": {"seq_len": len(window), "dropout": 0.0}}
    model = build_model(run, len(tok), special)
    val = evaluate(model, TokenShard(root, "val"), "decoder", seq_len=len(window), eval_tokens=10 ** 6, micro_batch=4,
                   objectives=OBJECTIVES, special=special, seed=0, tokenizer=tok)
    batch = torch.tensor([window] * 6)
    model.eval()
    with torch.no_grad():
        nll = F.cross_entropy(model(input_ids=batch).logits[:, :-1].reshape(-1, len(tok)).float(),
                              batch[:, 1:].reshape(-1), reduction="sum").item()
    assert val["target_tokens"] == 6 * (len(window) - 1)
    assert val["val_bpb"] == pytest.approx(nll / math.log(2) / (6 * 34), rel=1e-6)
    no_tok = evaluate(model, TokenShard(root, "val"), "decoder", seq_len=len(window), eval_tokens=10 ** 6,
                      micro_batch=4, objectives=OBJECTIVES, special=special, seed=0)
    assert no_tok["val_bpb"] is None and no_tok["val_loss_no_memory"] is None


@pytest.mark.slow
def test_transfo_xl_run_resumed_mid_way_ends_like_an_uninterrupted_one(tiny_lm_data, tmp_path_factory):
    """`archscale pretrain` of a pico TXL, 12 steps, checkpoints every 4 (memory in them): a copy of the
    step-4 checkpoint resumed to the end gives the uninterrupted curve.csv (every column but wall_s)."""
    root, params = run_root(tiny_lm_data, tmp_path_factory, "txl_resume")
    tr = params["train"]
    tr.update(checkpoint_every=4, eval_every=2, keep_checkpoints=3)
    params["sizes"]["pico"]["tokens"] = 12 * tr["batch_size"] * tr["seq_len"]
    pfile = root / "params.yaml"
    pfile.write_text(yaml.safe_dump(params))

    def run(name: str) -> Path:
        out = root / name
        proc = subprocess.run(["archscale", "pretrain", "--params", str(pfile), "--run", "transfo_xl-pico", "--shards",
                               str(root / "shards"), "--tokenizer", str(root / "tok"), "--out", str(out),
                               "--threads", "1"], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return out, proc.stderr

    def curve(out: Path) -> list[dict]:
        with open(out / "curve.csv") as fh:
            return [{k: v for k, v in r.items() if k != "wall_s"} for r in csv.DictReader(fh)]

    base, _ = run("base")
    assert checkpoint.tags(base / "ckpt") == [checkpoint.tag_of(s) for s in (8, 4)]
    resumed = root / "resumed"
    (resumed / "ckpt").mkdir(parents=True)
    shutil.copytree(base / "ckpt" / checkpoint.tag_of(4), resumed / "ckpt" / checkpoint.tag_of(4))
    shutil.copy2(base / "ckpt" / checkpoint.OWNER, resumed / "ckpt" / checkpoint.OWNER)  # same configuration
    _, log = run("resumed")
    assert "at step 4" in log and "resumed from" in log
    assert len(curve(base)) == 6
    assert curve(resumed) == curve(base)
    assert json.loads((resumed / "metrics.json").read_text())["val_loss"] == \
        json.loads((base / "metrics.json").read_text())["val_loss"]
