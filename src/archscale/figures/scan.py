"""Shared drawing for the depth and width scans (Tay et al. Figs. 4-5): runs whose `scan` column
is `depth` or `width`, against their architecture's main size grid, upstream and downstream."""

from __future__ import annotations

from archscale.figures.common import (
    DOWNSTREAM_LABEL,
    FLOPS_LABEL,
    UPSTREAM_LABEL,
    arch_label,
    by_arch,
    colors,
    families,
    figure_legend,
    log_axis,
    main_grid,
    new_figure,
    no_data,
    save,
)


def draw_scan(rows: list[dict[str, str]], out_dir: str, *, kind: str, name: str, x: str = "train_flops") -> list:
    """Scan runs (solid, labelled with their layers or width) beside the grid runs (dashed)."""
    scan = [r for r in rows if r.get("scan") == kind]
    grid = main_grid(rows)
    fig, axes = new_figure(2, 1, height=3.2)
    handles, labels = [], []
    col = colors(sorted({r.get("arch", "") for r in rows}), list(families(grid)[1].values()))
    tag = "n_layers" if kind == "depth" else "d_model"
    for ax, (y, ylabel) in zip(axes[0], (("neg_log_ppl", UPSTREAM_LABEL), ("downstream_avg", DOWNSTREAM_LABEL))):
        points = by_arch(scan, x, y)
        if not points:
            no_data(ax, f"no {kind}-scan runs with {y} in this preset")
            ax.set_title(ylabel.split(":")[0], pad=3)
            continue
        base = by_arch(grid, x, y)
        for arch, pts in points.items():
            if arch in base:
                ax.plot([p[0] for p in base[arch]], [p[1] for p in base[arch]], "--",
                        color=col[arch], lw=0.9, alpha=0.6)
            (h,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=col[arch])
            for px, py, r in pts:
                ax.annotate(r.get(tag, ""), (px, py), textcoords="offset points", xytext=(3, -8),
                            fontsize=6.5, color="0.3")
            if arch_label(arch) not in labels:
                handles.append(h)
                labels.append(arch_label(arch))
        log_axis(ax, "x")
        ax.set_xlabel(FLOPS_LABEL)
        ax.set_ylabel(ylabel, fontsize=8)
    if labels:
        labels = [f"{lab} ({kind} scan; dashed: size grid; labels: {tag})" if i == 0 else lab
                  for i, lab in enumerate(labels)]
    figure_legend(fig, handles, labels)
    return save(fig, out_dir, name)
