"""The whole DAG on the smoke preset through real Snakemake: raw corpus to paper PDF.

The build is the `smoke_build` session fixture (conftest.py): plain `snakemake --cores 2` in a fresh
workspace whose params.yaml is presets/smoke.yaml; test_dvc_rebuild.py works on copies of it."""

from __future__ import annotations

import csv
import json

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
    # the IsoFLOP grid (1 architecture x 3 sizes x 2 budgets): every branch's eval points, each
    # branch's last row at its budget (whole steps), fitted (or each budget's reason why not) and drawn
    iso = list(csv.DictReader(open(ws / "results" / "isoflop.csv")))
    final = [r for r in iso if r["final"] == "1"]
    assert len(final) == 6 and {r["size"] for r in final} == {"pico", "nano", "micro"}
    assert len(iso) > len(final), "the curve points before each branch's end (approach 1 reads them)"
    for r in final:
        # a whole number of steps: within half a step of the budget (micro: 5 and 10 steps, 5.7% off)
        assert abs(float(r["flops"]) / float(r["budget"]) - 1) < 0.1, r
    fit = json.loads((ws / "results" / "fits" / "isoflop.json").read_text())
    assert not fit["empty"] and [b["C"] for b in fit["groups"]["gpt2"]["approach2"]["budgets"]] == [1.5e9, 3e9]
    assert all(b["N_opt"] or b["reason"] for b in fit["groups"]["gpt2"]["approach2"]["budgets"])
    assert (ws / "figures" / "isoflop.pdf").stat().st_size > 1000
    pdf = ws / "paper" / "build" / "main.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    # a second invocation finds nothing to do
    again = sh(ws, "snakemake", "--cores", "2", "-n", timeout=300)
    assert "Nothing to be done" in again.stdout + again.stderr
