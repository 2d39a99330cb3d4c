"""Learning curves (results/runs/{run}/curve.csv) and the compute-efficient frontier they bound.

Kaplan et al. (2020) and Oyedele (2021) read L(C) off the lower envelope of all learning curves of
an architecture: at each compute C, the lowest loss any run of it reached with at most C. With
curves sampled at eval steps, that envelope is the running minimum of the eval points sorted by
compute.

Points inside the learning-rate warm-up (the first ``max(int(steps * train.warmup_frac), 1)``
steps, as train/engine.py's lr_factor counts them; warmup_frac from the run's config.json) are left
out of the envelope and of approach 3: there the loss reflects the schedule, not what the model can
reach with that compute, and an early point of a large model can sit below a small model's curve.

Repeats (runs `<run>+s<seed>`, runs.py) are averaged at each eval step before any envelope
(``mean_over_seeds``): the minimum over every point of three repeats picks the luckiest seed at each
compute, so a frontier drawn through it would sit below what the architecture reaches on average.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

from archscale.analysis.table import Row, TableError, number, read_csv, read_json, require_columns
from archscale.runs import RunIdError, parse_run

COMPUTE_AXES = ("flops", "6nd")


def load_curve(runs_dir: str | Path, run: str, loss_col: str = "val_loss") -> list[dict[str, float]]:
    """Eval points of one run: step, tokens, flops and loss, in step order (rows without an eval
    are skipped)."""
    path = Path(runs_dir) / run / "curve.csv"
    rows = read_csv(path)
    require_columns(rows, ["step", "tokens", "flops", loss_col], str(path))
    out = []
    for r in rows:
        loss = number(r, loss_col)
        if loss is None:
            continue
        tokens, flops = number(r, "tokens"), number(r, "flops")
        if tokens is None or flops is None or loss <= 0:
            raise TableError(f"{r['__line__']}: eval row needs tokens, flops and a positive {loss_col}")
        out.append({"step": number(r, "step") or 0.0, "tokens": tokens, "flops": flops, "loss": loss})
    return sorted(out, key=lambda p: p["step"])


def compute_of(point: dict[str, float], n: float, axis: str) -> float:
    """C of an eval point: measured training FLOPs, or Kaplan's 6 N D (N non-embedding params)."""
    if axis == "flops":
        return point["flops"]
    if axis == "6nd":
        return 6.0 * n * point["tokens"]
    raise ValueError(f"unknown compute axis {axis!r}; expected one of {COMPUTE_AXES}")


def warmup_steps(runs_dir: str | Path, row: Row, warmup_frac: float | None = None) -> int:
    """Steps of the run's linear lr warm-up: max(int(steps * warmup_frac), 1) (train/engine.py).

    steps: the row's `steps` (summary.csv), else the run's metrics.json; warmup_frac: the argument,
    else train.warmup_frac of the run's config.json (the merged value the run used)."""
    run_dir = Path(runs_dir) / row["run"]
    steps = number(row, "steps")
    if steps is None:
        metrics = run_dir / "metrics.json"
        if not metrics.is_file():
            raise TableError(f"{row.get('__line__', '?')}: run {row['run']!r} has no `steps` column and no {metrics}")
        steps = read_json(metrics).get("steps")
    if warmup_frac is None:
        config = run_dir / "config.json"
        if not config.is_file():
            raise TableError(f"{config}: no such file (train.warmup_frac is needed to leave warm-up points out; "
                             "or pass --warmup-frac)")
        warmup_frac = (read_json(config).get("train") or {}).get("warmup_frac")
        if warmup_frac is None:
            raise TableError(f"{config}: no train.warmup_frac")
    return max(int(int(steps) * float(warmup_frac)), 1)


