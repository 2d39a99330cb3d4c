"""The learning curve as training goes: curve.csv grows one line per eval point, so a running run
shows its curve, and each point is also a line of the job log (kept when a failed job's outputs are
deleted) and, with `tracking: dvclive`, a DVCLive step.

A (re)started run first writes curve.csv anew from the rows its checkpoint holds (none at step 0),
so points logged after the last checkpoint by a killed attempt are dropped and then recomputed:
no duplicate and no missing row. The finished file is byte for byte what one write at the end gives.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

from archscale.io import atomic_path

CURVE_FIELDS = ["step", "tokens", "flops", "train_loss", "val_loss", "lr", "wall_s"]


def _lines(rows: list[dict], header: bool) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CURVE_FIELDS, lineterminator="\n")
    if header:
        w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def write_curve(path: Path, rows: list[dict]) -> None:
    """The whole curve at once, atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(_lines(rows, header=True))


class DvcLive:
    """Eval points as DVCLive steps in <run>/dvclive (metrics.json + plots/metrics/*.tsv)."""

    def __init__(self, run_dir: Path, rows: list[dict]):
        from dvclive import Live

        folder = run_dir / "dvclive"
        shutil.rmtree(folder, ignore_errors=True)  # replayed from the checkpoint's rows: no duplicates
        self.live = Live(dir=str(folder), save_dvc_exp=False, dvcyaml=None, report=None)
        for row in rows:
            self.log(row)

    def log(self, row: dict) -> None:
        self.live.step = row["step"]
        for key in ("train_loss", "val_loss", "lr", "tokens", "flops"):
            self.live.log_metric(key, row[key])
        self.live.next_step()

    def close(self) -> None:
        self.live.end()


class LiveCurve:
    def __init__(self, path: Path, rows: list[dict], tracking: str | None, log):  # tracking: the schema checked it
        self.path, self.log = Path(path), log
        write_curve(self.path, rows)
        self.tracker = DvcLive(self.path.parent, rows) if tracking == "dvclive" else None

    def append(self, row: dict) -> None:
        """One line, in one write, flushed to disk before training goes on."""
        with open(self.path, "a") as fh:
            fh.write(_lines([row], header=False))
            fh.flush()
            os.fsync(fh.fileno())
        self.log.info("step %d: train_loss %.4f val_loss %.4f lr %.3g tokens %d wall %.1f s", row["step"],
                      row["train_loss"], row["val_loss"], row["lr"], row["tokens"], row["wall_s"])
        if self.tracker:
            self.tracker.log(row)

    def close(self) -> None:
        if self.tracker:
            self.tracker.close()
