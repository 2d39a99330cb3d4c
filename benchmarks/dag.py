"""DAG scale: wall time of `snakemake -n` and of `dvc status` on the paper preset's full grid
(every architecture x every size x every task), in a scratch git+DVC copy of the workflow with
presets/paper.yaml merged over the base as params.yaml and dvc.yaml generated for it (a stage per
job, one per per-run rule), as it is and multiplied by an lr sweep and repeated seeds (`--grids 1x1,3x3`:
lrs x seeds; 3 x 3 gives the paper grid's ~6k jobs).

    python benchmarks/dag.py [--preset presets/paper.yaml] [--grids 1x1,3x3] [--reps 3] [--profile] [--quick]

Nothing runs: the corpus folder links to the shared Gutenberg books so the input functions see
files, and no output exists, so both tools plan the whole grid. The two commands alternate, one
at a time. --profile prints snakemake -n's slowest functions (cProfile) for the last grid.
Target: each < 30 s at 3 x 3.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, md_table, median, report  # noqa: E402

SNAKEMAKE_N = ["snakemake", "-n", "--cores", "1", "--quiet", "rules"]
DVC_STATUS = ["dvc", "status"]


def workspace(dest: Path, preset: str, lrs: int = 1, seeds: int = 1) -> Path:
    """The preset's workspace; with lrs > 1 every run is swept over lrs factors of its lr (0.5, 1, 2, ...),
    with seeds > 1 repeated with seeds - 1 extra seeds."""
    sys.path.insert(0, str(REPO / "tests"))
    import yaml
    from workspace import make_workspace

    from archscale.dvcyaml import render

    shared = Path(os.environ.get("ARCHSCALE_SHARED_DATA", REPO.parent / "shared" / "data"))
    make_workspace(dest, preset=preset, corpus=shared / "corpus" / "gutenberg", superglue=shared / "superglue")
    if lrs > 1 or seeds > 1:
        params = yaml.safe_load((dest / "params.yaml").read_text())
        if lrs > 1:
            params["sweeps"] = {"bench": {"lr_scale": [0.5 * 2 ** k for k in range(lrs)]}}
        params["seeds"] = [params["seed"] + k for k in range(1, seeds)]
        (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        (dest / "dvc.yaml").write_text(render("params.yaml", root=str(dest)))
    for src in ("src",):  # dvc.yaml's deps name the package sources
        shutil.copytree(REPO / src, dest / src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
        subprocess.run(cmd, cwd=dest, check=True, env=env, capture_output=True)
    return dest


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """(wall s, CPU s of the command and its children, output)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    dt = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return dt, cpu, proc.stdout + proc.stderr


def n_jobs(snakemake_out: str) -> int:
    m = re.search(r"^total\s+(\d+)", snakemake_out, re.M)
    return int(m.group(1)) if m else -1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="presets/paper.yaml")
    ap.add_argument("--grids", default="1x1,3x3", help="comma-separated <lrs>x<seeds> multipliers of the grid")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="cProfile one snakemake -n; print the top functions")
    ap.add_argument("--quick", action="store_true", help="smoke preset, one rep, no RESULTS.md update")
    args = ap.parse_args(argv)
    if args.quick:
        args.preset, args.reps, args.grids = "presets/smoke.yaml", 1, "1x1,2x2"
    rows = []
    for grid in args.grids.split(","):
        lrs, seeds = (int(v) for v in grid.split("x"))
        with tempfile.TemporaryDirectory(prefix="archscale-dag-") as tmp:
            t0 = time.monotonic()
            ws = workspace(Path(tmp) / "ws", args.preset, lrs, seeds)
            print(f"{grid}: workspace with dvc.yaml ({(ws / 'dvc.yaml').stat().st_size / 1e6:.1f} MB) in "
                  f"{time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
            if args.profile and grid == args.grids.split(",")[-1]:
                prof = Path(tmp) / "smk.prof"
                timed([sys.executable, "-m", "cProfile", "-o", str(prof), shutil.which("snakemake"),
                       *SNAKEMAKE_N[1:]], ws)
                import pstats

                pstats.Stats(str(prof)).sort_stats("cumulative").print_stats(40)
                return 0
            smk, dvc, smk_cpu, dvc_cpu, jobs, stages = [], [], [], [], -1, -1
            for _ in range(args.reps):
                dt, cpu, out = timed(SNAKEMAKE_N, ws)
                smk.append(dt)
                smk_cpu.append(cpu)
                jobs = n_jobs(out)
                dt, cpu, out = timed(DVC_STATUS, ws)
                dvc.append(dt)
                dvc_cpu.append(cpu)
                stages = len(re.findall(r"^\S.*:$", out, re.M))
                print(f"{grid}: snakemake -n {smk[-1]:.1f} s ({jobs} jobs), dvc status {dvc[-1]:.1f} s "
                      f"({stages} stages)", file=sys.stderr, flush=True)
        rows += [[f"snakemake -n, {grid}", jobs, median(smk), min(smk), max(smk), median(smk_cpu)],
                 [f"dvc status, {grid}", stages, median(dvc), min(dvc), max(dvc), median(dvc_cpu)]]
    body = (f"`{args.preset}` merged over params.yaml, `dvc.yaml` generated for it (a stage per job, one per "
            "per-run rule), in a scratch git+DVC workspace, no outputs yet (the whole grid is planned), "
            f"median of {args.reps}, alternating. "
            "`<lrs>x<seeds>`: every run swept over that many lrs (factors 0.5, 1, 2) and repeated with that many "
            "seeds. Target: each < 30 s at 3x3.\n\n")
    body += md_table(["command, lrs x seeds", "jobs / stages", "wall s (median)", "min", "max",
                      "CPU s (median; ~ wall when idle)"], rows)
    report("dag", "DAG scale (paper preset)", body, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
