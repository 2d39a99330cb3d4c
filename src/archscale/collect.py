"""collect: every run's metrics, upstream eval and fine-tuning scores -> results/summary.csv.

summary.csv holds only what the same inputs reproduce to the byte (sizes, FLOPs, losses, scores),
so it can be compared across machines; wall-clock measurements (steps/s, tokens/s, MFU, wall
time) go to results/throughput.csv beside it. Analysis reads only these files, so rows from
elsewhere (e.g. a published table) can be fed in the same way.

`val_bpb` (bits per byte of held-out text, from the upstream eval; empty for non-causal runs) is
the one upstream measure that means the same across tokenizers. `downstream_avg` averages the
tasks of finetune.tasks that have a score; `downstream_tasks` names them and `downstream_partial`
is `yes` when some task of finetune.tasks has none, so a partial average is never read as the full one.

Learning-rate sweeps and repeats (runs.py): every run, each lr and seed, is a row of
results/sweep.csv, whose `selected` column marks, per architecture and size, the lr with the lowest
val_loss averaged over its seeds (ties: the smaller lr). summary.csv keeps the selected runs only,
every seed of them: the fits, tables and figures read tuned runs, and repeats as repeated rows.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from archscale.io import atomic_path, get_logger, read_json
from archscale.runs import best_lr, budget_label, mean_by_lr, parse_run

SUMMARY_FIELDS = ["run", "arch", "size", "objective", "scan", "n_layers", "d_model", "params", "non_embedding_params",
                  "flops_per_token_fwd", "flops_per_token_fwd_analytic", "train_flops", "c_6nd", "tokens", "steps",
                  "val_loss", "val_ppl", "neg_log_ppl", "val_bpb", "upstream_target", "device", "precision",
                  "world_size", "seed", "lr", "code_version"]
THROUGHPUT_FIELDS = ["run", "device", "precision", "world_size", "steps_per_s", "tokens_per_s", "mfu", "wall_s",
                     "export_s"]
SWEEP_FIELDS = ["run", "arch", "size", "objective", "scan", "params", "lr", "seed", "val_loss", "mean_val_loss",
                "seeds", "selected"]
ISOFLOP_FIELDS = ["run", "arch", "objective", "size", "seed", "budget", "step", "tokens", "flops", "val_loss", "final",
                  "params", "non_embedding_params", "active_non_embedding_params"]
SUPERGLUE_TASKS = ["BoolQ", "CB", "COPA", "MultiRC", "ReCoRD", "RTE", "WiC", "WSC"]


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def downstream(finetune_dir: Path, run: str, tasks: list[str], prefix: str = "score_", average: bool = True) -> dict:
    """<prefix><Task> per task (empty when unavailable) and, with `average`, their SuperGLUE-style
    average (downstream_avg) over the tasks with a score, which ones (downstream_tasks, space
    separated) and whether any task of `tasks` is missing from it (downstream_partial: yes/no).

    A run's fine-tunes are under its id without lr (`RunId.without_lr`: a sweep fine-tunes only the
    lr it selects) and record the pretrained run they read: one that is not `run` stops collect,
    naming the file (the fine-tune picked another lr than this sweep.csv: a stale result)."""
    row, used = {}, []
    for task in tasks:
        path = finetune_dir / parse_run(run).without_lr / task / "metrics.json"
        rec = read_json(path) if path.is_file() else {}
        if rec.get("pretrained_run", run) != run:
            raise ValueError(f"{path}: fine-tuned {rec['pretrained_run']}, but the sweep selects {run}; "
                             "rerun this fine-tune (its inputs changed since)")
        score = rec.get("score")
        row[f"{prefix}{task}"] = score
        if score is not None:
            used.append((task, score))
    if average:
        row["downstream_avg"] = sum(s for _, s in used) / len(used) if used else None
        row["downstream_tasks"] = " ".join(t for t, _ in used)
        row["downstream_partial"] = ("yes" if len(used) < len(tasks) else "no") if used else ""
    return row


def collect(runs_dir: Path, upstream_dir: Path, finetune_dir: Path | None, runs: list[str], tasks: list[str],
            scratch_dir: Path | None = None, scratch_tasks: list[str] = ()):
    """(summary rows, throughput rows, sweep rows): every run's pretraining and upstream eval in the
    sweep rows (`select`); the selected runs, with score_<Task> from their pretrained models and
    scratch_<Task> from random inits of the same shape, in the summary; throughput for every run."""
    rows, throughput = [], []
    for run in runs:
        m = read_json(runs_dir / run / "metrics.json")
        config = runs_dir / run / "config.json"  # the peak lr the run trained with: a sweep's value, or the preset's
        m["lr"] = read_json(config)["train"]["lr"] if config.is_file() else None
        up = read_json(upstream_dir / run / "upstream.json")
        m.update(val_loss=up["val_loss"], val_ppl=up["val_ppl"], neg_log_ppl=up["neg_log_ppl"],
                 val_bpb=up.get("val_bpb"), upstream_target=up["loss_target"])
        rows.append({k: m.get(k) for k in SUMMARY_FIELDS})
        throughput.append({k: m.get(k) for k in THROUGHPUT_FIELDS})
    sweep = select(rows)
    chosen = {r["run"] for r in sweep if r["selected"] == "yes"}
    lrs = lr_counts(sweep)
    summary = []
    for row in rows:
        if row["run"] not in chosen:
            continue
        row = with_lrs(row, lrs[row["arch"], row["size"]])
        if finetune_dir is not None and tasks:
            row.update(downstream(finetune_dir, row["run"], tasks))
        if scratch_dir is not None and scratch_tasks:
            row.update(downstream(scratch_dir, row["run"], list(scratch_tasks), prefix="scratch_", average=False))
        summary.append(row)
    return summary, throughput, sweep


def select(rows: list[dict]) -> list[dict]:
    """sweep.csv's rows: every run with `mean_val_loss` over the seeds of its lr and `selected` = yes for
    the lr of its (arch, size) whose mean is lowest (the smaller lr on a tie). Outside a sweep a run's
    only lr is selected."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["arch"], r["size"]), []).append(r)
    mean = {key: mean_by_lr((r["lr"], r["val_loss"]) for r in group) for key, group in groups.items()}
    best = {key: best_lr(means) for key, means in mean.items()}
    seeds = {(key, lr): sum(r["lr"] == lr for r in group) for key, group in groups.items() for lr in mean[key]}
    return [{**{k: r.get(k) for k in SWEEP_FIELDS}, "mean_val_loss": mean[r["arch"], r["size"]][r["lr"]],
             "seeds": seeds[(r["arch"], r["size"]), r["lr"]],
             "selected": "yes" if best[r["arch"], r["size"]] == r["lr"] else "no"} for r in rows]


