"""BERT, RoBERTa and ALBERT pretraining data as their papers make it: static masking with copies and
NSP (Devlin et al. 2019), dynamic masking without NSP (Liu et al. 2019), SOP (Lan et al. 2020); the
params keys that choose them, the model classes they train, and a BERT run through the real path."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from archscale import config as cfg
from archscale.data.objectives import IGNORE, in_order_pairs, make_batch, rng_for
from archscale.data.shards import TokenShard
from archscale.train.pretrain import TRAIN_STREAM, global_batch

REPO = Path(__file__).resolve().parents[1]
SPECIAL = {"pad": 0, "eos": 1, "unk": 2, "mask": 3, "sentinels": list(range(4, 104)), "cls": 104, "sep": 105,
           "n_special": 106}
VOCAB = 8192


@pytest.fixture()
def params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def _rc(params: dict, arch: str, batch: int = 8, **mlm) -> dict:
    params = copy.deepcopy(params)
    params["architectures"][arch].setdefault("mlm", {}).update(mlm)
    rc = cfg.resolve_run(cfg.validate(params), f"{arch}-nano")
    rc["train"]["batch_size"] = batch
    return rc


def _shard(tmp_path: Path, tokens: np.ndarray) -> TokenShard:
    d = tmp_path / "shards"
    d.mkdir(exist_ok=True)
    np.asarray(tokens, dtype=np.uint16).tofile(d / "train.bin")
    (d / "meta.json").write_text(json.dumps({"vocab_size": VOCAB, "dtype": "uint16", "eos_id": 1}))
    return TokenShard(d, "train")


def _counting_shard(tmp_path: Path, n: int) -> TokenShard:
    """Token i of the shard is n_special + i: every token says where it came from."""
    return _shard(tmp_path, SPECIAL["n_special"] + np.arange(n))


def _true_tokens(batch: dict) -> np.ndarray:
    """The tokens before masking: labels hold the original at every chosen position."""
    return np.where(batch["labels"] != IGNORE, batch["labels"], batch["input_ids"])


def _segments(batch: dict, row: int) -> tuple[np.ndarray, np.ndarray]:
    """(first, second) text segments of a [CLS] A [SEP] B [SEP] row, original tokens."""
    true, seg = _true_tokens(batch)[row], batch["token_type_ids"][row]
    n0 = int((seg == 0).sum())
    return true[1:n0 - 1], true[n0:-1]


def test_special_ids_put_cls_and_sep_after_the_sentinels():
    from transformers import PreTrainedTokenizerFast

    from archscale.data.tokenizer import CLS, EOS, MASK, PAD, SEP, UNK, build_tokenizer, special_ids, special_tokens

    tok = build_tokenizer("bpe", 300, 1, 5, ["the cat sat on the mat, the dog sat on the log"] * 20)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK,
                                   mask_token=MASK, cls_token=CLS, sep_token=SEP)
    ids = special_ids(fast)
    assert special_tokens(5)[:4] == [PAD, EOS, UNK, MASK] and special_tokens(5)[-2:] == [CLS, SEP]
    assert (ids["pad"], ids["eos"], ids["unk"], ids["mask"], ids["sentinels"]) == (0, 1, 2, 3, [4, 5, 6, 7, 8])
    assert (ids["cls"], ids["sep"], ids["n_special"]) == (9, 10, 11)  # random replacements draw from 11 up


@pytest.mark.parametrize("arch, mlm", [("bert_mlm", {}), ("albert_mlm", {}),
                                       ("bert_mlm", {"sentence_task": "none"})])
def test_static_masking_repeats_an_instance_exactly(params, tmp_path, arch, mlm):
    """Static masking (BERT/ALBERT): with one copy, every draw of an example is the same row, mask,
    sentence pair and negative included, at whatever step it is drawn. The shard holds six aligned
    examples of constant tokens, so a row's example is the most common token of its first segment."""
    rc = _rc(params, arch, copies=1, **mlm)
    raw = rc["train"]["seq_len"]
    shard = _shard(tmp_path, np.repeat(SPECIAL["n_special"] + 10 * np.arange(6), raw))
    seen: dict[int, tuple] = {}
    repeats = 0
    for step in range(6):
        b = global_batch(shard, step, "encoder", rc, raw, SPECIAL)
        for r in range(len(b["input_ids"])):
            text = b["input_ids"][r][b["labels"][r] == IGNORE]
            if "token_type_ids" in b:
                text = _segments(b, r)[0]
            example = int(np.bincount(text).argmax())
            row = tuple(np.asarray(v[r]).tobytes() for v in b.values())
            if example in seen and seen[example][0] != step:
                assert row == seen[example][1], f"example {example}: step {step} differs from step {seen[example][0]}"
                repeats += 1
            seen.setdefault(example, (step, row))
    assert repeats >= 10


