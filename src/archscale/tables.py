"""`archscale tables`: render the paper's LaTeX tables and number macros from summary + fit files.

Templates live in paper/templates/*.tex.j2 with LaTeX-friendly delimiters (``\\VAR{...}``,
``\\BLOCK{...}``, ``\\#{...}``) so a template still reads as LaTeX. Strings from the data are
escaped by one filter (``tex``); numbers are rounded by the formatting filters in
:mod:`archscale.analysis.texfmt`. Every output is written even when its fit file is absent (the
table then says so), so the paper compiles for every preset. macros.tex holds every number the
prose quotes, so no number is ever typed into the paper.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import jinja2

from archscale.analysis.macros import build_macros
from archscale.analysis.table import Row, TableError, number, read_csv, read_json, tasks_of, write_atomic
from archscale.analysis.texfmt import FILTERS

OUTPUTS = ("table1_runs", "table2_slopes", "table3_transfer", "lc_fits", "approach3", "prediction", "table_claims",
           "isoflop", "macros")
FIT_FILES = ("slopes", "lc_frontier", "approach3", "pareto", "prediction", "claims", "isoflop")
SLOPE_COLUMNS = (("alpha_F_U", r"$\alpha_{F,U}$"), ("alpha_P_U", r"$\alpha_{P,U}$"), ("alpha_F_D", r"$\alpha_{F,D}$"),
                 ("alpha_P_D", r"$\alpha_{P,D}$"), ("alpha_U_D", r"$\alpha_{U,D}$"))


def environment(templates: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        block_start_string=r"\BLOCK{", block_end_string="}",
        variable_start_string=r"\VAR{", variable_end_string="}",
        comment_start_string=r"\#{", comment_end_string="}",
        trim_blocks=True, lstrip_blocks=True, autoescape=False, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(FILTERS)
    return env


def sort_runs(rows: list[Row]) -> list[Row]:
    """Architectures alphabetically, main grid by size (params) first, then scan runs."""
    return sorted(rows, key=lambda r: (r.get("arch", ""), r.get("scan", ""), number(r, "params") or 0.0,
                                       r.get("run", "")))


def table1_context(rows: list[Row]) -> dict[str, Any]:
    tasks = tasks_of(rows)
    has_avg = bool(rows) and "downstream_avg" in rows[0]
    out = []
    for r in sort_runs(rows):
        out.append({
            "arch": r.get("arch", ""), "size": r.get("size", ""), "params": r.get("params"),
            "flops": r.get("train_flops"), "steps_per_s": r.get("steps_per_s"), "upstream": r.get("neg_log_ppl"),
            "scores": [r.get(f"score_{t}") for t in tasks], "avg": r.get("downstream_avg") if has_avg else None,
            "objective": r.get("objective", ""),
            # an average over fewer tasks than the preset fine-tunes (collect.py: downstream_partial)
            "partial": (r.get("downstream_partial") or "").lower() in {"yes", "true", "1"},
        })
    return {"runs": out, "tasks": tasks, "has_avg": has_avg}


def table3_context(rows: list[Row]) -> dict[str, Any]:
    """Pretrained vs random-init fine-tuning of the same shape, per run and scratch task."""
    tasks = tasks_of(rows, "scratch_")
    out = []
    for r in sort_runs(rows):
        pairs = [(number(r, f"score_{t}"), number(r, f"scratch_{t}")) for t in tasks]
        out.append({"arch": r.get("arch", ""), "size": r.get("size", ""),
                    "cells": [{"pre": a, "scratch": b, "gain": None if a is None or b is None else a - b}
                              for a, b in pairs]})
    return {"runs": out, "tasks": tasks}


def table2_context(slopes: dict[str, Any] | None) -> dict[str, Any]:
    from archscale.analysis.family import arch_families, label, order

    groups = (slopes or {}).get("groups", {})
    fam_of = arch_families([r for r in (slopes or {}).get("rows", []) if not r.get("scan")])
    # Rows grouped by objective family: slopes of upstream loss compare only within one.
    rank = {f: i for i, f in enumerate(order(fam_of.get(a, "") for a in groups))}
    rows = [{"arch": arch, "fits": [fits.get(k) for k, _ in SLOPE_COLUMNS], "family": fam_of.get(arch, ""),
             "family_label": label(fam_of[arch]) if fam_of.get(arch) else "",
             "n": max((f.get("n", 0) for f in fits.values()), default=0)}
            for arch, fits in sorted(groups.items(), key=lambda kv: (rank[fam_of.get(kv[0], "")], kv[0]))]
    level = (slopes or {}).get("ci_level", 0.95)
    return {"rows": rows, "columns": [h for _, h in SLOPE_COLUMNS], "level": round(100 * level)}


def isoflop_context(fit: dict[str, Any] | None) -> dict[str, Any]:
    """One row per architecture of fits/isoflop.json (analysis/isoflop.py), in family order; no rows
    when the file is absent or the preset has no IsoFLOP runs (the table then says so)."""
    from archscale.analysis.family import label, order

    groups = (fit or {}).get("groups", {})
    rank = {f: i for i, f in enumerate(order(g.get("family", "") for g in groups.values()))}
    rows = []
    for arch, g in sorted(groups.items(), key=lambda kv: (rank[kv[1].get("family", "")], kv[0])):
        a2, a1 = g.get("approach2", {}), g.get("approach1", {})
        budgets, sizes = g.get("budgets") or [None], g.get("sizes") or [None]
        rows.append({"arch": arch, "family": g.get("family", ""), "family_label": label(g.get("family", "")),
                     "status": a2.get("status"), "reason": a2.get("reason", g.get("reason", "")),
                     "used": a2.get("n_budgets_used", 0), "budgets": len(g.get("budgets", [])),
                     "c_lo": budgets[0], "c_hi": budgets[-1], "sizes": len(g.get("sizes", [])),
                     "n_lo": sizes[0], "n_hi": sizes[-1], "a": a2.get("a"), "b": a2.get("b"), "sum": a2.get("a_plus_b"),
                     "boot": f"{a2.get('n_boot_used', 0)}/{a2.get('n_boot', 0)}",
                     "a1": a1.get("a") if a1.get("status") == "fitted" else None})
    return {"available": fit is not None, "rows": rows, "level": round(100 * (fit or {}).get("ci_level", 0.95))}


def load_fits(fits_dir: Path) -> dict[str, dict[str, Any] | None]:
    """Every fit file that exists (absent ones are None: their tables say 'not fitted')."""
    return {name: (read_json(fits_dir / f"{name}.json") if (fits_dir / f"{name}.json").is_file() else None)
            for name in FIT_FILES}


def contexts(rows: list[Row], fits: dict[str, dict[str, Any] | None]) -> dict[str, dict[str, Any]]:
    from archscale.analysis.report import approach3_context, claims_context, lc_context, prediction_context

    return {
        "table1_runs": table1_context(rows),
        "table2_slopes": table2_context(fits["slopes"]),
        "table3_transfer": table3_context(rows),
        "lc_fits": lc_context(fits["lc_frontier"]),
        "approach3": approach3_context(fits["approach3"]),
        "prediction": prediction_context(fits["prediction"]),
        "table_claims": claims_context(fits["claims"]),
        "isoflop": isoflop_context(fits.get("isoflop")),
        "macros": {"macros": build_macros(rows, fits)},
    }


def join_throughput(rows: list[Row], throughput: Path | None) -> list[Row]:
    """Add throughput.csv's columns (steps/s, ...) to each run: collect keeps wall-clock numbers
    out of summary.csv so that summary.csv is byte-reproducible across machines."""
    if throughput is None or not throughput.is_file():
        return rows
    extra = {r.get("run", ""): r for r in read_csv(throughput)}
    out = []
    for row in rows:
        merged = dict(row)
        for key, value in extra.get(row.get("run", ""), {}).items():
            if not merged.get(key) and not key.startswith("__"):
                merged[key] = value  # summary.csv wins; throughput only fills what it lacks
        out.append(merged)
    return out


def render_all(summary: Path, fits_dir: Path, templates: Path, out_dir: Path, only: list[str] | None = None,
               throughput: Path | None = None) -> list[Path]:
    rows = join_throughput(read_csv(summary), throughput)
    env = environment(templates)
    written = []
    for name, ctx in contexts(rows, load_fits(fits_dir)).items():
        if only and name not in only:
            continue
        text = env.get_template(f"{name}.tex.j2").render(**ctx)
        path = out_dir / f"{name}.tex"
        write_atomic(path, text)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="archscale tables", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--summary", default="results/summary.csv", type=Path, help="one row per run")
    p.add_argument("--throughput", default="results/throughput.csv", type=Path,
                   help="steps/s etc. per run, joined on `run` when the file exists")
    p.add_argument("--fits-dir", default="results/fits", type=Path, help="folder with the fit JSON files")
    p.add_argument("--templates", default="paper/templates", type=Path, help="folder with *.tex.j2")
    p.add_argument("--out-dir", default="paper/generated", type=Path, help="where the .tex files go")
    p.add_argument("--only", nargs="*", choices=OUTPUTS, help="render only these (default: all)")
    a = p.parse_args(argv)
    try:
        for path in render_all(a.summary, a.fits_dir, a.templates, a.out_dir, a.only, a.throughput):
            print(path)
    except (TableError, ValueError, jinja2.TemplateError) as exc:
        print(f"archscale tables: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
