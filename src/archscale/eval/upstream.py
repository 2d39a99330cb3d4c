"""evaluate_upstream: held-out loss, perplexity and negative log-perplexity of a pretrained run.

Every run is scored on the same held-out tokens (consecutive windows from the start of
val.bin, `train.eval_tokens` of them), with its objective applied under a fixed seed. The loss
is the mean cross-entropy (nats) over the objective's target tokens: all next tokens (clm), the
masked tokens (mlm), or the span-corruption targets with their sentinels (span). Losses are
therefore comparable within an objective, not across objectives.

A recurrent model (Transformer-XL) reads the same windows as micro_batch contiguous streams (row r
scores a consecutive run of windows) with its memory carried from each window to the next, as Dai
et al. (2019, Sec. 3.2) evaluate; `val_loss_no_memory` is its loss with the memory reset at every
window. Causal models also get bits per byte (`val_bpb`: NLL / ln 2 over the UTF-8 bytes of the
target tokens' text), which does not depend on the tokenizer, so causal runs with different
tokenizers compare (the Pile's measure, Gao et al. 2020).

A sentence-pair model (BERT with NSP, ALBERT with SOP) reads each window in its own format, as one
IsNext / in-order pair [CLS] A [SEP] B [SEP] of the window's first seq_len - 3 tokens: its val_loss
is still the MLM loss over masked tokens of the same held-out text. Its NSP/SOP accuracy on those
windows (half of them made negative) is `sentence_acc` in upstream.json, apart from the loss.
"""

from __future__ import annotations

import argparse
import functools
import math
import time
from pathlib import Path

import numpy as np

from archscale.data.objectives import (
    IGNORE,
    SENTENCE_LABEL,
    in_order_pairs,
    make_batch,
    mlm_settings,
    raw_length_for,
    rng_for,
)
from archscale.io import get_logger, read_json, write_json

EVAL_STREAM = 1


def token_nll(logits, labels, kind: str):
    """(sum of NLL, number of target tokens) for one batch."""
    import torch.nn.functional as F

    if kind == "decoder":
        logits, labels = logits[:, :-1], labels[:, 1:]
    flat = labels.reshape(-1)
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), flat, ignore_index=IGNORE, reduction="sum")
    return float(nll), int((flat != IGNORE).sum())


@functools.lru_cache(maxsize=None)
def forward_params(model_class) -> frozenset:
    """The argument names of a model class's forward (read once per class, not per batch)."""
    import inspect

    return frozenset(inspect.signature(model_class.forward).parameters)


def model_inputs(model, batch: dict) -> dict:
    """The batch keys `model` takes: input_ids and labels, and token_type_ids / a sentence label only
    where its forward names them (a BERT export loaded as BertForMaskedLM has no NSP head)."""
    named = forward_params(type(model))
    return {k: v for k, v in batch.items() if k in ("input_ids", "labels") or k in named}


def lm_logits(out):
    """Token logits of a forward's output: `logits`, or `prediction_logits` of *ForPreTraining."""
    logits = getattr(out, "logits", None)
    return out.prediction_logits if logits is None else logits


