"""GPU training throughput: bf16 training of gpt2 and transformer at `base` size, seq 1024, SDPA
attention; tokens/s and MFU (3 x forward FLOPs/token x tokens/s over the GPU's bf16 dense peak,
archscale.models.flops.PEAK_BF16) for archscale's step (pretrain.train_step through the DeepSpeed
engine, precision bf16) vs a bare PyTorch loop (bf16 autocast, fused AdamW, no DeepSpeed).

    python benchmarks/gpu.py [--archs gpt2 transformer] [--size base] [--seq 1024] [--micro 8] [--quick]

Without CUDA it says so and records an empty row (never an estimate). Sides alternate step by
step after warm-up; the median per-step ratio is reported beside the medians.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, md_table, median, ratios, report  # noqa: E402

HEADER = ["arch", "size", "GPU", "tokens/step", "archscale tok/s", "bare tok/s", "archscale / bare (median ratio)",
          "archscale MFU", "bare MFU"]


def bench_one(params: dict, arch: str, size: str, seq: int, micro: int, warmup: int, steps: int) -> list:
    import torch

    from archscale import config as cfg
    from archscale.models.flops import analytic_flops_per_token, mfu
    from archscale.models.registry import build_model, model_kind
    from archscale.train.engine import make_engine
    from archscale.train.pretrain import train_step

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from training import SPECIAL, Bare, batches

    params = {**params, "train": {**params["train"], "seq_len": seq, "batch_size": micro, "micro_batch_size": micro,
                                  "precision": "bf16", "dropout": 0.0}}
    rc = cfg.resolve_run(params, f"{arch}-{size}")
    tr, vocab, kind = rc["train"], params["tokenizer"]["vocab_size"], model_kind(rc["objective"])
    total = warmup + steps
    data = batches(rc, vocab, total)
    dev = torch.device("cuda")
    engine, _, _ = make_engine(build_model(rc, vocab, SPECIAL), tr, total, 1, "bf16")
    bare = Bare(build_model(rc, vocab, SPECIAL).to(dev), tr, total)
    bare.opt = torch.optim.AdamW(bare.model.parameters(), lr=tr["lr"], betas=tuple(tr["betas"]), fused=True)
    loss_sum = torch.zeros((), device=dev)
    walls = {"archscale": [], "bare": []}
    for i in range(total):
        gb = data[i]
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        train_step(engine, gb, slice(0, micro), 1, micro, dev, loss_sum)
        torch.cuda.synchronize()
        t1 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = bare.model(**{k: torch.from_numpy(v).to(dev) for k, v in gb.items()}).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(bare.model.parameters(), bare.clip)
        bare.opt.step()
        bare.opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        if i >= warmup:
            walls["archscale"].append(t1 - t0)
            walls["bare"].append(t2 - t1)
    tokens = micro * seq
    n_tgt = data[0]["labels"].shape[1]
    fwd = analytic_flops_per_token(rc, kind, vocab, seq, n_tgt)
    name = torch.cuda.get_device_name(0)
    tok = {k: tokens / median(v) for k, v in walls.items()}
    m = {k: mfu(3 * fwd * v, name, "bf16") for k, v in tok.items()}
    return [arch, size, name, tokens, tok["archscale"], tok["bare"], ratios(walls["bare"], walls["archscale"]),
            m["archscale"] if m["archscale"] is not None else "peak unknown",
            m["bare"] if m["bare"] is not None else "peak unknown"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default=str(REPO / "params.yaml"))
    ap.add_argument("--archs", nargs="+", default=["gpt2", "transformer"])
    ap.add_argument("--size", default="base")
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--micro", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="tiny size, 2 steps, no RESULTS.md update")
    args = ap.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA device here; nothing measured (GPU numbers are never estimated).",
              file=sys.stderr)
        if not args.quick:
            body = (f"no GPU lent in this task ({dt.date.today().isoformat()}); row empty.\n\n"
                    + md_table(HEADER, [[a, args.size] + [""] * (len(HEADER) - 2) for a in args.archs]))
            report("gpu", "GPU training throughput (bf16, seq 1024, SDPA)", body, quick=False)
        return 0
    if args.quick:
        args.size, args.seq, args.warmup, args.steps = "tiny", 128, 1, 2
    from archscale.train.engine import setup_distributed

    setup_distributed()
    params = yaml.safe_load(Path(args.params).read_text())
    rows = [bench_one(params, a, args.size, args.seq, args.micro, args.warmup, args.steps) for a in args.archs]
    body = (f"bf16, micro batch {args.micro} x seq {args.seq}, vocabulary {params['tokenizer']['vocab_size']}, "
            f"{args.warmup} warm-up + {args.steps} timed steps alternating; MFU = 3 x analytic forward FLOPs/token x "
            "tokens/s / bf16 dense peak.\n\n" + md_table(HEADER, rows))
    report("gpu", "GPU training throughput (bf16, seq 1024, SDPA)", body, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
