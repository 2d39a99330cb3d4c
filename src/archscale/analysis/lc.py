"""L(C): the compute-efficient frontier of each architecture and the two laws fitted to it.

    pure:   L = (C_c / C)^alpha_C            (Kaplan et al. 2020; Oyedele 2021)
    offset: L = E + (C_c / C)^alpha_C        (with an irreducible loss E, the limitation Oyedele named)

Both are fitted to the frontier points in log-loss space (least squares on log L), so a point at
loss 2 counts as much as one at loss 6. Intervals: residual bootstrap (percentile), refitting each
replicate. The frontier's points come from a few learning curves and are serially correlated, so
these intervals are optimistic; the prediction check (prediction.py) is the honest test.

The envelope leaves out every point inside its run's lr warm-up (curves.py). The compute axis is
the family's (family.py): C = 6 N B S with N the non-embedding parameters for causal and masked LMs,
as Oyedele (2021) after Kaplan et al. (2020); measured training FLOPs for span corruption, as Tay et
al. (2022). The other axis is fitted beside it (point estimates), so neither choice hides the other.

Repeats (`<run>+s<seed>`): the envelope and both laws are fitted on the repeats' mean curves
(curves.mean_over_seeds), since an envelope over every seed's points follows the luckiest seed and
is biased low. The bootstrap above then sees only the residuals about the mean curves, not how much
the law moves with the seed; so each seed's own curves (seed k: the k-th repeat of every run) get
their own envelope and point fits, and their spread is recorded beside (``seeds``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from archscale.analysis.curves import lower_envelope, mean_over_seeds, repeat_of, run_points
from archscale.analysis.family import compute_axis, order, reference, single_family
from archscale.analysis.table import Row, groups, public

MIN_FRONTIER = 5
METHOD = ("frontier = running minimum by compute of all eval points past each run's lr warm-up; least squares on "
          "log loss; CI: residual bootstrap (percentile)")
REPEATS = ("repeats of a run (<run>+s<seed>) are averaged at each eval step before the envelope; seeds: each "
           "seed's own envelope (the runs of that seed alone) with both laws refitted (point estimates)")
WARMUP = ("eval points at or before the end of each run's lr warm-up (step <= max(int(steps * train.warmup_frac), 1)) "
          "are left out")


def fit_pure(c: np.ndarray, loss: np.ndarray) -> dict[str, float]:
    """log L = alpha (log C_c - log C): ordinary least squares, closed form."""
    x, y = np.log(c), np.log(loss)
    slope, intercept = np.polyfit(x, y, 1)
    alpha = -float(slope)
    return {"alpha_C": alpha, "C_c": float(math.exp(intercept / alpha)) if alpha != 0 else math.nan}


def predict_pure(p: dict[str, float], c: np.ndarray) -> np.ndarray:
    return (p["C_c"] / np.asarray(c, float)) ** p["alpha_C"]


def fit_offset(c: np.ndarray, loss: np.ndarray, start: dict[str, float] | None = None) -> dict[str, float]:
    """L = E + exp(k - alpha x), x = log C - mean(log C) for conditioning; E in [0, min L).

    Without ``start``: from E at a few fractions of min L (alpha from the pure fit), keeping the
    best. With ``start`` (bootstrap replicates): from there only.
    """
    x0 = float(np.mean(np.log(c)))
    x, y = np.log(c) - x0, np.log(loss)
    lmin = float(loss.min())

    def resid(t: np.ndarray) -> np.ndarray:
        return np.log(t[0] + np.exp(t[1] - t[2] * x)) - y

    def jac(t: np.ndarray) -> np.ndarray:
        u = np.exp(t[1] - t[2] * x)
        s = t[0] + u
        return np.stack([1.0 / s, u / s, -x * u / s], axis=1)

    if start:
        inits = [(min(start["E"], 0.99 * lmin), start["alpha_C"])]
    else:
        alpha = fit_pure(c, loss)["alpha_C"]
        inits = [(f * lmin, alpha) for f in (0.0, 0.3, 0.6, 0.9)]
    best = None
    for e0, a0 in inits:
        rest = max(float(np.mean(loss)) - e0, 1e-6 * lmin)
        t0 = np.array([e0, math.log(rest), min(max(a0, 1e-3), 9.0)])
        sol = least_squares(resid, t0, jac=jac, bounds=([0.0, -50.0, 0.0], [0.999 * lmin, 50.0, 10.0]), method="trf")
        if best is None or sol.cost < best.cost:
            best = sol
    e, k, alpha = (float(v) for v in best.x)
    cc = math.exp(k / alpha + x0) if alpha > 1e-9 else math.nan
    return {"E": e, "alpha_C": alpha, "C_c": cc}


def predict_offset(p: dict[str, float], c: np.ndarray) -> np.ndarray:
    return p["E"] + (p["C_c"] / np.asarray(c, float)) ** p["alpha_C"]


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ly, lp = np.log(y), np.log(pred)
    tss = float(((ly - ly.mean()) ** 2).sum())
    return 1.0 - float(((ly - lp) ** 2).sum()) / tss if tss > 0 else 1.0


def fit_law(kind: str, c: np.ndarray, loss: np.ndarray, *, n_boot: int, level: float, seed: int) -> dict[str, Any]:
    """One law with residual-bootstrap CIs (none when n_boot is 0)."""
    fit, pred = (fit_pure, predict_pure) if kind == "pure" else (fit_offset, predict_offset)
    point = fit(c, loss)
    fitted = pred(point, c)
    resid = np.log(loss) - np.log(fitted)
    out: dict[str, Any] = {"params": {k: {"value": v, "ci": None} for k, v in point.items()},
                           "r2": _r2(loss, fitted), "rmse_log": float(np.sqrt(np.mean(resid**2))),
                           "residuals_log": resid.tolist()}
    if n_boot <= 0:
        return out
    rng = np.random.default_rng(seed)
    centred = resid - resid.mean()
    reps = []
    for _ in range(n_boot):
        star = fitted * np.exp(centred[rng.integers(0, len(c), len(c))])
        reps.append(fit(c, star, point) if kind == "offset" else fit(c, star))
    q = ((1 - level) / 2, (1 + level) / 2)
    for key in point:
        vals = np.array([r[key] for r in reps], float)
        vals = vals[np.isfinite(vals)]
        out["params"][key]["ci"] = [float(v) for v in np.quantile(vals, q)] if len(vals) else None
    return out


def fit_frontier(points: list[dict[str, Any]], *, n_boot: int = 2000, level: float = 0.95,
                 seed: int = 0) -> dict[str, Any]:
    """Frontier of the given eval points and both laws fitted to it."""
    frontier = lower_envelope(points)
    runs = sorted({p["run"] for p in frontier})
    base = {"n_points": len(points), "n_frontier": len(frontier), "frontier_runs": runs,
            "frontier": [[p["C"], p["loss"], p["run"]] for p in frontier]}
    if len(frontier) < MIN_FRONTIER:
        return {**base, "status": "not_fittable", "reason": f"{len(frontier)} frontier points < {MIN_FRONTIER}"}
    c = np.array([p["C"] for p in frontier])
    loss = np.array([p["loss"] for p in frontier])
    boot = {"n_boot": n_boot, "level": level, "seed": seed}
    return {**base, "status": "fitted", "pure": fit_law("pure", c, loss, **boot),
            "offset": fit_law("offset", c, loss, **boot)}


def _range(values: list[float | None]) -> list[float] | None:
    known = [v for v in values if v is not None and math.isfinite(v)]
    return [min(known), max(known)] if known else None


def seed_spread(rows: list[Row], points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Both laws refitted (point estimates) on the envelope of each seed's own curves; None when no
    run of ``rows`` is repeated.

    Seed k is the `+s<k>` repeat of every run, the base seed the runs without `+s` (labelled by their
    `seed` column when the table has one). A size without that repeat is simply absent from that
    seed's envelope. The range of alpha_C over seeds is the part of its uncertainty the residual
    bootstrap on the mean curves cannot see."""
    if len({repeat_of(r["run"])[0] for r in rows}) == len({r["run"] for r in rows}):
        return None
    seeds: dict[tuple[int, int], tuple[str, set[str]]] = {}
    for r in rows:
        suffix = repeat_of(r["run"])[1]
        label = str(suffix) if suffix is not None else (r.get("seed") or "base")
        seeds.setdefault((0, 0) if suffix is None else (1, suffix), (label, set()))[1].add(r["run"])
    fits = [(label, runs, fit_frontier([p for p in points if p["run"] in runs], n_boot=0))
            for label, runs in (seeds[k] for k in sorted(seeds))]

    def value(fit: dict[str, Any], law: str, key: str) -> float | None:
        return fit[law]["params"][key]["value"] if fit["status"] == "fitted" else None

    out: dict[str, Any] = {"n": len(fits), "seeds": [f[0] for f in fits], "n_runs": [len(f[1]) for f in fits],
                           "n_frontier": [f[2]["n_frontier"] for f in fits], "status": [f[2]["status"] for f in fits],
                           "n_points_all": len(points)}
    for law, prefix in (("pure", ""), ("offset", "offset_")):
        for key in ("alpha_C", "C_c", *(("E",) if law == "offset" else ())):
            out[prefix + key] = [value(f[2], law, key) for f in fits]
        out[prefix + "alpha_C_range"] = _range(out[prefix + "alpha_C"])
    return out


