"""`archscale figure <name> [options]`: draw one figure (PDF + PNG) from summary/fit/curve files.

Each figure lives in its own module ``archscale.figures.<name>`` with a ``main(argv)``; this
entry only picks the module, so drawing one figure imports only what that figure needs.
"""

from __future__ import annotations

import importlib
import sys

# figure name -> one-line description (the module is archscale.figures.<name>).
FIGURES: dict[str, str] = {
    "upstream_vs_flops": "upstream quality vs training FLOPs, one line per architecture, a panel per objective family",
    "pareto": "Pareto frontiers: upstream per objective family, downstream over all runs, vs FLOPs (Tay et al. Fig. 1)",
    "scaling_per_arch": "per-architecture upstream scaling vs FLOPs, its family's reference beside it (Fig. 2)",
    "downstream_scaling": "per-architecture downstream scaling vs FLOPs (Fig. 3)",
    "depth_scan": "depth scan: quality vs FLOPs as layers are added (Fig. 4)",
    "width_scan": "width scan: quality vs FLOPs as d_model grows (Fig. 5)",
    "lc_frontier": ("L(C): learning curves, their envelope past warm-up and both fitted laws "
                    "(6ND for clm/mlm, FLOPs for span)"),
    "learning_curves": "validation loss vs training FLOPs of every run",
    "fit_residuals": "residuals (log loss) of every fitted law",
    "prediction_check": "predicted vs measured loss of each held-out largest size",
    "lr_sweep": "validation loss vs peak learning rate of every swept run, the lr the fits use ringed",
    "isoflop": ("IsoFLOP profiles and compute-optimal N_opt(C) per architecture, a panel pair per objective "
                "family (Hoffmann et al. approaches 2 and 1)"),
}
# The figures that read each run's curve.csv (--runs-dir); only their jobs list the curves as inputs.
READS_CURVES = frozenset({"lc_frontier", "learning_curves"})


def _usage() -> str:
    width = max(map(len, FIGURES))
    lines = ["usage: archscale figure <name> [options]   (archscale figure <name> --help)", "", "figures:"]
    return "\n".join(lines + [f"  {n:<{width}}  {d}" for n, d in FIGURES.items()])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in FIGURES:
        print(f"archscale figure: unknown figure {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"archscale.figures.{name}")
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
