"""Compute-optimal allocation per architecture: Hoffmann et al. (2022, "Chinchilla"), approaches 1 and 2.

Input: the IsoFLOP grid (results/isoflop.csv), where each model size is trained to exactly each of
several compute budgets C; a branch's `final` row is its finished result, earlier rows are points of
its learning curve.

Approach 2, IsoFLOP profiles (Hoffmann et al. Sec. 3.2): for one budget, the final losses against
x = ln N are fitted with a parabola L = p0 + p1 x + p2 x^2 (least squares), whose vertex
N_opt = exp(-p1 / (2 p2)) is the loss-optimal size at that compute; it needs >= 3 distinct sizes
and p2 > 0 (else that budget's N_opt is null, with the reason), and a vertex inside the trained
sizes (and tokens): an extrapolated one is recorded but marked `not_bracketed` and left out of the
lines (Hoffmann et al. choose each budget's sizes around its minimum; a vertex beyond them says the
budget is too small or too large for the sizes, not where the optimum is). D_opt is found the same way, from a
parabola in ln D over the same rows: D is fitted directly rather than derived as C / (6 N_opt),
because C here is the measured training FLOPs (3 x forward FLOPs/token x tokens) and C / (6N) would
mix that accounting with 6N. Then ln N_opt = a ln C + k and ln D_opt = b ln C + k' are fitted by
least squares over the budgets with an optimum (>= 2), C being each branch's target budget.
Under L = E + A/N^alpha + B/D^beta and C = 6ND, a = beta / (alpha + beta) and b = alpha / (alpha + beta),
so a + b = 1 (Hoffmann et al. eq. 4); a + b away from 1 says C does not scale as N D.
Intervals: bootstrap over runs. A replicate resamples the final rows within each budget with
replacement (a repeat with another seed is another run) and refits every parabola and both lines;
a replicate that leaves a budget with < 3 distinct sizes or a non-convex parabola is dropped and
counted (n_boot_dropped); intervals are percentiles of the kept replicates at ``level``.
Bias: a parabola is not the profile's exact shape, so with the same sizes for every budget (a window
not centred on each optimum) the vertex moves with the window and a is biased. Measured on
L = E + A/N^alpha + B/D^beta, C = 6ND, 7 sizes fixed for 3 budgets over 2 decades
(tests/test_analysis_isoflop.py): a - a_true = -0.006 for (alpha, beta) = (0.34, 0.28) and -0.007
for (0.5, 0.25); over 4 budgets on 3 decades (sizes spanning ~2.7 decades) up to -0.03.

Approach 1, envelope of training curves (Hoffmann et al. Sec. 3.1): every row counts, curve points
included. Per size, its lowest loss reached with at most C FLOPs (the lower envelope of its points,
interpolated linearly in ln C within the size's range); over a log grid of C inside the range of the
budgets, N_opt(C) is the N of the size with the lowest envelope, D_opt(C) that size's tokens at C,
and ln N_opt = a1 ln C + k1, ln D_opt = b1 ln C + k1' are fitted over the grid. This is coarse with
few sizes: N_opt is always one of the trained sizes, a staircase in C, so a1 is quantised by the
grid of sizes (no interval is given for it). C is the `c` (measured FLOPs) column; a table without
it uses C = 6 N D and says so (``compute_approach1``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from archscale.analysis.table import Row, TableError, groups, number, public, require_columns

MIN_SIZES = 3
MIN_BUDGETS = 2
GRID_PER_DECADE = 10  # approach 1: C values per decade of the budgets' range
BAND_POINTS = 25  # points of the N_opt(C) bootstrap band
METHOD = ("approach 2: per budget, least-squares parabola of final loss in ln N (and in ln D), vertex = optimum; "
          "ln N_opt, ln D_opt least-squares lines in ln C over budgets; CI: bootstrap over runs within each "
          "budget, percentile, replicates with a budget of < 3 sizes or a non-convex parabola dropped")
METHOD_APPROACH1 = ("approach 1: per size, lower envelope of loss vs C (min over points with C' <= C, linear in "
                    "ln C); N_opt(C) = size with the lowest envelope on a log grid of C over the budgets' range; "
                    "least-squares lines of ln N_opt, ln D_opt in ln C")
TRUE_WORDS = {"1", "1.0", "true", "yes", "y"}


def parabola(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Least-squares y = p0 + p1 x + p2 x^2 and its vertex (fitted in x - mean(x) for conditioning).

    Status 'fitted' with x_opt, y_min and coef [p0, p1, p2]; 'not_fittable' with a reason when
    there are < 3 distinct x or p2 <= 0 (no minimum)."""
    distinct = len(np.unique(x))
    if distinct < MIN_SIZES:
        return {"status": "not_fittable", "reason": f"{distinct} distinct sizes < {MIN_SIZES}"}
    xm = float(np.mean(x))
    q2, q1, q0 = np.polyfit(x - xm, y, 2)
    if not q2 > 0:
        return {"status": "not_fittable", "reason": f"parabola not convex (p2 = {q2:.3g} <= 0): no minimum"}
    u = -q1 / (2.0 * q2)
    coef = [q0 - q1 * xm + q2 * xm * xm, q1 - 2.0 * q2 * xm, q2]
    return {"status": "fitted", "x_opt": xm + u, "y_min": q0 - q1 * q1 / (4.0 * q2), "coef": [float(c) for c in coef],
            "interior": bool(x.min() <= xm + u <= x.max())}


