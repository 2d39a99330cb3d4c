"""DAG scale: wall time of `snakemake -n` and of `dvc status` on the paper preset's full grid
(every architecture x every size x every task), in a scratch git+DVC copy of the workflow with
presets/paper.yaml merged over the base as params.yaml and dvc.yaml generated for it (one stage per job).

    python benchmarks/dag.py [--preset presets/paper.yaml] [--reps 3] [--profile] [--quick]

Nothing runs: the corpus folder links to the shared Gutenberg books so the input functions see
files, and no output exists, so both tools plan the whole grid. The two commands alternate, one
at a time. --profile prints snakemake -n's slowest functions (cProfile). Target: each < 15 s.
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


def workspace(dest: Path, preset: str) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from workspace import make_workspace

    shared = Path(os.environ.get("ARCHSCALE_SHARED_DATA", REPO.parent / "shared" / "data"))
    make_workspace(dest, preset=preset, corpus=shared / "corpus" / "gutenberg", superglue=shared / "superglue")
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
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="cProfile one snakemake -n; print the top functions")
    ap.add_argument("--quick", action="store_true", help="smoke preset, one rep, no RESULTS.md update")
    args = ap.parse_args(argv)
    if args.quick:
        args.preset, args.reps = "presets/smoke.yaml", 1
    with tempfile.TemporaryDirectory(prefix="archscale-dag-") as tmp:
        ws = workspace(Path(tmp) / "ws", args.preset)
        if args.profile:
            prof = Path(tmp) / "smk.prof"
            timed([sys.executable, "-m", "cProfile", "-o", str(prof), shutil.which("snakemake"), *SNAKEMAKE_N[1:]], ws)
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
            print(f"snakemake -n {smk[-1]:.1f} s, dvc status {dvc[-1]:.1f} s", file=sys.stderr, flush=True)
    body = (f"`{args.preset}` merged over params.yaml, `dvc.yaml` generated for it (one stage per job), in a scratch "
            f"git+DVC workspace, no outputs yet (the whole grid is "
            f"planned), median of {args.reps}, alternating. Target: each < 15 s.\n\n")
    body += md_table(["command", "jobs / stages", "wall s (median)", "min", "max", "CPU s (median; ~ wall when idle)"],
                     [["snakemake -n", jobs, median(smk), min(smk), max(smk), median(smk_cpu)],
                      ["dvc status", stages, median(dvc), min(dvc), max(dvc), median(dvc_cpu)]])
    report("dag", "DAG scale (paper preset)", body, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
