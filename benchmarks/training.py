"""Training throughput: archscale's step (archscale.train.pretrain.train_step through the DeepSpeed
engine that pretrain builds) vs the Hugging Face Trainer with the same DeepSpeed config, model,
batch and sequence length, vs a bare PyTorch loop (AdamW, clipping, LR schedule; no DeepSpeed).

    python benchmarks/training.py [--archs gpt2 transformer] [--sizes nano micro] [--threads 1] [--quick]

Per (architecture, size) the three sides get identical models (same seed) and the same batches
(random tokens of the objective's shapes, vocabulary and train.* of the params file) and run in
rounds: each Trainer step (its own loop, timed from one on_step_end to the next, so its data
loading and bookkeeping count) is followed by one archscale step and one bare-loop step (their
order rotating from round to round), after warm-up rounds.
Reported: median tokens/s per side and the median of the per-round ratios.
Targets: archscale >= 1.10x the Trainer (GPU and per-job overhead; compute-bound CPU: parity) and
>= 0.95x the bare loop.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, md_table, median, ratios, report  # noqa: E402

SPECIAL = {"pad": 0, "eos": 1, "unk": 2, "mask": 3, "sentinels": list(range(4, 104)), "cls": 104, "sep": 105,
           "n_special": 106}  # as data/tokenizer.special_ids with 100 sentinels


def run_config(params: dict, arch: str, size: str) -> dict:
    from archscale import config as cfg

    return cfg.resolve_run(params, f"{arch}-{size}")


def batches(rc: dict, vocab: int, n: int) -> list[dict]:
    """n global batches of random tokens through the objective (as pretrain's global_batch)."""
    import numpy as np

    from archscale.data.objectives import make_batch, raw_length_for, rng_for
    from archscale.models.registry import model_kind

    kind = model_kind(rc["objective"])
    raw = raw_length_for(kind, rc["train"]["seq_len"], rc["objectives"]["span"])
    out = []
    for i in range(n):
        rng = rng_for(rc["seed"], 7, i)
        windows = rng.integers(SPECIAL["n_special"], vocab, (rc["train"]["batch_size"], raw)).astype(np.int64)
        out.append(make_batch(windows, kind, rng, rc["objectives"], SPECIAL, vocab))
    return out


class Bare:
    """The loop without DeepSpeed or the Trainer: what the engine must not be slower than."""

    def __init__(self, model, tr: dict, total: int):
        import torch

        from archscale.train.engine import lr_factor

        self.model, self.clip = model.train(), tr["grad_clip"]
        decay = [p for p in model.parameters() if p.ndim >= 2]
        rest = [p for p in model.parameters() if p.ndim < 2]
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": tr["weight_decay"]},
                                      {"params": rest, "weight_decay": 0.0}], lr=tr["lr"], betas=tuple(tr["betas"]),
                                     eps=1e-8)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: lr_factor(s, total, tr["warmup_frac"], tr["min_lr_ratio"]))

    def step(self, gb: dict) -> None:
        import torch

        loss = self.model(**{k: torch.from_numpy(v) for k, v in gb.items()}).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)


class Archscale:
    """pretrain's engine and step function, unchanged."""

    def __init__(self, model, tr: dict, total: int, self_allreduce: bool = False):
        import torch

        from archscale.train.engine import make_engine

        self.engine, _, _ = make_engine(model, tr, total, 1, "fp32")
        if self_allreduce:  # the engine as DeepSpeed sets it up (before archscale skipped the 1-process all-reduce)
            self.engine.enable_backward_allreduce = True
        self.gas = tr["batch_size"] // tr["micro_batch_size"]
        self.micro, self.rows = tr["micro_batch_size"], slice(0, tr["batch_size"])
        self.loss_sum = torch.zeros((), dtype=torch.float32)

    def step(self, gb: dict) -> None:
        from archscale.train.pretrain import train_step

        train_step(self.engine, gb, self.rows, self.gas, self.micro, self.engine.device, self.loss_sum)


