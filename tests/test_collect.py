"""collect: summary.csv carries bits per byte (causal runs) and says which tasks downstream_avg
averages, marking an average over fewer tasks than the preset fine-tunes as partial; the paper
names those tasks (\\DownstreamTasks) and counts the partial runs."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

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
    summary, _ = collect(root / "runs", root / "upstream", root / "finetune", ["gpt2-nano", "transformer-nano"], TASKS)
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
