"""Data path: tokenization tokens/s on the default corpus (`archscale tokenize`'s encode_split on the
prepared Gutenberg train split, default tokenizer), and the batch fetch from the memmap shards
(pretrain's global_batch) as a fraction of a training step.

    python benchmarks/data.py [--threads 2] [--baseline-src DIR] [--quick]

The workspace (prepared corpus + tokenizer of params.yaml) is built once in a scratch folder.
Tokenization runs with RAYON_NUM_THREADS=--threads; with --baseline-src (a checkout's src/) the old
encode_split runs alternately with the current one and the shards' sha256 must match (the speed-up
may not change a byte). Target: >= 1M tokens/s on 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import md_table, median, report, smoke_workspace  # noqa: E402


def load_shards_module(src: str | None):
    """archscale.data.shards of the current tree, or of `src` (loaded under another name)."""
    if src is None:
        from archscale.data import shards

        return shards
    spec = importlib.util.spec_from_file_location("baseline_shards", Path(src) / "archscale" / "data" / "shards.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tokenize_rounds(ws: Path, sides: dict, reps: int, limit_bytes: int | None) -> dict:
    import numpy as np
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(ws / "data" / "tokenizer" / "hf" / "tokenizer.json"))
    src = ws / "data" / "prepared" / "train-00000.jsonl"  # the default preset has one shard
    if limit_bytes:  # quick mode: the first documents only
        small = ws / "data" / "prepared" / "bench-head.jsonl"
        with open(src) as fh, open(small, "w") as out:
            size = 0
            for line in fh:
                out.write(line)
                size += len(line)
                if size >= limit_bytes:
                    break
        src = small
    eos = tok.token_to_id("</s>")
    res = {name: {"tok_s": [], "sha": set()} for name in sides}
    with tempfile.TemporaryDirectory(dir=ws) as tmp:
        for r in range(reps + 1):
            for name, mod in sides.items():
                out = Path(tmp) / f"{name}.bin"
                t0 = time.perf_counter()
                ret = mod.encode_split(tok, src, out, np.uint16, eos)
                dt = time.perf_counter() - t0
                # (tokens, sha256 of the bytes written) since meta.json carries each file's hash; a count before
                n, written = ret if isinstance(ret, tuple) else (ret, None)
                if r:  # round 0 is warm-up (page cache, tokenizer caches)
                    res[name]["tok_s"].append(n / dt)
                res[name]["sha"].add(sha256(out))
                if written is not None and written != sha256(out):
                    sys.exit(f"{name}: encode_split's sha256 {written} is not the file's {sha256(out)}")
                res[name]["tokens"] = n
            print(f"tokenize round {r}/{reps}", file=sys.stderr, flush=True)
    return res


def fetch_fraction(ws: Path, arch: str, size: str, steps: int) -> dict:
    """Seconds of global_batch vs of train_step per step, on the real shards."""
    import torch
    from transformers import PreTrainedTokenizerFast

    from archscale import config as cfg
    from archscale.data.objectives import raw_length_for
    from archscale.data.shards import TokenShard
    from archscale.data.tokenizer import special_ids
    from archscale.models.registry import build_model, model_kind
    from archscale.train.engine import make_engine
    from archscale.train.pretrain import global_batch, train_step

    params = cfg.load(ws / "params.yaml")
    rc = cfg.resolve_run(params, f"{arch}-{size}")
    tok = PreTrainedTokenizerFast.from_pretrained(str(ws / "data" / "tokenizer" / "hf"))
    special, kind, tr = special_ids(tok), model_kind(rc["objective"]), rc["train"]
    shard = TokenShard(ws / "data" / "shards", "train")
    raw = raw_length_for(kind, tr["seq_len"], rc["objectives"]["span"])
    engine, _, _ = make_engine(build_model(rc, len(tok), special), tr, steps + 2, 1, "fp32")
    loss_sum = torch.zeros(())
    fetch, step = [], []
    for s in range(steps + 2):
        t0 = time.perf_counter()
        gb = global_batch(shard, s, kind, rc, raw, special)
        t1 = time.perf_counter()
        train_step(engine, gb, slice(0, tr["batch_size"]), tr["batch_size"] // tr["micro_batch_size"],
                   tr["micro_batch_size"], engine.device, loss_sum)
        t2 = time.perf_counter()
        if s >= 2:
            fetch.append(t1 - t0)
            step.append(t2 - t1)
    f, st = median(fetch), median(step)
    return {"run": f"{arch}-{size}", "fetch_ms": f * 1e3, "step_ms": st * 1e3, "fraction": f / (f + st)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", type=Path, default=None, help="default-preset workspace (built once if absent)")
    ap.add_argument("--threads", type=int, default=2, help="tokenizer threads (RAYON_NUM_THREADS)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--baseline-src", default=None)
    ap.add_argument("--runs", nargs="+", default=["gpt2-nano", "transformer-nano"])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="1 MB of text, 1 rep, pico fetch, no RESULTS.md update")
    args = ap.parse_args(argv)
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "archscale" / "torch_extensions"))
    import torch

    torch.set_num_threads(1)
    if args.quick:
        args.reps, args.steps, args.runs = 1, 1, [r.replace("-nano", "-pico") for r in args.runs]
    ws = smoke_workspace(args.workspace or Path(tempfile.gettempdir()) / f"archscale-bench-{os.getuid()}" / "default",
                         preset=None, target="data/shards/meta.json")
    sides = {"current": load_shards_module(None)}
    if args.baseline_src:
        sides["baseline"] = load_shards_module(args.baseline_src)
    tok = tokenize_rounds(ws, sides, args.reps, 1 << 20 if args.quick else None)
    shas = set().union(*(r["sha"] for r in tok.values()))
    rows = [[name, r["tokens"], median(r["tok_s"]), min(r["tok_s"]), max(r["tok_s"])] for name, r in tok.items()]
    body = (f"Tokenization of data/prepared/train-00000.jsonl (default preset, Gutenberg, {rows[0][1]:,} "
            f"tokens), RAYON_NUM_THREADS={args.threads}, median of {args.reps} after one warm-up"
            f"{', alternating current and baseline' if args.baseline_src else ''}. Target >= 1,000,000 tokens/s.\n\n")
    body += md_table(["code", "tokens", "tokens/s (median)", "min", "max"], rows)
    if args.baseline_src:
        cur, base = tok["current"]["tok_s"], tok["baseline"]["tok_s"]
        body += f"\ncurrent / baseline: {median([a / b for a, b in zip(cur, base)]):.2f}x; "
    body += (f"\nshard sha256 identical across code and rounds: {'yes' if len(shas) == 1 else 'NO'} "
             f"({next(iter(shas))[:16]}...)\n")
    if len(shas) != 1:
        print("shards differ between code versions", file=sys.stderr)
    from archscale.train.engine import setup_distributed

    setup_distributed()
    fetch = []
    for run in args.runs:
        arch, size = run.rsplit("-", 1)
        f = fetch_fraction(ws, arch, size, args.steps)
        fetch.append([f["run"], f["fetch_ms"], f["step_ms"], f["fraction"]])
    body += (f"\nBatch fetch (pretrain.global_batch from the memmap shards, objective included) vs one training step "
             f"(train_step), 1 torch thread, median of {args.steps} steps:\n\n")
    body += md_table(["run", "fetch ms", "step ms", "fetch / (fetch + step)"], fetch)
    report("data", "Data path", body, args.quick)
    return 0 if len(shas) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
