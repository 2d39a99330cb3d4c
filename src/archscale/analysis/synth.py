"""Synthetic runs drawn from a known scaling law, in the summary.csv / curve.csv contracts.

Why: every fit here is tested against ground truth (does it recover the law it was given, within
its own confidence interval?), and the figures, tables and paper can be built and checked
without training anything. ``python -m archscale.analysis.synth --out DIR`` writes
DIR/summary.csv, DIR/runs/{run}/curve.csv and DIR/runs/{run}/config.json (the run's objective and
train.warmup_frac, which the L(C) envelope reads to leave warm-up points out).

Loss follows Chinchilla's L(N, D) = E + A / N^alpha + B / D^beta along each learning curve
(N = non-embedding parameters, D = tokens seen), times log-normal noise.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from archscale.analysis.table import write_atomic

# size -> (n_layers, d_model); N = 12 L d^2 (Kaplan's non-embedding count).
SHAPES: dict[str, tuple[int, int]] = {
    "tiny": (2, 64), "small": (4, 128), "base": (6, 256), "large": (8, 384), "xl": (12, 512),
}
TASKS = ("BoolQ", "CB", "COPA", "MultiRC", "ReCoRD", "RTE", "WiC", "WSC")
VOCAB = 8192
CURVE_COLUMNS = ("step", "tokens", "flops", "train_loss", "val_loss", "lr", "wall_s")
WARMUP_STEPS = 20  # linear lr warm-up of every synthetic run (config.json: train.warmup_frac = 20 / steps)


def law(arch_index: int) -> dict[str, float]:
    """Per-architecture ground truth: exponents differ a little between architectures."""
    return {"E": 1.7 + 0.05 * arch_index, "A": 100.0, "alpha": 0.34 - 0.02 * arch_index,
            "B": 100.0, "beta": 0.28 + 0.01 * arch_index}


def loss_of(p: dict[str, float], n: float, d: np.ndarray | float) -> np.ndarray | float:
    return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / np.asarray(d) ** p["beta"]


def make_runs(
    archs: list[str], sizes: list[str], *, tokens: float = 2e7, noise: float = 0.01, seed: int = 0,
    downstream: bool = True, tiered: tuple[str, ...] = (), scans: bool = True, eval_every: int = 10,
    steps: int = 200, objectives: dict[str, str] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """(summary rows, curves by run). ``tiered`` archs get one size no better than the one below;
    ``objectives`` maps an arch to its objective column (default clm)."""
    rng = np.random.default_rng(seed)
    rows, curves = [], {}
    plan = [(a, s, "") for a in archs for s in sizes]
    if scans and archs:
        plan += [(archs[0], f"{s}_{kind}", kind) for kind in ("depth", "width") for s in sizes[:3]]
    for arch, size, scan in plan:
        ai = archs.index(arch)
        p = law(ai)
        base = size.rsplit("_", 1)[0] if scan else size
        n_layers, d_model = SHAPES[base]
        if scan == "depth":
            n_layers *= 2
        elif scan == "width":
            d_model = int(d_model * 1.5)
        n = 12 * n_layers * d_model**2
        params = n + VOCAB * d_model
        fwd = 2 * n + 2 * n_layers * 256 * d_model
        step = np.arange(1, steps + 1)
        tok = tokens * step / steps
        clean = loss_of(p, n, tok)
        if arch in tiered and sizes.index(base) == 2 and not scan:
            clean = loss_of(p, 12 * SHAPES[sizes[1]][0] * SHAPES[sizes[1]][1] ** 2, tok) + 0.02
        val = clean * np.exp(rng.normal(0.0, noise, steps))
        train = clean * np.exp(rng.normal(0.0, 2 * noise, steps))
        run = f"{arch}-{size}"
        wall = np.cumsum(np.full(steps, 1e-9 * fwd * tokens / steps))
        curves[run] = [
            {"step": int(s), "tokens": int(t), "flops": 3.0 * fwd * t, "train_loss": float(tl),
             "val_loss": float(v) if (s % eval_every == 0) else "", "lr": 1e-3 * min(1.0, s / WARMUP_STEPS),
             "wall_s": float(w)}
            for s, t, tl, v, w in zip(step, tok, train, val, wall)
        ]
        final = float(val[-1])
        row: dict[str, Any] = {
            "run": run, "arch": arch, "size": size, "objective": (objectives or {}).get(arch, "clm"), "scan": scan,
            "n_layers": n_layers, "d_model": d_model, "params": params, "non_embedding_params": n,
            "flops_per_token_fwd": fwd, "flops_per_token_fwd_analytic": fwd,
            "train_flops": 3.0 * fwd * tokens, "tokens": int(tokens), "steps": steps,
            "steps_per_s": round(1e9 / fwd * 50, 4), "tokens_per_s": round(1e9 / fwd * 50 * tokens / steps, 2),
            "mfu": "", "val_loss": final, "val_ppl": math.exp(final), "neg_log_ppl": -final,
            "device": "cpu", "precision": "fp32", "wall_s": float(wall[-1]), "seed": seed, "code_version": "synthetic",
        }
        if downstream:
            scores = [100.0 / (1.0 + math.exp(1.5 * (final - 3.2 - 0.1 * k))) * math.exp(rng.normal(0, noise))
                      for k in range(len(TASKS))]
            for task, score in zip(TASKS, scores):
                row[f"score_{task}"] = "" if task == "ReCoRD" else round(score, 2)
            row["downstream_avg"] = round(float(np.mean([s for t, s in zip(TASKS, scores) if t != "ReCoRD"])), 2)
        rows.append(row)
    return rows, curves


def to_csv(rows: list[dict[str, Any]], columns: list[str] | tuple[str, ...] | None = None) -> str:
    """CSV text with floats in repr form, so a round trip through the file loses nothing."""
    columns = list(columns or rows[0].keys())
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def warmup_frac(steps: int) -> float:
    """train.warmup_frac that engine.py's max(int(steps * frac), 1) turns into WARMUP_STEPS exactly
    (20 / steps alone gives 19 for some step counts, e.g. 77, by rounding)."""
    frac = WARMUP_STEPS / steps
    return frac if int(steps * frac) == WARMUP_STEPS else (WARMUP_STEPS + 0.5) / steps


def write_runs(out: Path, rows: list[dict[str, Any]], curves: dict[str, list[dict[str, Any]]]) -> None:
    write_atomic(out / "summary.csv", to_csv(rows))
    by_run = {r["run"]: r for r in rows}
    for run, curve in curves.items():
        write_atomic(out / "runs" / run / "curve.csv", to_csv(curve, CURVE_COLUMNS))
        config = {"run": run, "objective": by_run[run]["objective"],
                  "train": {"warmup_frac": warmup_frac(int(by_run[run]["steps"]))}}
        write_atomic(out / "runs" / run / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m archscale.analysis.synth", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="folder for summary.csv and runs/")
    p.add_argument("--archs", default="transformer,gpt2,bert_mlm", help="comma-separated arch ids")
    p.add_argument("--sizes", default="tiny,small,base", help=f"comma-separated, from {','.join(SHAPES)}")
    p.add_argument("--tiered", default="", help="archs given a tiered frontier")
    p.add_argument("--no-downstream", action="store_true", help="leave out score_* and downstream_avg")
    p.add_argument("--no-scans", action="store_true", help="leave out depth/width scan runs")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--noise", type=float, default=0.01, help="log-normal noise sd on losses")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    sizes = a.sizes.split(",")
    unknown = [s for s in sizes if s not in SHAPES]
    if unknown:
        p.error(f"unknown sizes {unknown}; known: {list(SHAPES)}")
    rows, curves = make_runs(a.archs.split(","), sizes, noise=a.noise, seed=a.seed, steps=a.steps,
                             downstream=not a.no_downstream, tiered=tuple(filter(None, a.tiered.split(","))),
                             scans=not a.no_scans)
    write_runs(a.out, rows, curves)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
