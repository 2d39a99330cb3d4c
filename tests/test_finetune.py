"""End-to-end fine-tuning of tiny randomly initialised models of each kind (enc-dec, encoder,
decoder) through the DeepSpeed engine, on synthetic learnable tasks, the fixtures and the official
SuperGLUE CB/COPA/RTE records shipped in tests/data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from archscale.eval import formats  # noqa: E402
from archscale.eval import superglue as sg  # noqa: E402
from archscale.eval.finetune import batch_indices, finetune_task  # noqa: E402
from archscale.eval.heads import Encoder, _truncate  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "superglue"
ARCHS = {"transformer": ("span", "t5", {"feed_forward_proj": "relu"}), "gpt2": ("clm", "gpt2", {}),
         "bert_mlm": ("mlm", "bert", {})}
SHAPE = {"n_layers": 1, "d_model": 32, "d_ff": 64, "n_heads": 2, "d_kv": 16}
FT = dict(steps=40, batch_size=16, micro_batch_size=8, lr=3e-3, warmup_frac=0.1, min_lr_ratio=1.0, weight_decay=0.0,
          betas=[0.9, 0.999], grad_clip=1.0, zero_stage=0, dropout=0.1, max_len=64, max_target_len=8,
          eval_every=20, selection="best", patience=None, precision="fp32", max_train_examples=None,
          max_eval_examples=None)


def _corpus():
    subj = ["The cat", "A man", "The old farmer", "My sister", "The team", "A child", "The doctor"]
    verbs = ["walked home", "ate dinner", "read a book", "won the game", "sold the house", "painted the fence"]
    for s in subj:
        for v in verbs:
            yield f"Yes, {s.lower()} {v} yesterday. No, {s} did not. It was right, it was wrong. entailment"
    for path in sorted(FIXTURES.glob("*/*.jsonl")):
        yield path.read_text()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """results/runs-like folder with one tiny random-init run per model kind (model/ + config.json)."""
    from transformers import PreTrainedTokenizerFast

    from archscale.data.tokenizer import EOS, MASK, PAD, UNK, build_tokenizer, special_ids, special_tokens
    from archscale.models.registry import build_model

    root = tmp_path_factory.mktemp("runs")
    tok = build_tokenizer("bpe", 600, 1, 4, _corpus())
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK,
                                   mask_token=MASK, additional_special_tokens=special_tokens(4)[4:])
    for arch, (objective, model_type, options) in ARCHS.items():
        rc = {"run": f"{arch}-t", "arch": arch, "size": "t", "seed": 1234, "objective": objective, "shape": SHAPE,
              "architecture": {"impl": "hf", "model_type": model_type, "objective": objective, "options": options},
              "train": {"seq_len": 64, "dropout": 0.0}}
        out = root / rc["run"]
        build_model(rc, len(fast), special_ids(fast)).save_pretrained(str(out / "model"))
        fast.save_pretrained(str(out / "model"))
        (out / "config.json").write_text(json.dumps(rc))
    return root


def _write(root: Path, task: str, split: str, rows: list[dict]) -> None:
    (root / task).mkdir(parents=True, exist_ok=True)
    (root / task / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _synthetic(root: Path) -> Path:
    """RTE and COPA in the official format whose answer is a surface cue (Yes/No, 'right'):
    a model that trains correctly learns them in a few dozen steps; one with a plumbing bug
    (labels misaligned, wrong pooled token, options shuffled) stays near chance."""
    r = random.Random(0)
    subj = ["The cat", "A man", "The old farmer", "My sister", "The team", "A child", "The doctor"]
    verbs = ["walked home", "ate dinner", "read a book", "won the game", "sold the house", "painted the fence"]
    for split, n in (("train", 64), ("val", 32)):
        rte, copa = [], []
        for i in range(n):
            s, v = r.choice(subj), r.choice(verbs)
            rte.append({"premise": f"{s} {v} yesterday.", "hypothesis": f"{'Yes' if i % 2 else 'No'}, {s.lower()} {v}.",
                        "label": "entailment" if i % 2 else "not_entailment", "idx": i})
            right, wrong = f"It was right, {s.lower()} {v}.", f"It was wrong, {s.lower()} {v}."
            label = r.randrange(2)
            copa.append({"premise": f"{s} {v}.", "choice1": [right, wrong][label], "choice2": [wrong, right][label],
                         "question": "cause", "label": label, "idx": i})
        _write(root, "RTE", split, rte)
        _write(root, "COPA", split, copa)
    return root


def _run(runs, arch, task, data, out, **kw):
    ft = {**FT, **kw.pop("ft", {})}
    return finetune_task(runs / f"{arch}-t", task, ft, data, out, use_hub=False, **kw)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_every_kind_learns_synthetic_rte_and_copa(runs, tmp_path, arch):
    data = _synthetic(tmp_path / "sg")
    rte = _run(runs, arch, "RTE", data, tmp_path / "out")
    assert rte["status"] == "ok" and rte["score_majority"] == 50.0
    assert rte["score"] >= 80.0, rte["selection"]["history"]
    on_disk = json.loads((tmp_path / "out" / f"{arch}-t" / "RTE" / "metrics.json").read_text())
    assert on_disk["score"] == rte["score"] and on_disk["selection"]["rule"] == "best"
    axb = json.loads((tmp_path / "out" / f"{arch}-t" / "RTE" / "AX-b" / "metrics.json").read_text())
    assert axb["status"] == "unavailable" and "AX-b.jsonl" in axb["reason"]  # no diagnostics in this root
    if arch == "transformer":
        return  # COPA text-to-text is the same path as RTE; the head kinds score options
    copa = _run(runs, arch, "COPA", data, tmp_path / "out")
    assert copa["score"] >= 80.0, copa["selection"]["history"]


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_smoke_real_cb_copa_rte_with_diagnostics(runs, sample_data, tmp_path, arch):
    root, out = sample_data / "superglue", tmp_path / "out"

    def labels(task, split):
        return [json.loads(line)["label"] for line in (root / task / f"{split}.jsonl").read_text().splitlines()]

    train, val = labels("RTE", "train"), labels("RTE", "val")
    most = max(sorted(set(train)), key=train.count)  # the majority baseline: train's most frequent class on val
    majority = {"CB": 100 * (28 / 56 + (2 * 28 / (28 + 56)) / 3) / 2,  # CB val: 28 of 56 contradiction; acc, macro-F1
                "COPA": 45.0, "RTE": 100 * val.count(most) / len(val)}
    for task in ("CB", "COPA", "RTE"):
        rec = _run(runs, arch, task, root, out, ft={"steps": 4, "eval_every": 2})
        assert rec["status"] == "ok" and rec["metric_names"] == list(sg.spec(task).metrics)
        assert 0.0 <= rec["score"] <= 100.0
        assert rec["n_eval"] == len(labels(task, "val"))
        assert rec["score_majority"] == pytest.approx(majority[task])
        assert [h["step"] for h in rec["selection"]["history"]] == [2, 4]
    for diag in ("AX-b", "AX-g"):
        rec = json.loads((out / f"{arch}-t" / "RTE" / diag / "metrics.json").read_text())
        assert (rec["status"] == "ok" and rec["n_eval"] == len(labels(diag, diag))
                and rec["scored_with"]["task"] == "RTE")
        assert set(rec["metrics"]) == set(sg.spec(diag).metrics)


def test_missing_task_fails_its_job_unless_allowed(runs, tmp_path, monkeypatch):
    """A task that cannot be had is an error naming the task and the key, with nothing written; only
    a task listed in finetune.allow_missing yields an "unavailable" record."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from archscale.eval.finetune import TaskUnavailable

    root = tmp_path / "superglue"  # BoolQ as distributed here: val only, no train split
    (root / "BoolQ").mkdir(parents=True)
    (root / "BoolQ" / "val.jsonl").write_text((FIXTURES / "BoolQ" / "val.jsonl").read_text())
    with pytest.raises(TaskUnavailable, match=r"BoolQ is unavailable: .*BoolQ/train.jsonl.*finetune.allow_missing"):
        _run(runs, "gpt2", "BoolQ", root, tmp_path, ft={"allow_missing": ["ReCoRD"]})
    assert not (tmp_path / "gpt2-t" / "BoolQ").exists()
    boolq = _run(runs, "gpt2", "BoolQ", root, tmp_path, ft={"allow_missing": ["BoolQ"]})
    assert boolq["status"] == "unavailable" and boolq["score"] is None and "BoolQ/train.jsonl" in boolq["reason"]
    record = _run(runs, "gpt2", "ReCoRD", tmp_path / "empty", tmp_path, ft={"allow_missing": ["ReCoRD"]})
    assert record["score"] is None and str(tmp_path / "empty" / "ReCoRD") in record["reason"]
    on_disk = json.loads((tmp_path / "gpt2-t" / "ReCoRD" / "metrics.json").read_text())
    assert on_disk["status"] == "unavailable" and on_disk["reason"] == record["reason"]