def lr_counts(sweep: list[dict]) -> dict[tuple[str, str], int]:
    """(arch, size) -> how many learning rates it was trained at (sweep.csv's rows, one pass)."""
    lrs: dict[tuple[str, str], set] = {}
    for r in sweep:
        lrs.setdefault((r["arch"], r["size"]), set()).add(r["lr"])
    return {key: len(values) for key, values in lrs.items()}


def with_lrs(row: dict, n: int) -> dict:
    """A summary row with `lrs` = n after `lr`."""
    out = {}
    for key, value in row.items():
        out[key] = value
        if key == "lr":
            out["lrs"] = n
    return out


def isoflop_rows(branches_dir: Path, bases: list[str], budgets: list[float]) -> list[dict]:
    """results/isoflop.csv: every eval point of every IsoFLOP branch (train/isoflop.py), the stable
    run's rows before its cool-down included; `final` = 1 on its last row, the branch's result at
    its budget. N is the active non-embedding count (a dense model's non-embedding count)."""
    out = []
    for base in bases:
        for budget in budgets:
            bdir = branches_dir / base / budget_label(budget)
            m = read_json(bdir / "metrics.json")
            with open(bdir / "curve.csv", newline="") as fh:
                curve = list(csv.DictReader(fh))
            n_active = m.get("active_non_embedding_params", m["non_embedding_params"])
            for i, point in enumerate(curve):
                out.append({"run": f"{base}@{budget_label(budget)}", "arch": m["arch"], "objective": m["objective"],
                            "size": m["size"], "seed": m["seed"], "budget": budget, "step": int(point["step"]),
                            "tokens": int(point["tokens"]), "flops": float(point["flops"]),
                            "val_loss": float(point["val_loss"]), "final": int(i == len(curve) - 1),
                            "params": m["params"], "non_embedding_params": m["non_embedding_params"],
                            "active_non_embedding_params": n_active})
    return out


