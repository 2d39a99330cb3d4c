"""Tay et al. Fig. 2: each architecture's upstream scaling against compute, with the fitted power
law, and the vanilla Transformer in grey in every panel as the reference it is judged against."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from archscale.figures.common import (
    FLOPS_LABEL, REFERENCE_ARCH, UPSTREAM_LABEL, arch_label, by_arch, colors, figure_legend, grid_labels, load_fit,
    load_summary, log_axis, main_grid, new_figure, no_data, panel_grid, panel_text_size, parser, save,
)

NAME = "scaling_per_arch"


def draw_scaling(rows: list[dict[str, str]], slopes: dict[str, Any] | None, out_dir: str, *, name: str, y: str,
                 slope: str, ylabel: str, negate: bool, x: str = "train_flops") -> list:
    """One panel per architecture (the reference alone when it is the only one)."""
    points = by_arch(main_grid(rows), x, y)
    if not points:
        fig, axes = new_figure(height=2.6)
        no_data(axes[0][0], f"no runs with {y} in this preset")
        return save(fig, out_dir, name)
    archs = [a for a in points if a != REFERENCE_ARCH] or list(points)
    fig, axes = panel_grid(len(archs), sharex=True, sharey=True)
    col = colors(list(points))
    ref = points.get(REFERENCE_ARCH)
    sign = -1.0 if negate else 1.0
    for ax, arch in zip(axes, archs):
        if ref and arch != REFERENCE_ARCH:
            ax.plot([p[0] for p in ref], [p[1] for p in ref], "o-", color="0.6", lw=1.0, ms=3, label=arch_label(REFERENCE_ARCH))
        pts = points[arch]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o", color=col[arch], ms=4)
        fit = ((slopes or {}).get("groups", {}).get(arch, {}) or {}).get(slope, {})
        if fit.get("status") == "fitted":
            xs = np.geomspace(min(p[0] for p in pts), max(p[0] for p in pts), 50)
            line = np.exp(fit["intercept"]) * xs ** (-fit["alpha"] if negate else fit["alpha"])
            ax.plot(xs, sign * line, "-", color=col[arch], lw=1.2)
            ax.text(0.04, 0.92, f"$\\alpha$ = {fit['alpha']:.3f}", transform=ax.transAxes, fontsize=panel_text_size(ax),
                    va="top")
        else:
            ax.text(0.04, 0.92, "not fittable", transform=ax.transAxes, fontsize=panel_text_size(ax), va="top", color="0.4")
        ax.set_title(arch_label(arch), pad=3)
        log_axis(ax, "x")
        if not negate:  # D itself follows the power law: log-log makes the fit a line
            log_axis(ax, "y")
    grid_labels(fig, axes, FLOPS_LABEL, ylabel)
    handles = [h for h in axes[0].get_lines() if h.get_label() == arch_label(REFERENCE_ARCH)][:1]
    figure_legend(fig, handles, [f"{arch_label(REFERENCE_ARCH)} (reference)"] if handles else [])
    return save(fig, out_dir, name)


def main(argv: list[str] | None = None) -> int:
    p = parser(NAME, __doc__.split("\n\n")[0])
    a = p.parse_args(argv)
    draw_scaling(load_summary(a.summary), load_fit(a.fits_dir, "slopes"), a.out_dir, name=NAME, y="neg_log_ppl",
                 slope="alpha_F_U", ylabel=UPSTREAM_LABEL.replace("upstream: ", ""), negate=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