def test_static_copies_differ_and_dynamic_masks_afresh(params, tmp_path):
    """Static: copies of one example are masked differently (the copy is part of the rng key).
    Dynamic (RoBERTa): the same window drawn at two steps is masked differently."""
    from archscale.data.objectives import example_rng

    rc = _rc(params, "bert_mlm")
    raw = rc["train"]["seq_len"]
    w = (SPECIAL["n_special"] + np.arange(raw))[None]
    a, b = (make_batch(w, "encoder", [example_rng(1, 0, c)], rc["objectives"], SPECIAL, VOCAB) for c in (0, 1))
    assert not np.array_equal(a["input_ids"], b["input_ids"])

    rc = _rc(params, "roberta")
    shard = _counting_shard(tmp_path, raw + 3)  # three possible windows: repeats across steps are certain
    rows: dict[int, list] = {}
    for step in range(2):
        batch = global_batch(shard, step, "encoder", rc, raw, SPECIAL)
        for r in range(len(batch["input_ids"])):
            rows.setdefault(int(_true_tokens(batch)[r][0]), []).append((step, batch["input_ids"][r]))
    pairs = [(x, y) for v in rows.values() for i, x in enumerate(v) for y in v[i + 1:] if x[0] != y[0]]
    assert len(pairs) >= 10
    assert not any(np.array_equal(x[1], y[1]) for x, y in pairs), "dynamic masking repeated a mask across steps"


def test_bert_batches_are_nsp_pairs(params, tmp_path):
    """[CLS] A [SEP] B [SEP] with segment ids 0/1, nothing masked on [CLS]/[SEP]; about half the pairs
    IsNext (B continues A in the corpus), the others with B from a place that shares no token with A's
    window; the total length stays seq_len."""
    rc = _rc(params, "bert_mlm", batch=64)
    raw = rc["train"]["seq_len"]
    shard = _counting_shard(tmp_path, 60 * raw)
    labels = []
    for step in range(4):
        b = global_batch(shard, step, "encoder", rc, raw, SPECIAL)
        assert set(b) == {"input_ids", "token_type_ids", "labels", "next_sentence_label"}
        assert b["input_ids"].shape == (64, raw) and b["next_sentence_label"].shape == (64,)
        for r in range(64):
            seg, ids = b["token_type_ids"][r], b["input_ids"][r]
            n0 = int((seg == 0).sum())
            assert ids[0] == SPECIAL["cls"] and ids[n0 - 1] == SPECIAL["sep"] and ids[-1] == SPECIAL["sep"]
            assert (seg[:n0] == 0).all() and (seg[n0:] == 1).all()
            assert (b["labels"][r][[0, n0 - 1, raw - 1]] == IGNORE).all()
            a, bb = _segments(b, r)
            assert len(a) + len(bb) == raw - 3 and (np.diff(a) == 1).all() and (np.diff(bb) == 1).all()
            if b["next_sentence_label"][r] == 0:
                assert bb[0] == a[-1] + 1
            else:
                assert bb[-1] < a[0] or bb[0] >= a[0] + raw, "NotNext B overlaps A's own window"
            labels.append(int(b["next_sentence_label"][r]))
    assert 0.4 < np.mean(labels) < 0.6
    # evaluation reads each held-out window as one IsNext pair: MLM over true running text
    windows = shard.windows(np.arange(16) * raw, raw)
    b = make_batch(windows, "encoder", rng_for(0, 1, 0), rc["objectives"], SPECIAL, VOCAB,
                   **in_order_pairs(rc["objectives"], 16))
    assert (b["next_sentence_label"] == 0).all()
    assert all((np.diff(np.concatenate(_segments(b, r))) == 1).all() for r in range(16))


def test_albert_sop_swaps_exactly_the_labelled_pairs(params, tmp_path):
    rc = _rc(params, "albert_mlm", batch=64)
    raw = rc["train"]["seq_len"]
    shard = _counting_shard(tmp_path, 60 * raw)
    b = global_batch(shard, 0, "encoder", rc, raw, SPECIAL)
    assert "sentence_order_label" in b and "next_sentence_label" not in b
    for r in range(64):
        first, second = _segments(b, r)
        swapped = b["sentence_order_label"][r] == 1
        text = np.concatenate([second, first] if swapped else [first, second])
        assert (np.diff(text) == 1).all(), f"row {r}: label {int(swapped)} but segments {first[:3]}.. {second[:3]}.."
    assert 0.3 < b["sentence_order_label"].mean() < 0.7


