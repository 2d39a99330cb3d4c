"""Upstream quality against training compute for every run, one line per architecture, one panel
per objective family (span corruption, causal LM, masked LM: their losses are losses of different
tasks, so they never share an axis); each family's reference architecture in black.

The first figure a user looks at after a run: does quality rise with compute for every
architecture, and in what order do they sit within a family? FLOPs on a log axis (a power law is
a line there).
"""

from __future__ import annotations

import sys

from archscale.analysis.family import label
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
    load_summary,
    log_axis,
    main_grid,
    new_figure,
    no_data,
    panel_grid,
    parser,
    save,
)

NAME = "upstream_vs_flops"


def draw(rows: list[dict[str, str]], out_dir: str, *, x: str = "train_flops", y: str = "neg_log_ppl") -> list:
    grid = main_grid(rows)
    points = by_arch(grid, x, y)
    if not points:
        fig, axes = new_figure(height=3.4)
        no_data(axes[0][0], f"no runs with both {x} and {y}")
        return save(fig, out_dir, NAME)
    arch_family, refs = families(grid)
    groups = by_family(points, arch_family)
    if len(groups) == 1:  # one family: one panel of the usual size
        fig, grid_axes = new_figure(height=3.4)
        axes = [grid_axes[0][0]]
    else:
        fig, axes = panel_grid(len(groups), max_cols=3)
    col = colors(list(points), list(refs.values()))
    handles: dict[str, object] = {}
    for ax, (family, archs) in zip(axes, groups.items()):
        for arch in archs:
            pts = points[arch]
            ref = arch == refs.get(family)
            (h,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color="black" if ref else col[arch],
                           lw=2.0 if ref else 1.2, zorder=3 if ref else 2)
            handles[arch_label(arch) + (" (reference)" if ref else "")] = h
        ax.set_title(label(family), pad=3)
        log_axis(ax, "x")
    grid_labels(fig, axes, FLOPS_LABEL, UPSTREAM_LABEL)
    figure_legend(fig, list(handles.values()), list(handles))
    return save(fig, out_dir, NAME)


def main(argv: list[str] | None = None) -> int:
    p = parser(NAME, __doc__.split("\n\n")[0])
    p.add_argument("--x", default="train_flops", help="compute column")
    p.add_argument("--y", default="neg_log_ppl", help="upstream column")
    a = p.parse_args(argv)
    draw(load_summary(a.summary), a.out_dir, x=a.x, y=a.y)
    return 0


if __name__ == "__main__":
    sys.exit(main())
