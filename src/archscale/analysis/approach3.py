"""Chinchilla approach 3: L(N, D) = E + A / N^alpha + B / D^beta, the way Hoffmann et al. fit it.

The fit is on log loss with the prediction written as a log-sum-exp,
    log L_hat = LSE(a - alpha log N, b - beta log D, e),   A = e^a, B = e^b, E = e^e,
minimising the Huber loss (delta 1e-3) of log L_hat - log L by L-BFGS-B from a grid of starts
(alpha, beta in 0..2 step 0.5; e in -1..1 step 0.5; a, b in 0..25 step 5, as Besiroglu et al.
2024 did), keeping the best optimum. Speed: the gradient is analytic (softmax weights of the
LSE), and the 4,500 grid points are first screened by their objective value (one vectorised
pass) so that L-BFGS-B runs from the best ``keep`` of them (64 by default). Measured on Epoch's
240 Chinchilla runs: L-BFGS-B from all 4,500 starts with the analytic gradient took 292 s on this
2-core machine and reached E 1.8172, alpha 0.3473, beta 0.3672; the best 20 screened starts
reach the same optimum (to 5 digits) in ~2 s. ``keep=0`` runs every start.
Confidence intervals: bootstrap over runs, each replicate refitted from the full-data optimum.
A replicate draws runs with replacement and takes every point of each drawn run: the eval points
of one learning curve share that run's seed, data order and any misfit of its size, so they are not
independent, and resampling them one by one would treat a curve of 20 points as 20 runs' worth of
evidence (intervals too narrow). Fitted on a table (one row per run) it is the row bootstrap.
Repeats (`<run>+s<seed>`) stay separate runs, each a unit of that bootstrap: the Huber residuals
then include the seed noise, and so do the intervals.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from scipy.optimize import minimize

from archscale.analysis.table import Row, groups, number, public

DELTA = 1e-3
GRID = {
    "a": np.arange(0.0, 25.1, 5.0), "b": np.arange(0.0, 25.1, 5.0), "e": np.arange(-1.0, 1.01, 0.5),
    "alpha": np.arange(0.0, 2.01, 0.5), "beta": np.arange(0.0, 2.01, 0.5),
}
ORDER = ("a", "b", "e", "alpha", "beta")
MIN_POINTS = 10
METHOD = ("L-BFGS-B on Huber(delta=1e-3) of log-sum-exp log loss, analytic gradient, best of a grid of starts; "
          "CI: bootstrap over runs (every point of each drawn run), refitted from the full-data optimum")
# An exponent below this is treated as 0: the loss then does not fall with N (or D), and the
# compute-optimal split N_opt ~ C^(beta/(alpha+beta)) has no meaning (Hoffmann et al. eq. 4 divides by it).
# 1e-4 moves B / D^beta by under 0.25% over ten decades of D: no signal. (L-BFGS-B stops near its 0
# bound, not on it: scipy 1.17 leaves beta at 9.4e-6 where earlier releases gave 0.0, tests.)
MIN_EXPONENT = 1e-4


def objective(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray) -> tuple[float, np.ndarray]:
    """Summed Huber loss of the log-loss residuals and its gradient in (a, b, e, alpha, beta)."""
    a, b, e, alpha, beta = theta
    terms = np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])
    top = terms.max(axis=0)
    w = np.exp(terms - top)
    s = w.sum(axis=0)
    r = top + np.log(s) - log_l
    w /= s
    small = np.abs(r) <= DELTA
    loss = float(np.where(small, 0.5 * r * r, DELTA * (np.abs(r) - 0.5 * DELTA)).sum())
    g = np.where(small, r, DELTA * np.sign(r))
    grad = np.array([g @ w[0], g @ w[1], g @ w[2], -(g * w[0]) @ log_n, -(g * w[1]) @ log_d])
    return loss, grad


# Tighter than scipy's defaults: with delta = 1e-3 the summed Huber loss is ~1e-3 and its gradient
# tiny, so the default tolerances stop a bootstrap replicate next to its starting point and the
# intervals come out ~20x too narrow (measured on Epoch's data: alpha's bootstrap sd 0.0007 vs 0.014).
TOLERANCES = {"ftol": 1e-12, "gtol": 1e-9, "maxiter": 5000}
# Loose box (inactive at any sensible optimum, e.g. Epoch's) so a degenerate bootstrap replicate
# cannot run a or b off to values whose exponential overflows.
BOUNDS = [(-30.0, 100.0), (-30.0, 100.0), (-10.0, 10.0), (0.0, 5.0), (0.0, 5.0)]


def _minimise(x0: np.ndarray, data: tuple[np.ndarray, ...]) -> tuple[np.ndarray, float]:
    res = minimize(objective, x0, args=data, jac=True, method="L-BFGS-B", bounds=BOUNDS, options=TOLERANCES)
    return res.x, float(res.fun)


def fit_once(log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, float]:
    """Best (lowest Huber loss) optimum over the given starting points."""
    best, best_loss = starts[0], math.inf
    for x0 in starts:
        x, loss = _minimise(x0, (log_n, log_d, log_l))
        if loss < best_loss:
            best, best_loss = x, loss
    return best, best_loss


def grid_starts() -> np.ndarray:
    return np.array(list(itertools.product(*(GRID[k] for k in ORDER))), dtype=float)


def screen(starts: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray, keep: int) -> np.ndarray:
    """The ``keep`` starts with the lowest objective (all of them when keep <= 0), best first."""
    if keep <= 0 or keep >= len(starts):
        return starts
    losses = np.empty(len(starts))
    for lo in range(0, len(starts), 500):  # chunks keep memory at 500 x points x 3 floats
        a, b, e, alpha, beta = starts[lo:lo + 500].T[:, :, None]
        terms = np.stack([a - alpha * log_n, b - beta * log_d, np.broadcast_to(e, (len(a), len(log_n)))])
        top = terms.max(axis=0)
        r = np.abs(top + np.log(np.exp(terms - top).sum(axis=0)) - log_l)
        losses[lo:lo + 500] = np.where(r <= DELTA, 0.5 * r * r, DELTA * (r - 0.5 * DELTA)).sum(axis=1)
    return starts[np.argsort(losses, kind="stable")[:keep]]


def _natural(theta: np.ndarray) -> dict[str, float]:
    a, b, e, alpha, beta = (float(v) for v in theta)
    return {"E": math.exp(e), "A": math.exp(a), "B": math.exp(b), "alpha": alpha, "beta": beta}


def compute_optimal(p: dict[str, float]) -> dict[str, Any]:
    """N_opt = G (C/6)^a, D_opt = (C/6)^b / G with a = beta/(alpha+beta), b = alpha/(alpha+beta)
    (Hoffmann et al. 2022, eq. 4, for C = 6 N D), with status 'fitted'.

    With alpha or beta at 0 (the fit put it on its bound: the loss does not fall with N, or with D)
    there is no optimum to allocate to: status 'not_identified', a reason, and a, b, G NaN (null in
    JSON) instead of a division by zero. G is computed in logs, so a tiny exponent cannot overflow."""
    alpha, beta = p["alpha"], p["beta"]
    nan = {"a": math.nan, "b": math.nan, "G": math.nan}
    if not (alpha >= MIN_EXPONENT and beta >= MIN_EXPONENT):
        zero = "beta" if beta < MIN_EXPONENT else "alpha"
        return {"status": "not_identified", **nan,
                "reason": f"{zero} = {p[zero]:.3g}: the fitted loss does not fall with "
                          f"{'D' if zero == 'beta' else 'N'}, "
                          "so no compute-optimal split exists"}
    s = alpha + beta
    log_g = (math.log(alpha) + math.log(p["A"]) - math.log(beta) - math.log(p["B"])) / s
    if not abs(log_g) < 700:
        return {"status": "not_identified", **nan, "reason": f"log G = {log_g:.3g} overflows"}
    return {"status": "fitted", "a": beta / s, "b": alpha / s, "G": math.exp(log_g)}


def optimal_allocation(p: dict[str, float], compute: float) -> tuple[float, float]:
    """(N_opt, D_opt) at training compute C under C = 6 N D; ValueError when not identified."""
    opt = compute_optimal(p)
    if opt["status"] != "fitted":
        raise ValueError(f"no compute-optimal allocation: {opt['reason']}")
    return opt["G"] * (compute / 6.0) ** opt["a"], (compute / 6.0) ** opt["b"] / opt["G"]


def run_bootstrap(runs: np.ndarray, n_boot: int, rng: np.random.Generator):
    """Index arrays of ``n_boot`` replicates: each draws as many runs as there are, with
    replacement, and takes all points of every drawn run (a run drawn twice: its points twice)."""
    ids, inverse = np.unique(np.asarray(runs), return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(ids))]
    for _ in range(n_boot):
        yield np.concatenate([members[k] for k in rng.integers(0, len(ids), len(ids))])


def predict(p: dict[str, float], n: np.ndarray | float, d: np.ndarray | float) -> np.ndarray:
    return p["E"] + p["A"] / np.asarray(n, float) ** p["alpha"] + p["B"] / np.asarray(d, float) ** p["beta"]


def fit_approach3(
    n: np.ndarray, d: np.ndarray, loss: np.ndarray, *, n_boot: int = 200, level: float = 0.95, seed: int = 0,
    starts: np.ndarray | None = None, keep: int = 64, runs: list | np.ndarray | None = None,
) -> dict[str, Any]:
    """Fit L(N, D); parameters with bootstrap CIs, the compute-optimal exponents, residuals.

    ``runs``: the run of each point; the bootstrap resamples runs (run_bootstrap). Without it every
    point is its own run (a table of final losses)."""
    n, d, loss = (np.asarray(v, dtype=float) for v in (n, d, loss))
    runs = np.arange(len(n)) if runs is None else np.asarray(runs)
    if len(runs) != len(n):
        raise ValueError(f"{len(runs)} run ids for {len(n)} points")
    distinct = (len(np.unique(n)), len(np.unique(d)))
    if len(n) < MIN_POINTS or min(distinct) < 3:
        return {"status": "not_fittable", "n": len(n),
                "reason": f"{len(n)} points, {distinct[0]} distinct N, {distinct[1]} distinct D "
                          f"(need >= {MIN_POINTS} points and >= 3 of each)"}
    data = (np.log(n), np.log(d), np.log(loss))
    theta, fun = fit_once(*data, screen(grid_starts() if starts is None else starts, *data, keep))
    point = _natural(theta)
    rng = np.random.default_rng(seed)
    boots = [_minimise(theta, tuple(v[idx] for v in data))[0] for idx in run_bootstrap(runs, n_boot, rng)]
    nat = [_natural(t) for t in boots]
    q = ((1 - level) / 2, (1 + level) / 2)

    def interval(values: list[float]) -> list[float]:
        return [float(v) for v in np.quantile(values, q)] if values else [math.nan, math.nan]

    params = {k: {"value": point[k], "ci": interval([b[k] for b in nat])} for k in point}
    opt = compute_optimal(point)
    # Replicates whose alpha or beta hit 0 have no optimum: left out of the intervals, and counted.
    opt_boot = [o for o in map(compute_optimal, nat) if o["status"] == "fitted"]
    optimal = {k: {"value": opt[k], "ci": interval([o[k] for o in opt_boot]) if opt["status"] == "fitted" else None}
               for k in ("a", "b", "G")}
    optimal.update(status=opt["status"], n_boot_not_identified=len(nat) - len(opt_boot),
                   **({"reason": opt["reason"]} if "reason" in opt else {}))
    resid = np.log(predict(point, n, d)) - data[2]
    # A parameter on the box edge means the data do not pin it down (e.g. a tiered frontier).
    at_bound = [k for k, v, (lo, hi) in zip(ORDER, theta, BOUNDS) if min(v - lo, hi - v) < 1e-6]
    return {"status": "fitted", "n": len(n), "n_runs": len(np.unique(runs)), "params": params,
            "compute_optimal": optimal, "at_bound": at_bound,
            "huber_loss": fun, "rmse_log": float(np.sqrt(np.mean(resid**2))), "residuals_log": resid.tolist()}


def table_points(rows: list[Row], n_col: str, d_col: str, c_col: str,
                 loss_col: str) -> list[tuple[float, float, float, Row]]:
    """(N, D, loss, row) from a table; D = C / (6 N) when a compute column is given."""
    out = []
    for r in rows:
        n, loss = number(r, n_col), number(r, loss_col)
        d = (number(r, c_col) / (6 * n) if number(r, c_col) is not None and n else None) if c_col else number(r, d_col)
        if n and d and loss and n > 0 and d > 0 and loss > 0:
            out.append((n, d, loss, r))
    return out


def fit_approach3_table(rows: list[Row], args: Any, *, source: str, group: str | None) -> dict[str, Any]:
    """The CLI's approach-3 fit: table rows (or every curve eval point past warm-up) per group; a
    group must lie in one objective family."""
    from archscale.analysis.curves import curve_points
    from archscale.analysis.family import single_family

    fits: dict[str, Any] = {}
    used: list[dict[str, Any]] = []
    for name, members in groups(rows, group).items():
        single_family("approach-3", name, members)
        if args.points == "curves":
            pts = curve_points(members, args.runs_dir, n_col=args.n, warmup_frac=getattr(args, "warmup_frac", None))
        else:
            pts = table_points(members, args.n, args.d, args.c, args.loss)
        pts.sort(key=lambda t: t[2])
        dropped = pts[len(pts) - args.exclude_top_loss:] if args.exclude_top_loss else []
        pts = pts[: len(pts) - len(dropped)]
        run_ids = [p[3].get("run") or p[3].get("__line__", str(i)) for i, p in enumerate(pts)]
        fit = fit_approach3([p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts], runs=run_ids,
                            n_boot=args.n_boot, level=args.level, seed=args.seed, keep=args.starts)
        fit["excluded"] = [public(p[3]) for p in dropped]
        fit["points_used"] = [{"N": p[0], "D": p[1], "loss": p[2], "run": r} for p, r in zip(pts, run_ids)]
        fits[name] = fit
        used += [public(p[3]) for p in pts] if args.points == "table" else []
    return {"law": "approach3", "method": METHOD, "model": "L = E + A/N^alpha + B/D^beta", "ci_level": args.level,
            "points": args.points, "source": source, "groups": fits, "rows": used or [public(r) for r in rows]}
