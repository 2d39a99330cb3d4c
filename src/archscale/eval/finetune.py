"""finetune: one pretrained run x one SuperGLUE task, through the pretraining DeepSpeed engine.

Reads results/runs/<run>/ (config.json, model/ with its tokenizer), fine-tunes on the task's
train split (archscale.eval.heads says how each model kind is fine-tuned), evaluates on val
(test labels are hidden) and writes <out-root>/<run>/<task>/metrics.json atomically. Checkpoint
selection is recorded: `best` keeps the evaluation with the best val score (as T5 and Tay et
al. report), optionally stopping after `patience` evaluations without improvement; `last` keeps
the final step. The RTE job also scores the diagnostics AX-b and AX-g with its selected model and
writes their metrics.json inside its folder (<task>=RTE/AX-b, RTE/AX-g). A task whose data cannot
be had fails its job (exit 1, nothing written) unless `finetune.allow_missing` lists it; then it
gets an "unavailable" metrics.json (score null, reason) and the downstream average is marked
partial. A missing diagnostic (AX-b/AX-g, outside the average) is recorded "unavailable".
`--from-scratch` fine-tunes a randomly initialised model of the same architecture (the check that
pretraining transfers).
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from pathlib import Path

from archscale.data.objectives import rng_for
from archscale.eval import formats
from archscale.eval import metrics as M
from archscale.eval import superglue as sg
from archscale.io import get_logger, read_json, write_json

FT_STREAM = 7  # rng_for stream of the fine-tuning data order (0-2 are pretraining's)
SPAN_TASKS = {"WiC", "WSC"}
ENGINE_KEYS = ("batch_size", "micro_batch_size", "lr", "warmup_frac", "min_lr_ratio", "weight_decay", "betas",
               "grad_clip", "zero_stage")


class TaskUnavailable(RuntimeError):
    """A task whose data cannot be had and that the preset does not list in finetune.allow_missing:
    its job fails (nothing written) rather than leaving a silently partial downstream average."""

    def __init__(self, task: str, reason: str):
        super().__init__(f"{task} is unavailable: {reason}. Provide its data, or list it under "
                         f"finetune.allow_missing in the params file to accept a partial downstream average")
        self.task, self.reason = task, reason


def resolve_finetune(params: dict, task: str) -> dict:
    """params['finetune'] with the task's `per_task` overrides applied (diagnostics use RTE's)."""
    from archscale.config import ConfigError

    if "finetune" not in params:
        raise ConfigError("params: no 'finetune' section (fine-tuning hyperparameters)")
    ft = dict(params["finetune"])
    per_task = ft.pop("per_task", None) or {}
    ft.pop("tasks", None)
    return {**ft, **per_task.get(sg.spec(task).eval_with or task, {})}


@functools.lru_cache(maxsize=8)
def _permutation(n: int, seed: int, epoch: int) -> tuple[int, ...]:
    return tuple(rng_for(seed, FT_STREAM, epoch).permutation(n).tolist())


def batch_indices(n: int, batch: int, step: int, seed: int) -> list[int]:
    """Feature indices of global batch `step`: consecutive slices of seeded per-epoch permutations."""
    out: list[int] = []
    while len(out) < batch:
        epoch, pos = divmod(step * batch + len(out), n)
        out += _permutation(n, seed, epoch)[pos:pos + batch - len(out)]
    return out


def gold_of(unit) -> object:
    if isinstance(unit, formats.Choices):
        return unit.gold[0] if unit.gold else -1
    return unit.label


def to_task_preds(task: str, units: list, raw: list, tokenizer) -> list:
    """Model outputs -> what the metrics compare: class/option index, or ReCoRD answer text."""
    words = sg.spec(task).label_words
    preds = []
    for unit, out in zip(units, raw):
        if isinstance(unit, formats.Seq2Seq):
            text = tokenizer.decode(out, skip_special_tokens=True).strip()
            preds.append(text if task == "ReCoRD" else (words.index(text) if text in words else -1))
        elif task == "ReCoRD":
            preds.append(unit.texts[out])
        else:
            preds.append(out)
    return preds


def score_units(task: str, units: list, preds: list, pairs=None) -> tuple[dict, float]:
    golds = [u.answers for u in units] if task == "ReCoRD" else [gold_of(u) for u in units]
    groups = [u.group for u in units] if task == "MultiRC" else None
    values = M.task_metrics(task, golds, preds, groups=groups, pairs=pairs)
    return values, M.headline(task, values)


def evaluate(model, enc, task: str, units: list, feats: list, batch: int, device, max_new: int, tokenizer,
             pairs=None) -> tuple[dict, float]:
    """Official metrics and headline score of the model on one split (longest inputs batched together)."""
    import torch

    def size(f):
        return len(f.get("ids") or f.get("src") or max(f["options"], key=len)) * len(f.get("options", [0]))

    order = sorted(range(len(feats)), key=lambda i: -size(feats[i]))
    raw: list = [None] * len(feats)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, len(order), batch):
            chunk = order[i:i + batch]
            b = {k: v.to(device) for k, v in enc.collate([feats[j] for j in chunk]).items()}
            for j, out in zip(chunk, model.predict(b, max_new_tokens=max_new)):
                raw[j] = out
    model.train(was_training)
    return score_units(task, units, to_task_preds(task, units, raw, tokenizer), pairs)


def majority_baseline(task: str, train_units: list, val_units: list, pairs=None) -> float | None:
    """Headline score of always answering the most frequent training label (None for ReCoRD)."""
    if task == "ReCoRD":
        return None
    k = M.majority_class([gold_of(u) for u in train_units if gold_of(u) is not None])
    return score_units(task, val_units, [k] * len(val_units), pairs)[1]


def _write(out_root: Path, run: str, task: str, record: dict, log) -> None:
    path = out_root / run / task / "metrics.json"
    write_json(path, record)
    log.info("%s %s: score %s -> %s", run, task, record["score"], path)


def load_model(run_dir: Path, rc: dict, from_scratch: bool):
    """(kind, LM, tokenizer) of a run: its exported model, or the same architecture freshly initialised."""
    from transformers import PreTrainedTokenizerFast

    from archscale.data.tokenizer import special_ids
    from archscale.models.registry import build_model, load_pretrained, model_kind

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(run_dir / "model"))
    if from_scratch:
        lm = build_model(rc, len(tokenizer), special_ids(tokenizer))
    else:
        lm = load_pretrained(run_dir / "model", rc["objective"])
    return model_kind(rc["objective"]), lm, tokenizer


def finetune_task(run_dir: str | Path, task: str, ft: dict, data_root: str | Path, out_root: str | Path, *,
                  from_scratch: bool = False, use_hub: bool = True, log=None, name: str | None = None) -> dict:
    """Fine-tune one run on one task; returns (and writes) its metrics.json record, under
    <out_root>/<name>/<task> (`name`: default the run's id; a sweep's fine-tunes are named by the
    id without lr, `RunId.without_lr`). The record's `pretrained_run` is the run it read."""
    import torch

    from archscale.data.tokenizer import special_ids
    from archscale.eval.heads import Encoder, FineTuneModel, position_limit, train_items
    from archscale.train.engine import make_engine, optimizer_step, resolve_precision, setup_distributed

    t_start = time.perf_counter()
    log = log or get_logger("finetune")
    run_dir, out_root = Path(run_dir), Path(out_root)
    rc = read_json(run_dir / "config.json")
    run, seed = name or rc["run"], rc["seed"]
    diagnostics = list(sg.DIAGNOSTICS) if task == "RTE" else []
    base = {"run": run, "pretrained_run": rc["run"], "task": task, "split": "val", "seed": seed,
            "from_scratch": from_scratch,
            "config": {**ft, "task": task}, "code_version": rc.get("code_version", "unknown")}

    def unavailable(reason: str) -> dict:
        if task not in (ft.get("allow_missing") or []):
            raise TaskUnavailable(task, reason)
        log.warning("%s %s unavailable (allowed by finetune.allow_missing): %s", run, task, reason)
        for t in [task] + diagnostics:
            why = reason if t == task else f"the RTE model that scores {t} is unavailable: {reason}"
            _write(out_root, run, t, {**base, "task": t, "status": "unavailable", "score": None, "metrics": {},
                                      "reason": why}, log)
        return {**base, "status": "unavailable", "score": None, "reason": reason}

    try:
        sg.ensure_task(data_root, task, use_hub=use_hub)
    except sg.SuperGlueMissing as exc:
        return unavailable(str(exc))
    reason = sg.availability(data_root, task)
    if reason:
        return unavailable(reason)
    train_recs, val_recs = sg.read_split(data_root, task, "train"), sg.read_split(data_root, task, "val")
    if ft.get("max_train_examples"):
        keep = sorted(rng_for(seed, FT_STREAM, 1 << 20).permutation(len(train_recs))[:ft["max_train_examples"]])
        train_recs = [train_recs[i] for i in keep]
    val_recs = val_recs[: ft.get("max_eval_examples") or None]

    dist = setup_distributed()
    kind, lm, tokenizer = load_model(run_dir, rc, from_scratch)
    torch.manual_seed(seed)  # after loading: head init and dropout masks must not depend on how the LM was made
    special = special_ids(tokenizer)
    max_len = min(ft["max_len"], position_limit(lm.config) or ft["max_len"])
    enc = Encoder(tokenizer, special["eos"], special["pad"], max_len, ft["max_target_len"])
    spec = sg.spec(task)
    n_out = 1 if task in formats.CHOICE_TASKS else len(spec.labels)
    model = FineTuneModel(lm, kind, n_out, 2 if task in SPAN_TASKS else 0, ft["dropout"])
    train_units, val_units = formats.examples(task, train_recs, kind), formats.examples(task, val_recs, kind)
    items = train_items(train_units)  # train inputs are tokenised lazily, as batches draw them
    enc.prepare(val_units)
    val_feats = [enc.feature(u) for u in val_units]
    if not items:
        return unavailable(f"no usable training examples in {sg.split_path(data_root, task, 'train')}")

    precision = resolve_precision(ft["precision"])
    steps = int(ft["steps"])
    engine, _, _ = make_engine(model, {k: ft[k] for k in ENGINE_KEYS}, steps, dist["world_size"], precision)
    device, module = engine.device, engine.module
    base.update(kind=kind, device=dist["device_name"], precision=precision)  # diagnostics records share these
    module.train()  # from_pretrained returns eval mode: dropout would silently stay off
    micro, world = ft["micro_batch_size"], dist["world_size"]
    gas = ft["batch_size"] // (micro * world)
    rows = slice(dist["rank"] * micro * gas, (dist["rank"] + 1) * micro * gas)
    eval_batch = ft.get("eval_batch_size") or 2 * micro
    evaluate_now = functools.partial(evaluate, module, enc, task, val_units, val_feats, eval_batch, device,
                                     ft["max_target_len"], tokenizer)
    eval_every = ft["eval_every"] if ft["selection"] == "best" else steps
    history, best, best_state, bad_evals, eval_s = [], None, None, 0, 0.0
    loss_sum, loss_n = torch.zeros((), device=device), 0  # summed on the device: no sync per step
    t_train = time.perf_counter()
    for step in range(steps):
        drawn = [items[i] for i in batch_indices(len(items), ft["batch_size"], step, seed)[rows]]
        enc.prepare([train_units[u] for u, _ in drawn])
        micro_batches = (enc.collate([enc.feature(train_units[u], t) for u, t in drawn[g * micro:(g + 1) * micro]])
                         for g in range(gas))
        optimizer_step(engine, micro_batches, device, loss_sum)
        loss_n += gas
        done = step + 1
        if done % eval_every == 0 or done == steps:
            train_loss = (loss_sum / loss_n).item()
            if not math.isfinite(train_loss):
                raise FloatingPointError(f"{run} {task}: fine-tuning loss became {train_loss} before step {done}")
            loss_sum.zero_()
            loss_n = 0
            t_eval = time.perf_counter()
            values, score = evaluate_now()
            eval_s += time.perf_counter() - t_eval
            history.append({"step": done, "score": score, "train_loss": train_loss})
            log.info("%s %s step %d: val score %.2f", run, task, done, score)
            if best is None or score > best["score"] or ft["selection"] == "last":
                best, bad_evals = {"step": done, "score": score, "metrics": values}, 0
                if diagnostics:
                    best_state = {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
            else:
                bad_evals += 1
                if ft.get("patience") and bad_evals >= ft["patience"]:
                    log.info("%s %s: early stop after %d evaluations without improvement", run, task, bad_evals)
                    break
    train_s = time.perf_counter() - t_train - eval_s
    selection = {"rule": ft["selection"], "eval_every": eval_every, "patience": ft.get("patience"),
                 "selected_step": best["step"], "steps_run": done, "history": history,
                 "note": "best = highest val score among evaluations (optimistic: selected on the reported split)"
                         if ft["selection"] == "best" else "last = the final step, no selection on val"}
    record = {**base, "status": "ok", "metric_names": list(spec.metrics), "metrics": best["metrics"],
              "score": best["score"], "score_majority": majority_baseline(task, train_units, val_units),
              "steps": steps, "selection": selection, "n_train": len(train_recs), "n_train_inputs": len(items),
              "n_eval": len(val_recs), "max_len": max_len, "threads": torch.get_num_threads(), "world_size": world,
              "train_s": round(train_s, 3), "eval_s": round(eval_s, 3)}
    record["wall_s"] = round(time.perf_counter() - t_start, 3)
    if dist["rank"] == 0:
        _write(out_root, run, task, record, log)
    if diagnostics:
        module.load_state_dict(best_state)
        for diag in diagnostics:
            _diagnostic(diag, module, enc, kind, data_root, out_root, base, best, eval_batch, device, ft, tokenizer,
                        dist["rank"], log)
    return record


def _diagnostic(task, module, enc, kind, data_root, out_root, base, best, batch, device, ft, tokenizer, rank, log):
    """Score AX-b / AX-g with the selected RTE model (formatted as RTE inputs)."""
    t0 = time.perf_counter()
    head = {**base, "task": task, "split": sg.DIAGNOSTIC_SPLIT, "scored_with": {"task": "RTE", "step": best["step"]}}
    reason = sg.availability(data_root, task)
    if reason:
        record = {**head, "status": "unavailable", "score": None, "metrics": {}, "reason": reason}
    else:
        recs = sg.read_split(data_root, task, sg.DIAGNOSTIC_SPLIT)
        units = formats.examples(task, recs, kind)
        enc.prepare(units)
        feats = [enc.feature(u) for u in units]
        pairs = sg.axg_pairs(recs, str(sg.split_path(data_root, task, sg.DIAGNOSTIC_SPLIT))) if task == "AX-g" else None
        values, score = evaluate(module, enc, task, units, feats, batch, device, ft["max_target_len"], tokenizer, pairs)
        record = {**head, "status": "ok", "metric_names": list(sg.spec(task).metrics), "metrics": values,
                  "score": score, "n_eval": len(recs), "wall_s": round(time.perf_counter() - t0, 3)}
    if rank == 0:  # inside the RTE folder: one job, one output folder
        _write(out_root, base["run"], f"RTE/{task}", record, log)


def main(argv: list[str] | None = None) -> int:
    from archscale import config as cfg

    ap = argparse.ArgumentParser(prog="archscale finetune", description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--run", required=True,
                    help="run id; in an lr sweep <arch>-<size>[+s<seed>] reads the run at the selected lr")
    ap.add_argument("--task", required=True, choices=sg.TASKS, help="AX-b/AX-g are scored by the RTE job")
    ap.add_argument("--runs-dir", default="results/runs", help="folder holding <run>/config.json and model/")
    ap.add_argument("--sweeps-dir", default="results/sweeps",
                    help="folder holding <arch>-<size>.json, an lr sweep's choice (archscale select-lr)")
    ap.add_argument("--data", default=None, help="SuperGLUE root (default: params data.superglue_dir)")
    ap.add_argument("--out-root", default=None,
                    help="writes <out-root>/<run>/<task>/metrics.json (default results/finetune, "
                         "results/finetune_scratch with --from-scratch)")
    ap.add_argument("--from-scratch", action="store_true", help="random init of the same architecture")
    ap.add_argument("--no-hub", action="store_true", help="never download missing tasks from the HF hub")
    ap.add_argument("--require-data", action="store_true",
                    help="exit 1 for a missing task even if finetune.allow_missing lists it")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--log", default=None)
    args = ap.parse_args(argv)
    log = get_logger("finetune", args.log)
    params = cfg.load(args.params)
    ft = resolve_finetune(params, args.task)
    import torch

    threads = args.threads or params["train"].get("threads")
    if threads:
        torch.set_num_threads(threads)
    out_root = Path(args.out_root or ("results/finetune_scratch" if args.from_scratch else "results/finetune"))
    if args.require_data:
        ft["allow_missing"] = []
    run = args.run
    rid = cfg.parse_run(args.run)
    if rid.lr is None and cfg.sweep_of(params, rid.arch, rid.size):  # fine-tune the lr its sweep selected
        choice = Path(args.sweeps_dir) / f"{rid.base}.json"
        run = read_json(choice)["selected"].get(args.run) if choice.is_file() else None
        if run is None:
            msg = f"{choice} does not select a run for {args.run} (run `archscale select-lr` first)"
            log.error("%s", msg)
            print(f"archscale finetune: {msg}", file=sys.stderr)
            return 1
        log.info("%s: fine-tunes %s, the lr %s selected", args.run, run, choice)
    try:
        finetune_task(Path(args.runs_dir) / run, args.task, ft,
                      args.data or params["data"]["superglue_dir"], out_root,
                      from_scratch=args.from_scratch, use_hub=not args.no_hub, log=log, name=args.run)
    except TaskUnavailable as exc:
        log.error("%s: %s", args.params, exc)
        print(f"archscale finetune: {args.params}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
