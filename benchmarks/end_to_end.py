"""End to end: the whole reproduction (`snakemake --cores all`) in a fresh scratch workspace, timed as
a whole and split per rule from the benchmark .tsv files Snakemake writes for every job.

    python benchmarks/end_to_end.py --preset smoke|default [--cores all] [--keep DIR] [--quick]
    python benchmarks/end_to_end.py --preset default --existing DIR --wall SECONDS   # a build made by hand

`default` is params.yaml (target < 30 min on 2 idle cores), `smoke` is presets/smoke.yaml. The
workspace gets the workflow files and links to the shared Gutenberg corpus and SuperGLUE; nothing
is reused from earlier runs (a warm TORCH_EXTENSIONS_DIR aside). --quick only plans the smoke DAG
(`snakemake -n`) and checks the per-rule split on what exists, so CI can keep the script working.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, bench_env, md_table, report  # noqa: E402

PRESETS = {"smoke": "presets/smoke.yaml", "default": None}
# benchmark file -> rule (rules whose benchmark path carries wildcards in the folder)
FOLDER_RULES = [("results/runs/", "pretrain"), ("results/upstream/", "evaluate_upstream"),
                ("results/finetune_scratch/", "finetune_from_scratch"), ("results/finetune/", "finetune")]


def rule_of(path: Path, root: Path) -> str:
    rel = path.relative_to(root).as_posix()
    for prefix, rule in FOLDER_RULES:
        if rel.startswith(prefix):
            return rule
    stem = path.name.removesuffix(".benchmark.tsv")
    return re.sub(r"^(fit|draw)_.*", r"\1", stem)  # one row per rule, not per figure/fit


def per_rule(root: Path) -> list[list]:
    """(rule, jobs, wall s, CPU s) summed over the jobs' benchmark files, slowest first."""
    agg: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for path in sorted(root.glob("data/**/*benchmark.tsv")) + sorted(root.glob("results/**/*benchmark.tsv")):
        with open(path) as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                a = agg[rule_of(path, root)]
                a[0] += 1
                a[1] += float(row["s"])
                a[2] += float(row.get("cpu_time") or 0)
    return sorted(([r, int(n), w, c] for r, (n, w, c) in agg.items()), key=lambda x: -x[2])


def workspace(dest: Path, preset: str | None) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from workspace import make_workspace

    shared = Path(os.environ.get("ARCHSCALE_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not (shared / "corpus" / "gutenberg").is_dir():
        sys.exit(f"end_to_end needs the shared corpus at {shared}/corpus/gutenberg (set ARCHSCALE_SHARED_DATA)")
    return make_workspace(dest, preset=preset, corpus=shared / "corpus" / "gutenberg", superglue=shared / "superglue")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="smoke")
    ap.add_argument("--cores", default="all")
    ap.add_argument("--keep", type=Path, default=None, help="run in this (new) folder and keep it")
    ap.add_argument("--quick", action="store_true", help="plan the smoke DAG only (snakemake -n)")
    ap.add_argument("--existing", type=Path, default=None,
                    help="report a finished build in DIR (e.g. a fresh clone's `snakemake --cores all`) "
                         "instead of running one")
    ap.add_argument("--wall", type=float, default=None, help="with --existing: its measured wall time in s")
    args = ap.parse_args(argv)
    if args.existing:
        if args.wall is None:
            ap.error("--existing needs --wall (the build's measured wall time)")
        return write_report(args, args.wall, per_rule(args.existing))
    with tempfile.TemporaryDirectory(prefix="archscale-e2e-") as tmp:
        ws = workspace(args.keep or Path(tmp) / "ws", PRESETS["smoke" if args.quick else args.preset])
        cmd = ["snakemake", "--cores", args.cores] + (["-n", "--quiet", "rules"] if args.quick else [])
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=ws, env=bench_env(1), capture_output=True, text=True)
        wall = time.monotonic() - t0
        if proc.returncode:
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}) after {wall:.0f} s:\n{proc.stderr[-4000:]}")
        rows = per_rule(ws)
    return write_report(args, wall, rows)


def write_report(args, wall: float, rows: list[list]) -> int:
    total_cpu = sum(r[3] for r in rows)
    target = " Target < 30 min on 2 idle cores." if args.preset == "default" else ""
    body = (f"`snakemake --cores {args.cores}` on preset `{args.preset}` in a fresh "
            f"{'clone' if args.existing else 'workspace'}: **{wall / 60:.1f} min** "
            f"wall ({wall:.0f} s){' (plan only: --quick)' if args.quick and not args.existing else ''}.{target} "
            "Per rule from the jobs' "
            f"benchmark .tsv files (wall and CPU summed over jobs; jobs overlap when cores allow):\n\n")
    body += md_table(["rule", "jobs", "wall s (sum)", "CPU s (sum)", "share of CPU"],
                     [r + [f"{r[3] / total_cpu:.0%}" if total_cpu else "-"] for r in rows])
    report(f"end_to_end_{args.preset}", f"End to end ({args.preset} preset)", body, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