def test_bert_and_roberta_runs_make_different_batches_and_roberta_is_plain_dynamic_mlm(params, tmp_path):
    """Same (seed, step): BERT's batch is pairs from aligned examples, RoBERTa's is exactly the dynamic
    MLM batch every mlm run had before these settings existed (random window starts, step rng)."""
    raw = params["train"]["seq_len"]
    shard = _counting_shard(tmp_path, 40 * raw)
    bert, roberta = _rc(params, "bert_mlm"), _rc(params, "roberta")
    assert roberta["objectives"]["mlm"]["masking"] == "dynamic"
    gb_bert, gb_rob = (global_batch(shard, 3, "encoder", rc, raw, SPECIAL) for rc in (bert, roberta))
    assert "next_sentence_label" in gb_bert and set(gb_rob) == {"input_ids", "labels"}
    assert not np.array_equal(gb_bert["input_ids"], gb_rob["input_ids"])
    rng = rng_for(roberta["seed"], TRAIN_STREAM, 3)
    windows = shard.windows(shard.random_starts(rng, 8, raw), raw)
    legacy = make_batch(windows, "encoder", rng, params["objectives"], SPECIAL, VOCAB)
    assert all(np.array_equal(legacy[k], gb_rob[k]) for k in legacy)


def test_mlm_settings_resolve_and_bad_ones_name_the_key(params):
    rc = cfg.resolve_run(cfg.validate(copy.deepcopy(params)), "bert_mlm-nano")
    assert {k: rc["objectives"]["mlm"][k] for k in ("masking", "copies", "sentence_task")} == \
        {"masking": "static", "copies": 10, "sentence_task": "nsp"}
    bare = copy.deepcopy(params)
    del bare["architectures"]["roberta"]["mlm"]
    default = cfg.resolve_run(bare, "roberta-nano")["objectives"]["mlm"]  # no mlm key: as every mlm run was before
    assert (default["masking"], default["sentence_task"], "copies" in default) == ("dynamic", "none", False)
    assert cfg.resolve_run(params, "gpt2-nano")["objectives"] == params["objectives"]  # other runs untouched
    for arch, mlm, expected in [
            ("gpt2", {"sentence_task": "nsp"}, "architectures.gpt2.mlm.sentence_task: only an mlm architecture"),
            ("roberta", {"copies": 5}, "architectures.roberta.mlm.copies: copies are for static masking"),
            ("bert_mlm", {"masking": "fixed"}, "architectures.bert_mlm.mlm.masking"),
            ("bert_mlm", {"sentence": "nsp"}, "unknown key(s) 'sentence' under architectures.bert_mlm.mlm")]:
        bad = copy.deepcopy(params)
        bad["architectures"][arch].setdefault("mlm", {}).update(mlm)
        with pytest.raises(cfg.ConfigError) as err:
            cfg.validate(bad, "params.yaml")
        assert "params.yaml: " + expected in str(err.value)


