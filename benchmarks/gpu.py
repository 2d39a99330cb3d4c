"""GPU training throughput: bf16 training of gpt2 and transformer at `base` size, seq 512, SDPA
attention, torch.compile off and on; tokens/s and MFU (3 x analytic forward FLOPs/token x tokens/s
over the GPU's bf16 dense peak, archscale.models.flops.PEAK_BF16) for three sides on the same model
and batches: archscale's step (pretrain.train_step through the DeepSpeed engine, bf16; compiled as
pretrain does with train.compile: engine.compile()), the Hugging Face Trainer (the same DeepSpeed
config, bf16=True, fused AdamW, same lr and micro batch, no eval/saving/logging; torch_compile=True)
and a bare PyTorch loop (bf16 autocast, fused AdamW, no DeepSpeed; model.compile()).
Targets (the issue): archscale MFU >= 0.45 at base, archscale / Trainer >= 1.10.

On the device, once (about 6-8 minutes; nothing to edit there):

    python benchmarks/gpu.py

(defaults: --archs gpt2 transformer --size base --seq 512 --micro 32 --compile both --budget-s 420;
micro 32 x seq 512 is presets/paper.yaml's micro batch). Reading the output: a Markdown table
whose header prints first and whose rows print (flushed) as each is measured, compile-off rows first,
so a run cut short still shows what it got; each row is followed by its wall time. tok/s are medians
over the timed rounds; "X / Y (median ratio)" is the median of per-round ratios, > 1 when archscale
is faster; MFU is a fraction (0.45 = 45%). A row not started because the time since start plus the
last row's time with the same compile setting (else the last compile-off row's) would pass --budget-s
reads "skipped (budget)"; a side that raised reads "failed: ..." (a failed Trainer, e.g. without
the `bench` extra's accelerate, leaves the other two sides measured). At the end the whole table
prints again and replaces the gpu section of benchmarks/RESULTS.md (unless no row was measured); the
exit status is 1 when no row was measured.
Timing: per round one Trainer step (its own loop, timed from one on_step_end to the next
with CUDA synchronised), then one archscale and one bare step (order rotating), after warm-up rounds
that include the compilation.

Without CUDA it says so and measures and records nothing (GPU numbers are never estimated), except
--quick: tiny size, seq 128, micro 8, 1 warm-up + 2 timed rounds, compile off unless --compile is
given, RESULTS.md untouched; on CPU all three sides (the Trainer too) run in fp32 as a smoke check
of the code paths, MFU n/a. `python benchmarks/run_all.py --quick` (CI) runs it so.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
import traceback
from pathlib import Path

START = time.monotonic()  # --budget-s counts from here (imports and setup included)

import yaml  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, md_table, median, ratios, report  # noqa: E402

HEADER = ["arch", "size", "compile", "micro x seq", "archscale tok/s", "HF Trainer tok/s", "bare tok/s",
          "archscale / Trainer (median ratio)", "archscale / bare (median ratio)", "archscale MFU", "Trainer MFU",
          "bare MFU"]
SIDES = ["archscale", "trainer", "bare"]


class SideError(Exception):
    """archscale's or the bare loop's step raised (inside the Trainer's callback): the row fails."""


def md_row(row: list) -> str:
    return md_table(HEADER, [row]).splitlines()[-1]


def blank_row(arch: str, size: str, compiled: bool, note: str) -> list:
    return [arch, size, "on" if compiled else "off", note] + [""] * (len(HEADER) - 4)


def clock_for(cuda: bool):
    """time.perf_counter, after waiting for the GPU's queued work when there is a GPU."""
    import torch

    def synced() -> float:
        torch.cuda.synchronize()
        return time.perf_counter()

    return synced if cuda else time.perf_counter


def bare_side(model, tr: dict, total: int, dev, cuda: bool, compiled: bool):
    """training.Bare on the device, with fused AdamW on GPU (as make_engine); returns step(gb)."""
    import torch
    from training import Bare

    bare = Bare(model.to(dev), tr, total)
    if cuda:
        bare.opt = torch.optim.AdamW(bare.model.parameters(), lr=tr["lr"], betas=tuple(tr["betas"]),
                                     weight_decay=tr["weight_decay"], fused=True)
    if compiled:
        bare.model.compile()  # in place, as engine.compile(): the module keeps its name and state

    def step(gb: dict) -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            loss = bare.model(**{k: torch.from_numpy(v).to(dev) for k, v in gb.items()}).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(bare.model.parameters(), bare.clip)
        bare.opt.step()
        bare.opt.zero_grad(set_to_none=True)

    return step


def archscale_side(model, tr: dict, total: int, dev, precision: str, compiled: bool):
    """make_engine + train_step exactly as pretrain runs them (engine.compile() for train.compile)."""
    import torch

    from archscale.train.engine import make_engine
    from archscale.train.pretrain import train_step

    engine, _, _ = make_engine(model, tr, total, 1, precision)
    if compiled:
        engine.compile()
    micro, loss_sum = tr["micro_batch_size"], torch.zeros((), dtype=torch.float32, device=dev)
    return lambda gb: train_step(engine, gb, slice(0, micro), 1, micro, dev, loss_sum)


def measure(params: dict, arch: str, args, compiled: bool, cuda: bool) -> tuple:
    """Timed per-step walls of the three sides: (rc, walls, the Trainer's error or None, label length)."""
    import torch
    from training import SPECIAL, batches, trainer_run

    from archscale import config as cfg
    from archscale.models.registry import build_model

    # CPU (--quick only): fp32 on every side, the Trainer included; DeepSpeed's bf16 is a GPU path.
    precision, dev = ("bf16", torch.device("cuda")) if cuda else ("fp32", torch.device("cpu"))
    train = {**params["train"], "seq_len": args.seq, "batch_size": args.micro, "micro_batch_size": args.micro,
             "precision": precision, "dropout": 0.0, "compile": compiled}
    rc = cfg.resolve_run({**params, "train": train}, f"{arch}-{args.size}")
    tr, vocab, total = rc["train"], params["tokenizer"]["vocab_size"], args.warmup + args.steps
    data = batches(rc, vocab, total)
    steps = {"archscale": archscale_side(build_model(rc, vocab, SPECIAL), tr, total, dev, precision, compiled),
             "bare": bare_side(build_model(rc, vocab, SPECIAL), tr, total, dev, cuda, compiled)}
    walls: dict[str, list[float]] = {k: [] for k in SIDES}
    clock, done = clock_for(cuda), {"rounds": 0}

    def between() -> None:  # one archscale and one bare step after each Trainer step, order rotating
        i = done["rounds"]
        names = ["archscale", "bare"] if i % 2 == 0 else ["bare", "archscale"]
        for name in names:
            try:
                t0 = clock()
                steps[name](data[i % total])
                walls[name].append(clock() - t0)
            except Exception as e:
                raise SideError(f"{name}: {type(e).__name__}: {e}") from e
        done["rounds"] += 1

    error = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            walls["trainer"] = trainer_run(build_model(rc, vocab, SPECIAL), tr, data, total, between, tmp, precision,
                                           clock, optim="adamw_torch_fused" if cuda else "adamw_torch",
                                           torch_compile=compiled, logging_nan_inf_filter=False)
        except SideError:
            raise
        except Exception as e:  # the Trainer alone failed: finish the other two sides without it
            traceback.print_exc()
            error, walls["trainer"] = f"failed: {type(e).__name__}: {e}"[:160], []
            while done["rounds"] < total:
                between()
    return rc, {k: v[args.warmup:] for k, v in walls.items()}, error, data[0]["labels"].shape[1]


def bench_row(params: dict, arch: str, args, compiled: bool, cuda: bool) -> list:
    import torch

    from archscale.models.flops import analytic_flops_per_token, mfu
    from archscale.models.registry import model_kind

    rc, walls, error, n_tgt = measure(params, arch, args, compiled, cuda)
    fwd = analytic_flops_per_token(rc, model_kind(rc["objective"]), params["tokenizer"]["vocab_size"], args.seq,
                                   n_tgt)
    name, tokens = torch.cuda.get_device_name(0) if cuda else "cpu", args.micro * args.seq
    tok = {k: tokens / median(v) if v else None for k, v in walls.items()}
    m = {k: v and mfu(3 * fwd * v, name, "bf16" if cuda else "fp32") for k, v in tok.items()}
    show = {k: "n/a" if v is None else v for k, v in m.items()}
    return [arch, args.size, "on" if compiled else "off", f"{args.micro} x {args.seq}", tok["archscale"],
            error or tok["trainer"], tok["bare"], "" if error else ratios(walls["trainer"], walls["archscale"]),
            ratios(walls["bare"], walls["archscale"]), show["archscale"], show["trainer"], show["bare"]]


def free(cuda: bool) -> None:
    """Drop the last row's models, engines and compiled graphs before the next row."""
    import torch

    gc.collect()
    torch._dynamo.reset()
    if cuda:
        torch.cuda.empty_cache()


def run_rows(params: dict, args, cuda: bool) -> list[list]:
    """Compile-off rows first (cheap), then compile-on; each printed as soon as it is measured. A row
    starts only if the time since START plus the last same-compile row's time (else the last compile-off
    row's) stays within --budget-s."""
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    print(f"budget {args.budget_s:.0f} s; rows print as measured\n" + md_table(HEADER, []), end="", flush=True)
    rows, last = [], {}
    for compiled in modes:
        for arch in args.archs:
            spent, guess = time.monotonic() - START, last.get(compiled, last.get(False, 0.0))
            if spent + guess > args.budget_s:
                print(f"skipped {arch} compile {'on' if compiled else 'off'}: {spent:.0f} s spent + ~{guess:.0f} s "
                      f"for this row > --budget-s {args.budget_s:.0f}", flush=True)
                rows.append(blank_row(arch, args.size, compiled, "skipped (budget)"))
                continue
            t0 = time.monotonic()
            try:
                rows.append(bench_row(params, arch, args, compiled, cuda))
            except Exception as e:
                traceback.print_exc()
                rows.append(blank_row(arch, args.size, compiled, f"failed: {type(e).__name__}: {e}"[:160]))
            free(cuda)
            last[compiled] = time.monotonic() - t0
            print(f"{md_row(rows[-1])} ({last[compiled]:.0f} s)", flush=True)
    print(f"done: {time.monotonic() - START:.0f} s since start", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default=str(REPO / "params.yaml"))
    ap.add_argument("--archs", nargs="+", default=["gpt2", "transformer"])
    ap.add_argument("--size", default="base")
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--micro", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=5, help="warm-up rounds (the first one compiles)")
    ap.add_argument("--steps", type=int, default=20, help="timed rounds")
    ap.add_argument("--compile", choices=["off", "on", "both"], default=None,
                    help="torch.compile on every side: off, on, or both as separate rows (default both; --quick: off)")
    ap.add_argument("--budget-s", type=float, default=420.0, help="start no row past this many seconds")
    ap.add_argument("--quick", action="store_true", help="tiny size, 2 steps, CPU allowed, no RESULTS.md update")
    args = ap.parse_args(argv)
    args.compile = args.compile or ("off" if args.quick else "both")
    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.quick:
        print("benchmarks/gpu.py: no CUDA device here; nothing measured or recorded (GPU numbers are never "
              "estimated). --quick runs a CPU smoke check.", file=sys.stderr)
        return 0
    if args.quick:
        args.size, args.seq, args.micro, args.warmup, args.steps = "tiny", 128, 8, 1, 2
    from archscale.train.engine import setup_distributed

    setup_distributed()
    params = yaml.safe_load(Path(args.params).read_text())
    rows = run_rows(params, args, cuda)
    device = torch.cuda.get_device_name(0) if cuda else "CPU (fp32 smoke check, no GPU)"
    body = (f"{device}; {'bf16' if cuda else 'fp32'}, micro batch {args.micro} x seq {args.seq}, vocabulary "
            f"{params['tokenizer']['vocab_size']}, {args.warmup} warm-up + {args.steps} timed rounds (Trainer step, "
            "then archscale and bare steps, order rotating); MFU = 3 x analytic forward FLOPs/token x tokens/s / "
            "bf16 dense peak. Targets: archscale MFU >= 0.45 at base, archscale / Trainer >= 1.10.\n\n"
            + md_table(HEADER, rows))
    measured = any(isinstance(r[4], float) for r in rows)
    if not measured:
        print("benchmarks/gpu.py: no row measured; RESULTS.md left as it was", file=sys.stderr)
    report("gpu", f"GPU training throughput ({'bf16' if cuda else 'fp32 on CPU'}, seq {args.seq}, SDPA, "
           f"torch.compile {args.compile})", body, args.quick or not measured)
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main())