@pytest.mark.parametrize("arch", ["transformer", "gpt2"])
def test_record_and_boolq_fixtures_run_end_to_end(runs, tmp_path, arch):
    small = {"steps": 2, "eval_every": 1, "batch_size": 4, "micro_batch_size": 2}
    for task in ("ReCoRD", "BoolQ"):
        rec = _run(runs, arch, task, FIXTURES, tmp_path, ft=small)
        assert rec["status"] == "ok" and 0.0 <= rec["score"] <= 100.0
    assert rec["n_train"] == 6 and rec["n_eval"] == 2


def _retrained(runs: Path, tmp_path: Path) -> Path:
    """A copy of the bert_mlm run whose model/ holds other weights than the run's seeded init (an
    init under seed 99, standing in for pretrained weights); config.json still says seed 1234."""
    import shutil

    from transformers import PreTrainedTokenizerFast

    from archscale.data.tokenizer import special_ids
    from archscale.models.registry import build_model

    run = tmp_path / "runs" / "bert_mlm-t"
    shutil.copytree(runs / "bert_mlm-t", run)
    rc = json.loads((run / "config.json").read_text())
    tok = PreTrainedTokenizerFast.from_pretrained(str(run / "model"))
    build_model({**rc, "seed": 99}, len(tok), special_ids(tok)).save_pretrained(str(run / "model"))
    return run


