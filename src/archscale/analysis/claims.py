"""The two studies' claims as numbers, with intervals, per objective family.

Tay et al. (2022) say the best architecture changes with scale and that Performer gains +2.7% from
base to large where the vanilla Transformer gains +8.4%; Oyedele (2021) calls L(C) lines "within
five percent of each other ... within a margin of uncertainty". This module turns each into numbers:

- **Ranking** per family and size by upstream validation loss (lower is better). Losses of
  different objectives are losses of different tasks (family.py), so a ranking never mixes them.
  Repeated runs (rows that differ only by `seed`) give the interval: mean +- Student t
  (t_{(1+level)/2, n-1} s / sqrt n). Why not a percentile bootstrap over seeds: with the 2-3 seeds a
  study affords, a bootstrap of the mean takes a handful of distinct values and its interval is
  far too narrow; the t interval carries the tails n - 1 degrees of freedom need. One seed: no
  interval, and the file says "1 seed".
- **Tiers** by Oyedele's rule: the best remaining architecture opens a tier and every one within
  ``tie`` (relative, default 5%) of it joins; the next one outside opens the next tier. Measured
  from the tier's leader, not from neighbour to neighbour, so a ladder of 4% steps cannot chain a
  20% gap into one tier. Relative gap = |a - b| / min(a, b).
- **Best changes with scale**: between consecutive sizes, the best of the architectures present
  at both. Where it changes, the crossover compute is where the two architectures' lines
  log L = a + b log C (fitted on each one's rows, every seed a point) meet, with a percentile
  bootstrap interval that resamples seeds within each (architecture, size); with one seed per run
  there is nothing to resample and the interval is absent. "within": inside both architectures'
  compute; "near": within ``near_decades`` of the data; else "outside", or "parallel".
- **L(C) ties**: the pure law L = (C_c/C)^alpha_C of each architecture's compute-efficient frontier
  (lc.py's fit on lc.py's envelope, so the same lines as lc_frontier.json on the same rows), the
  form Oyedele fitted ("exclusively ... without" irreducible loss). Two lines tie when their
  relative gap stays under ``tie`` over the compute both frontiers cover; tiers are read at the
  largest compute inside every line's data.
- **Relative upstream gain** (Tay et al. Sec. on linear Transformers, Fig. 2i): the relative change
  of negative log-perplexity U from one size to the next, (U_next - U_prev) / |U_prev|, which is
  (L_prev - L_next) / L_prev for the loss L = -U, positive when the larger model is better. Tay et
  al.'s Table 1 reports U, so their 8.4% (vanilla) and 2.7% (Performer) are this quantity, not a
  change of perplexity itself (a 0.15 nat drop from U = -1.8 is 8% of U but 14% of exp(-U)).
  Interval from the seeds of both sizes: delta method on the ratio of means, Welch's degrees of
  freedom, Student t.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import t as student_t

from archscale.analysis.family import arch_families, compute_axis, label, reference, split
from archscale.analysis.table import Row, TableError, number, public

TIE = 0.05  # Oyedele (2021): "lines that were within five percent of each other"
NEAR_DECADES = 0.5
NOT_SELECTED = {"no", "false", "0"}
# Tay et al. (2022): upstream gain base -> large, relative change of negative log-perplexity.
TAY_GAINS = {"performer": 0.027, "transformer": 0.084}
METHOD = {
    "ranking": "mean validation loss per (architecture, size) over seeds, lower is better, within one objective family",
    "interval": "mean +- t_{(1+level)/2, n-1} * sd / sqrt(n) over seeds (Student t); none with 1 seed",
    "tiers": "the best remaining architecture leads a tier; every one within tie (|a-b|/min(a,b)) of it joins",
    "best_change": "best of the architectures present at both of two consecutive sizes (sizes ordered by FLOPs)",
    "crossover": ("log L = a + b log C per architecture (OLS over its rows, every seed a point); crossing of the two "
                  "lines; CI: percentile bootstrap resampling seeds within each (architecture, size)"),
    "lc_ties": ("pure L(C) = (C_c/C)^alpha_C on each architecture's frontier (lc.py); a pair ties when the relative "
                "gap stays under tie over the compute both frontiers cover; tiers at the largest compute inside "
                "every line's data"),
    "gain": ("Tay et al.: relative change of negative log-perplexity between consecutive sizes, "
             "(U_next - U_prev)/|U_prev| = (L_prev - L_next)/L_prev; CI: delta method, Welch df, Student t"),
}


def selected(rows: list[Row], column: str = "selected") -> list[Row]:
    """Rows that count: a `selected` cell of no/false/0 marks a non-best lr of a sweep; without the
    column every row counts."""
    return [r for r in rows if (r.get(column) or "").strip().lower() not in NOT_SELECTED]


def rel_gap(a: float, b: float) -> float:
    return abs(a - b) / min(a, b)


def tiers(values: dict[str, float], tie: float) -> list[list[str]]:
    """Names grouped into tiers, best (lowest) first, each led by its best member (module doc)."""
    out: list[list[str]] = []
    for name in sorted(values, key=lambda k: (values[k], k)):
        if out and rel_gap(values[out[-1][0]], values[name]) < tie:
            out[-1].append(name)
        else:
            out.append([name])
    return out


def ties(values: dict[str, float], tie: float) -> list[dict[str, Any]]:
    """Every pair within ``tie`` of each other (a tie), by name."""
    names = sorted(values)
    return [{"a": a, "b": b, "rel_gap": rel_gap(values[a], values[b])}
            for i, a in enumerate(names) for b in names[i + 1:] if rel_gap(values[a], values[b]) < tie]


def mean_interval(values: list[float], level: float) -> dict[str, Any]:
    """Mean of the seeds with its Student t interval (none, saying why, with one seed)."""
    n, mean = len(values), float(np.mean(values))
    if n < 2:
        return {"value": mean, "ci": None, "ci_reason": "1 seed", "sd": None, "n_seeds": n}
    sd = float(np.std(values, ddof=1))
    half = float(student_t.ppf((1 + level) / 2, n - 1)) * sd / math.sqrt(n)
    return {"value": mean, "ci": [mean - half, mean + half], "ci_reason": None, "sd": sd, "n_seeds": n}


def gain(prev: list[float], nxt: list[float], level: float) -> dict[str, Any]:
    """Tay et al.'s relative gain (L_prev - L_next) / L_prev of the seed means, with its interval."""
    m0, m1 = float(np.mean(prev)), float(np.mean(nxt))
    out: dict[str, Any] = {"gain": (m0 - m1) / m0, "ci": None, "ci_reason": None, "n_prev": len(prev),
                           "n_next": len(nxt)}
    if len(prev) < 2 or len(nxt) < 2:
        out["ci_reason"] = "1 seed"
        return out
    r = m1 / m0
    v0 = r**2 * float(np.var(prev, ddof=1)) / (len(prev) * m0**2)
    v1 = r**2 * float(np.var(nxt, ddof=1)) / (len(nxt) * m1**2)
    if v0 + v1 == 0:
        out["ci"] = [out["gain"], out["gain"]]
        return out
    df = (v0 + v1) ** 2 / (v0**2 / (len(prev) - 1) + v1**2 / (len(nxt) - 1))
    half = float(student_t.ppf((1 + level) / 2, df)) * math.sqrt(v0 + v1)
    out["ci"] = [out["gain"] - half, out["gain"] + half]
    return out