def run_points(rows: list[Row], runs_dir: str | Path, *, n_col: str, axis: str, drop_warmup: bool = True,
               warmup_frac: float | None = None) -> list[dict[str, Any]]:
    """Every eval point of every run in ``rows`` past its lr warm-up (all with drop_warmup=False), as
    {C, loss, run, N, tokens, step}."""
    out = []
    for row in rows:
        n = number(row, n_col)
        if n is None:
            raise TableError(f"{row.get('__line__', '?')}: run {row.get('run')!r} has no {n_col}")
        curve = load_curve(runs_dir, row["run"])
        skip = warmup_steps(runs_dir, row, warmup_frac) if drop_warmup else 0
        for p in curve:
            if p["step"] > skip:
                out.append({"C": compute_of(p, n, axis), "loss": p["loss"], "run": row["run"], "N": n,
                            "tokens": p["tokens"], "step": p["step"]})
    return out


def lower_envelope(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Points that beat every point of lower or equal compute (the compute-efficient frontier)."""
    frontier: list[dict[str, Any]] = []
    best = float("inf")
    for p in sorted(points, key=lambda q: (q["C"], q["loss"])):
        if p["loss"] < best:
            frontier.append(p)
            best = p["loss"]
    return frontier


def curve_points(rows: list[Row], runs_dir: str | Path, *, n_col: str, min_frac: float = 0.25,
                 warmup_frac: float | None = None) -> list[tuple[float, float, float, Row]]:
    """(N, D, loss, row) for approach 3 from every eval point past ``min_frac`` of each run's tokens
    and past its lr warm-up.

    The earliest points are left out: they sit in or just after warm-up, where loss reflects the
    schedule more than the model's capacity.
    """
    out = []
    for row in rows:
        n = number(row, n_col)
        if n is None:
            raise TableError(f"{row.get('__line__', '?')}: run {row.get('run')!r} has no {n_col}")
        curve = load_curve(runs_dir, row["run"])
        skip = warmup_steps(runs_dir, row, warmup_frac)
        last = max((p["tokens"] for p in curve), default=0.0)
        out += [(n, p["tokens"], p["loss"], row) for p in curve
                if p["tokens"] >= min_frac * last and p["tokens"] > 0 and p["step"] > skip]
    return out


@functools.lru_cache(maxsize=4096)  # called per eval point; ids repeat
def repeat_of(run: str) -> tuple[str, int | None]:
    """(id of the run without its seed suffix, the seed suffix or None for the base seed). An id
    outside the run grammar (a published table's) is its own run: nothing repeats it."""
    try:
        rid = parse_run(run)
    except RunIdError:
        return run, None
    return rid.without_seed, rid.seed


def mean_over_seeds(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Eval points with the repeats of each run averaged at each step (loss: arithmetic mean).

    Points of a run without repeats come back unchanged (same objects, same order), so a one-seed
    study's fits do not move. A repeated run's points become one point per step that every repeat
    has (a step only some reached would bring back the luck of those), named by the id without the
    seed, with ``n_seeds``; steps, tokens and compute are the same for repeats (same config)."""
    runs: dict[str, list[str]] = {}
    for p in points:
        key = repeat_of(p["run"])[0]
        if p["run"] not in runs.setdefault(key, []):
            runs[key].append(p["run"])
    by_step: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for p in points:
        by_step.setdefault((repeat_of(p["run"])[0], p["step"]), []).append(p)
    out: list[dict[str, Any]] = []
    for p in points:
        key = repeat_of(p["run"])[0]
        if len(runs[key]) == 1:
            out.append(p)
            continue
        same = by_step.pop((key, p["step"]), None)
        if same is None or {q["run"] for q in same} != set(runs[key]):
            continue  # already averaged, or not reached by every repeat
        first = same[0]
        mean = {k: first[k] if all(q[k] == first[k] for q in same) else math.fsum(q[k] for q in same) / len(same)
                for k in ("C", "N", "tokens", "step")}
        out.append({**mean, "loss": math.fsum(q["loss"] for q in same) / len(same), "run": key,
                    "n_seeds": len(same)})
    return out