def test_sentence_tasks_train_pretraining_classes_whose_exports_load_as_masked_lms(params, tmp_path):
    """BERT -> BertForPreTraining, ALBERT -> AlbertForPreTraining, RoBERTa -> RobertaForMaskedLM; the
    FLOPs formula counts the pooler and NSP/SOP head; an export loads as the masked LM with the same
    token logits, or whole with pretraining_heads. A task the class has no head for is refused."""
    import torch

    from archscale.eval.upstream import model_inputs
    from archscale.models.flops import analytic_flops_per_token, measured_flops
    from archscale.models.registry import build_model, load_pretrained

    shape = {"n_layers": 1, "d_model": 32, "d_ff": 64, "n_heads": 2, "d_kv": 16}
    windows = np.random.default_rng(0).integers(106, 300, (2, 40))
    for arch, cls in [("bert_mlm", "BertForPreTraining"), ("albert_mlm", "AlbertForPreTraining"),
                      ("roberta", "RobertaForMaskedLM")]:
        rc = {**_rc(params, arch), "shape": shape}
        rc["train"].update(seq_len=40, dropout=0.0)
        model = build_model(rc, 300, SPECIAL).eval()
        assert type(model).__name__ == cls
        batch = {k: torch.from_numpy(v) for k, v in
                 make_batch(windows, "encoder", rng_for(0, 0, 0), rc["objectives"], SPECIAL, 300).items()}
        measured = measured_flops(model, batch) / batch["input_ids"].numel()
        assert measured == pytest.approx(analytic_flops_per_token(rc, "encoder", 300, 40, 40), rel=1e-12)
        model.save_pretrained(str(tmp_path / arch))
        mlm, whole = (load_pretrained(tmp_path / arch, "mlm", pretraining_heads=h).eval() for h in (False, True))
        assert type(mlm).__name__.endswith("ForMaskedLM") and type(whole) is type(model)
        assert set(model_inputs(mlm, batch)) == {"input_ids", "labels"} | ({"token_type_ids"} & set(batch))
        assert set(model_inputs(whole, batch)) == set(batch)  # the sentence label only where a head takes it
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "token_type_ids")}
        with torch.no_grad():
            ref = model(**inputs)
            ref = getattr(ref, "prediction_logits", None) if cls.endswith("PreTraining") else ref.logits
            assert torch.allclose(mlm(**inputs).logits, ref, atol=1e-5)
    rc = {**_rc(params, "roberta", sentence_task="nsp"), "shape": shape}
    with pytest.raises(ValueError, match="architectures.roberta.mlm.sentence_task"):
        build_model(rc, 300, SPECIAL)


@pytest.mark.slow  # ~45 s on 2 cores: a DeepSpeed pretrain job, evaluate_upstream and two fine-tunings
def test_bert_nano_trains_through_pretrain_and_its_export_scores_and_fine_tunes(tiny_lm_data, tmp_path_factory,
                                                                                sample_data):
    """bert_mlm (static masks, NSP) through `archscale pretrain`: BertForPreTraining trains; its export
    loads with load_pretrained as BertForMaskedLM and evaluate() gives the run's own final val_loss
    (the MLM loss; the NSP head plays no part in it); evaluate_upstream also records the NSP accuracy;
    `archscale finetune` runs on the export and from scratch."""
    import subprocess

    from conftest import run_root
    from transformers import PreTrainedTokenizerFast

    from archscale.data.tokenizer import special_ids
    from archscale.eval import upstream
    from archscale.eval.finetune import finetune_task
    from archscale.models.registry import load_pretrained

    root, params = run_root(tiny_lm_data, tmp_path_factory, "bert_nsp")
    tr = params["train"]
    params["sizes"]["nano"]["tokens"] = 10 * tr["batch_size"] * tr["seq_len"]
    (root / "p.yaml").write_text(yaml.safe_dump(params))
    out = root / "bert_mlm-nano"
    proc = subprocess.run(["archscale", "pretrain", "--params", str(root / "p.yaml"), "--run", "bert_mlm-nano",
                           "--shards", str(root / "shards"), "--tokenizer", str(root / "tok"), "--out", str(out),
                           "--threads", "1"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rc, metrics = (json.loads((out / f).read_text()) for f in ("config.json", "metrics.json"))
    assert rc["objectives"]["mlm"]["sentence_task"] == "nsp" and metrics["steps"] == 10
    assert json.loads((out / "model" / "config.json").read_text())["architectures"] == ["BertForPreTraining"]

    model = load_pretrained(out / "model", "mlm")
    assert type(model).__name__ == "BertForMaskedLM"
    special = special_ids(PreTrainedTokenizerFast.from_pretrained(str(out / "model")))
    val = upstream.evaluate(model, TokenShard(root / "shards", "val"), "encoder", seq_len=tr["seq_len"],
                            eval_tokens=tr["eval_tokens"], micro_batch=tr["micro_batch_size"],
                            objectives=rc["objectives"], special=special, seed=rc["seed"])
    assert val["val_loss"] == pytest.approx(metrics["val_loss"], rel=1e-5)
    assert upstream.main(["--run-dir", str(out), "--shards", str(root / "shards"), "--out", str(root / "up.json")]) == 0
    up = json.loads((root / "up.json").read_text())
    assert up["val_loss"] == pytest.approx(metrics["val_loss"], rel=1e-5) and 0.0 <= up["sentence_acc"] <= 1.0

    ft = {**params["finetune"], "steps": 4, "eval_every": 4, "max_eval_examples": 16}
    for scratch in (False, True):
        rec = finetune_task(out, "CB", ft, sample_data / "superglue", root / f"ft{scratch}", use_hub=False,
                            from_scratch=scratch)
        assert rec["status"] == "ok" and 0.0 <= rec["score"] <= 100.0