def cells(rows: list[Row], *, loss: str, flops: str, size: str, seed: str, arch: str) -> dict[str, dict[str, Any]]:
    """family -> size -> arch -> [(seed, loss, flops)]: rows without a loss are skipped; two rows of
    one (arch, size) with the same seed are an error (an lr sweep whose `selected` column is missing?)."""
    out: dict[str, dict[str, Any]] = {}
    seen: dict[tuple[str, str, str], str] = {}
    for fam, members in split(rows).items():
        for r in members:
            value = number(r, loss)
            if value is None:
                continue
            if value <= 0:
                raise TableError(f"{r.get('__line__', '?')}: column {loss!r} must be a loss > 0, got {r.get(loss)!r}")
            key = (r.get(arch, ""), r.get(size, ""), r.get(seed, "") or r.get("__line__", ""))
            if key in seen:
                raise TableError(f"{r.get('__line__', '?')}: {key[0]} at size {key[1]!r} repeats {seed} {key[2]!r} of "
                                 f"{seen[key]}; a repeated run needs its own {seed!r} (an lr sweep needs a `selected` "
                                 "column)")
            seen[key] = r.get("__line__", "?")
            out.setdefault(fam, {}).setdefault(key[1], {}).setdefault(key[0], []).append(
                (r.get(seed, ""), value, number(r, flops)))
    return out