def line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept of y on x."""
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def _profile(n: np.ndarray, d: np.ndarray, loss: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
    return parabola(np.log(n), loss), parabola(np.log(d), loss)


def _interval(values: list[float], level: float) -> list[float] | None:
    if not values:
        return None
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return [float(lo), float(hi)]


def approach2(points: list[tuple[float, float, float, float, str]], *, n_boot: int = 1000, level: float = 0.95,
              seed: int = 0) -> dict[str, Any]:
    """IsoFLOP profiles of one group. ``points``: (budget C, N, D, final loss, run) per final row."""
    by_budget: dict[float, list[tuple[float, float, float, str]]] = {}
    for c, n, d, loss, run in points:
        by_budget.setdefault(c, []).append((n, d, loss, run))
    budgets = []
    for c in sorted(by_budget):
        pts = sorted(by_budget[c])
        n, d, loss = (np.array([p[i] for p in pts]) for i in range(3))
        pn, pd = _profile(n, d, loss)
        entry: dict[str, Any] = {"C": c, "n_runs": len(pts), "n_sizes": len(np.unique(n)),
                                 "points": [[p[0], p[1], p[2], p[3]] for p in pts]}
        if pn["status"] == "fitted" and pd["status"] == "fitted":
            entry.update(status="fitted", N_opt=math.exp(pn["x_opt"]), D_opt=math.exp(pd["x_opt"]),
                         min_loss=pn["y_min"], coef_n=pn["coef"], coef_d=pd["coef"],
                         interior_n=pn["interior"], interior_d=pd["interior"])
            if not (pn["interior"] and pd["interior"]):  # an extrapolated vertex says where the minimum is not
                entry.update(status="not_bracketed", reason=(
                    f"the parabola's vertex (N_opt {entry['N_opt']:.3g}, D_opt {entry['D_opt']:.3g}) lies outside the "
                    f"trained N {n.min():.3g}..{n.max():.3g} / D {d.min():.3g}..{d.max():.3g}: the budget does not "
                    "bracket the optimum of these sizes"))
        else:
            entry.update(status="not_fittable", N_opt=None, D_opt=None, min_loss=None,
                         reason=pn.get("reason") or pd.get("reason"))
        budgets.append(entry)
    used = [b for b in budgets if b["status"] == "fitted"]
    out: dict[str, Any] = {"budgets": budgets, "n_budgets_used": len(used), "n_boot": n_boot}
    if len(used) < MIN_BUDGETS:
        return {**out, "status": "not_fittable", "n_boot_used": 0,
                "reason": f"{len(used)} budget(s) with an optimum inside the trained sizes < {MIN_BUDGETS}"}
    lc = np.log([b["C"] for b in used])
    a, k_n = line(lc, np.log([b["N_opt"] for b in used]))
    b, k_d = line(lc, np.log([b["D_opt"] for b in used]))
    rng = np.random.default_rng(seed)
    data = [tuple(np.array([p[i] for p in by_budget[u["C"]]]) for i in range(3)) for u in used]
    reps = []
    for _ in range(n_boot):
        opt_n, opt_d = [], []
        for n, d, loss in data:
            idx = rng.integers(0, len(n), len(n))
            pn, pd = _profile(n[idx], d[idx], loss[idx])
            if pn["status"] != "fitted" or pd["status"] != "fitted" or not (pn["interior"] and pd["interior"]):
                break
            opt_n.append(pn["x_opt"])
            opt_d.append(pd["x_opt"])
        else:
            reps.append((*line(lc, np.array(opt_n)), *line(lc, np.array(opt_d))))
    grid = np.geomspace(min(u["C"] for u in used), max(u["C"] for u in used), BAND_POINTS)
    band = None
    if reps:
        r = np.array(reps)
        lines = r[:, 0:1] * np.log(grid)[None, :] + r[:, 1:2]
        lo, hi = np.quantile(lines, [(1 - level) / 2, (1 + level) / 2], axis=0)
        band = {"C": grid.tolist(), "N_lo": np.exp(lo).tolist(), "N_hi": np.exp(hi).tolist()}

    def q(col: int) -> list[float] | None:
        return _interval([rep[col] for rep in reps], level)

    sums = [rep[0] + rep[2] for rep in reps]
    why = None if reps else "every bootstrap replicate left a budget with < 3 sizes or no minimum"
    return {**out, "status": "fitted", "n_boot_used": len(reps), "n_boot_dropped": n_boot - len(reps),
            **({"ci_reason": why} if why else {}),
            "a": {"status": "fitted", "value": a, "ci": q(0)}, "k_n": {"value": k_n, "ci": q(1)},
            "b": {"status": "fitted", "value": b, "ci": q(2)}, "k_d": {"value": k_d, "ci": q(3)},
            "a_plus_b": {"status": "fitted", "value": a + b, "ci": _interval(sums, level)}, "band": band}


def envelope(c: np.ndarray, loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points of one size on its lower envelope (curves.lower_envelope, as L(C)'s frontier):
    the lowest loss reached with at most C."""
    from archscale.analysis.curves import lower_envelope

    kept = lower_envelope([{"C": float(ci), "loss": float(li)} for ci, li in zip(c, loss)])
    return np.array([p["C"] for p in kept]), np.array([p["loss"] for p in kept])


