"""Pareto frontiers within each objective family, and "tiered" frontiers within one architecture.

A run is on the frontier when no other run reaches at least its quality at no more cost (cost =
training FLOPs or parameters; quality = upstream U or downstream D, higher is better). Upstream
quality is a loss of the family's task (span corruption, causal or masked LM: family.py), so the
upstream frontiers are drawn per family; downstream (SuperGLUE) scores mean the same for every run,
so their frontiers are given per family and across all runs (``cross_family``). Within one
architecture, a larger run that is not better than some smaller one of the same architecture
makes the frontier "tiered" (Oyedele 2021 saw this for Reformer): that run costs more for nothing.
"""

from __future__ import annotations

from typing import Any

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


def _points(rows: list[Row], cost: str, quality: str) -> list[tuple[float, float, str]]:
    pts = []
    for r in rows:
        c, q = number(r, cost), number(r, quality)
        if c is not None and q is not None:
            pts.append((c, q, r.get("run", r.get("__line__", ""))))
    return pts


def _fronts(rows: list[Row], present: set[str], arch_of: dict[str, str],
            keys: dict[str, tuple[str, str]]) -> dict[str, Any]:
    out = {}
    for key, (ccol, qcol) in keys.items():
        pts = _points(rows, ccol, qcol) if {qcol, ccol} <= present else []
        out[key] = {"cost": ccol, "quality": qcol, "n": len(pts),
                    "frontier": [{"run": n, "arch": arch_of.get(n, ""), "cost": c, "quality": q}
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
    keys = {f"{q}_vs_{c}": (ccol, qcol) for q, qcol in (("upstream", upstream), ("downstream", downstream))
            for c, ccol in (("flops", flops), ("params", params))}
    fams = split(rows)
    fronts = {fam: _fronts(members, present, arch_of, keys) for fam, members in fams.items()}
    cross = _fronts(rows, present, arch_of, {k: v for k, v in keys.items() if k.startswith("downstream")})
    per_group: dict[str, Any] = {}
    for name, members in groups(rows, group).items():
        own = {family_of(r) for r in members}
        per_group[name] = {}
        for key, (ccol, qcol) in keys.items():
            t = tiers(_points(members, ccol, qcol) if {qcol, ccol} <= present else [])
            on = sorted(f["run"] for fam in own for f in fronts[fam][key]["frontier"] if arch_of.get(f["run"]) == name)
            per_group[name][key] = {"n": len(_points(members, ccol, qcol)) if {qcol, ccol} <= present else 0,
                                    "tiered": bool(t), "tiers": t, "on_family_frontier": on}
    return {"law": "pareto",
            "method": ("non-dominated runs by (cost, quality) within each objective family (downstream also across "
                       "families); tiers: a run no better than a cheaper run of its group"),
            "frontiers": fronts, "cross_family": cross,
            "references": references(rows, group) if group else {},
            "groups": per_group,
            "tiered_groups": sorted(g for g, v in per_group.items() if v.get("upstream_vs_flops", {}).get("tiered")),
            "rows": [public(r) for r in rows]}
