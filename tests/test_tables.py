"""LaTeX tables and macros: escaping by one filter, rounding, dashes for missing data, bytes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archscale.analysis.cli import main as fit_main
from archscale.analysis.macros import Macros
from archscale.analysis.synth import make_runs, to_csv
from archscale.analysis.texfmt import ci, count, fixed, macro_name, sci, sig, tex
from archscale.tables import main as tables_main

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "analysis" / "summary.csv"
TEMPLATES = REPO / "paper" / "templates"


def _render(tmp_path: Path, summary: Path, *, fit: bool = True) -> Path:
    fits = tmp_path / "fits"
    if fit:
        assert fit_main(["--law", "slopes", "--csv", str(summary), "--out", str(fits / "slopes.json"),
                         "--n-boot", "200"]) == 0
    out = tmp_path / "generated"
    assert tables_main(["--summary", str(summary), "--fits-dir", str(fits), "--templates", str(TEMPLATES),
                        "--out-dir", str(out)]) == 0
    return out


def test_tex_escapes_every_special_character():
    assert tex("bert_mlm & 50% $5 #1 {x} ~ ^ \\") == (
        r"bert\_mlm \& 50\% \$5 \#1 \{x\} \textasciitilde{} \textasciicircum{} \textbackslash{}"
    )


def test_number_formats_round_as_a_paper_does():
    assert fixed(-3.14159, 3) == r"\ensuremath{-3.142}" and fixed("", 2) == "--" and fixed(None) == "--"
    assert sig(190734.8633, 3) == "190735" and sig(0.012345, 3) == "0.0123"
    assert sci(1.1e14) == r"\ensuremath{1.1\times10^{14}}"
    assert count(622592) == "623K" and count(6.8e6) == "6.8M" and count(1.3e9) == "1.3B"
    assert ci({"status": "fitted", "alpha": 0.1234, "ci": [0.1, 0.15]}) == "0.123 [0.100, 0.150]"
    assert ci({"status": "not_fittable", "n": 2}) == "--"


def test_macro_names_are_letters_only_and_collisions_fail():
    assert macro_name("alphaFU", "gpt2") == "alphaFUGptTwo"
    assert macro_name("alphaFU", "bert_mlm") == "alphaFUBertMlm"
    m = Macros()
    m.add(macro_name("x", "bert_mlm"), "1")
    with pytest.raises(ValueError, match="XBertMlm|xBertMlm"):
        m.add(macro_name("x", "bert-mlm"), "2")


def test_tables_from_the_fixture(tmp_path):
    out = _render(tmp_path, FIXTURE)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["approach3.tex", "isoflop.tex", "lc_fits.tex", "macros.tex", "prediction.tex", "table1_runs.tex",
                     "table2_slopes.tex", "table3_transfer.tex", "table_claims.tex"]
    t1 = (out / "table1_runs.tex").read_text()
    rows = [line for line in t1.splitlines()
            if line.endswith(r"\\") and line.split(" & ")[0] in {"bert\\_mlm", "gpt2", "transformer"}]
    assert len(rows) == 15, "one row per run, scans included"
    assert "bert_mlm" not in t1, "names must be escaped"
    assert "ReCoRD" in t1 and " & -- & " in t1, "an empty score shows as a dash"
    t2 = (out / "table2_slopes.tex").read_text()
    assert re.search(r"^transformer & \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", t2, re.M)
    macros = (out / "macros.tex").read_text()
    assert r"\newcommand{\NumRuns}{15}" in macros and r"\newcommand{\NumArchs}{3}" in macros
    assert all(re.fullmatch(r"\\newcommand\{\\[A-Za-z]+\}\{.*\}", line)
               for line in macros.splitlines() if line.startswith("\\"))


def test_tables_without_downstream_or_fits(tmp_path):
    rows, _ = make_runs(["transformer", "gpt2"], ["tiny", "small", "base"], downstream=False, scans=False)
    summary = tmp_path / "summary.csv"
    summary.write_text(to_csv(rows))
    out = _render(tmp_path, summary, fit=False)
    t1 = (out / "table1_runs.tex").read_text()
    assert "BoolQ" not in t1 and "Avg." not in t1
    assert "Slopes not fitted" in (out / "table2_slopes.tex").read_text()
    assert "not fitted" in (out / "lc_fits.tex").read_text()
    macros = (out / "macros.tex").read_text()
    for fam in ("Span", "Clm", "Mlm"):  # every known family's macros exist, n/a when not fitted
        assert (f"\\newcommand{{\\BestFUArch{fam}}}{{n/a}}" in macros
                and f"\\newcommand{{\\RankedFU{fam}}}{{no}}" in macros)


def test_rendering_twice_gives_the_same_bytes(tmp_path):
    a = _render(tmp_path / "a", FIXTURE)
    b = _render(tmp_path / "b", FIXTURE)
    for p in a.iterdir():
        assert p.read_bytes() == (b / p.name).read_bytes(), p.name


def test_steps_per_second_come_from_throughput_csv(tmp_path):
    """collect writes wall-clock numbers to throughput.csv, not summary.csv; Table 1 joins them."""
    rows, _ = make_runs(["transformer"], ["tiny", "small", "base"], downstream=False, scans=False)
    throughput = [{"run": r["run"], "steps_per_s": 12.3456 + i} for i, r in enumerate(rows)]
    for r in rows:
        del r["steps_per_s"]
    (tmp_path / "summary.csv").write_text(to_csv(rows))
    (tmp_path / "throughput.csv").write_text(to_csv(throughput))
    out = tmp_path / "gen"
    assert tables_main(["--summary", str(tmp_path / "summary.csv"), "--throughput", str(tmp_path / "throughput.csv"),
                        "--fits-dir", str(tmp_path), "--templates", str(TEMPLATES), "--out-dir", str(out),
                        "--only", "table1_runs"]) == 0
    t1 = (out / "table1_runs.tex").read_text()
    assert " & 12.3 & " in t1 and " & 14.3 & " in t1


def test_transfer_table_pairs_pretrained_with_random_init(tmp_path):
    """Table 3 and its macros: pretrained minus scratch per (run, task); a missing score is a dash."""
    rows, _ = make_runs(["transformer"], ["tiny", "small"], downstream=False, scans=False)
    for r, pre, rand in zip(rows, [60.0, 50.0], [40.0, 55.0]):
        r.update(score_CB=pre, scratch_CB=rand, score_RTE=None, scratch_RTE=52.0)
    (tmp_path / "summary.csv").write_text(to_csv(rows))
    out = _render(tmp_path, tmp_path / "summary.csv", fit=False)
    t3 = (out / "table3_transfer.tex").read_text()
    assert r"\multicolumn{3}{c}{CB}" in t3 and r"\multicolumn{3}{c}{RTE}" in t3
    assert "& 60.0 & 40.0 & 20.0 & -- & 52.0 & --" in t3
    assert r"& 50.0 & 55.0 & \ensuremath{-5.0}" in t3
    macros = (out / "macros.tex").read_text()
    assert r"\newcommand{\NumTransferPairs}{2}" in macros and r"\newcommand{\NumTransferWins}{1}" in macros
    assert r"\newcommand{\MedianTransferGain}{7.5}" in macros
    no_scratch = tmp_path / "none"
    no_scratch.mkdir()
    for r in rows:
        for k in ("scratch_CB", "scratch_RTE"):
            del r[k]
    (no_scratch / "summary.csv").write_text(to_csv(rows))
    assert "Not measured" in (_render(no_scratch, no_scratch / "summary.csv", fit=False)
                              / "table3_transfer.tex").read_text()