def approach1(points: list[tuple[float, float, float, float]], budgets: list[float]) -> dict[str, Any]:
    """Envelope method of one group. ``points``: (N, D, C, loss) per row, curve points included;
    ``budgets``: the final rows' budgets, whose range the grid of C spans."""
    sizes: dict[float, list[tuple[float, float, float]]] = {}
    for n, d, c, loss in points:
        sizes.setdefault(n, []).append((c, d, loss))
    if len(sizes) < 2 or not budgets or min(budgets) >= max(budgets):
        return {"status": "not_fittable", "n_sizes": len(sizes),
                "reason": f"{len(sizes)} size(s) and {len(set(budgets))} budget(s): need >= 2 of each"}
    lo, hi = min(budgets), max(budgets)
    grid = np.geomspace(lo, hi, max(2, math.ceil(GRID_PER_DECADE * math.log10(hi / lo)) + 1))
    lg = np.log(grid)
    env, tok = {}, {}
    for n, pts in sizes.items():
        c, d, loss = (np.array([p[i] for p in pts]) for i in range(3))
        ec, el = envelope(c, loss)
        inside = (lg >= math.log(c.min()) - 1e-12) & (lg <= math.log(c.max()) + 1e-12)
        env[n] = np.where(inside, np.interp(lg, np.log(ec), el), np.inf)
        o = np.argsort(c)
        tok[n] = np.exp(np.interp(lg, np.log(c[o]), np.log(d[o])))
    ns = sorted(env)
    table = np.array([env[n] for n in ns])
    rows = []
    for j, cj in enumerate(grid):
        i = int(np.argmin(table[:, j]))
        if np.isfinite(table[i, j]):
            rows.append([float(cj), ns[i], float(tok[ns[i]][j]), float(table[i, j])])
    winners = {r[1] for r in rows}
    if len(rows) < 2:
        return {"status": "not_fittable", "n_sizes": len(sizes), "reason": "no size covers the budgets' range"}
    lc = np.log([r[0] for r in rows])
    a1, k1 = line(lc, np.log([r[1] for r in rows]))
    b1, k1d = line(lc, np.log([r[2] for r in rows]))
    return {"status": "fitted", "a": a1, "k_n": k1, "b": b1, "k_d": k1d, "n_sizes": len(sizes),
            "n_winners": len(winners), "grid": rows}


