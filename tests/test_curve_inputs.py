"""Only the fits and figures that read learning curves list them as job inputs (analysis.cli and
figures.cli READS_CURVES): 3 of the 7 fits and 10 of the 12 figures list no per-run file, a quarter
fewer edges in a swept paper DAG. The others must not read them: made again from the built smoke
workspace's tables (each fit's own: analysis.cli.TABLES) in a folder with no results/runs, each
gives the same bytes."""

from __future__ import annotations

import shlex
import shutil

import pytest
from workspace import sh

from archscale.analysis.cli import FITS
from archscale.analysis.cli import READS_CURVES as FIT_CURVES
from archscale.analysis.cli import TABLES as FIT_TABLES
from archscale.figures.cli import FIGURES
from archscale.figures.cli import READS_CURVES as FIGURE_CURVES


@pytest.mark.slow
def test_fits_and_figures_not_declared_to_read_curves_do_not_read_them(smoke_build, tmp_path):
    ws = tmp_path / "ws"  # the tables and fits, no results/runs
    (ws / "results").mkdir(parents=True)
    for name in ("summary.csv", "sweep.csv", "isoflop.csv"):
        shutil.copy(smoke_build / "results" / name, ws / "results" / name)
    shutil.copytree(smoke_build / "results" / "fits", ws / "results" / "fits")
    shutil.copytree(smoke_build / "src", ws / "src")
    assert set(FITS) - FIT_CURVES and set(FIGURES) - FIGURE_CURVES
    for fit in sorted(set(FITS) - FIT_CURVES):
        out = ws / "results" / "fits" / f"{fit}.json"
        out.unlink()
        sh(ws, "archscale", "fit", *shlex.split(FITS[fit]), "--csv", FIT_TABLES.get(fit, "results/summary.csv"),
           "--runs-dir", "results/runs", "--out", f"results/fits/{fit}.json")
        assert out.read_bytes() == (smoke_build / "results" / "fits" / f"{fit}.json").read_bytes(), fit
    for fig in sorted(set(FIGURES) - FIGURE_CURVES):
        sh(ws, "env", "SOURCE_DATE_EPOCH=1700000000", "archscale", "figure", fig, "--summary", "results/summary.csv",
           "--sweep", "results/sweep.csv", "--fits-dir", "results/fits", "--runs-dir", "results/runs",
           "--out-dir", "figures")
        made, built = ws / "figures" / f"{fig}.png", smoke_build / "figures" / f"{fig}.png"
        assert made.read_bytes() == built.read_bytes(), fig
