"""Per-job overhead of `archscale pretrain`: seconds from process start to the end of the first
optimizer step, and from the last step to process exit (final eval, curve, export, teardown), on
the smoke preset with a warm TORCH_EXTENSIONS_DIR.

    python benchmarks/overhead.py [--reps 5] [--run transformer-nano] [--baseline-src DIR] [--quick]

Each repetition starts a fresh `python -m archscale.cli pretrain` and times it from outside
(wall and CPU seconds of the child); the job logs its own phases (seconds since process start:
imports, model + FLOPs probe, engine, first step, loop done, exported). With --baseline-src (a
checkout's src/, e.g. `git archive <commit> src | tar -x -C /tmp/before`) the old code runs in
the same rounds, alternating with the current one: the before/after of an optimisation.
--importtime prints the slowest imports of one run (python -X importtime).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bench_env, md_table, median, report, smoke_workspace  # noqa: E402

PHASES = re.compile(r"phases \(s since process start\): (.*)$", re.M)


def run_once(ws: Path, run: str, out: Path, src: str | None, threads: int, extra: list[str] | None = None) -> dict:
    env = bench_env(threads)
    if src:
        env["PYTHONPATH"] = src
    cmd = [sys.executable, *(extra or []), "-m", "archscale.cli", "pretrain", "--params", "params.yaml", "--run", run,
           "--tokenizer", "data/tokenizer/hf", "--out", str(out), "--threads", str(threads)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ws, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit(f"pretrain failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    found = PHASES.search(proc.stderr)
    if not found:
        sys.exit("pretrain logged no phases line (a --baseline-src older than the phase log cannot be timed)")
    phases = {k: float(v) for k, v in (item.rsplit(" ", 1) for item in found.group(1).split(", "))}
    return {"wall": wall, "cpu": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
            "first_step": phases["first_step"], "tail": wall - phases["loop_done"],
            "exit": wall - phases["exported"], "phases": phases, "stderr": proc.stderr}


def importtime(ws: Path, run: str, out: Path, threads: int, top: int = 25) -> str:
    res = run_once(ws, run, out, None, threads, ["-X", "importtime"])
    rows = []
    for line in res["stderr"].splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(2)) <= 5:
            rows.append((int(m.group(1)) / 1e6, m.group(3)))
    return "\n".join(f"{s:6.2f} s  {name}" for s, name in sorted(rows, reverse=True)[:top])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", type=Path, default=None, help="smoke workspace (built once if absent)")
    ap.add_argument("--run", default="transformer-nano")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--baseline-src", default=None, help="src/ folder of the code to compare against")
    ap.add_argument("--importtime", action="store_true")
    ap.add_argument("--quick", action="store_true", help="one run of pico, no RESULTS.md update")
    args = ap.parse_args(argv)
    if args.quick:
        args.reps, args.warmup, args.run = 1, 0, args.run.replace("-nano", "-pico")
    ws = smoke_workspace(args.workspace or Path(tempfile.gettempdir()) / f"archscale-bench-{os.getuid()}" / "smoke")
    sides = {"current": None, **({"baseline": args.baseline_src} if args.baseline_src else {})}
    with tempfile.TemporaryDirectory() as tmp:
        if args.importtime:
            print(importtime(ws, args.run, Path(tmp) / "imp", args.threads))
            return 0
        res: dict[str, list[dict]] = {k: [] for k in sides}
        for r in range(args.warmup + args.reps):
            for name, src in sides.items():
                out = run_once(ws, args.run, Path(tmp) / f"{name}{r}", src, args.threads)
                if r >= args.warmup:
                    res[name].append(out)
            print(f"round {r + 1}/{args.warmup + args.reps}", file=sys.stderr, flush=True)
    rows = []
    for name, rs in res.items():
        ph = {k: median([x["phases"][k] for x in rs]) for k in rs[0]["phases"]}
        rows.append([name, median([x["first_step"] for x in rs]), median([x["tail"] for x in rs]),
                     median([x["exit"] for x in rs]), median([x["wall"] for x in rs]), median([x["cpu"] for x in rs]),
                     ", ".join(f"{k} {v:.2f}" for k, v in ph.items())])
    body = (f"`archscale pretrain --run {args.run}` on the smoke preset, {args.threads} thread(s), warm "
            f"TORCH_EXTENSIONS_DIR, median of {args.reps} fresh processes after {args.warmup} warm-up"
            f"{', alternating with the baseline code' if args.baseline_src else ''}. Target: first step < 5 s.\n\n")
    body += md_table(["code", "start -> first step (s)", "last step -> exit (s)", "export -> exit (s)",
                      "process wall (s)", "process CPU (s)", "phases (median s since start)"], rows)
    if len(rows) == 2:
        body += (f"\nfirst-step time, current / baseline: "
                 f"{median([a['first_step'] / b['first_step'] for a, b in zip(res['current'], res['baseline'])]):.2f}; "
                 f"process CPU: {median([a['cpu'] / b['cpu'] for a, b in zip(res['current'], res['baseline'])]):.2f}\n")
    report("overhead", "Job overhead (pretrain, smoke preset)", body, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
