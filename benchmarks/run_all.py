"""Run every benchmark, one after another (never two heavy processes at once).

    python benchmarks/run_all.py [--quick] [--only training data ...]

--quick runs each benchmark's quick mode (tiny sizes, one round, no timing asserts, RESULTS.md
untouched): what CI runs to keep the scripts working. A full run rewrites each benchmark's section
of benchmarks/RESULTS.md; the default end-to-end reproduction is left to `end_to_end.py --preset
default` on an idle machine (it takes tens of minutes).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = {
    "overhead": ["overhead.py"],
    "training": ["training.py"],
    "data": ["data.py"],
    "data_scale": ["data_scale.py"],
    "dag": ["dag.py"],
    "end_to_end": ["end_to_end.py", "--preset", "smoke"],
    "gpu": ["gpu.py"],
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), default=list(BENCHMARKS))
    args = ap.parse_args(argv)
    failed = []
    for name in args.only:
        cmd = ([sys.executable, str(HERE / BENCHMARKS[name][0]), *BENCHMARKS[name][1:]]
               + (["--quick"] if args.quick else []))
        t0 = time.monotonic()
        code = subprocess.run(cmd).returncode
        print(f"== {name}: exit {code} in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
