"""An lr sweep through the real DAG: on a copy of the built smoke workspace, `--config` sweeps
gpt2-pico over two lrs; Snakemake pretrains and evaluates both, select_lr writes its choice, the
fine-tunes (named gpt2-pico, as before the sweep) rerun on the chosen lr's model, and collect puts
their scores on the selected row of summary.csv."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from workspace import sh

SWEEP = "sweeps={pico: {architectures: [gpt2], sizes: [pico], lr: [0.001, 0.004]}}"
ONE_TASK = "finetune={tasks: [CB], scratch_tasks: []}"  # the task lists rerun nothing: only CB's job is planned


@pytest.mark.slow
def test_a_sweep_pretrains_every_lr_and_fine_tunes_the_selected_one(smoke_build, tmp_path):
    ws = Path(shutil.copytree(smoke_build, tmp_path / "ws", symlinks=True))
    before = json.loads((ws / "results/finetune/gpt2-pico/CB/metrics.json").read_text())
    sh(ws, "snakemake", "--cores", "2", "--quiet", "rules", "--config", SWEEP, ONE_TASK, "--",
       "results/summary.csv", timeout=1800)
    choice = json.loads((ws / "results/sweeps/gpt2-pico.json").read_text())
    sweep = [r for r in csv.DictReader(open(ws / "results/sweep.csv")) if r["arch"] == "gpt2" and r["size"] == "pico"]
    assert sorted(r["run"] for r in sweep) == ["gpt2-pico+lr0.001", "gpt2-pico+lr0.004"]
    losses = {float(r["lr"]): float(r["val_loss"]) for r in sweep}
    assert choice["lr"] == min(losses, key=losses.get), "select_lr and sweep.csv apply one rule"
    chosen = choice["selected"]["gpt2-pico"]
    assert [r["run"] for r in sweep if r["selected"] == "yes"] == [chosen]
    summary = {r["run"]: r for r in csv.DictReader(open(ws / "results/summary.csv"))}
    assert "gpt2-pico" not in summary and chosen in summary
    rec = json.loads((ws / "results/finetune/gpt2-pico/CB/metrics.json").read_text())
    assert (rec["run"], rec["pretrained_run"]) == ("gpt2-pico", chosen)
    assert float(summary[chosen]["score_CB"]) == rec["score"]
    assert before["pretrained_run"] == "gpt2-pico", "the smoke build's fine-tune is rerun on the chosen model"
    assert not (ws / "results/finetune" / chosen).exists()
    rest = sh(ws, "snakemake", "--cores", "1", "-n", "--config", SWEEP, ONE_TASK, "--", "results/summary.csv")
    assert "Nothing to be done" in rest.stdout + rest.stderr