def size_order(by_size: dict[str, dict[str, list]]) -> list[str]:
    """Sizes from cheapest to largest by the geometric mean of their runs' FLOPs (names are not ordered)."""
    def key(s: str) -> tuple[float, str]:
        logs = [math.log(c) for runs in by_size[s].values() for _, _, c in runs if c and c > 0]
        return (float(np.mean(logs)) if logs else math.inf, s)
    return sorted(by_size, key=key)


def ranking(cell: dict[str, list], *, tie: float, level: float) -> dict[str, Any]:
    """One size of one family: architectures by mean loss with intervals, tiers and ties."""
    entries = []
    for a, runs in cell.items():
        stats = mean_interval([v for _, v, _ in runs], level)
        entries.append({"arch": a, "loss": stats["value"], "ci": stats["ci"], "ci_reason": stats["ci_reason"],
                        "sd": stats["sd"], "n_seeds": stats["n_seeds"], "seeds": [s for s, _, _ in runs],
                        "losses": [v for _, v, _ in runs]})
    entries.sort(key=lambda e: (e["loss"], e["arch"]))
    means = {e["arch"]: e["loss"] for e in entries}
    tier_list = tiers(means, tie)
    tier_of = {a: i + 1 for i, t in enumerate(tier_list) for a in t}
    for i, e in enumerate(entries):
        e.update(rank=i + 1, tier=tier_of[e["arch"]])
    return {"n_archs": len(entries), "ranked": len(entries) >= 2, "best": entries[0]["arch"] if entries else None,
            "entries": entries, "tiers": tier_list, "ties": ties(means, tie)}