def trainer_run(model, tr: dict, data: list[dict], steps: int, between, out_dir: str, precision: str = "fp32",
                clock=time.perf_counter, **overrides) -> list[float]:
    """Train with transformers.Trainer + DeepSpeed for `steps` steps; after each step `between()` runs
    the other sides. Returns the Trainer's per-step wall times (between() excluded). `precision` sets
    the DeepSpeed config and TrainingArguments.bf16, `clock` reads the time (a GPU caller synchronises
    in it), `overrides` replace TrainingArguments fields (optim, torch_compile, ...)."""
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from archscale.train.engine import ds_config

    rows = [{k: torch.from_numpy(v[i]) for k, v in gb.items()} for gb in data for i in range(len(gb["input_ids"]))]
    times, mark = [], {}

    class Interleave(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            now = clock()
            if "t" in mark:
                times.append(now - mark["t"])
            between()
            mark["t"] = clock()

        def on_train_begin(self, args, state, control, **kw):
            mark["t"] = clock()

    args = dict(
        output_dir=out_dir, deepspeed=ds_config(tr, 1, precision), bf16=precision == "bf16",
        per_device_train_batch_size=tr["micro_batch_size"],
        gradient_accumulation_steps=tr["batch_size"] // tr["micro_batch_size"], max_steps=steps,
        learning_rate=tr["lr"], weight_decay=tr["weight_decay"], adam_beta1=tr["betas"][0],
        adam_beta2=tr["betas"][1], adam_epsilon=1e-8, max_grad_norm=tr["grad_clip"], lr_scheduler_type="cosine",
        warmup_steps=max(int(steps * tr["warmup_frac"]), 1), optim="adamw_torch", save_strategy="no",
        report_to=[], logging_strategy="no", disable_tqdm=True, remove_unused_columns=False,
        dataloader_num_workers=0, seed=0, use_cpu=not torch.cuda.is_available())
    args = TrainingArguments(**{**args, **overrides})
    Trainer(model=model, args=args, train_dataset=rows, callbacks=[Interleave()]).train()
    return times


def bench_one(params: dict, arch: str, size: str, warmup: int, steps: int, tmp: str, before: bool) -> dict:
    from archscale.models.registry import build_model

    rc = run_config(params, arch, size)
    tr, vocab = rc["train"], params["tokenizer"]["vocab_size"]
    total = warmup + steps
    data = batches(rc, vocab, total)
    sides = {"archscale": Archscale(build_model(rc, vocab, SPECIAL), tr, total),
             "bare": Bare(build_model(rc, vocab, SPECIAL), tr, total)}
    if before:
        sides["before"] = Archscale(build_model(rc, vocab, SPECIAL), tr, total, self_allreduce=True)
    walls: dict[str, list[float]] = {k: [] for k in sides}
    count = {"i": 0}

    def between():
        i = count["i"]
        names = list(sides)
        for name in names[i % len(names):] + names[:i % len(names)]:  # rotate: no side always runs first
            side = sides[name]
            t0 = time.perf_counter()
            side.step(data[i % len(data)])
            walls[name].append(time.perf_counter() - t0)
        count["i"] += 1

    walls["trainer"] = trainer_run(build_model(rc, vocab, SPECIAL), tr, data, total, between, tmp)
    # round r = Trainer step r, then archscale and bare step r; the first `warmup` rounds are dropped
    walls = {k: v[warmup:] for k, v in walls.items()}
    tokens = tr["batch_size"] * tr["seq_len"]
    return {"arch": arch, "size": size, "tokens": tokens,
            **{f"{k}_tok_s": tokens / median(v) for k, v in walls.items()},
            "vs_trainer": ratios(walls["trainer"], walls["archscale"]),
            "vs_bare": ratios(walls["bare"], walls["archscale"]), "rounds": len(walls["archscale"]),
            "vs_before": ratios(walls["before"], walls["archscale"]) if before else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default=str(REPO / "params.yaml"))
    ap.add_argument("--archs", nargs="+", default=["gpt2", "transformer"])
    ap.add_argument("--sizes", nargs="+", default=["nano", "micro"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--before", action="store_true",
                    help="also time the engine with DeepSpeed's 1-process gradient all-reduce (the code before)")
    ap.add_argument("--quick", action="store_true", help="first arch at pico, 1 round, no RESULTS.md update")
    args = ap.parse_args(argv)
    if args.quick:
        args.archs, args.sizes, args.warmup, args.steps = args.archs[:1], ["pico"], 1, 1
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # accelerate would set 2 when it is unset
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "archscale" / "torch_extensions"))
    import torch

    from archscale.models.registry import register_native
    from archscale.train.engine import setup_distributed

    torch.set_num_threads(args.threads)
    setup_distributed()
    register_native()
    params = yaml.safe_load(Path(args.params).read_text())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.archs:
            for size in args.sizes:
                r = bench_one(params, arch, size, args.warmup, args.steps, tmp, args.before)
                print(f"{arch}-{size}: {r}", file=sys.stderr, flush=True)
                rows.append([r["arch"], r["size"], r["tokens"], r["archscale_tok_s"], r["trainer_tok_s"],
                             r["bare_tok_s"], r["vs_trainer"], r["vs_bare"], r["rounds"]]
                            + ([r["vs_before"]] if args.before else []))
    tr = params["train"]
    body = (f"Vocabulary {params['tokenizer']['vocab_size']}, batch {tr['batch_size']} x seq {tr['seq_len']} "
            f"(micro {tr['micro_batch_size']}), fp32 AdamW, torch threads {args.threads}, {args.warmup} warm-up + "
            f"{args.steps} timed rounds (Trainer step, then archscale step, then bare step).\n"
            "Targets: vs Trainer >= 1.10 (GPU / per-job; compute-bound CPU: parity), vs bare >= 0.95.\n\n")
    body += md_table(["arch", "size", "tokens/step", "archscale tok/s", "HF Trainer tok/s", "bare loop tok/s",
                      "archscale / Trainer (median ratio)", "archscale / bare (median ratio)", "rounds"]
                     + (["archscale / before (median ratio)"] if args.before else []), rows)
    report("training", "Training throughput (CPU)", body, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
