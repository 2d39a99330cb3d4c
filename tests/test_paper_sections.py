"""The paper leaves out what a preset has no runs for: macros.tex carries yes/no switches computed
from summary.csv (\\HasDepthScan, \\HasWidthScan, \\HasDownstream, \\HasTransfer), and main.tex wraps
each optional figure, table and sentence in \\IfYes{<switch>}{...}{}. The default and smoke presets
have no depth or width scans: their papers have no scan figures (the figures are still drawn, as
placeholders, so the DAG is the same for every preset)."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from archscale.analysis.synth import make_runs, to_csv
from archscale.tables import main as tables_main

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "analysis"
TEMPLATES = REPO / "paper" / "templates"
SWITCHES = ("HasDepthScan", "HasWidthScan", "HasScan", "HasDownstream", "HasTransfer")


def write_summary(path: Path, keep=lambda row: True, extra=None) -> Path:
    """The fixture's summary.csv, only the rows `keep` accepts, with `extra(row)` columns added."""
    with open(FIXTURE / "summary.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if keep(r)]
    for r in rows:
        r.update(extra(r) if extra else {})
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def switches(tmp_path: Path, summary: Path) -> dict[str, str]:
    out = tmp_path / "generated"
    assert tables_main(["--summary", str(summary), "--fits-dir", str(tmp_path / "no_fits"), "--templates",
                        str(TEMPLATES), "--out-dir", str(out), "--only", "macros"]) == 0
    macros = dict(re.findall(r"^\\newcommand\{\\([A-Za-z]+)\}\{(.*)\}$", (out / "macros.tex").read_text(), re.M))
    return {name: macros[name] for name in SWITCHES}


def test_a_summary_without_scan_rows_has_no_scan_sections(tmp_path):
    """The smoke and default presets: no `scan` rows -> no depth or width scan in the paper."""
    got = switches(tmp_path, write_summary(tmp_path / "summary.csv", keep=lambda r: not r["scan"]))
    assert got["HasDepthScan"] == got["HasWidthScan"] == got["HasScan"] == "no", got
    assert got["HasDownstream"] == "yes" and got["HasTransfer"] == "no", got


def test_scan_rows_switch_their_own_section_on(tmp_path):
    both = switches(tmp_path / "both", write_summary(tmp_path / "both.csv"))
    assert both["HasDepthScan"] == both["HasWidthScan"] == both["HasScan"] == "yes", both
    depth = switches(tmp_path / "depth", write_summary(tmp_path / "depth.csv", keep=lambda r: r["scan"] != "width"))
    assert (depth["HasDepthScan"], depth["HasWidthScan"], depth["HasScan"]) == ("yes", "no", "yes"), depth


def test_downstream_and_transfer_switches(tmp_path):
    rows, _ = make_runs(["transformer", "gpt2"], ["tiny", "small", "base"], downstream=False, scans=False)
    (tmp_path / "plain.csv").write_text(to_csv(rows))
    plain = switches(tmp_path / "plain", tmp_path / "plain.csv")
    assert plain["HasDownstream"] == "no" and plain["HasTransfer"] == "no", plain
    # scratch_<task>: the same task fine-tuned from a random init (Table 3 pairs it with score_<task>)
    scratch = write_summary(tmp_path / "scratch.csv", extra=lambda r: {"scratch_CB": "33.3" if r["score_CB"] else ""})
    assert switches(tmp_path / "scratch", scratch)["HasTransfer"] == "yes"
    empty = write_summary(tmp_path / "empty.csv", extra=lambda r: {"scratch_CB": ""})
    assert switches(tmp_path / "empty", empty)["HasTransfer"] == "no", "a column with no scores is no transfer table"


def _blocks(tex: str, switch: str) -> list[str]:
    """The yes-branches of every \\IfYes{\\<switch>}{...} in `tex` (braces matched)."""
    out = []
    for m in re.finditer(r"\\IfYes\{\\" + switch + r"\}\{", tex):
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(tex[i], 0)
            i += 1
        out.append(tex[m.end():i - 1])
    return out


@pytest.mark.parametrize("switch, parts", [
    ("HasDepthScan", [r"\archfig{depth_scan}", r"\ref{fig:depth}", r"\label{fig:depth}"]),
    ("HasWidthScan", [r"\archfig{width_scan}", r"\ref{fig:width}", r"\label{fig:width}"]),
    ("HasDownstream", [r"\archfig{downstream_scaling}", r"\ref{fig:downstream}"]),
    ("HasTransfer", [r"\input{generated/table3_transfer.tex}", r"\ref{tab:transfer}", r"\NumTransferPairs"]),
    ("HasLrSweep", [r"\archfig{lr_sweep}", r"\ref{fig:lrsweep}", r"\label{fig:lrsweep}", r"\NumSweepLrs"]),
    ("HasIsoflop", [r"\archfig{isoflop}", r"\input{generated/isoflop.tex}", r"\ref{fig:isoflop}",
                    r"\label{fig:isoflop}", r"\IsoflopAMin", r"\IsoflopBMax"]),
])
def test_main_tex_wraps_every_optional_part_in_its_switch(switch, parts):
    tex = re.sub(r"(?<!\\)%.*", "", (REPO / "paper" / "main.tex").read_text())  # comments out
    inside = "".join(_blocks(tex, switch))
    assert inside, f"main.tex has no \\IfYes{{\\{switch}}}"
    for part in parts:
        assert tex.count(part) == inside.count(part) > 0, f"{part} is not (only) inside \\IfYes{{\\{switch}}}"


@pytest.mark.slow
def test_paper_without_scans_has_no_scan_figures(tmp_path, monkeypatch):
    """Built with the bundled TeX from a summary without scan rows (the smoke/default presets): the
    scan figures are not included (nor the lr sweep's and the IsoFLOP one: the fixture has no sweep and
    no isoflop fit), nothing is undefined, every other figure is there."""
    from archscale.figures.cli import FIGURES
    from archscale.paper import PaperError, build, find_engine

    try:
        engine = find_engine("bundled")
    except PaperError as exc:
        pytest.skip(f"no bundled TeX engine: {exc}")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    shutil.copytree(REPO / "paper", tmp_path / "paper", ignore=shutil.ignore_patterns("build", "generated"))
    summary = write_summary(tmp_path / "summary.csv", keep=lambda r: not r["scan"])
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    subprocess.run([sys.executable, "-m", "archscale.cli", "tables", "--summary", str(summary), "--fits-dir",
                    str(tmp_path / "fits"), "--templates", str(tmp_path / "paper" / "templates"),
                    "--out-dir", str(tmp_path / "paper" / "generated")], check=True, cwd=REPO, env=env)
    code = ("import sys; from archscale.figures.cli import main, FIGURES\n"
            "for n in FIGURES: assert main([n, *sys.argv[1:]]) == 0")
    subprocess.run([sys.executable, "-c", code, "--summary", str(summary), "--runs-dir", str(FIXTURE / "runs"),
                    "--fits-dir", str(tmp_path / "fits"), "--out-dir", str(tmp_path / "figures")],
                   check=True, cwd=REPO, env=env)
    paper = tmp_path / "paper"
    (paper / "build").mkdir()
    with open(paper / "build" / "engine.log", "w") as log:
        build(paper / "main.tex", paper / "build" / "main.pdf", log, engine)
    log = (paper / "build" / ".work" / "main.log").read_text()
    assert "undefined" not in log.lower(), "a reference to a left-out figure or an undefined macro"
    left_out = {"depth_scan", "width_scan", "lr_sweep", "isoflop"}
    for name in FIGURES:
        included = f"<use ../figures/{name}.pdf>" in log
        assert included == (name not in left_out), f"{name}: included={included}"
