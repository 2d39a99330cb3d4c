"""collect: summary.csv carries bits per byte (causal runs) and says which tasks downstream_avg
averages, marking an average over fewer tasks than the preset fine-tunes as partial; the paper
names those tasks (\\DownstreamTasks) and counts the partial runs."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from archscale.analysis.macros import build_macros
from archscale.analysis.table import read_csv
from archscale.collect import collect, write_csv

REPO = Path(__file__).resolve().parents[1]
TASKS = ["CB", "COPA", "RTE"]


def _write(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _results(root: Path) -> Path:
    """Two runs: gpt2-nano (causal, val_bpb, every task scored) and transformer-nano (span, no
    val_bpb key, no COPA score)."""
    for run, obj, bpb, scores in (("gpt2-nano", "clm", 1.25, {"CB": 60.0, "COPA": 55.0, "RTE": 50.0}),
                                  ("transformer-nano", "span", None, {"CB": 40.0, "RTE": 52.0})):
        arch, size = run.split("-")
        _write(root / "runs" / run / "metrics.json",
               {"run": run, "arch": arch, "size": size, "objective": obj, "scan": ""})
        up = {"val_loss": 3.0, "val_ppl": 20.1, "neg_log_ppl": -3.0, "loss_target": "next token"}
        _write(root / "upstream" / run / "upstream.json", {**up, **({"val_bpb": bpb} if bpb is not None else {})})
        for task, score in scores.items():
            _write(root / "finetune" / run / task / "metrics.json", {"score": score})
    summary, _, _ = collect(root / "runs", root / "upstream", root / "finetune", ["gpt2-nano", "transformer-nano"],
                            TASKS)
    write_csv(root / "summary.csv", summary)
    return root / "summary.csv"


def test_summary_marks_a_partial_average_and_carries_bits_per_byte(tmp_path):
    rows = {r["run"]: r for r in csv.DictReader(open(_results(tmp_path)))}
    full, part = rows["gpt2-nano"], rows["transformer-nano"]
    assert (full["downstream_tasks"], full["downstream_partial"]) == ("CB COPA RTE", "no")
    assert float(full["downstream_avg"]) == 55.0
    assert (part["downstream_tasks"], part["downstream_partial"]) == ("CB RTE", "yes")
    assert float(part["downstream_avg"]) == 46.0, "the average of the tasks it has"
    assert full["val_bpb"] == "1.25" and part["val_bpb"] == "", "bits per byte: causal runs only"


def test_paper_names_the_averaged_tasks_and_counts_partial_runs(tmp_path):
    m = dict(build_macros(read_csv(_results(tmp_path)), {}))
    assert m["DownstreamTasks"] == "CB, COPA, RTE" and m["NumDownstreamTasks"] == "3"
    assert m["NumPartialDownstream"] == "1" and m["HasPartialDownstream"] == "yes"
    tex = re.sub(r"(?<!\\)%.*", "", (REPO / "paper" / "main.tex").read_text())
    assert r"\DownstreamTasks" in tex and r"\IfYes{\HasPartialDownstream}" in tex and r"\NumPartialDownstream" in tex
    t1 = (REPO / "paper" / "templates" / "table1_runs.tex.j2").read_text()
    assert r"\BLOCK{if r.partial}$^*$" in t1, "Table 1 marks a partial average"


def test_a_sweep_keeps_the_lr_with_the_lowest_mean_over_seeds(tmp_path):
    """Per (arch, size) the lr whose val_loss averaged over seeds is lowest goes to summary.csv, every
    seed of it; a single lucky seed at another lr does not win. Outside a sweep every run is kept."""
    losses = {("gpt2-nano+lr0.001", None): 3.0, ("gpt2-nano+lr0.001", 1): 3.4,  # mean 3.2, best single seed
              ("gpt2-nano+lr0.002", None): 3.1, ("gpt2-nano+lr0.002", 1): 3.15,  # mean 3.125: chosen
              ("gpt2-nano+lr0.004", None): 3.3, ("gpt2-nano+lr0.004", 1): 3.3,
              ("transformer-nano", None): 2.0, ("transformer-nano", 1): 2.2}
    runs = []
    for (base, seed), loss in losses.items():
        run = base + (f"+s{seed}" if seed is not None else "")
        runs.append(run)
        arch, size = base.split("+")[0].split("-")
        lr = float(base.split("+lr")[1]) if "+lr" in base else 0.01
        _write(tmp_path / "runs" / run / "metrics.json",
               {"run": run, "arch": arch, "size": size, "objective": "clm", "scan": "", "seed": seed or 0})
        _write(tmp_path / "runs" / run / "config.json", {"train": {"lr": lr}})
        _write(tmp_path / "upstream" / run / "upstream.json",
               {"val_loss": loss, "val_ppl": 1.0, "neg_log_ppl": -loss, "loss_target": "next token"})
    summary, _, rows = collect(tmp_path / "runs", tmp_path / "upstream", None, runs, [])
    sweep = {r["run"]: r for r in rows}
    assert [r["run"] for r in summary] == [r for r in runs if sweep[r]["selected"] == "yes"]
    assert {r for r, row in sweep.items() if row["selected"] == "yes"} == {
        "gpt2-nano+lr0.002", "gpt2-nano+lr0.002+s1", "transformer-nano", "transformer-nano+s1"}
    assert sweep["gpt2-nano+lr0.001"]["mean_val_loss"] == 3.2 and sweep["gpt2-nano+lr0.001"]["seeds"] == 2
    assert sweep["gpt2-nano+lr0.002"]["lr"] == 0.002


def test_summary_rows_say_how_many_lrs_their_run_was_chosen_from(tmp_path):
    """`lrs` (after `lr`) counts the learning rates of a row's (arch, size) in the sweep; the paper's
    \\HasLrSweep and \\NumSweepLrs come from it."""
    from archscale.collect import lr_counts, with_lrs

    sweep = [{"arch": "gpt2", "size": "nano", "lr": lr} for lr in (0.001, 0.002, 0.004, 0.002)]
    sweep.append({"arch": "transformer", "size": "nano", "lr": 0.01})
    counts = lr_counts(sweep)
    row = with_lrs({"run": "gpt2-nano+lr0.002", "arch": "gpt2", "size": "nano", "lr": 0.002, "seed": 0},
                   counts["gpt2", "nano"])
    assert list(row) == ["run", "arch", "size", "lr", "lrs", "seed"] and row["lrs"] == 3
    other = with_lrs({"run": "transformer-nano", "arch": "transformer", "size": "nano", "lr": 0.01},
                     counts["transformer", "nano"])
    m = dict(build_macros([{**row, "lrs": str(row["lrs"])}, {**other, "lrs": str(other["lrs"])}], {}))
    assert (m["HasLrSweep"], m["NumSweepLrs"]) == ("yes", "3")
    m = dict(build_macros([{**other, "lrs": "1"}], {}))
    assert (m["HasLrSweep"], m["NumSweepLrs"]) == ("no", "1")


def test_a_sweep_fine_tunes_its_selected_lr_and_collect_wires_the_scores_to_it(tmp_path):
    """`archscale select-lr` picks, per (arch, size), the lr with the lowest val_loss averaged over
    seeds (a tie: the smaller lr), as sweep.csv does; fine-tunes are named without lr, and collect
    puts their scores on the selected rows and stops, naming the file, at a fine-tune of another lr."""
    from archscale import config as cfg
    from archscale.runs import tuned_runs
    from archscale.select_lr import main as select_main

    params = cfg.load(REPO / "presets" / "smoke.yaml")
    params["grid"] = {"architectures": ["gpt2"], "sizes": ["nano"]}
    params["sweeps"] = {"lr": {"lr": [0.001, 0.002, 0.004]}}
    params["seeds"] = [1]
    cfg.validate(params)
    assert tuned_runs(params) == ["gpt2-nano", "gpt2-nano+s1"]
    # lr 0.001 has the best single seed (3.0), lr 0.002 the best mean (3.125)
    losses = {"gpt2-nano+lr0.001": 3.0, "gpt2-nano+lr0.001+s1": 3.4, "gpt2-nano+lr0.002": 3.1,
              "gpt2-nano+lr0.002+s1": 3.15, "gpt2-nano+lr0.004": 3.3, "gpt2-nano+lr0.004+s1": 3.3}
    assert sorted(losses) == sorted(cfg.runs(params))

    def plant(values):
        for run, loss in values.items():
            lr = cfg.resolve_run(params, run)["train"]["lr"]
            _write(tmp_path / "runs" / run / "metrics.json",
                   {"run": run, "arch": "gpt2", "size": "nano", "objective": "clm", "scan": ""})
            _write(tmp_path / "runs" / run / "config.json", {"train": {"lr": lr}})
            _write(tmp_path / "upstream" / run / "upstream.json",
                   {"val_loss": loss, "val_ppl": 1.0, "neg_log_ppl": -loss, "loss_target": "next token"})
        out = tmp_path / "sweeps" / "gpt2-nano.json"
        assert select_main([*values, "--runs-dir", str(tmp_path / "runs"), "--upstream-dir",
                            str(tmp_path / "upstream"), "--out", str(out)]) == 0
        return json.loads(out.read_text())

    tie = plant({**losses, "gpt2-nano+lr0.004": 3.1, "gpt2-nano+lr0.004+s1": 3.15})
    assert tie["lr"] == 0.002, "a tie goes to the smaller lr"
    choice = plant(losses)
    assert choice["lr"] == 0.002 and choice["mean_val_loss"]["0.001"] == 3.2
    assert choice["selected"] == {"gpt2-nano": "gpt2-nano+lr0.002", "gpt2-nano+s1": "gpt2-nano+lr0.002+s1"}
    for tuned, score in (("gpt2-nano", 60.0), ("gpt2-nano+s1", 70.0)):
        _write(tmp_path / "finetune" / tuned / "CB" / "metrics.json",
               {"score": score, "pretrained_run": choice["selected"][tuned]})
    summary, _, _ = collect(tmp_path / "runs", tmp_path / "upstream", tmp_path / "finetune", list(losses), ["CB"])
    assert [(r["run"], r["score_CB"]) for r in summary] == [("gpt2-nano+lr0.002", 60.0),
                                                           ("gpt2-nano+lr0.002+s1", 70.0)]
    stale = tmp_path / "finetune" / "gpt2-nano+s1" / "CB" / "metrics.json"
    _write(stale, {"score": 90.0, "pretrained_run": "gpt2-nano+lr0.001+s1"})
    with pytest.raises(ValueError, match=re.escape(str(stale))):
        collect(tmp_path / "runs", tmp_path / "upstream", tmp_path / "finetune", list(losses), ["CB"])
    # a run that is not evaluated yet stops the selection, naming the file
    (tmp_path / "upstream" / "gpt2-nano+lr0.004+s1" / "upstream.json").unlink()
    assert select_main([*losses, "--runs-dir", str(tmp_path / "runs"), "--upstream-dir", str(tmp_path / "upstream"),
                        "--out", str(tmp_path / "sweeps" / "x.json")]) == 1
    assert not (tmp_path / "sweeps" / "x.json").exists()
