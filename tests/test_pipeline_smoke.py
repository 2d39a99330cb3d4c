"""The whole DAG on the smoke preset through real Snakemake: raw corpus to paper PDF."""

from __future__ import annotations

import csv
import subprocess

import pytest

from workspace import make_workspace


@pytest.mark.slow
def test_smoke_preset_builds_summary_figures_tables_and_paper(shared_data, tmp_path):
    ws = make_workspace(tmp_path / "ws", corpus=shared_data / "corpus" / "gutenberg",
                        superglue=shared_data / "superglue")
    proc = subprocess.run(["snakemake", "--cores", "2", "--configfile", "presets/smoke.yaml", "--quiet", "rules"],
                          cwd=ws, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    rows = list(csv.DictReader(open(ws / "results" / "summary.csv")))
    assert {r["arch"] for r in rows} == {"transformer", "gpt2", "bert_mlm"} and len(rows) == 9
    for r in rows:
        assert r["score_CB"] and r["score_COPA"] and r["score_RTE"] and r["downstream_avg"]
        assert r["scratch_CB"], "the random-init fine-tune of the same shape (Table 3)"
    assert (ws / "results" / "finetune" / rows[0]["run"] / "RTE" / "AX-b" / "metrics.json").is_file()
    for name in ("upstream_vs_flops", "pareto", "lc_frontier"):
        assert (ws / "figures" / f"{name}.pdf").stat().st_size > 1000
    for table in ("table1_runs", "table2_slopes", "table3_transfer", "macros"):
        assert (ws / "paper" / "generated" / f"{table}.tex").stat().st_size > 0
    pdf = ws / "paper" / "build" / "main.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    # a second invocation finds nothing to do
    again = subprocess.run(["snakemake", "--cores", "2", "--configfile", "presets/smoke.yaml", "-n"], cwd=ws,
                           capture_output=True, text=True, timeout=300)
    assert "Nothing to be done" in again.stdout + again.stderr
