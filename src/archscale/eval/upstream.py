"""evaluate_upstream: held-out loss, perplexity and negative log-perplexity of a pretrained run.

Every run is scored on the same held-out tokens (consecutive windows from the start of
val.bin, `train.eval_tokens` of them), with its objective applied under a fixed seed. The loss
is the mean cross-entropy (nats) over the objective's target tokens: all next tokens (clm), the
masked tokens (mlm), or the span-corruption targets with their sentinels (span). Losses are
therefore comparable within an objective, not across objectives.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path


from archscale.data.objectives import IGNORE, make_batch, raw_length_for, rng_for
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


def evaluate(model, shard, kind: str, *, seq_len: int, eval_tokens: int, micro_batch: int, objectives: dict,
             special: dict, seed: int, device="cpu") -> dict:
    """Mean target-token loss on the fixed held-out windows."""
    import torch

    raw_len = raw_length_for(kind, seq_len, objectives["span"])
    starts = shard.eval_starts(raw_len, eval_tokens)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    # models that sample inside forward (Reformer's LSH rotations) score the same every time, and
    # the training RNG stream is left as it was
    devices = [device] if torch.device(device).type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for i in range(0, len(starts), micro_batch):
            windows = shard.windows(starts[i:i + micro_batch], raw_len)
            batch = make_batch(windows, kind, rng_for(seed, EVAL_STREAM, i), objectives, special, shard.vocab_size)
            batch = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
            out = model(**batch)
            s, c = token_nll(out.logits, batch["labels"], kind)
            total, count = total + s, count + c
    model.train(was_training)
    loss = total / count
    return {"val_loss": loss, "val_ppl": math.exp(min(loss, 700.0)), "neg_log_ppl": -loss,
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
    model = load_pretrained(run_dir / "model", rc["objective"])
    special = special_ids(PreTrainedTokenizerFast.from_pretrained(str(run_dir / "model")))
    t0 = time.perf_counter()
    result = evaluate(model, TokenShard(args.shards, "val"), kind, seq_len=rc["train"]["seq_len"],
                      eval_tokens=rc["train"]["eval_tokens"], micro_batch=rc["train"]["micro_batch_size"],
                      objectives=rc["objectives"], special=special, seed=rc["seed"])
    result.update(run=rc["run"], objective=rc["objective"], loss_target={"clm": "next token", "mlm": "masked tokens",
                  "span": "span targets"}[rc["objective"]], wall_s=round(time.perf_counter() - t0, 3),
                  config=rc)
    write_json(args.out, result)
    log.info("%s: val_loss %.4f ppl %.2f on %d target tokens", rc["run"], result["val_loss"], result["val_ppl"],
             result["target_tokens"])
    return 0
