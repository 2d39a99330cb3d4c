"""Residuals of every fitted law, in log loss (0 = on the law; 0.01 = 1% too high): the power law
of loss in FLOPs (Tay et al. slopes), both L(C) laws on the frontier, and approach 3. Structure
in a panel (a bend, a trend) says the law's form is wrong, not just noisy."""

from __future__ import annotations

import sys

from archscale.figures.common import (
    arch_label,
    colors,
    families,
    figure_legend,
    load_fit,
    log_axis,
    new_figure,
    no_data,
    parser,
    save,
)

NAME = "fit_residuals"


def _series(slopes: dict | None, lc: dict | None,
            a3: dict | None) -> list[tuple[str, str, dict[str, tuple[list, list]]]]:
    """(title, x label, {arch: (x values, log residuals)}) per panel."""
    power = {a: ([p[0] for p in f["alpha_F_U"]["points"]], f["alpha_F_U"]["residuals_log"])
             for a, f in (slopes or {}).get("groups", {}).items() if f.get("alpha_F_U", {}).get("status") == "fitted"}
    lc_groups = {a: g for a, g in (lc or {}).get("groups", {}).items() if g.get("status") == "fitted"}
    pure = {a: ([f[0] for f in g["frontier"]], g["pure"]["residuals_log"]) for a, g in lc_groups.items()}
    offset = {a: ([f[0] for f in g["frontier"]], g["offset"]["residuals_log"]) for a, g in lc_groups.items()}
    cheb = {a: ([6 * p["N"] * p["D"] for p in g["points_used"]], g["residuals_log"])
            for a, g in (a3 or {}).get("groups", {}).items() if g.get("status") == "fitted"}
    return [("final loss vs FLOPs: $L \\propto F^{-\\alpha}$", "training FLOPs", power),
            ("frontier: $(C_c/C)^{\\alpha_C}$", "compute C (FLOPs)", pure),
            ("frontier: $E + (C_c/C)^{\\alpha_C}$", "compute C (FLOPs)", offset),
            ("approach 3: $E + A/N^\\alpha + B/D^\\beta$", "6ND (FLOPs)", cheb)]


def draw(slopes: dict | None, lc: dict | None, a3: dict | None, out_dir: str) -> list:
    panels = _series(slopes, lc, a3)
    fig, axes = new_figure(2, 2, height=4.6)
    flat = [ax for row in axes for ax in row]
    archs = sorted({a for _, _, s in panels for a in s})
    fitted_rows = [r for f in (slopes, lc, a3) for r in (f or {}).get("rows", []) if not r.get("scan")]
    col = colors(archs, list(families(fitted_rows)[1].values()))
    handles: dict[str, object] = {}
    for ax, (title, xlabel, series) in zip(flat, panels):
        ax.set_title(title, pad=3)
        if not series:
            no_data(ax, "law not fitted for any architecture")
            continue
        for arch, (xs, rs) in sorted(series.items()):
            h = ax.scatter(xs, rs, s=8, color=col[arch])
            handles.setdefault(arch_label(arch), h)
        ax.axhline(0.0, color="0.3", lw=0.7)
        log_axis(ax, "x")
        ax.set_xlabel(xlabel, fontsize=7.5)
        ax.set_ylabel("residual, log loss", fontsize=7.5)
    figure_legend(fig, list(handles.values()), list(handles))
    return save(fig, out_dir, NAME)


def main(argv: list[str] | None = None) -> int:
    a = parser(NAME, __doc__.split("\n\n")[0]).parse_args(argv)
    draw(load_fit(a.fits_dir, "slopes"), load_fit(a.fits_dir, "lc_frontier"), load_fit(a.fits_dir, "approach3"),
         a.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