def best_changes(order: list[str], ranks: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive sizes whose best architecture differs, among the architectures present at both."""
    out = []
    for s0, s1 in zip(order, order[1:]):
        common = {e["arch"] for e in ranks[s0]["entries"]} & {e["arch"] for e in ranks[s1]["entries"]}
        if len(common) < 2:
            continue
        b0 = next(e["arch"] for e in ranks[s0]["entries"] if e["arch"] in common)
        b1 = next(e["arch"] for e in ranks[s1]["entries"] if e["arch"] in common)
        if b0 != b1:
            out.append({"from_size": s0, "to_size": s1, "before": b0, "after": b1, "compared": sorted(common)})
    return out


def _ols_rows(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intercepts and slopes of y on x, one line per row of the (k, n) arrays."""
    xc = x - x.mean(axis=1, keepdims=True)
    sxx = (xc * xc).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (xc * (y - y.mean(axis=1, keepdims=True))).sum(axis=1) / sxx
    return y.mean(axis=1) - slope * x.mean(axis=1), slope


def _arch_points(by_size: dict[str, dict[str, list]], arch: str) -> list[np.ndarray]:
    """log (C, L) of one architecture's runs, one (n_seeds, 2) array per size."""
    return [np.log([[c, v] for _, v, c in runs[arch]]) for runs in by_size.values()
            if arch in runs and all(c and c > 0 for _, _, c in runs[arch])]


def power_line(groups: list[np.ndarray]) -> dict[str, Any]:
    pts = np.concatenate(groups) if groups else np.empty((0, 2))
    if len(np.unique(pts[:, 0])) < 2:
        return {"status": "not_fittable", "reason": "fewer than 2 distinct FLOPs", "n": len(pts)}
    a, b = _ols_rows(pts[None, :, 0], pts[None, :, 1])
    return {"status": "fitted", "intercept": float(a[0]), "slope": float(b[0]), "n": len(pts),
            "c_range": [float(np.exp(pts[:, 0].min())), float(np.exp(pts[:, 0].max()))]}


def _resample(groups: list[np.ndarray], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n, 2) replicates drawing each size's seeds with replacement (sizes stay fixed)."""
    return np.concatenate([g[rng.integers(0, len(g), (n_boot, len(g)))] for g in groups], axis=1)


def _exp(log_c: float) -> float | None:
    return math.exp(log_c) if math.isfinite(log_c) and abs(log_c) < 700 else None


def crossover(before: list[np.ndarray], after: list[np.ndarray], *, n_boot: int, level: float, seed: int,
              near_decades: float) -> dict[str, Any]:
    """Where the lines of ``before`` (best at the smaller size) and ``after`` cross, with its interval."""
    lines = {"before": power_line(before), "after": power_line(after)}
    if any(v["status"] != "fitted" for v in lines.values()):
        return {"status": "not_fittable", "reason": "a line needs 2 distinct FLOPs", "lines": lines}
    (a0, b0), (a1, b1) = ((v["intercept"], v["slope"]) for v in (lines["before"], lines["after"]))
    out: dict[str, Any] = {"lines": lines, "C": None, "ci": None, "ci_reason": None,
                           "after_better_above": b1 < b0}
    if abs(b0 - b1) <= 1e-12 * max(abs(b0), abs(b1), 1.0):
        return {**out, "status": "parallel", "where": "parallel"}
    log_c = (a1 - a0) / (b0 - b1)
    out.update(status="crossing", C=_exp(log_c), log10_C=log_c / math.log(10))
    rng0, rng1 = (v["c_range"] for v in (lines["before"], lines["after"]))
    lo, hi = max(rng0[0], rng1[0]), min(rng0[1], rng1[1])
    widen = 10**near_decades
    c = math.exp(min(log_c, 700.0))
    out["where"] = ("within" if lo <= c <= hi else
                    "near" if min(rng0[0], rng1[0]) / widen <= c <= max(rng0[1], rng1[1]) * widen else "outside")
    if max(len(g) for g in before + after) < 2:
        out["ci_reason"] = "1 seed per (arch, size): no seed spread to resample"
        return out
    if n_boot <= 0:
        out["ci_reason"] = "n_boot = 0"
        return out
    rng = np.random.default_rng(seed)
    rb, ra = _resample(before, n_boot, rng), _resample(after, n_boot, rng)
    (ia, sa), (ib, sb) = _ols_rows(rb[..., 0], rb[..., 1]), _ols_rows(ra[..., 0], ra[..., 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        reps = (ib - ia) / (sa - sb)
    reps = reps[np.isfinite(reps)]
    out["n_boot_crossing"] = int(len(reps))
    if len(reps) >= 2:
        q = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
        out["ci"] = [_exp(float(q[0])), _exp(float(q[1]))]
    else:
        out["ci_reason"] = "the replicates' lines do not cross"
    return out


def lc_lines(rows: list[Row], runs_dir: Path, *, arch: str, n_col: str, axis: str,
             warmup_frac: float | None) -> dict[str, Any]:
    """Pure L(C) per architecture on its frontier (lc.py), with the compute range the frontier covers."""
    from archscale.analysis.curves import lower_envelope, mean_over_seeds, run_points
    from archscale.analysis.lc import MIN_FRONTIER, fit_pure

    out: dict[str, Any] = {}
    for name in sorted({r.get(arch, "") for r in rows}):
        members = [r for r in rows if r.get(arch, "") == name]
        points = run_points(members, runs_dir, n_col=n_col, axis=axis, warmup_frac=warmup_frac)
        front = lower_envelope(mean_over_seeds(points))  # repeats averaged first, as lc_frontier's
        if len(front) < MIN_FRONTIER:
            out[name] = {"status": "not_fittable", "reason": f"{len(front)} frontier points < {MIN_FRONTIER}"}
            continue
        c = np.array([p["C"] for p in front])
        out[name] = {"status": "fitted", **fit_pure(c, np.array([p["loss"] for p in front])),
                     "c_range": [float(c.min()), float(c.max())], "n_frontier": len(front)}
    return out


def lc_ties(lines: dict[str, Any], tie: float, grid: int = 64) -> dict[str, Any]:
    """Oyedele's rule on the fitted lines: pairs within ``tie`` over their common compute, and tiers."""
    from archscale.analysis.lc import predict_pure

    ok = {a: v for a, v in lines.items() if v.get("status") == "fitted"}
    pairs = []
    for i, a in enumerate(sorted(ok)):
        for b in sorted(ok)[i + 1:]:
            ra, rb = ok[a]["c_range"], ok[b]["c_range"]
            lo, hi = max(ra[0], rb[0]), min(ra[1], rb[1])
            extrapolated = lo > hi
            if extrapolated:
                lo, hi = min(ra[0], rb[0]), max(ra[1], rb[1])
            c = np.geomspace(lo, hi, grid)
            la, lb = predict_pure(ok[a], c), predict_pure(ok[b], c)
            gaps = np.abs(la - lb) / np.minimum(la, lb)
            pairs.append({"a": a, "b": b, "tie": bool(gaps.max() < tie), "max_rel_gap": float(gaps.max()),
                          "rel_gap_lo": float(gaps[0]), "rel_gap_hi": float(gaps[-1]), "c_range": [lo, hi],
                          "extrapolated": extrapolated})
    if not ok:
        return {"pairs": pairs, "at": None, "values_at": {}, "tiers": []}
    at = min(v["c_range"][1] for v in ok.values())
    values = {a: float(predict_pure(v, np.array([at]))[0]) for a, v in ok.items()}
    return {"pairs": pairs, "at": at, "extrapolated": [a for a, v in sorted(ok.items()) if v["c_range"][0] > at],
            "values_at": values, "tiers": tiers(values, tie)}


def _lc_family(rows: list[Row], runs_dir: Path | None, fam: str, *, arch: str, n_col: str, compute: str,
               warmup_frac: float | None, tie: float) -> dict[str, Any]:
    axis = compute_axis(fam) if compute == "auto" else compute
    if runs_dir is None or not Path(runs_dir).is_dir():
        return {"status": "not_available", "reason": f"no learning curves ({runs_dir} is not a folder)",
                "compute": axis}
    if rows and "run" not in rows[0]:
        return {"status": "not_available", "reason": "no `run` column to find learning curves by", "compute": axis}
    lines = lc_lines(rows, Path(runs_dir), arch=arch, n_col=n_col, axis=axis, warmup_frac=warmup_frac)
    return {"status": "fitted", "compute": axis, "lines": lines, **lc_ties(lines, tie)}


def _gains(order: list[str], by_size: dict[str, dict[str, list]], level: float) -> dict[str, list[dict[str, Any]]]:
    """Per architecture, Tay et al.'s gain between each pair of consecutive sizes it has."""
    out: dict[str, list[dict[str, Any]]] = {}
    for a in sorted({a for runs in by_size.values() for a in runs}):
        mine = [s for s in order if a in by_size[s]]
        out[a] = [{"from_size": s0, "to_size": s1, **gain([v for _, v, _ in by_size[s0][a]],
                                                          [v for _, v, _ in by_size[s1][a]], level)}
                  for s0, s1 in zip(mine, mine[1:])]
    return out


def fit_claims(
    rows: list[Row], *, loss: str = "val_loss", flops: str = "train_flops", size: str = "size", seed: str = "seed",
    selected_column: str = "selected", arch: str = "arch", tie: float = TIE, n_boot: int = 2000, level: float = 0.95,
    rng_seed: int = 0, near_decades: float = NEAR_DECADES, runs_dir: Path | None = None,
    n_col: str = "non_embedding_params", compute: str = "auto", warmup_frac: float | None = None,
) -> dict[str, Any]:
    """Every claim per objective family (module doc); ``rows`` are main-grid rows (scans left out)."""
    if not 0 < tie < 1:
        raise ValueError(f"tie must be a fraction in (0, 1) (0.05 = Oyedele's five percent), got {tie}")
    used = selected(rows, selected_column)
    arch_families(used, arch)  # an architecture in two families is an error naming it
    by_family = cells(used, loss=loss, flops=flops, size=size, seed=seed, arch=arch)
    families: dict[str, Any] = {}
    for k, (fam, by_size) in enumerate(by_family.items()):
        order = size_order(by_size)
        ranks = {s: ranking(by_size[s], tie=tie, level=level) for s in order}
        changes = best_changes(order, ranks)
        for j, ch in enumerate(changes):
            ch["crossover"] = crossover(_arch_points(by_size, ch["before"]), _arch_points(by_size, ch["after"]),
                                        n_boot=n_boot, level=level, seed=rng_seed + 1000 * k + j,
                                        near_decades=near_decades)
        archs = sorted({a for runs in by_size.values() for a in runs})
        fam_rows = [r for r in used if r.get(arch, "") in archs and number(r, loss) is not None]
        families[fam] = {
            "label": label(fam), "reference": reference(fam, archs), "archs": archs, "sizes": order,
            "rankings": [{"size": s, **ranks[s]} for s in order],
            "best": {s: ranks[s]["best"] for s in order},
            "best_changes": bool(changes), "changes": changes,
            "lc": _lc_family(fam_rows, runs_dir, fam, arch=arch, n_col=n_col, compute=compute,
                             warmup_frac=warmup_frac, tie=tie),
            "gains": _gains(order, by_size, level),
        }
    return {"law": "claims", "method": METHOD, "tie": tie, "ci_level": level, "near_decades": near_decades,
            "interval": "mean +- Student t over seeds", "families": families,
            "published": {"tay_gain_base_large": TAY_GAINS},
            "n_excluded_not_selected": len(rows) - len(used), "rows": [public(r) for r in used]}
