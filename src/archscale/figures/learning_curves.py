"""Validation loss against training compute for every run, one panel per architecture, sizes
from dark to light (one colour per size in every panel, one legend); scan runs dotted. Log-log,
where a power law is a line. Panels are in objective-family order and share the loss axis only
within a family (span-corruption, causal and masked-LM losses are losses of different tasks)."""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt

from archscale.analysis.table import number
from archscale.figures.common import (
    FLOPS_LABEL,
    arch_label,
    by_family,
    families,
    figure_legend,
    grid_labels,
    load_curves,
    load_summary,
    log_axis,
    new_figure,
    no_data,
    panel_grid,
    parser,
    save,
    share_within,
)

NAME = "learning_curves"


def draw(rows: list[dict[str, str]], runs_dir: str, out_dir: str) -> list:
    curves = load_curves(runs_dir, rows)
    by_arch: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        if r.get("run") in curves and curves[r["run"]]:
            by_arch.setdefault(r.get("arch", ""), []).append(r)
    if not by_arch:
        fig, axes = new_figure(height=2.6)
        no_data(axes[0][0], f"no learning curves under {runs_dir}")
        return save(fig, out_dir, NAME)
    arch_family, _ = families([r for members in by_arch.values() for r in members])
    ordered = [(f, a) for f, archs in by_family(by_arch, arch_family).items() for a in archs]
    fig, axes = panel_grid(len(ordered))
    share_within(axes, [f for f, _ in ordered], "y")
    # one colour per size of the grid, the same in every panel, smallest to largest: one legend
    smallest: dict[str, float] = {}
    for members in by_arch.values():
        for r in members:
            if not r.get("scan"):
                size = r.get("size", "")
                smallest[size] = min(smallest.get(size, float("inf")), number(r, "params") or 0.0)
    sizes = sorted(smallest, key=lambda s: (smallest[s], s))
    cmap = plt.get_cmap("viridis")
    color = {s: cmap(0.85 * i / max(1, len(sizes) - 1)) for i, s in enumerate(sizes)}
    handles: dict[str, object] = {}
    for ax, (_, arch) in zip(axes, ordered):
        members = by_arch[arch]
        members.sort(key=lambda r: (bool(r.get("scan")), number(r, "params") or 0.0))
        for r in members:
            pts = curves[r["run"]]
            scan = bool(r.get("scan"))
            (h,) = ax.plot([p["flops"] for p in pts], [p["loss"] for p in pts], ":" if scan else "-",
                           color="0.55" if scan else color[r.get("size", "")], lw=1.0)
            handles.setdefault("scan runs" if scan else r.get("size", ""), h)
        ax.set_title(arch_label(arch), pad=3)
        log_axis(ax, "x")
        log_axis(ax, "y")
    grid_labels(fig, axes, FLOPS_LABEL, "validation loss (nats/token)")
    order = [s for s in sizes if s in handles] + (["scan runs"] if "scan runs" in handles else [])
    figure_legend(fig, [handles[k] for k in order], order)
    return save(fig, out_dir, NAME)


def main(argv: list[str] | None = None) -> int:
    a = parser(NAME, __doc__.split("\n\n")[0]).parse_args(argv)
    draw(load_summary(a.summary), a.runs_dir, a.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