def test_from_scratch_is_a_seeded_fresh_init_and_the_default_loads_the_checkpoint(runs, tmp_path):
    """load_model: the default path returns exactly the checkpoint's tensors; --from-scratch returns
    tensors of the same names and shapes that are not the checkpoint's (every drawn weight
    differs) but the run's own seeded init, the same on every call."""
    from safetensors.torch import load_file

    from archscale.eval.finetune import load_model

    run = _retrained(runs, tmp_path)
    rc = json.loads((run / "config.json").read_text())
    ckpt = load_file(str(run / "model" / "model.safetensors"))
    seeded = load_file(str(runs / "bert_mlm-t" / "model" / "model.safetensors"))  # build_model under seed 1234
    pre = load_model(run, rc, from_scratch=False)[1].state_dict()
    scratch = load_model(run, rc, from_scratch=True)[1].state_dict()
    again = load_model(run, rc, from_scratch=True)[1].state_dict()
    drawn = [n for n, w in ckpt.items() if w.ndim >= 2]  # embeddings and matrices; norms/biases start constant
    assert len(drawn) >= 6 and set(ckpt) == set(seeded)
    for name, w in ckpt.items():
        assert torch.equal(pre[name], w), f"pretrained path: {name} is not the checkpoint's"
        assert scratch[name].shape == w.shape and scratch[name].dtype == w.dtype, name
        assert torch.equal(scratch[name], again[name]), f"scratch init of {name} is not deterministic"
        assert torch.equal(scratch[name], seeded[name]), f"scratch init of {name} is not the run's seeded init"
    same = [n for n in drawn if torch.equal(scratch[n], ckpt[n])]
    assert not same, f"--from-scratch kept checkpoint weights {same}"


