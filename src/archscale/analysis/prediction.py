"""Prediction check: fit each law without an architecture's largest size, predict that size's loss.

A law that only interpolates is not yet a scaling law; this is the honest test of one. For each
group the largest run (by N, then FLOPs) is held out; the laws are fitted on the rest:
    power_flops  log L = a - alpha log F over the remaining runs' final losses
    lc_pure      L = (C_c/C)^alpha_C on the frontier of the remaining learning curves (past warm-up),
                 C on the family's axis (family.py: 6 N D for causal/masked LMs, measured FLOPs for span)
    lc_offset    L = E + (C_c/C)^alpha_C on the same frontier
    approach3    L = E + A/N^alpha + B/D^beta on the remaining curves' eval points
and each predicts the held-out run's final loss (-U) at its FLOPs (or N and tokens). A law that
cannot be fitted on what is left (too few sizes or points, no curves) says so instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from archscale.analysis.table import Row, TableError, groups, number, public

LAWS = ("power_flops", "lc_pure", "lc_offset", "approach3")


def _power_flops(train: list[Row], held: Row, flops: str, upstream: str) -> dict[str, Any]:
    x = np.array([number(r, flops) for r in train], float)
    y = np.array([-number(r, upstream) for r in train], float)
    if len(np.unique(x)) < 2:
        return {"status": "not_fittable", "reason": "fewer than 2 distinct FLOPs left"}
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return {"status": "fitted", "predicted": float(np.exp(intercept + slope * np.log(number(held, flops)))),
            "alpha": -float(slope)}


def _lc(train: list[Row], held: Row, runs_dir: Path, n_col: str, flops: str, tokens: str,
        warmup_frac: float | None) -> dict[str, dict[str, Any]]:
    from archscale.analysis.curves import compute_of, mean_over_seeds, run_points
    from archscale.analysis.family import compute_axis, family_of
    from archscale.analysis.lc import fit_frontier, predict_offset, predict_pure

    axis = compute_axis(family_of(held))
    # repeats averaged first, as lc_frontier does: an envelope over every seed would pick the lucky ones
    points = mean_over_seeds(run_points(train, runs_dir, n_col=n_col, axis=axis, warmup_frac=warmup_frac))
    fit = fit_frontier(points, n_boot=0)
    if fit["status"] != "fitted":
        return {k: {"status": "not_fittable", "reason": fit["reason"]} for k in ("lc_pure", "lc_offset")}
    c = compute_of({"flops": number(held, flops), "tokens": number(held, tokens)}, number(held, n_col), axis)
    out = {}
    for key, kind, pred in (("lc_pure", "pure", predict_pure), ("lc_offset", "offset", predict_offset)):
        p = {k: v["value"] for k, v in fit[kind]["params"].items()}
        out[key] = {"status": "fitted", "predicted": float(pred(p, c)), "params": p, "compute": axis}
    return out


def _approach3(train: list[Row], held: Row, runs_dir: Path, n_col: str, tokens: str,
               warmup_frac: float | None) -> dict[str, Any]:
    from archscale.analysis.approach3 import fit_approach3, predict
    from archscale.analysis.curves import curve_points

    pts = curve_points(train, runs_dir, n_col=n_col, warmup_frac=warmup_frac)
    fit = fit_approach3([p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts], n_boot=0, keep=32)
    if fit["status"] != "fitted":
        return {"status": "not_fittable", "reason": fit["reason"]}
    p = {k: v["value"] for k, v in fit["params"].items()}
    return {"status": "fitted", "predicted": float(predict(p, number(held, n_col), number(held, tokens))), "params": p}


def check_group(members: list[Row], runs_dir: Path, *, n_col: str, flops: str, upstream: str, tokens: str,
                warmup_frac: float | None = None) -> dict[str, Any]:
    from archscale.analysis.family import family_of

    fams = sorted({family_of(r) for r in members})
    if len(fams) > 1:  # one law over losses of different tasks would predict nothing
        return {"status": "not_fittable", "reason": f"runs of {len(fams)} objective families {fams}", "held_out": ""}
    usable = [r for r in members if None not in (number(r, n_col), number(r, flops), number(r, upstream))]
    usable.sort(key=lambda r: (number(r, n_col), number(r, flops), r.get("run", "")))
    if len({number(r, n_col) for r in usable}) < 3:
        return {"status": "not_fittable", "reason": "fewer than 3 sizes (need 2 to fit, 1 to predict)",
                "held_out": usable[-1].get("run", "") if usable else ""}
    held = usable[-1]
    train = [r for r in usable if number(r, n_col) < number(held, n_col)]
    laws: dict[str, Any] = {"power_flops": _power_flops(train, held, flops, upstream)}
    try:
        laws.update(_lc(train, held, runs_dir, n_col, flops, tokens, warmup_frac))
        laws["approach3"] = _approach3(train, held, runs_dir, n_col, tokens, warmup_frac)
    except TableError as exc:  # no learning curves for these rows (e.g. a published table)
        for key in ("lc_pure", "lc_offset", "approach3"):
            laws.setdefault(key, {"status": "not_available", "reason": str(exc)})
    # the held-out size's measured loss: the mean of its repeats (itself when it has none)
    repeats = [number(r, upstream) for r in usable if number(r, n_col) == number(held, n_col)]
    actual = -sum(repeats) / len(repeats)
    for fit in laws.values():
        if fit.get("status") == "fitted":
            fit["abs_error"] = fit["predicted"] - actual
            fit["rel_error"] = (fit["predicted"] - actual) / actual
    return {"status": "fitted", "held_out": held.get("run", ""), "actual": actual, "n_train": len(train),
            "train_runs": [r.get("run", "") for r in train], "held_flops": number(held, flops), "laws": laws}


def fit_prediction(
    rows: list[Row], runs_dir: Path, *, n_col: str = "non_embedding_params", flops: str = "train_flops",
    upstream: str = "neg_log_ppl", tokens: str = "tokens", group: str | None = "arch", warmup_frac: float | None = None,
) -> dict[str, Any]:
    """The prediction check for every group: one held-out error per law (no bootstrap)."""
    out = {name: check_group(members, runs_dir, n_col=n_col, flops=flops, upstream=upstream, tokens=tokens,
                             warmup_frac=warmup_frac)
           for name, members in groups(rows, group).items()}
    return {"law": "prediction",
            "method": "fit on all but the largest size of each group; relative error of the predicted final loss",
            "laws": list(LAWS), "groups": out, "rows": [public(r) for r in rows]}
