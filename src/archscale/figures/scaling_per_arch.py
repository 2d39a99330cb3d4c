"""Tay et al. Fig. 2: each architecture's upstream scaling against compute, with the fitted power
law, and its objective family's reference architecture in grey in its panel (the vanilla
encoder-decoder Transformer for span corruption, as Tay et al.; GPT-2 for causal LMs, as Oyedele;
BERT for masked LMs): a loss is only set beside a loss of the same task (analysis/family.py)."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from archscale.figures.common import (
    FLOPS_LABEL,
    UPSTREAM_LABEL,
    arch_label,
    by_arch,
    by_family,
    colors,
    families,
    figure_legend,
    grid_labels,
    load_fit,
    load_summary,
    log_axis,
    main_grid,
    new_figure,
    no_data,
    panel_grid,
    panel_text_size,
    parser,
    save,
    share_within,
)

NAME = "scaling_per_arch"


def draw_scaling(rows: list[dict[str, str]], slopes: dict[str, Any] | None, out_dir: str, *, name: str, y: str,
                 slope: str, ylabel: str, negate: bool, x: str = "train_flops") -> list:
    """One panel per architecture other than its family's reference, families in order (the
    reference alone when it is the only one of its family); each panel's grey line is the reference
    of that panel's family. The y axis is shared within a family only."""
    grid = main_grid(rows)
    points = by_arch(grid, x, y)
    if not points:
        fig, axes = new_figure(height=2.6)
        no_data(axes[0][0], f"no runs with {y} in this preset")
        return save(fig, out_dir, name)
    arch_family, refs = families(grid)
    panels: list[tuple[str, str]] = []  # (family, arch)
    for family, archs in by_family(points, arch_family).items():
        ref = refs.get(family)
        panels += [(family, a) for a in ([a for a in archs if a != ref] or archs)]
    fig, axes = panel_grid(len(panels), sharex=True)
    share_within(axes, [f for f, _ in panels], "y")
    col = colors(list(points), list(refs.values()))
    sign = -1.0 if negate else 1.0
    handles: dict[str, Any] = {}
    for ax, (family, arch) in zip(axes, panels):
        ref_arch = refs.get(family)
        ref = points.get(ref_arch) if ref_arch != arch else None
        if ref:
            (h,) = ax.plot([p[0] for p in ref], [p[1] for p in ref], "o-", color="0.6", lw=1.0, ms=3,
                           label=arch_label(ref_arch))
            handles.setdefault(f"{arch_label(ref_arch)} (reference)", h)
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
            ax.text(0.04, 0.92, "not fittable", transform=ax.transAxes, fontsize=panel_text_size(ax),
                    va="top", color="0.4")
        ax.set_title(arch_label(arch), pad=3)
        log_axis(ax, "x")
        if not negate:  # D itself follows the power law: log-log makes the fit a line
            log_axis(ax, "y")
    grid_labels(fig, axes, FLOPS_LABEL, ylabel)
    figure_legend(fig, list(handles.values()), list(handles))
    return save(fig, out_dir, name)


def main(argv: list[str] | None = None) -> int:
    p = parser(NAME, __doc__.split("\n\n")[0])
    a = p.parse_args(argv)
    draw_scaling(load_summary(a.summary), load_fit(a.fits_dir, "slopes"), a.out_dir, name=NAME, y="neg_log_ppl",
                 slope="alpha_F_U", ylabel=UPSTREAM_LABEL.replace("upstream: ", ""), negate=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