def fit_lc_from_runs(
    rows: list[Row], runs_dir: Path, *, n_col: str, compute: str = "auto", group: str | None = "arch",
    n_boot: int = 2000, level: float = 0.95, seed: int = 0, warmup_frac: float | None = None,
) -> dict[str, Any]:
    """L(C) per group on its compute axis (with CIs), the other axis's point fits beside it.

    compute: 'auto' = each group's family axis (family.compute_axis), or 'flops' / '6nd' for all.
    A group must lie in one objective family (an envelope over two would mix losses of different
    tasks). Cost: the offset law's bootstrap is ~10 ms per replicate (scipy least_squares), so
    n_boot=1000 takes ~10 s per group on one core."""
    out: dict[str, Any] = {}
    for name, members in groups(rows, group).items():
        fam = single_family("L(C)", name, members)
        axis = compute_axis(fam) if compute == "auto" else compute
        other = "6nd" if axis == "flops" else "flops"
        every = run_points(members, runs_dir, n_col=n_col, axis=axis, warmup_frac=warmup_frac)
        fit = fit_frontier(mean_over_seeds(every), n_boot=n_boot, level=level, seed=seed)
        # The other axis is a cross-check of the exponent: point estimates only (halves the cost).
        alt = fit_frontier(mean_over_seeds(run_points(members, runs_dir, n_col=n_col, axis=other,
                                                      warmup_frac=warmup_frac)), n_boot=0)
        fit.update(n_runs=len(members), family=fam, compute=axis)
        spread = seed_spread(members, every)
        if spread is not None:
            fit["seeds"] = spread
        fit["alt_compute"] = {"compute": other, "status": alt["status"], "frontier": alt["frontier"],
                              **({"pure": alt["pure"]["params"], "offset": alt["offset"]["params"]}
                                 if alt["status"] == "fitted" else {})}
        out[name] = fit
    families: dict[str, Any] = {}
    for fam in order(g["family"] for g in out.values()):
        archs = [a for a, g in out.items() if g["family"] == fam]
        families[fam] = {"groups": archs, "reference": reference(fam, archs) if group else None,
                         "compute": compute_axis(fam) if compute == "auto" else compute}
    result = {"law": "lc", "method": METHOD, "warmup": WARMUP,
              "models": {"pure": "L = (C_c/C)^alpha_C", "offset": "L = E + (C_c/C)^alpha_C"},
              "compute": compute, "ci_level": level, "groups": out, "families": families,
              "rows": [public(r) for r in rows]}
    if any("seeds" in g for g in out.values()):
        result["repeats"] = REPEATS  # only then: a one-seed study's file stays as it was
    return result