def sentence_accuracy(model, shard, *, seq_len: int, eval_tokens: int, micro_batch: int, objectives: dict,
                      special: dict, seed: int, device="cpu") -> float | None:
    """NSP/SOP accuracy on `evaluate`'s held-out windows, labelled half and half so chance is 0.5:
    even windows IsNext / in order, odd ones NotNext (B from the window half the set away) or
    swapped; the cuts and masks are evaluate's. None without a sentence task or head."""
    import torch

    task = mlm_settings(objectives["mlm"])["sentence_task"]
    if task == "none" or SENTENCE_LABEL[task] not in forward_params(type(model)):
        return None
    raw_len = raw_length_for("encoder", seq_len, objectives["span"])
    starts = shard.eval_starts(raw_len, eval_tokens)
    n, right = len(starts), 0
    if n < 2:
        return None
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, n, micro_batch):
            index = np.arange(i, min(i + micro_batch, n))
            batch = make_batch(shard.windows(starts[index], raw_len), "encoder", rng_for(seed, EVAL_STREAM, i),
                               objectives, special, shard.vocab_size,
                               others=shard.windows(starts[(index + n // 2) % n], raw_len), pair_labels=index % 2)
            batch = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
            out = model(**model_inputs(model, batch))
            logits = out.seq_relationship_logits if task == "nsp" else out.sop_logits
            right += int((logits.argmax(-1) == batch[SENTENCE_LABEL[task]]).sum())
    model.train(was_training)
    return right / n


def token_bytes(tokenizer, ids: np.ndarray) -> np.ndarray:
    """UTF-8 bytes each token id adds to the decoded text (special tokens: 0). Byte-level BPE: one
    byte per character of the token (each character of its alphabet stands for one byte, so a token
    holding part of a multi-byte character counts its share). Any other decoder: the bytes it adds
    after a plain character ("x"), which keeps the word-boundary space a Metaspace token carries."""
    backend, special = tokenizer.backend_tokenizer, set(tokenizer.all_special_ids)
    decoder = backend.decoder
    byte_level = type(decoder).__name__ == "ByteLevel"
    out = np.zeros(len(ids), dtype=np.int64)
    for i, (tid, tok) in enumerate(zip(ids.tolist(), tokenizer.convert_ids_to_tokens(ids.tolist()))):
        if tid in special or tok is None:
            continue
        if byte_level:
            out[i] = len(tok)
        elif decoder is None:
            out[i] = len(tok.encode("utf-8"))
        else:
            out[i] = len(decoder.decode(["x", tok]).encode("utf-8")) - 1
    return out


def target_bytes(tokenizer, targets: np.ndarray) -> int:
    """UTF-8 bytes of the text of `targets` (token ids, any shape): each distinct id decoded once."""
    ids, counts = np.unique(np.asarray(targets, dtype=np.int64), return_counts=True)
    return int((token_bytes(tokenizer, ids) * counts).sum())


def _score(model, shard, kind, starts, raw_len, micro_batch, objectives, special, seed, device, carry):
    """(sum of NLL, target tokens) over the windows at `starts`. carry=False: batches of micro_batch
    consecutive windows, each window alone. carry=True: the windows split into micro_batch
    contiguous runs, one per row, the model's memory carried from a row's window to its next."""
    import torch

    total, count = 0.0, 0
    if not carry:
        for i in range(0, len(starts), micro_batch):
            windows = shard.windows(starts[i:i + micro_batch], raw_len)
            pairs = in_order_pairs(objectives, len(windows)) if kind == "encoder" else {}  # MLM on running text
            batch = make_batch(windows, kind, rng_for(seed, EVAL_STREAM, i), objectives, special, shard.vocab_size,
                               **pairs)
            batch = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
            s, c = token_nll(lm_logits(model(**model_inputs(model, batch))), batch["labels"], kind)
            total, count = total + s, count + c
        return total, count
    runs = np.array_split(np.arange(len(starts)), min(micro_batch, len(starts)))  # longer runs first
    mems = None
    for j in range(len(runs[0])):
        index = [r[j] for r in runs if len(r) > j]  # the rows still running: a prefix of the rows
        windows = shard.windows(starts[index], raw_len)
        batch = make_batch(windows, kind, rng_for(seed, EVAL_STREAM, int(index[0])), objectives, special,
                           shard.vocab_size)
        batch = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
        out = model(**batch, mems=None if mems is None else [m[:len(index)] for m in mems])
        mems = out.mems
        s, c = token_nll(out.logits, batch["labels"], kind)
        total, count = total + s, count + c
    return total, count


def evaluate(model, shard, kind: str, *, seq_len: int, eval_tokens: int, micro_batch: int, objectives: dict,
             special: dict, seed: int, device="cpu", tokenizer=None, memory_off: bool = True) -> dict:
    """Mean target-token loss on the fixed held-out windows; a recurrent model carries its memory
    across them (and with memory_off also reports `val_loss_no_memory`); with a tokenizer, a
    decoder also gets `val_bpb` (None otherwise)."""
    import torch

    from archscale.models.transfo_xl import is_recurrent

    raw_len = raw_length_for(kind, seq_len, objectives["span"])
    starts = shard.eval_starts(raw_len, eval_tokens)
    recurrent = is_recurrent(getattr(model, "config", None))
    was_training = model.training
    model.eval()
    no_memory = None
    # models that sample inside forward (Reformer's LSH rotations) score the same every time, and
    # the training RNG stream is left as it was
    devices = [device] if torch.device(device).type == "cuda" else []
    args = (model, shard, kind, starts, raw_len, micro_batch, objectives, special, seed, device)
    with torch.no_grad(), torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        total, count = _score(*args, carry=recurrent)
        if recurrent and memory_off:
            torch.manual_seed(seed)
            nm_total, nm_count = _score(*args, carry=False)
            no_memory = nm_total / nm_count
    model.train(was_training)
    loss = total / count
    bpb = None
    if kind == "decoder" and tokenizer is not None:
        n_bytes = target_bytes(tokenizer, shard.windows(starts, raw_len)[:, 1:])  # clm targets: positions 1..n-1
        bpb = total / math.log(2) / n_bytes if n_bytes else None
    return {"val_loss": loss, "val_ppl": math.exp(min(loss, 700.0)), "neg_log_ppl": -loss,
            "val_loss_no_memory": no_memory, "val_bpb": bpb,
            "eval_tokens": int(len(starts) * raw_len), "target_tokens": count}


def main(argv: list[str] | None = None) -> int:
    from archscale.data.shards import TokenShard
    from archscale.data.tokenizer import special_ids

    ap = argparse.ArgumentParser(prog="archscale evaluate_upstream", description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-dir", required=True, help="results/runs/<run> (reads config.json and model/)")
    ap.add_argument("--shards", default="data/shards")
    ap.add_argument("--out", required=True, help="upstream.json to write")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--log", default=None)
    args = ap.parse_args(argv)
    log = get_logger("evaluate_upstream", args.log)
    import torch
    from transformers import PreTrainedTokenizerFast

    from archscale.models.registry import load_pretrained, model_kind

    if args.threads:
        torch.set_num_threads(args.threads)
    run_dir = Path(args.run_dir)
    rc = read_json(run_dir / "config.json")
    kind = model_kind(rc["objective"])
    # the job's GPU when it has one (a GPU node's eval would otherwise run on its CPU cores)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = load_pretrained(run_dir / "model", rc["objective"], pretraining_heads=True).to(device)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(run_dir / "model"))
    special = special_ids(tokenizer)
    t0 = time.perf_counter()
    eval_seed = rc.get("eval_seed", rc["seed"])  # the study's held-out draws, the same for every repeat
    result = evaluate(model, TokenShard(args.shards, "val"), kind, seq_len=rc["train"]["seq_len"],
                      eval_tokens=rc["train"]["eval_tokens"], micro_batch=rc["train"]["micro_batch_size"],
                      objectives=rc["objectives"], special=special, seed=eval_seed, device=device,
                      tokenizer=tokenizer)
    if kind == "encoder":  # BERT/ALBERT: the NSP/SOP head's accuracy beside the MLM loss (None without one)
        tr = rc["train"]
        result["sentence_acc"] = sentence_accuracy(
            model, TokenShard(args.shards, "val"), seq_len=tr["seq_len"], eval_tokens=tr["eval_tokens"],
            micro_batch=tr["micro_batch_size"], objectives=rc["objectives"], special=special, seed=eval_seed,
            device=device)
    result.update(run=rc["run"], objective=rc["objective"], loss_target={"clm": "next token", "mlm": "masked tokens",
                  "span": "span targets"}[rc["objective"]], wall_s=round(time.perf_counter() - t0, 3),
                  config=rc)
    write_json(args.out, result)
    log.info("%s: val_loss %.4f ppl %.2f on %d target tokens (bits/byte %s, without memory %s)", rc["run"],
             result["val_loss"], result["val_ppl"], result["target_tokens"], result["val_bpb"],
             result["val_loss_no_memory"])
    return 0
