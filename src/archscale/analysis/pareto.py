"""Pareto frontiers within each objective family, and "tiered" frontiers within one architecture.

A run is on the frontier when no other run reaches at least its quality at no more cost (cost =
training FLOPs or parameters; quality = upstream U or downstream D, higher is better). Upstream
quality is a loss of the family's task (span corruption, causal or masked LM: family.py), so the
upstream frontiers are drawn per family; downstream (SuperGLUE) scores mean the same for every run,
so their frontiers are given per family and across all runs (``cross_family``). Within one
architecture, a larger run that is not better than some smaller one of the same architecture
makes the frontier "tiered" (Oyedele 2021 saw this for Reformer): that run costs more for nothing.

Repeats of a run (`<run>+s<seed>`, runs.py) make one point, the mean of their cost and of their
quality, named by the id without the seed and carrying ``n_seeds``: as separate points, the luckiest
repeat would enter the frontier (or hide a tier) by its seed alone. A table without repeats gives
the same file as before (no ``n_seeds``).
"""

from __future__ import annotations

import math
from typing import Any

from archscale.analysis.curves import repeat_of
from archscale.analysis.family import family_of, references, split
from archscale.analysis.table import Row, groups, number, public


def frontier(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """(cost, quality, name) points that no cheaper-or-equal point matches or beats, by cost."""
    out: list[tuple[float, float, str]] = []
    best = float("-inf")
    for cost, quality, name in sorted(points, key=lambda p: (p[0], -p[1], p[2])):
        if quality > best:
            out.append((cost, quality, name))
            best = quality
    return out


def tiers(points: list[tuple[float, float, str]]) -> list[dict[str, Any]]:
    """Runs not better than a cheaper run of the same architecture, each with the run it fails to beat."""
    out = []
    ordered = sorted(points, key=lambda p: (p[0], p[2]))
    for j, (cost, quality, name) in enumerate(ordered):
        cheaper = [p for p in ordered[:j] if p[0] < cost and p[1] >= quality]
        if cheaper:
            best = max(cheaper, key=lambda p: (p[1], -p[0]))
            out.append({"run": name, "cost": cost, "quality": quality, "not_better_than": best[2],
                        "cheaper_cost": best[0], "cheaper_quality": best[1]})
    return out


def _repeats(rows: list[Row]) -> dict[Any, list[Row]]:
    """Rows by run without its seed, in table order; a row without a run id is its own run."""
    out: dict[Any, list[Row]] = {}
    for i, r in enumerate(rows):
        out.setdefault(repeat_of(r["run"])[0] if r.get("run") else ("row", i), []).append(r)
    return out


def _seeded(rows: list[Row]) -> bool:
    return any(len({r["run"] for r in same}) > 1 for same in _repeats(rows).values())


def mean_points(rows: list[Row], cost: str, quality: str) -> tuple[list[tuple[float, float, str]], dict[str, int]]:
    """(cost, quality, name) per run with both values, and the repeats behind each name: repeats are
    averaged into one point named by the id without the seed; a lone run keeps its name and values."""
    pts, seeds = [], {}
    for key, same in _repeats(rows).items():
        vals = [(number(r, cost), number(r, quality), r.get("run", r.get("__line__", ""))) for r in same]
        vals = [v for v in vals if v[0] is not None and v[1] is not None]
        if not vals:
            continue
        point = vals[0] if len(vals) == 1 else (math.fsum(v[0] for v in vals) / len(vals),
                                                math.fsum(v[1] for v in vals) / len(vals), key)
        pts.append(point)
        seeds[point[2]] = len(vals)
    return pts, seeds


def _fronts(rows: list[Row], present: set[str], arch_of: dict[str, str],
            keys: dict[str, tuple[str, str]], seeded: bool) -> dict[str, Any]:
    out = {}
    for key, (ccol, qcol) in keys.items():
        pts, n_seeds = mean_points(rows, ccol, qcol) if {qcol, ccol} <= present else ([], {})
        out[key] = {"cost": ccol, "quality": qcol, "n": len(pts),
                    "frontier": [{"run": n, "arch": arch_of.get(n, ""), "cost": c, "quality": q,
                                  **({"n_seeds": n_seeds[n]} if seeded else {})}
                                 for c, q, n in frontier(pts)]}
    return out


def fit_pareto(
    rows: list[Row], *, flops: str = "train_flops", params: str = "params", upstream: str = "neg_log_ppl",
    downstream: str = "downstream_avg", group: str | None = "arch",
) -> dict[str, Any]:
    """Frontiers (upstream/downstream x FLOPs/params) per objective family, downstream ones also
    across families, and tiers per group."""
    present = set(rows[0]) if rows else set()
    arch_of = {r.get("run", ""): r.get(group, "") if group else "all" for r in rows}
    arch_of.update({repeat_of(r)[0]: g for r, g in list(arch_of.items()) if r})
    seeded = _seeded(rows)
    keys = {f"{q}_vs_{c}": (ccol, qcol) for q, qcol in (("upstream", upstream), ("downstream", downstream))
            for c, ccol in (("flops", flops), ("params", params))}
    fams = split(rows)
    fronts = {fam: _fronts(members, present, arch_of, keys, seeded) for fam, members in fams.items()}
    cross = _fronts(rows, present, arch_of, {k: v for k, v in keys.items() if k.startswith("downstream")}, seeded)
    per_group: dict[str, Any] = {}
    for name, members in groups(rows, group).items():
        own = {family_of(r) for r in members}
        per_group[name] = {}
        for key, (ccol, qcol) in keys.items():
            pts, counts = mean_points(members, ccol, qcol) if {qcol, ccol} <= present else ([], {})
            t = tiers(pts)
            if seeded:
                t = [{**x, "n_seeds": counts[x["run"]], "cheaper_n_seeds": counts[x["not_better_than"]]} for x in t]
            on = sorted(f["run"] for fam in own for f in fronts[fam][key]["frontier"] if arch_of.get(f["run"]) == name)
            per_group[name][key] = {"n": len(pts),
                                    "tiered": bool(t), "tiers": t, "on_family_frontier": on}
    return {"law": "pareto",
            "method": ("non-dominated runs by (cost, quality) within each objective family (downstream also across "
                       "families); tiers: a run no better than a cheaper run of its group"),
            "frontiers": fronts, "cross_family": cross,
            "references": references(rows, group) if group else {},
            "groups": per_group,
            "tiered_groups": sorted(g for g, v in per_group.items() if v.get("upstream_vs_flops", {}).get("tiered")),
            "rows": [public(r) for r in rows]}
