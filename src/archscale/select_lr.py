"""`archscale select-lr`: an lr sweep's choice for one architecture and size, made once its runs
are evaluated and before anything is fine-tuned.

It reads each run's peak lr (<runs-dir>/<run>/config.json) and upstream val_loss
(<upstream-dir>/<run>/upstream.json), applies the sweep's rule (runs.best_lr: the lowest val_loss
averaged over seeds; on a tie the smaller lr) and writes results/sweeps/<arch>-<size>.json: the lr,
each lr's mean, and per seed the run that fine-tuning reads (`archscale finetune` looks it up there).
collect applies the same rule to the same files for sweep.csv, and checks the fine-tunes against it.

    archscale select-lr --out results/sweeps/gpt2-nano.json gpt2-nano+lr0.001 gpt2-nano+lr0.002 ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archscale.io import get_logger, read_json, write_json
from archscale.runs import RunIdError, parse_run, select_lr, swept


def choose(runs: list[str], runs_dir: Path, upstream_dir: Path) -> dict:
    """The selection record of one architecture and size's sweep runs; ValueError naming what is wrong."""
    try:
        bases = {parse_run(r).base for r in runs}
    except RunIdError as exc:
        raise ValueError(str(exc)) from None
    if len(bases) != 1 or not swept(runs):
        raise ValueError(f"expected the lr-sweep runs of one <arch>-<size>, got {' '.join(runs)}")
    for run in runs:
        for path in (runs_dir / run / "config.json", upstream_dir / run / "upstream.json"):
            if not path.is_file():
                raise ValueError(f"{path} is missing: {run} is not pretrained and evaluated yet")
    lrs = {r: read_json(runs_dir / r / "config.json")["train"]["lr"] for r in runs}
    losses = {r: read_json(upstream_dir / r / "upstream.json")["val_loss"] for r in runs}
    record = select_lr(runs, lrs.__getitem__, losses.__getitem__)
    return {"base": bases.pop(), "runs": runs, **record}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="archscale select-lr", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    ap.add_argument("runs", nargs="+", help="every run of one <arch>-<size>'s sweep: each lr, each seed")
    ap.add_argument("--runs-dir", default="results/runs")
    ap.add_argument("--upstream-dir", default="results/upstream")
    ap.add_argument("--out", required=True, help="results/sweeps/<arch>-<size>.json")
    ap.add_argument("--log", default=None)
    args = ap.parse_args(argv)
    log = get_logger("select_lr", args.log)
    try:
        record = choose(args.runs, Path(args.runs_dir), Path(args.upstream_dir))
    except ValueError as exc:
        log.error("%s", exc)
        print(f"archscale select-lr: {exc}", file=sys.stderr)
        return 1
    write_json(args.out, record)
    means = ", ".join(f"{lr}: {loss:.4f}" for lr, loss in record["mean_val_loss"].items())
    log.info("%s: lr %s selected (mean val_loss over seeds: %s) -> %s", record["base"], record["lr"], means, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