def test_from_scratch_fine_tunes_the_fresh_init_and_runs_are_deterministic(runs, tmp_path):
    """finetune_task end to end. On the run whose checkpoint is not its seeded init,
    --from-scratch must train exactly as the default path does from a checkpoint that IS that init
    (the original run): same history, to the last digit (so fine-tuning is deterministic too); the
    default path on the same run starts from its checkpoint and so trains differently."""
    small = {"steps": 6, "eval_every": 3}
    root = _synthetic(tmp_path / "sg")
    run = _retrained(runs, tmp_path)
    pretrained = finetune_task(run, "RTE", {**FT, **small}, root, tmp_path / "p", use_hub=False)
    scratch = finetune_task(run, "RTE", {**FT, **small}, root, tmp_path / "s", use_hub=False, from_scratch=True)
    seeded = _run(runs, "bert_mlm", "RTE", root, tmp_path / "i", ft=small)  # checkpoint == seed-1234 init
    assert scratch["from_scratch"] and not pretrained["from_scratch"]
    assert scratch["selection"]["history"] == seeded["selection"]["history"]
    losses = [[h["train_loss"] for h in r["selection"]["history"]] for r in (pretrained, scratch)]
    assert losses[0] != losses[1], "the default path must start from the checkpoint, not a fresh init"


def test_batch_indices_cover_each_epoch_once():
    seen = [i for step in range(5) for i in batch_indices(10, 4, step, seed=1)]
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:20]) == list(range(10))
    assert batch_indices(10, 4, 3, seed=1) == batch_indices(10, 4, 3, seed=1)


def test_truncation_cuts_the_longer_text_first():
    assert _truncate(10, 3, 20) == (10, 3)
    assert _truncate(30, 3, 20) == (17, 3)
    assert _truncate(30, 40, 20) == (10, 10)
    assert _truncate(3, 30, 20) == (3, 17)


def test_span_positions_point_at_the_marked_words(runs):
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast.from_pretrained(str(runs / "gpt2-t" / "model"))
    enc = Encoder(tok, eos=1, pad=0, max_len=64, max_target_len=8)
    wic = {"word": "farmer", "sentence1": "The old farmer walked home.", "sentence2": "A farmer read a book.",
           "start1": 8, "end1": 14, "start2": 2, "end2": 8, "label": True, "idx": 0}
    (pair,) = formats.classification("WiC", wic)
    feat = enc.feature(pair)
    for positions in feat["spans"]:
        assert tok.decode([feat["ids"][i] for i in positions]).strip() == "farmer"
    assert feat["ids"].count(1) == 2 and feat["ids"][-1] == 1  # text_a </s> text_b </s>
    batch = enc.collate([feat, enc.feature(formats.classification("WiC", {**wic, "label": False})[0])])
    assert batch["span_mask"].shape[:2] == (2, 2) and batch["labels"].tolist() == [1, 0]
    assert batch["last_index"].tolist() == [len(feat["ids"]) - 1] * 2


def test_selection_rules_are_applied_and_recorded(runs, tmp_path):
    root = _synthetic(tmp_path / "sg")
    # lr 0: every evaluation scores the same, so `best` never improves after the first one and
    # patience 1 stops at the second evaluation
    frozen = _run(runs, "gpt2", "COPA", root, tmp_path / "p",
                  ft={"steps": 8, "eval_every": 2, "patience": 1, "lr": 0.0})
    sel = frozen["selection"]
    assert sel["rule"] == "best" and sel["steps_run"] == 4 and sel["selected_step"] == 2
    assert [h["step"] for h in sel["history"]] == [2, 4]
    last = _run(runs, "gpt2", "COPA", root, tmp_path / "l", ft={"steps": 4, "selection": "last"})
    assert last["selection"]["selected_step"] == 4 and [h["step"] for h in last["selection"]["history"]] == [4]


def test_finetune_cli_exits_1_naming_task_and_key_for_missing_data(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from archscale.eval.finetune import main

    params = tmp_path / "params.yaml"
    params.write_text((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    args = ["--params", str(params), "--run", "gpt2-t", "--task", "WiC", "--runs-dir", str(runs),
            "--data", str(tmp_path / "empty"), "--out-root", str(tmp_path / "out"), "--no-hub"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "WiC is unavailable" in err and "finetune.allow_missing" in err and str(params) in err
    assert not (tmp_path / "out" / "gpt2-t" / "WiC" / "metrics.json").exists()
