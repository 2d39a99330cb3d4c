"""Tay et al. Fig. 1: Pareto frontiers, quality against training FLOPs. Upstream: one panel per
objective family (span-corruption, causal and masked-LM losses are losses of different tasks, so
each family has its own frontier); downstream (SuperGLUE average, one measure for every run): one
panel over all runs. Frontier runs (no cheaper run is as good) are ringed and joined; the colour
says which architecture owns each stretch of the frontier."""

from __future__ import annotations

import sys

from archscale.analysis.family import label
from archscale.analysis.pareto import frontier, mean_points
from archscale.figures.common import (
    DOWNSTREAM_LABEL,
    FLOPS_LABEL,
    UPSTREAM_LABEL,
    arch_label,
    by_arch,
    colors,
    families,
    figure_legend,
    load_summary,
    log_axis,
    main_grid,
    new_figure,
    no_data,
    parser,
    save,
)

NAME = "pareto"


def draw(rows: list[dict[str, str]], out_dir: str, *, x: str = "train_flops") -> list:
    rows = main_grid(rows)
    arch_family, refs = families(rows)
    fams = list(refs) or [""]
    # (title, y column, y label, rows): one upstream panel per family, then downstream over all
    panels = [(f"upstream: {label(f)}" if f else "upstream", "neg_log_ppl", UPSTREAM_LABEL,
               [r for r in rows if arch_family.get(r.get("arch", "")) == f] if f else rows) for f in fams]
    panels.append(("downstream: all families", "downstream_avg", DOWNSTREAM_LABEL, rows))
    fig, axes = new_figure(len(panels), 1, height=3.2 if len(panels) <= 2 else 2.9)
    col = colors(sorted({r.get("arch", "") for r in rows}), list(refs.values()))
    handles, labels = [], []
    for ax, (title, y, ylabel, members) in zip(axes[0], panels):
        ax.set_title(title, pad=3, fontsize=8)
        points = by_arch(members, x, y)
        if not points:
            no_data(ax, f"no {y} in this preset\n(no run was {'fine-tuned' if y == 'downstream_avg' else 'evaluated'})")
            continue
        for arch, pts in points.items():
            h = ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=16, color=col[arch], zorder=2)
            if arch_label(arch) not in labels:
                handles.append(h)
                labels.append(arch_label(arch))
        # every repeat is drawn; the frontier joins the means of each run's repeats (fits/pareto.json's points)
        front = frontier(mean_points(members, x, y)[0])
        ax.plot([f[0] for f in front], [f[1] for f in front], "--", color="0.2", lw=0.9, zorder=1)
        ax.scatter([f[0] for f in front], [f[1] for f in front], s=60, facecolors="none", edgecolors="0.1",
                   lw=0.9, zorder=3)
        log_axis(ax, "x")
        ax.set_xlabel(FLOPS_LABEL, fontsize=8)
        ax.set_ylabel(ylabel.split(": ", 1)[-1] if len(panels) > 2 else ylabel, fontsize=7.5 if len(panels) > 2 else 8)
    figure_legend(fig, handles, labels)
    return save(fig, out_dir, NAME)


def main(argv: list[str] | None = None) -> int:
    a = parser(NAME, __doc__.split("\n\n")[0]).parse_args(argv)
    draw(load_summary(a.summary), a.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