def write_csv(path: Path, rows: list[dict], fields: list[str] | None = None) -> None:
    fields = fields or (list(rows[0]) if rows else [])
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(fields)
        for r in rows:
            w.writerow([_fmt(r[f]) for f in fields])


def main(argv: list[str] | None = None) -> int:
    from archscale import config as cfg

    ap = argparse.ArgumentParser(prog="archscale collect", description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--runs-dir", default="results/runs")
    ap.add_argument("--upstream-dir", default="results/upstream")
    ap.add_argument("--finetune-dir", default="results/finetune")
    ap.add_argument("--tasks", nargs="*", default=None,
                    help="SuperGLUE tasks to collect (default: params finetune.tasks)")
    ap.add_argument("--finetune-scratch-dir", default="results/finetune_scratch")
    ap.add_argument("--scratch-tasks", nargs="*", default=None,
                    help="tasks also fine-tuned from a random init (default: params finetune.scratch_tasks)")
    ap.add_argument("--out", default="results/summary.csv")
    ap.add_argument("--throughput", default="results/throughput.csv")
    ap.add_argument("--sweep", default="results/sweep.csv", help="every run, each lr and seed, with the selection")
    ap.add_argument("--isoflop", default="results/isoflop.csv", help="every eval point of every IsoFLOP branch")
    ap.add_argument("--isoflop-dir", default="results/isoflop/branches")
    ap.add_argument("--log", default=None)
    args = ap.parse_args(argv)
    log = get_logger("collect", args.log)
    params = cfg.load(args.params)
    ft = params.get("finetune", {})
    tasks = args.tasks if args.tasks is not None else ft.get("tasks", [])
    scratch = args.scratch_tasks if args.scratch_tasks is not None else ft.get("scratch_tasks", [])
    try:
        summary, throughput, sweep = collect(Path(args.runs_dir), Path(args.upstream_dir), Path(args.finetune_dir),
                                             cfg.runs(params), tasks, Path(args.finetune_scratch_dir), scratch)
    except ValueError as exc:
        log.error("%s", exc)
        print(f"archscale collect: {exc}", file=sys.stderr)
        return 1
    iso = params.get("isoflop") or {}
    isoflop = isoflop_rows(Path(args.isoflop_dir), cfg.isoflop_runs(params), iso.get("budgets", []))
    write_csv(Path(args.isoflop), isoflop, ISOFLOP_FIELDS)
    write_csv(Path(args.sweep), sweep)
    write_csv(Path(args.out), summary)
    write_csv(Path(args.throughput), throughput)
    for r in sweep:
        if r["selected"] == "yes" and r["run"] == str(cfg.parse_run(r["run"]).without_seed) and "+lr" in r["run"]:
            log.info("sweep: %s-%s best lr %s (mean val_loss %.4f over %d seed(s))", r["arch"], r["size"], r["lr"],
                     r["mean_val_loss"], r["seeds"])
    log.info("%d runs -> %s (%d selected), %s, %s", len(sweep), args.sweep, len(summary), args.out,
             args.throughput)
    return 0
