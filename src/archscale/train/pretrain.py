"""pretrain: one run = one architecture x one size, trained through a DeepSpeed engine.

Writes results/runs/<run>/: config.json (resolved config), curve.csv (step, tokens, flops,
train_loss, val_loss, lr, wall_s), metrics.json (docs/design.md contract), model/ (save_pretrained
export with the tokenizer), ckpt/ (resumable, checksummed). Batches are a pure function of
(seed, step), so a resumed run sees exactly the data an uninterrupted one would. A SIGTERM
(Slurm preemption) writes a checkpoint at the next step boundary and exits with status 143.
A non-finite loss stops the run with an error and no metrics.json.

A recurrent model (Transformer-XL, `models.transfo_xl.is_recurrent`) trains as Dai et al. (2019,
Sec. 3.2) do: the train split is read as train.batch_size contiguous streams (`stream_batch`), each step
takes the next seq_len tokens of every stream, and the memory each micro-batch's rows leave behind
(gradient stopped) is fed back with the next step's rows; it travels in the checkpoint, so a
resumed run still equals an uninterrupted one.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import numpy as np

from archscale.data.objectives import make_batch, mlm_examples, raw_length_for, rng_for
from archscale.io import get_logger, read_json, since_process_start, write_json
from archscale.train import checkpoint, isoflop, launch
from archscale.train.curve import LiveCurve
from archscale.train.engine import accumulation_steps, optimizer_step
from archscale.train.probe import probe_flops

TRAIN_STREAM, FLOPS_STREAM, OFFSET_STREAM = 0, 2, 4


class NonFiniteLoss(RuntimeError):
    pass


class Preempted(SystemExit):
    pass


def global_batch(shard, step: int, kind: str, rc: dict, raw_len: int, special: dict) -> dict[str, np.ndarray]:
    """The whole global batch of `step` (every rank builds it, then takes its rows). An mlm run draws
    its examples by its masking (objectives.mlm_examples: dynamic as RoBERTa, static as BERT), and
    with a sentence task NSP/SOP pairs; its loss is then MLM + NSP/SOP, the *ForPreTraining total."""
    rng = rng_for(rc["seed"], TRAIN_STREAM, step)
    if kind == "encoder":
        windows, rngs, others = mlm_examples(shard, rng, rc["train"]["batch_size"], raw_len, rc["seed"],
                                             rc["objectives"]["mlm"])
        return make_batch(windows, kind, rngs, rc["objectives"], special, shard.vocab_size, others=others)
    windows = shard.windows(shard.random_starts(rng, rc["train"]["batch_size"], raw_len), raw_len)
    return make_batch(windows, kind, rng, rc["objectives"], special, shard.vocab_size)


def stream_batch(shard, step: int, kind: str, rc: dict, raw_len: int, special: dict) -> dict[str, np.ndarray]:
    """The global batch of `step` for a recurrent model: row b is the next raw_len tokens of stream b.

    The train split is cut into train.batch_size streams starting at evenly spaced offsets (shifted together
    by one seed-drawn offset), and row b at step t reads tokens [start_b + t * raw_len, + raw_len),
    wrapping at its end, so row b at step t + 1 continues row b at step t exactly (Dai et
    al. 2019, Sec. 3.2; their data iterator cuts the corpus into batch_size streams the same way). A
    pure function of (seed, step), as `global_batch`."""
    n, rows = len(shard), rc["train"]["batch_size"]
    if n < rows * raw_len:
        raise ValueError(f"the train split has {n} tokens, fewer than train.batch_size x seq_len = {rows} x {raw_len}: "
                         "too few for one contiguous stream per batch row")
    offset = int(rng_for(rc["seed"], OFFSET_STREAM, 0).integers(0, n))
    starts = offset + np.arange(rows, dtype=np.int64) * (n // rows) + step * raw_len
    windows = shard.take((starts[:, None] + np.arange(raw_len, dtype=np.int64)) % n)
    return make_batch(windows, kind, rng_for(rc["seed"], TRAIN_STREAM, step), rc["objectives"], special,
                      shard.vocab_size)


def gather_memory(mems: list, world_size: int):
    """The memory of the whole global batch, (n_layer, batch_size, mem_len, d_model) on the CPU in
    global row order, from this rank's per-micro-batch memories (lists of per-layer tensors); None
    before the first step. Every rank must call it (an all-gather when there are several)."""
    import torch

    if any(m is None for m in mems):
        return None
    local = torch.cat([torch.stack(list(m)) for m in mems], dim=1)
    if world_size > 1:
        parts = [torch.empty_like(local) for _ in range(world_size)]
        torch.distributed.all_gather(parts, local)
        local = torch.cat(parts, dim=1)
    return local.cpu()


def train_step(engine, gb: dict[str, np.ndarray], rows: slice, gas: int, micro: int, device, loss_sum,
               mems: list | None = None):
    """One optimizer step: this rank's rows of the global batch in `gas` micro-batches through the
    DeepSpeed engine (engine.optimizer_step, which fine-tuning shares). Adds each micro-batch's loss
    to `loss_sum` in place; returns the last loss.
    The loss is the one the optimiser sees, the total of the model's heads: for BERT/ALBERT MLM +
    NSP/SOP, so curve.csv's train_loss is that total while its val_loss is MLM alone.
    For a recurrent model `mems` holds one memory per micro-batch (None before the first step): it
    goes in with that micro-batch's rows and is replaced, in place, by the memory they leave.
    (benchmarks/training.py times this very function against the HF Trainer and a bare loop.)"""
    return optimizer_step(engine, ({k: v[rows][g * micro:(g + 1) * micro] for k, v in gb.items()} for g in range(gas)),
                          device, loss_sum, mems)


def export_model(model, tokenizer, out: Path) -> None:
    """save_pretrained into a temp folder, then rename: model/ is complete or absent."""
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def pretrain(rc: dict, shards_dir: str | Path, tokenizer_dir: str | Path, out_dir: str | Path, log,
             tracking: str | None = None, max_epochs: float = 1.0, stable: Path | None = None) -> dict:
    import torch
    from transformers import PreTrainedTokenizerFast

    from archscale.data.shards import TokenShard
    from archscale.data.tokenizer import special_ids
    from archscale.eval.upstream import evaluate
    from archscale.models.flops import analytic_flops_per_token, mfu
    from archscale.models.registry import build_model, count_params, model_kind
    from archscale.models.transfo_xl import empty_memory, is_recurrent
    from archscale.train.engine import make_engine, resolve_precision, setup_distributed

    t_start = time.perf_counter()
    phases = {"imports": since_process_start()}  # seconds since process start at the end of each phase
    out_dir, ckpt_dir = Path(out_dir), Path(out_dir) / "ckpt"
    (out_dir / "metrics.json").unlink(missing_ok=True)
    dist = setup_distributed()
    rank0 = dist["rank"] == 0
    log.info("rank %d/%d: pid %d on %s, device %s (CUDA_VISIBLE_DEVICES=%s)", dist["rank"], dist["world_size"],
             os.getpid(), socket.gethostname(), dist["device"], os.environ.get("CUDA_VISIBLE_DEVICES", "unset"))
    tr = rc["train"]
    precision = resolve_precision(tr["precision"])
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(tokenizer_dir))
    special, vocab = special_ids(tokenizer), len(tokenizer)
    kind = model_kind(rc["objective"])
    model = build_model(rc, vocab, special)
    counts = count_params(model)
    train_shard, val_shard = TokenShard(shards_dir, "train"), TokenShard(shards_dir, "val")
    seq_len, batch_size, micro = tr["seq_len"], tr["batch_size"], tr["micro_batch_size"]
    raw_len = raw_length_for(kind, seq_len, rc["objectives"]["span"])
    tokens_per_step = batch_size * seq_len
    total_steps = max(math.ceil(rc["shape"]["tokens"] / tokens_per_step), 1)

    probe = make_batch(train_shard.windows(np.arange(micro) * raw_len, raw_len), kind,
                       rng_for(rc.get("eval_seed", rc["seed"]), FLOPS_STREAM, 0), rc["objectives"], special, vocab)
    probe = {k: torch.from_numpy(v) for k, v in probe.items()}
    recurrent = is_recurrent(model.config)
    if recurrent:  # steady state: every step attends to mem_len memory keys (analytic_flops counts them)
        probe["mems"] = empty_memory(model.config, micro)
    fwd_per_token = probe_flops(model, probe) / (micro * seq_len)
    n_tgt = probe["labels"].shape[1]
    analytic = analytic_flops_per_token(rc, kind, vocab, seq_len, n_tgt)
    plan = None
    if "isoflop" in rc:  # an IsoFLOP job (train/isoflop.py): its steps follow from its budgets and FLOPs
        plan = isoflop.make_plan(rc["isoflop"], tr["min_lr_ratio"], tr["warmup_frac"],
                                 3 * fwd_per_token * tokens_per_step, tokens_per_step, len(train_shard), max_epochs,
                                 Path(stable or out_dir), "isoflop.budgets")
        total_steps = plan.total_steps
    log.info("%s: %s params (%s non-embedding), %.3g FLOPs/token fwd measured, %.3g analytic, %d steps",
             rc["run"], f"{counts['params']:,}", f"{counts['non_embedding_params']:,}", fwd_per_token, analytic,
             total_steps)

    phases["model_and_flops_probe"] = since_process_start()
    engine, opt, sched = make_engine(model, tr, total_steps, dist["world_size"], precision,
                                     factor=plan.factor if plan else None)
    log.info("optimizer %s, peak lr %.4g%s, %s schedule, warm-up %.3g of %d steps", type(opt).__name__, tr["lr"],
             " (Kaplan et al. Eq. D.1)" if tr.get("lr_rule") else "", "wsd" if plan else tr.get("schedule", "cosine"),
             plan.warmup / total_steps if plan else tr["warmup_frac"], total_steps)
    if tr.get("compile", False):  # in place, after the eager FLOPs probe: engine.module stays the model, so
        engine.compile()  # checkpoint and export keys get no `_orig_mod.` prefix (torch.compile(model) adds one)
    phases["engine"] = since_process_start()
    device = engine.device
    gas = accumulation_steps(tr, dist["world_size"])
    rows = slice(dist["rank"] * micro * gas, (dist["rank"] + 1) * micro * gas)
    start_step, curve, clock, partial_loss, resumed_at = 0, [], 0.0, (0.0, 0), []
    mems = [None] * gas if recurrent else None  # one memory per micro-batch of this rank's rows
    make_global_batch = stream_batch if recurrent else global_batch
    tag, source = checkpoint.latest_good(ckpt_dir, log), ckpt_dir
    if not tag and plan and plan.start_from:  # a cool-down branch starts where the stable run saved it
        tag, source = checkpoint.latest_good(plan.start_from, log), plan.start_from
        if not tag:
            raise isoflop.IsoflopError(f"{plan.start_from}: no intact checkpoint to branch from (rerun its stable run)")
    if tag:
        _, state = engine.load_checkpoint(str(source), tag=tag)
        start_step, curve, clock = state["step"], state["curve"], state["wall_s"]
        partial_loss = state.get("loss_window", (0.0, 0))
        resumed_at = [*state.get("resumed_at", []), *([start_step] if source == ckpt_dir else [])]
        if recurrent:
            memory = state.get("memory")
            want = (model.config.n_layer, batch_size, model.config.mem_len, model.config.d_model)
            if memory is None or tuple(memory.shape) != want:
                raise ValueError(f"{ckpt_dir / tag}: the checkpoint holds no Transformer-XL memory of shape {want} "
                                 f"(found {None if memory is None else tuple(memory.shape)}); delete {ckpt_dir} "
                                 "to start over")
            local = memory[:, rows].to(device)
            mems = [list(local[:, g * micro:(g + 1) * micro]) for g in range(gas)]
        log.info("resumed from %s at step %d", source / tag, start_step)

    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("flag", True))
    eval_kw = dict(seq_len=seq_len, eval_tokens=tr["eval_tokens"], micro_batch=micro, objectives=rc["objectives"],
                   special=special, seed=rc.get("eval_seed", rc["seed"]), device=device, tokenizer=tokenizer,
                   memory_off=False)
    # The train loss of an eval window may straddle a checkpoint (SIGTERM between evals): its partial
    # sum travels in the checkpoint so a resumed curve.csv equals an uninterrupted one.
    loss_sum, loss_n = torch.tensor(partial_loss[0], dtype=torch.float32, device=device), partial_loss[1]
    live = LiveCurve(out_dir / "curve.csv", curve, tracking, log) if rank0 else None  # the checkpoint's rows
    timed_s, timed_steps = 0.0, 0
    warmup_steps = min(3, max(total_steps - start_step - 1, 0))
    seg_start = time.perf_counter()

    from tqdm import tqdm

    for step in tqdm(range(start_step, total_steps), initial=start_step, total=total_steps, desc=rc["run"],
                     disable=not rank0, mininterval=5):
        t0 = time.perf_counter()
        gb = make_global_batch(train_shard, step, kind, rc, raw_len, special)
        loss = train_step(engine, gb, rows, gas, micro, device, loss_sum, mems)
        loss_n += gas
        if device.type == "cpu" and not torch.isfinite(loss):
            raise NonFiniteLoss(f"{rc['run']}: loss became {loss.item()} at step {step}")
        if step == start_step:
            phases["first_step"] = since_process_start()
        if step - start_step >= warmup_steps:
            timed_s += time.perf_counter() - t0
            timed_steps += 1
        done = step + 1
        if done % tr["eval_every"] == 0 or done == total_steps:
            if device.type == "cuda":
                torch.cuda.synchronize()
            window = loss_sum.clone()
            torch.distributed.all_reduce(window)  # every rank's micro-batches: the global batch's mean loss
            train_loss = (window / max(loss_n * dist["world_size"], 1)).item()
            if not math.isfinite(train_loss):
                raise NonFiniteLoss(f"{rc['run']}: training loss became {train_loss} before step {done}")
            val = evaluate(engine.module, val_shard, kind, **eval_kw)
            now = clock + time.perf_counter() - seg_start
            curve.append({"step": done, "tokens": done * tokens_per_step,
                          "flops": 3 * fwd_per_token * done * tokens_per_step, "train_loss": train_loss,
                          "val_loss": val["val_loss"], "lr": sched.get_last_lr()[0], "wall_s": round(now, 3)})
            if live:
                live.append(curve[-1])
            loss_sum.zero_()
            loss_n = 0
            if not math.isfinite(val["val_loss"]):
                raise NonFiniteLoss(f"{rc['run']}: validation loss became {val['val_loss']} at step {done}")
        # where a budget's cool-down branches off (an IsoFLOP stable run), and the resumable checkpoints
        saves = [(plan.save_at[done], 1)] if plan and done in plan.save_at else []
        if done < total_steps and (done % tr["checkpoint_every"] == 0 or stop["flag"]):
            saves.append((ckpt_dir, tr["keep_checkpoints"]))
        if saves:
            state = {"step": done, "curve": curve, "wall_s": clock + time.perf_counter() - seg_start,
                     "resumed_at": resumed_at,
                     "loss_window": (loss_sum.item(), loss_n)}
            if recurrent:
                state["memory"] = gather_memory(mems, dist["world_size"])
            for folder, keep in saves:
                checkpoint.save(engine, folder, done, state, keep)
            if stop["flag"] and done < total_steps:
                log.warning("SIGTERM: checkpoint written at step %d; exiting for requeue", done)
                raise Preempted(143)

    wall = clock + time.perf_counter() - seg_start
    phases["loop_done"] = since_process_start()
    tokens = total_steps * tokens_per_step
    tok_s = timed_steps * tokens_per_step / timed_s if timed_s else None
    final = curve[-1]
    n_active = counts.get("active_non_embedding_params", counts["non_embedding_params"])  # 6ND: what a token runs
    metrics = {
        "run": rc["run"], "arch": rc["arch"], "size": rc["size"], "objective": rc["objective"], "kind": kind,
        "scan": rc.get("scan", ""),
        **counts, "flops_per_token_fwd": fwd_per_token, "flops_per_token_fwd_analytic": analytic,
        "train_flops": 3 * fwd_per_token * tokens, "c_6nd": 6 * n_active * tokens,
        "tokens": tokens, "steps": total_steps, "steps_per_s": tok_s / tokens_per_step if tok_s else None,
        "tokens_per_s": tok_s, "mfu": mfu(3 * fwd_per_token * tok_s, dist["device_name"], precision) if tok_s else None,
        "val_loss": final["val_loss"], "val_ppl": math.exp(min(final["val_loss"], 700.0)),
        "neg_log_ppl": -final["val_loss"], "train_loss": final["train_loss"], "device": dist["device_name"],
        "world_size": dist["world_size"], "precision": precision, "wall_s": round(wall, 3),
        "startup_s": round(phases["first_step"], 3) if "first_step" in phases else None,
        "seed": rc["seed"], "code_version": rc.get("code_version", "unknown"),
        "resumed_at": resumed_at,  # steps this run resumed at (time-limit cuts, preemptions, crashes)
        "n_layers": rc["shape"]["n_layers"], "d_model": rc["shape"]["d_model"],
    }
    if plan:
        metrics.update(budget=rc["isoflop"]["branch"], warmup_steps=plan.warmup,
                       branch_step=plan.branch_step.get(rc["run"].split("@")[1], None))
    if rank0:
        live.close()  # curve.csv is complete: every row was appended as it was measured
    if rank0 and plan:  # IsoFLOP runs are measured, not fine-tuned: no model export
        write_json(out_dir / ("plan.json" if rc["isoflop"]["branch"] == "stable" else "metrics.json"),
                   {**metrics, "budget_steps": plan.steps, "branch_steps": plan.branch_step})
    elif rank0:
        export_model(engine.module, tokenizer, out_dir / "model")
        metrics["export_s"] = round(time.perf_counter() - t_start - wall, 3)
        phases["exported"] = since_process_start()
        write_json(out_dir / "metrics.json", metrics)
    log.info("phases (s since process start): %s", ", ".join(f"{k} {v:.2f}" for k, v in phases.items()))
    log.info("%s done: val_loss %.4f, %.0f tokens/s, wall %.1f s", rc["run"], final["val_loss"], tok_s or 0, wall)
    return metrics


def main(argv: list[str] | None = None) -> int:
    from archscale import config as cfg
    from archscale.data.epochs import check_max_epochs

    ap = argparse.ArgumentParser(prog="archscale pretrain", description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--run", required=True, help="run id <arch>-<size>")
    ap.add_argument("--shards", default="data/shards")
    ap.add_argument("--tokenizer", default="data/tokenizer")
    ap.add_argument("--out", default=None, help="run folder (default results/runs/<run>)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--log", default=None)
    ap.add_argument("--nproc-per-node", type=int, default=1,
                    help="ranks per node: the job's GPUs (gloo processes on a CPU); >1 starts torchrun")
    ap.add_argument("--nnodes", type=int, default=1, help="nodes (one torchrun each, started by srun; Slurm only)")
    ap.add_argument("--isoflop", default=None, metavar="stable|BUDGET",
                    help="an IsoFLOP job of the run (train/isoflop.py): its stable run, or a budget's cool-down branch")
    ap.add_argument("--stable", default=None,
                    help="IsoFLOP: the stable run's folder (default results/isoflop/stable/<run>)")
    args = ap.parse_args(argv)
    t_proc = time.perf_counter()
    log = get_logger("pretrain", args.log)
    params = cfg.load(args.params)
    rc = cfg.resolve_run(params, args.run)
    out = Path(args.out or f"results/runs/{args.run}")
    try:  # before any compute: the ranks must split the global batch evenly, the run must stay within
        accumulation_steps(rc["train"], args.nproc_per_node * args.nnodes)  # data.max_epochs of the corpus
        if args.isoflop:  # its epochs are checked once its FLOPs per step are measured (isoflop.make_plan)
            rc = isoflop.resolve(params, rc, args.isoflop)
            args.stable = out if args.isoflop == isoflop.STABLE else args.stable or isoflop.stable_dir(args.run)
        else:
            log.info("%s", check_max_epochs(params, read_json(Path(args.shards) / "meta.json")["splits"]["train"]
                                            ["tokens"], f"{args.shards}/meta.json", runs=[args.run]))
    except ValueError as exc:
        log.error("%s: %s", args.params, exc)
        return 2
    if not launch.is_launched():  # once per job, before any rank could resume a stale checkpoint
        checkpoint.claim(out / "ckpt", rc, log)
    try:
        launch.relaunch("pretrain", list(sys.argv[2:] if argv is None else argv), args.nproc_per_node,
                        args.nnodes, log)
    except launch.LaunchError as exc:
        log.error("%s", exc)
        return 2
    rc["code_version"] = cfg.code_version()
    import torch

    threads = args.threads or params["train"].get("threads")
    if threads:  # the job's cores are shared by the ranks of this node
        torch.set_num_threads(max(1, threads // int(os.environ.get("LOCAL_WORLD_SIZE", 1))))
    rc["threads"] = torch.get_num_threads()
    if int(os.environ.get("RANK", "0")) == 0:
        write_json(out / "config.json", rc)
    try:
        pretrain(rc, args.shards, args.tokenizer, out, log, tracking=params.get("tracking"),
                 max_epochs=params["data"]["max_epochs"], stable=args.stable and Path(args.stable))
    except (NonFiniteLoss, isoflop.IsoflopError) as exc:
        log.error("%s", exc)
        return 1
    except Preempted:
        return 143
    log.info("process wall %.1f s", time.perf_counter() - t_proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
