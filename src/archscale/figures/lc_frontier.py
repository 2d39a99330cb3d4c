"""Oyedele's L(C) plot per architecture: every learning curve (thin), their lower envelope past
each run's lr warm-up (the compute-efficient frontier, dots) and both fitted laws,
L = (C_c/C)^alpha (dashed) and L = E + (C_c/C)^alpha (solid). Log-log, where the pure power law is
a straight line. Each panel uses its objective family's compute axis (analysis/family.py): Oyedele's
C = 6 N B S (N non-embedding parameters) for causal and masked LMs, measured training FLOPs for span
corruption (Tay et al.); the same envelope on the other axis is drawn beside it as open circles. The
family's reference (GPT-2 for causal LMs, as Oyedele; the vanilla Transformer for span corruption;
BERT for masked LMs) has its envelope dotted in grey in every other panel of its family; the y axis
is shared within a family only."""

from __future__ import annotations

import sys

import numpy as np

from archscale.analysis.curves import compute_of
from archscale.analysis.family import NO_FAMILY, order
from archscale.analysis.lc import predict_offset, predict_pure
from archscale.analysis.table import number
from archscale.figures.common import (
    arch_label,
    colors,
    figure_legend,
    grid_labels,
    load_curves,
    load_fit,
    log_axis,
    new_figure,
    no_data,
    panel_grid,
    panel_text_size,
    parser,
    save,
    share_within,
)

NAME = "lc_frontier"
AXIS_WORDS = {"6nd": "C = 6ND", "flops": "C = measured FLOPs"}


def _xlabel(axes_used: set[str]) -> str:
    if axes_used == {"6nd"}:
        return "compute C = 6ND (FLOPs; N non-embedding params); open circles: frontier vs measured FLOPs"
    if axes_used == {"flops"}:
        return "training compute C, measured (FLOPs); open circles: frontier vs 6ND"
    return "compute C (FLOPs): 6ND (causal, masked LMs) or measured (span); open circles: frontier on the other axis"


def draw(fit: dict | None, runs_dir: str, out_dir: str) -> list:
    groups = (fit or {}).get("groups", {})
    if not groups:
        fig, axes = new_figure(height=2.6)
        no_data(axes[0][0], "L(C) not fitted (no fits/lc_frontier.json)")
        return save(fig, out_dir, NAME)
    default_axis = fit.get("compute", "flops") if fit.get("compute") in ("flops", "6nd") else "flops"
    fam_of = {a: g.get("family", NO_FAMILY) for a, g in groups.items()}
    families = fit.get("families", {})
    refs = {f: families[f].get("reference") for f in order(families)}  # family order: span, clm, mlm
    rank = {f: i for i, f in enumerate(order(fam_of.values()))}
    archs = sorted(groups, key=lambda a: (rank[fam_of[a]], a))
    rows_by_arch: dict[str, list[dict[str, str]]] = {}
    for r in fit.get("rows", []):
        rows_by_arch.setdefault(r.get("arch", "all"), []).append(r)
    col = colors(list(groups), [r for r in refs.values() if r])
    fig, axes = panel_grid(len(archs))
    share_within(axes, [fam_of[a] for a in archs], "y")
    handles: dict[str, object] = {}
    used: set[str] = set()
    mixed = len({groups[a].get("compute", default_axis) for a in archs}) > 1
    for ax, arch in zip(axes, archs):
        g = groups[arch]
        axis = g.get("compute", default_axis)
        used.add(axis)
        members = rows_by_arch.get(arch, [])
        curves = load_curves(runs_dir, members)
        for r in members:
            n = number(r, "non_embedding_params") or 0.0
            pts = curves.get(r.get("run", ""), [])
            (h,) = ax.plot([compute_of(p, n, axis) for p in pts], [p["loss"] for p in pts], "-", color="0.7", lw=0.7)
            handles.setdefault("learning curves", h)
        ref = refs.get(fam_of[arch])
        ref_front = groups.get(ref, {}).get("frontier", []) if ref and ref != arch else []
        if ref_front:
            (h,) = ax.plot([f[0] for f in ref_front], [f[1] for f in ref_front], ":", color="0.45", lw=1.1)
            handles.setdefault("frontier of the family's reference", h)
        alt = g.get("alt_compute", {}).get("frontier", [])
        if alt:
            h = ax.scatter([f[0] for f in alt], [f[1] for f in alt], s=11, facecolors="none", edgecolors=col[arch],
                           linewidths=0.6, zorder=2)
            handles.setdefault("frontier, other C axis", h)
        front = g.get("frontier", [])
        if front:
            h = ax.scatter([f[0] for f in front], [f[1] for f in front], s=9, color=col[arch], zorder=3)
            handles.setdefault("frontier", h)
        if g.get("status") == "fitted":
            c = np.geomspace(front[0][0], front[-1][0], 80)
            pure = {k: v["value"] for k, v in g["pure"]["params"].items()}
            off = {k: v["value"] for k, v in g["offset"]["params"].items()}
            (h1,) = ax.plot(c, predict_pure(pure, c), "--", color="0.1", lw=1.0)
            (h2,) = ax.plot(c, predict_offset(off, c), "-", color="0.1", lw=1.0)
            handles.setdefault(r"$(C_c/C)^{\alpha_C}$", h1)
            handles.setdefault(r"$E + (C_c/C)^{\alpha_C}$", h2)
            ax.text(0.04, 0.04, f"pure: $\\alpha_C$ = {pure['alpha_C']:.3f}\n"
                                f"with E: $\\alpha_C$ = {off['alpha_C']:.3f}, E = {off['E']:.2f}",
                    transform=ax.transAxes, ha="left", va="bottom", fontsize=panel_text_size(ax, 6.5))
        else:
            ax.text(0.97, 0.85, f"not fittable:\n{g.get('reason', '')}", transform=ax.transAxes, ha="right", va="top",
                    fontsize=panel_text_size(ax, 6.5), wrap=True)
        if mixed:  # panels on different axes: each says which
            ax.text(0.97, 0.97, AXIS_WORDS[axis], transform=ax.transAxes, ha="right", va="top",
                    fontsize=panel_text_size(ax, 6.5), color="0.3")
        ax.set_title(arch_label(arch), pad=3)
        log_axis(ax, "x")
        log_axis(ax, "y")
    grid_labels(fig, axes, _xlabel(used), "validation loss (nats/token)")
    figure_legend(fig, list(handles.values()), list(handles))
    return save(fig, out_dir, NAME)


def main(argv: list[str] | None = None) -> int:
    a = parser(NAME, __doc__.split("\n\n")[0]).parse_args(argv)
    draw(load_fit(a.fits_dir, "lc_frontier"), a.runs_dir, a.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
