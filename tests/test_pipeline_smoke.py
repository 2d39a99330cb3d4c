"""The whole DAG on the smoke preset through real Snakemake: raw corpus to paper PDF.

The build is the `smoke_build` session fixture (conftest.py): plain `snakemake --cores 2` in a fresh
workspace whose params.yaml is presets/smoke.yaml; test_dvc_rebuild.py works on copies of it."""

from __future__ import annotations

import csv

import pytest
from workspace import sh


@pytest.mark.slow
def test_smoke_preset_builds_summary_figures_tables_and_paper(smoke_build):
    ws = smoke_build
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
    again = sh(ws, "snakemake", "--cores", "2", "-n", timeout=300)
    assert "Nothing to be done" in again.stdout + again.stderr
