"""`archscale fit`: fit a scaling law to any CSV of runs and print or write the result as JSON.

Column names are options, so the same command fits this pipeline's results/summary.csv and a
published table (e.g. Epoch's extraction of the Chinchilla runs). Every fit file carries the
resolved options it was made with, the method, and the rows it was fitted on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from archscale.analysis.table import TableError, dumps, read_csv, require_columns, write_atomic

LAWS = ("slopes", "lc", "approach3", "pareto", "prediction", "claims", "isoflop")
# The fits the workflow makes, one job each: results/fits/<name>.json <- `archscale fit <options>`
# (workflow/rules/report.smk and the generated dvc.yaml both read this list).
FITS: dict[str, str] = {
    "slopes": "--law slopes",
    "lc_frontier": "--law lc --n-boot 1000",
    "approach3": "--law approach3 --points curves --n-boot 200",
    "pareto": "--law pareto",
    "prediction": "--law prediction",
    "claims": "--law claims",
    "isoflop": ("--law isoflop --n active_non_embedding_params --d tokens --flops flops --loss val_loss "
                "--n-boot 1000"),
}
# The table a fit reads, where it is not results/summary.csv: IsoFLOP branches are no grid runs, and
# collect writes every eval point of each to results/isoflop.csv.
TABLES: dict[str, str] = {"isoflop": "results/isoflop.csv"}
# The fits that read each run's curve.csv and config.json (--runs-dir: L(C), approach 3 on curve
# points, the prediction check, the claims' L(C) ties); only their jobs list those files as inputs.
READS_CURVES = frozenset({"lc_frontier", "approach3", "prediction", "claims"})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="archscale fit",
        description="Fit a scaling law to a CSV of runs (one row per run); JSON out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,  # `--params` is the params file in every other stage: never a prefix of a column flag
    )
    p.add_argument("--law", required=True, choices=LAWS, help="which law to fit")
    p.add_argument("--csv", default="results/summary.csv", help="table of runs")
    p.add_argument("--out", help="write JSON here (atomically) instead of printing it")
    p.add_argument("--group", default="arch", help="column whose values are fitted separately ('' = one group)")
    p.add_argument("--scan-column", default="scan",
                   help="rows with a non-empty value here (depth/width scans) are left out; '' keeps all")
    cols = p.add_argument_group("columns")
    cols.add_argument("--flops", default="train_flops",
                      help="training FLOPs (F; isoflop: C of approach 1, 6ND when the column is absent)")
    cols.add_argument("--params-column", dest="params", default="params",
                      help="parameter count (P); every other stage's --params is the params file")
    cols.add_argument("--upstream", default="neg_log_ppl", help="upstream quality U = negative log-perplexity (< 0)")
    cols.add_argument("--downstream", default="downstream_avg", help="downstream score D (> 0)")
    cols.add_argument("--n", default="non_embedding_params", help="model size N (lc: C = 6 N D; approach3)")
    cols.add_argument("--d", default="tokens", help="training tokens D (approach3; lc with --compute 6nd)")
    cols.add_argument("--c", default="", help="approach3: derive D = C / (6 N) from this compute column instead of --d")
    cols.add_argument("--loss", default="val_loss", help="loss column (approach3 table, claims, curve.csv)")
    cols.add_argument("--size-column", default="size", help="claims: size of a run (rankings are per size)")
    cols.add_argument("--seed-column", default="seed",
                      help="claims: seed of a run; rows of one (arch, size) with different seeds are repeats")
    cols.add_argument("--selected-column", default="selected",
                      help="claims: rows whose value here is 'no' (a non-best lr of a sweep) are left out; "
                           "a table without the column keeps every row")
    cols.add_argument("--budget-column", default="budget",
                      help="isoflop: target training compute of a run; rows of one budget are an IsoFLOP profile")
    cols.add_argument("--final-column", default="final",
                      help="isoflop: 1 on a run's finished row, 0 on its curve points; "
                           "a table without the column has only finished rows")
    curves = p.add_argument_group("learning curves (lc, approach3 --points curves, prediction, claims: L(C) ties)")
    curves.add_argument("--runs-dir", default="results/runs", help="folder with {run}/curve.csv")
    curves.add_argument("--compute", choices=("auto", "flops", "6nd"), default="auto",
                        help="lc: C axis; auto = the objective family's (6 N D for clm/mlm as Oyedele, "
                             "measured FLOPs for span as Tay et al.)")
    curves.add_argument("--warmup-frac", type=float, default=None,
                        help="lr warm-up fraction of steps whose eval points are left out "
                             "(default: each run's config.json train.warmup_frac)")
    curves.add_argument("--points", choices=("table", "curves"), default="table",
                        help="approach3: fit table rows or every eval point of every curve")
    fit = p.add_argument_group("fitting")
    fit.add_argument("--exclude-top-loss", type=int, default=0,
                     help="approach3: drop this many highest-loss rows (Besiroglu et al. drop 5)")
    fit.add_argument("--starts", type=int, default=64,
                     help="approach3: L-BFGS-B from the best this many grid starts (0 = all 4,500)")
    fit.add_argument("--tie", type=float, default=0.05,
                     help="claims: relative loss gap under which two architectures (or L(C) lines) tie "
                          "(Oyedele 2021: within five percent = within a margin of uncertainty)")
    fit.add_argument("--near-decades", type=float, default=0.5,
                     help="claims: a crossover this many decades of compute outside the data is 'near' it")
    fit.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates")
    fit.add_argument("--level", type=float, default=0.95, help="confidence level of the intervals")
    fit.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    return p


def _filter_scans(rows: list[dict[str, str]], column: str) -> list[dict[str, str]]:
    if not column or not rows or column not in rows[0]:
        return rows
    return [r for r in rows if not r.get(column)]


def require_header(path: str, columns: list[str]) -> None:
    """A table with no rows still names its columns: raise naming the first missing one."""
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        have = next(csv.reader(fh), [])
    missing = [c for c in columns if c not in have]
    if missing:
        raise TableError(f"{path}: missing column(s) {missing}; columns are: {', '.join(sorted(have))}")


def run_fit(args: argparse.Namespace) -> dict[str, Any]:
    """Dispatch to the law's pure fit function; returns the JSON-ready result."""
    rows = _filter_scans(read_csv(args.csv), args.scan_column)
    group = args.group or None
    if args.law == "isoflop" and not rows:  # header only: no IsoFLOP runs in this preset
        require_header(args.csv, [c for c in (group, args.n, args.d, args.loss, args.budget_column) if c])
    elif group:
        require_columns(rows, [group], args.csv)
    boot = {"n_boot": args.n_boot, "level": args.level, "seed": args.seed}
    if args.law == "slopes":
        from archscale.analysis.slopes import fit_slopes

        require_columns(rows, [args.flops, args.params, args.upstream], args.csv)
        result = fit_slopes(rows, flops=args.flops, params=args.params, upstream=args.upstream,
                            downstream=args.downstream, group=group, **boot)
    elif args.law == "pareto":
        from archscale.analysis.pareto import fit_pareto

        require_columns(rows, [args.flops, args.params, args.upstream], args.csv)
        result = fit_pareto(rows, flops=args.flops, params=args.params, upstream=args.upstream,
                            downstream=args.downstream, group=group)
    elif args.law == "lc":
        from archscale.analysis.lc import fit_lc_from_runs

        require_columns(rows, ["run", args.n], args.csv)
        result = fit_lc_from_runs(rows, Path(args.runs_dir), n_col=args.n, compute=args.compute,
                                  group=group, warmup_frac=args.warmup_frac, **boot)
    elif args.law == "claims":
        from archscale.analysis.claims import fit_claims

        if not group:
            raise TableError("claims ranks architectures: --group must name the architecture column")
        require_columns(rows, [args.loss, args.flops, args.size_column], args.csv)
        result = fit_claims(rows, loss=args.loss, flops=args.flops, size=args.size_column, seed=args.seed_column,
                            selected_column=args.selected_column, arch=group, tie=args.tie, n_boot=args.n_boot,
                            level=args.level, rng_seed=args.seed, near_decades=args.near_decades,
                            runs_dir=Path(args.runs_dir), n_col=args.n, compute=args.compute,
                            warmup_frac=args.warmup_frac)
    elif args.law == "approach3":
        from archscale.analysis.approach3 import fit_approach3_table

        result = fit_approach3_table(rows, args, source=args.csv, group=group)
    elif args.law == "isoflop":
        from archscale.analysis.isoflop import fit_isoflop

        result = fit_isoflop(rows, n=args.n, d=args.d, c=args.flops, loss=args.loss, budget=args.budget_column,
                             final=args.final_column, group=group, source=args.csv, **boot)
    else:
        from archscale.analysis.prediction import fit_prediction

        require_columns(rows, ["run", args.n, args.flops, args.upstream, args.d], args.csv)
        result = fit_prediction(rows, Path(args.runs_dir), n_col=args.n, flops=args.flops,
                                upstream=args.upstream, tokens=args.d, group=group, warmup_frac=args.warmup_frac)
    result["options"] = {k: v for k, v in sorted(vars(args).items())}
    return result


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = run_fit(args)
    except (TableError, ValueError) as exc:
        print(f"archscale fit: {exc}", file=sys.stderr)
        return 2
    text = dumps(result)
    if args.out:
        write_atomic(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