def _is_final(row: Row, column: str | None) -> bool:
    return column is None or (row.get(column) or "").strip().lower() in TRUE_WORDS


def fit_isoflop(
    rows: list[Row], *, n: str = "active_non_embedding_params", d: str = "tokens", c: str = "flops",
    loss: str = "val_loss", budget: str = "budget", final: str = "final", group: str | None = "arch",
    n_boot: int = 1000, level: float = 0.95, seed: int = 0, source: str = "isoflop.csv",
) -> dict[str, Any]:
    """Approaches 2 and 1 for every group of an IsoFLOP table (one row per evaluation point).

    A table without the ``final`` column: every row is a finished run. ``budget`` is required (a
    TableError naming ``source`` and the column). Without the ``c`` column, approach 1 uses C = 6ND.
    No rows (a header-only file: no IsoFLOP runs in this preset): ``empty`` true, no groups."""
    from archscale.analysis.family import single_family

    head: dict[str, Any] = {"law": "isoflop", "method": METHOD, "method_approach1": METHOD_APPROACH1,
                            "ci_level": level, "source": source,
                            "columns": {"n": n, "d": d, "c": c, "loss": loss, "budget": budget, "final": final}}
    if not rows:
        return {**head, "empty": True, "groups": {}, "rows": []}
    require_columns(rows, [n, d, loss, budget], source)
    has_final, has_c = final in rows[0], bool(c) and c in rows[0]
    head.update(final_column=final if has_final else None,
                compute_approach1=f"column {c!r}" if has_c else f"6ND (no column {c!r})")
    fits: dict[str, Any] = {}
    for name, members in groups(rows, group).items():
        fam = single_family("isoflop", name, members)
        finals, curve = [], []
        for r in members:
            nv, dv, lv = number(r, n), number(r, d), number(r, loss)
            if not (nv and dv and lv and nv > 0 and dv > 0 and lv > 0):
                continue
            cv = number(r, c) if has_c else 6.0 * nv * dv
            if cv and cv > 0:
                curve.append((nv, dv, cv, lv))
            if _is_final(r, final if has_final else None):
                bv = number(r, budget)
                if bv is None or bv <= 0:
                    raise TableError(f"{r.get('__line__', source)}: column {budget!r} must be a compute > 0, "
                                     f"got {r.get(budget)!r}")
                run_id = r.get("run") or r.get("__line__", "")
                finals.append((bv, nv, dv, lv, run_id))
        a2 = approach2(finals, n_boot=n_boot, level=level, seed=seed)
        a1 = approach1(curve, [p[0] for p in finals])
        fits[name] = {"status": a2["status"], "family": fam, "n_final": len(finals), "n_points": len(curve),
                      "sizes": sorted({p[1] for p in finals}), "budgets": sorted({p[0] for p in finals}),
                      "approach2": a2, "approach1": a1, **({"reason": a2["reason"]} if "reason" in a2 else {})}
    return {**head, "empty": False, "groups": fits, "rows": [public(r) for r in rows]}
