"""The paper: each TeX engine (the system's latexmk, the pdflatex bundled with the install) builds
main.pdf from generated tables, macros and every figure, and the same inputs give the same PDF bytes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_figures import FIXTURE, draw_all, fitted  # noqa: F401  (session fixture: every fit of the fixture)

from archscale.figures.cli import FIGURES
from archscale.paper import PaperError, build, find_engine

REPO = Path(__file__).resolve().parents[1]


def engine_or_skip(name: str):
    try:
        return find_engine(name)
    except PaperError as exc:
        pytest.skip(f"TeX engine {name!r} not on this machine: {exc}")


@pytest.fixture(scope="module")
def paper_tree(tmp_path_factory, fitted) -> Path:  # noqa: F811
    """A copy of paper/ beside a figures/ folder, filled from the synthetic fixture, whose runs are
    marked as chosen from 3 learning rates (`lrs`), so the paper has every optional part."""
    import csv

    root = tmp_path_factory.mktemp("paper_build")
    shutil.copytree(REPO / "paper", root / "paper", ignore=shutil.ignore_patterns("build", "generated"))
    rows = list(csv.DictReader((FIXTURE / "summary.csv").open()))
    with (root / "summary.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=[*rows[0], "lrs"], lineterminator="\n")
        w.writeheader()
        w.writerows({**r, "lrs": "3"} for r in rows)
    subprocess.run([sys.executable, "-m", "archscale.cli", "tables", "--summary", str(root / "summary.csv"),
                    "--fits-dir", str(fitted), "--templates", str(root / "paper" / "templates"),
                    "--out-dir", str(root / "paper" / "generated")],
                   check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    draw_all(root / "figures", fitted)
    return root


def _build(paper: Path, engine) -> bytes:
    shutil.rmtree(paper / "build", ignore_errors=True)
    (paper / "build").mkdir()
    with open(paper / "build" / "engine.log", "w") as log:
        build(paper / "main.tex", paper / "build" / "main.pdf", log, engine)
    return (paper / "build" / "main.pdf").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("engine_name", ["bundled", "latexmk"])
def test_paper_builds_byte_identically_with_every_figure_and_table(paper_tree, engine_name, monkeypatch):
    engine = engine_or_skip(engine_name)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    first = _build(paper_tree / "paper", engine)
    second = _build(paper_tree / "paper", engine)
    assert first == second
    assert first.startswith(b"%PDF")
    log = (paper_tree / "paper" / "build" / ".work" / "main.log").read_text()
    assert "undefined" not in log.lower(), "every macro and reference the prose uses must be defined"
    for name in FIGURES:
        assert f"<use ../figures/{name}.pdf>" in log, f"figure {name} not included"
    for table in ("table1_runs", "table2_slopes", "lc_fits", "approach3", "prediction", "table_claims", "macros"):
        assert f"generated/{table}.tex" in log, f"table {table} not included"
