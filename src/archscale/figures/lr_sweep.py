"""The learning-rate sweep: validation loss against peak learning rate, one panel per swept
architecture, one line per size (mean over seeds, bars from the lowest to the highest seed), the lr
each size trains with in the fits ringed. A sweep whose best lr sits at an end of its range says the
range was too narrow. Reads results/sweep.csv (collect); panels share the loss axis within a family."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.pyplot as plt

from archscale.analysis.table import number, read_csv
from archscale.figures.common import (
    arch_label,
    by_family,
    families,
    figure_legend,
    grid_labels,
    log_axis,
    new_figure,
    no_data,
    panel_grid,
    parser,
    save,
    share_within,
)

NAME = "lr_sweep"


def points(rows: list[dict]) -> dict[str, dict[str, list[tuple[float, float, float, float, bool]]]]:
    """arch -> size -> [(lr, mean, lowest, highest val_loss over seeds, selected)] sorted by lr, for the
    (arch, size) pairs trained at two or more lrs."""
    groups: dict[tuple[str, str, float], list[dict]] = {}
    for r in rows:
        lr, loss = number(r, "lr"), number(r, "val_loss")
        if lr is not None and loss is not None:
            groups.setdefault((r["arch"], r["size"], lr), []).append(r)
    out: dict[str, dict[str, list]] = {}
    for (arch, size, lr), members in groups.items():
        losses = [number(r, "val_loss") for r in members]
        out.setdefault(arch, {}).setdefault(size, []).append(
            (lr, sum(losses) / len(losses), min(losses), max(losses), members[0].get("selected") == "yes"))
    return {a: {s: sorted(p) for s, p in sizes.items() if len(p) > 1}
            for a, sizes in sorted(out.items()) if any(len(p) > 1 for p in sizes.values())}


def draw(rows: list[dict], out_dir: str) -> list:
    swept = points(rows)
    if not swept:
        fig, axes = new_figure(height=2.6)
        no_data(axes[0][0], "no learning-rate sweep in this preset (sweeps: in params)")
        return save(fig, out_dir, NAME)
    arch_family, _ = families([r for r in rows if r.get("arch") in swept])
    ordered = [(f, a) for f, archs in by_family(swept, arch_family).items() for a in archs]
    fig, axes = panel_grid(len(ordered))
    share_within(axes, [f for f, _ in ordered], "y")
    params = {r["size"]: number(r, "params") or 0.0 for r in rows}
    sizes = sorted({s for per in swept.values() for s in per}, key=lambda s: (params.get(s, 0.0), s))
    cmap = plt.get_cmap("viridis")
    color = {s: cmap(0.85 * i / max(1, len(sizes) - 1)) for i, s in enumerate(sizes)}
    handles: dict[str, object] = {}
    for ax, (_, arch) in zip(axes, ordered):
        for size in sorted(swept[arch], key=sizes.index):
            pts = swept[arch][size]
            lrs, mean = [p[0] for p in pts], [p[1] for p in pts]
            err = [[m - lo for _, m, lo, _, _ in pts], [hi - m for _, m, _, hi, _ in pts]]
            h = ax.errorbar(lrs, mean, yerr=err, color=color[size], lw=1.0, marker="o", ms=3, capsize=2)
            handles.setdefault(size, h)
            for lr, m, _, _, chosen in pts:
                if chosen:
                    ax.plot([lr], [m], "o", ms=8, mfc="none", mec=color[size], mew=1.2)
        ax.set_title(arch_label(arch), pad=3)
        log_axis(ax, "x")
        lrs = sorted({p[0] for pts in swept[arch].values() for p in pts})
        ax.set_xticks(lrs, [format(v, "g") for v in lrs])  # the swept values themselves, not decades
        ax.xaxis.set_minor_locator(plt.NullLocator())
    grid_labels(fig, axes, "peak learning rate", "validation loss (nats/token)")
    figure_legend(fig, [handles[s] for s in sizes if s in handles], [s for s in sizes if s in handles])
    return save(fig, out_dir, NAME)


def main(argv: list[str] | None = None) -> int:
    a = parser(NAME, __doc__.split("\n\n")[0]).parse_args(argv)
    draw(read_csv(a.sweep) if Path(a.sweep).is_file() else [], a.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
