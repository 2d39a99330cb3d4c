"""Oyedele's L(C) plot per architecture: every learning curve (thin), their lower envelope (the
compute-efficient frontier, dots) and both fitted laws, L = (C_c/C)^alpha (dashed) and
L = E + (C_c/C)^alpha (solid). Log-log, where the pure power law is a straight line."""

from __future__ import annotations

import sys

import numpy as np

from archscale.analysis.curves import compute_of
from archscale.analysis.lc import predict_offset, predict_pure
from archscale.analysis.table import number
from archscale.figures.common import (
    arch_label, colors, figure_legend, grid_labels, load_curves, load_fit, log_axis, new_figure, no_data, panel_grid,
    panel_text_size, parser, save,
)

NAME = "lc_frontier"


def draw(fit: dict | None, runs_dir: str, out_dir: str) -> list:
    groups = (fit or {}).get("groups", {})
    if not groups:
        fig, axes = new_figure(height=2.6)
        no_data(axes[0][0], "L(C) not fitted (no fits/lc_frontier.json)")
        return save(fig, out_dir, NAME)
    axis = fit.get("compute", "flops")
    rows_by_arch: dict[str, list[dict[str, str]]] = {}
    for r in fit.get("rows", []):
        rows_by_arch.setdefault(r.get("arch", "all"), []).append(r)
    col = colors(list(groups))
    fig, axes = panel_grid(len(groups), sharey=True)
    handles: dict[str, object] = {}
    for ax, (arch, g) in zip(axes, groups.items()):
        members = rows_by_arch.get(arch, [])
        curves = load_curves(runs_dir, members)
        for r in members:
            n = number(r, "non_embedding_params") or 0.0
            pts = curves.get(r.get("run", ""), [])
            (h,) = ax.plot([compute_of(p, n, axis) for p in pts], [p["loss"] for p in pts], "-", color="0.7", lw=0.7)
            handles.setdefault("learning curves", h)
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
            ax.text(0.04, 0.04, f"pure: $\\alpha_C$ = {pure['alpha_C']:.3f}\nwith E: $\\alpha_C$ = {off['alpha_C']:.3f}, E = {off['E']:.2f}",
                    transform=ax.transAxes, ha="left", va="bottom", fontsize=panel_text_size(ax, 6.5))
        else:
            ax.text(0.97, 0.95, f"not fittable:\n{g.get('reason', '')}", transform=ax.transAxes, ha="right", va="top",
                    fontsize=panel_text_size(ax, 6.5), wrap=True)
        ax.set_title(arch_label(arch), pad=3)
        log_axis(ax, "x")
        log_axis(ax, "y")
    xlabel = "compute C = 6ND (FLOPs)" if axis == "6nd" else "training compute C (FLOPs)"
    grid_labels(fig, axes, xlabel, "validation loss (nats/token)")
    figure_legend(fig, list(handles.values()), list(handles))
    return save(fig, out_dir, NAME)


def main(argv: list[str] | None = None) -> int:
    a = parser(NAME, __doc__.split("\n\n")[0]).parse_args(argv)
    draw(load_fit(a.fits_dir, "lc_frontier"), a.runs_dir, a.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
