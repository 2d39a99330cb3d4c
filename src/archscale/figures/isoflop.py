"""Compute-optimal model size per architecture (Hoffmann et al. 2022, approach 2; Fig. 3 of theirs):
per objective family a row of two panels. Left, the IsoFLOP profiles: final validation loss against
N (log x) of every run of the grid, one colour per compute budget and one marker per architecture,
with each budget's fitted parabola in ln N (line style per architecture) and its minimum starred.
Right, N_opt(C) of each architecture (markers) with the fitted power law N_opt = e^k C^a (line) and
its bootstrap band; a and b (D_opt ~ C^b) with their intervals in the legend; the thin steps are
approach 1's N_opt(C) (envelope of the training curves, one of the trained sizes at each C).
Reads only fits/isoflop.json (`archscale fit --law isoflop`)."""

from __future__ import annotations

import math
import sys

import numpy as np

from archscale.analysis.family import NO_FAMILY, label, order
from archscale.figures.common import (
    arch_label,
    colors,
    load_fit,
    log_axis,
    new_figure,
    no_data,
    panel_text_size,
    parser,
    save,
)

NAME = "isoflop"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
STYLES = ("-", "--", ":", "-.")
EMPTY = "no IsoFLOP runs in this preset"


def _ci(q: dict | None) -> str:
    if not q or q.get("value") is None:
        return "n/a"
    lo, hi = q.get("ci") or (None, None)
    return f"{q['value']:.2f}" + (f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else "")


def _profiles(ax, archs: list[str], groups: dict, budgets: list[float]) -> None:
    """Left panel: final loss vs N per budget (colour) and arch (marker), parabolas and their minima."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    cmap = plt.get_cmap("viridis")
    shade = {c: cmap(0.85 * i / max(1, len(budgets) - 1)) for i, c in enumerate(budgets)}
    for i, arch in enumerate(archs):
        marker, style = MARKERS[i % len(MARKERS)], STYLES[i % len(STYLES)]
        for b in groups[arch].get("approach2", {}).get("budgets", []):
            pts = b.get("points", [])
            col = shade[b["C"]]
            ax.plot([p[0] for p in pts], [p[2] for p in pts], marker, color=col, ms=3.5, ls="None")
            if b.get("status") == "fitted":
                x = np.linspace(np.log(min(p[0] for p in pts)), np.log(max(p[0] for p in pts)), 60)
                p0, p1, p2 = b["coef_n"]
                ax.plot(np.exp(x), p0 + p1 * x + p2 * x * x, style, color=col, lw=0.9)
                ax.plot([b["N_opt"]], [b["min_loss"]], "*", color=col, mec="black", mew=0.5, ms=8)
    handles = [Line2D([], [], color=shade[c], lw=2) for c in budgets]
    labels = [f"C = {c:.1e}" for c in budgets]
    if len(archs) > 1:
        handles += [Line2D([], [], marker=MARKERS[i % len(MARKERS)], ls=STYLES[i % len(STYLES)], color="0.3")
                    for i in range(len(archs))]
        labels += [arch_label(a) for a in archs]
    ax.legend(handles, labels, fontsize=panel_text_size(ax, 6.0), loc="best", frameon=False,
              ncol=2 if len(labels) > 4 else 1)
    log_axis(ax, "x")
    ax.set_xlabel("N (active non-embedding parameters)")
    ax.set_ylabel("final validation loss (nats/token)")


def _optimum(ax, archs: list[str], groups: dict, col: dict) -> None:
    """Right panel: N_opt(C) per arch with the fitted power law, its band and approach 1's steps."""
    notes = []
    for i, arch in enumerate(archs):
        a2 = groups[arch].get("approach2", {})
        pts = [(b["C"], b["N_opt"]) for b in a2.get("budgets", []) if b.get("status") == "fitted"]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], MARKERS[i % len(MARKERS)], color=col[arch], ls="None")
        if a2.get("status") != "fitted":
            notes.append(f"{arch_label(arch)}: not fittable ({a2.get('reason', '')})")
            continue
        band = a2.get("band")
        c = np.asarray(band["C"] if band else [pts[0][0], pts[-1][0]], float)
        a, k = a2["a"]["value"], a2["k_n"]["value"]
        ax.plot(c, np.exp(k) * c**a, "-", color=col[arch], lw=1.1,
                label=f"{arch_label(arch)}: a = {_ci(a2['a'])}, b = {_ci(a2['b'])}")
        if band:
            ax.fill_between(c, band["N_lo"], band["N_hi"], color=col[arch], alpha=0.18, lw=0)
        a1 = groups[arch].get("approach1", {})
        if a1.get("status") == "fitted":
            grid = a1["grid"]
            ax.plot([g[0] for g in grid], [g[1] for g in grid], color=col[arch], lw=0.6, alpha=0.6,
                    drawstyle="steps-mid")
    if notes:
        ax.text(0.03, 0.97, "\n".join(notes), transform=ax.transAxes, ha="left", va="top",
                fontsize=panel_text_size(ax, 6.0), wrap=True)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=panel_text_size(ax, 6.0), loc="upper left", frameon=False)
    if ax.has_data():  # at least a decade of N, centred: one or two close optima get readable ticks
        lo, hi = ax.get_ylim()
        if lo > 0 and hi / lo < 10:
            mid = math.sqrt(lo * hi)
            ax.set_ylim(mid / math.sqrt(10), mid * math.sqrt(10))
    log_axis(ax, "x")
    log_axis(ax, "y")
    ax.set_xlabel("compute budget C (FLOPs)")
    ax.set_ylabel(r"$N_{\mathrm{opt}}$ (parameters)")


def draw(fit: dict | None, out_dir: str) -> list:
    groups = (fit or {}).get("groups", {})
    if not groups:
        fig, axes = new_figure(height=2.6)
        no_data(axes[0][0], EMPTY + ("" if fit else " (no fits/isoflop.json)"))
        return save(fig, out_dir, NAME)
    fam_of = {a: g.get("family", NO_FAMILY) for a, g in groups.items()}
    fams = order(fam_of.values())
    col = colors(list(groups))
    fig, axes = new_figure(2, len(fams), height=2.9 * len(fams) + 0.3)
    for row, fam in zip(axes, fams):
        archs = sorted(a for a in groups if fam_of[a] == fam)
        budgets = sorted({b["C"] for a in archs for b in groups[a].get("approach2", {}).get("budgets", [])})
        _profiles(row[0], archs, groups, budgets)
        _optimum(row[1], archs, groups, col)
        row[0].set_title(f"{label(fam)}: IsoFLOP profiles", pad=3)
        row[1].set_title(f"{label(fam)}: compute-optimal size", pad=3)
    fig.tight_layout()
    return save(fig, out_dir, NAME)


def main(argv: list[str] | None = None) -> int:
    a = parser(NAME, __doc__.split("\n\n")[0]).parse_args(argv)
    draw(load_fit(a.fits_dir, "isoflop"), a.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
