"""Prediction check: hold out the largest size, predict its loss, report the error per law."""

from __future__ import annotations

import json

import pytest

from archscale.analysis.cli import main as fit_main
from archscale.analysis.synth import make_runs, write_runs


@pytest.fixture(scope="module")
def noiseless(tmp_path_factory):
    """Five sizes whose curves follow L(N, D) exactly: approach 3 must extrapolate almost exactly."""
    root = tmp_path_factory.mktemp("pred")
    rows, curves = make_runs(["transformer"], ["tiny", "small", "base", "large", "xl"], noise=0.0, scans=False,
                             downstream=False, steps=60)
    write_runs(root, rows, curves)
    return root


def test_prediction_errors_of_a_law_that_holds(noiseless, tmp_path):
    out = tmp_path / "prediction.json"
    assert fit_main(["--law", "prediction", "--csv", str(noiseless / "summary.csv"),
                     "--runs-dir", str(noiseless / "runs"), "--out", str(out)]) == 0
    g = json.loads(out.read_text())["groups"]["transformer"]
    assert g["held_out"] == "transformer-xl" and g["n_train"] == 4
    laws = g["laws"]
    assert abs(laws["approach3"]["rel_error"]) < 0.01, "the generating law must predict its own data"
    for law in ("power_flops", "lc_pure", "lc_offset"):
        assert laws[law]["status"] == "fitted"
        assert laws[law]["abs_error"] == pytest.approx(laws[law]["predicted"] - g["actual"])
    # A pure power law in F misses the curvature of E + A/N^alpha: it must err more than approach 3.
    assert abs(laws["power_flops"]["rel_error"]) > abs(laws["approach3"]["rel_error"])


def test_three_sizes_leave_approach3_unfittable_but_check_the_rest(tmp_path):
    rows, curves = make_runs(["gpt2"], ["tiny", "small", "base"], scans=False, steps=40)
    write_runs(tmp_path, rows, curves)
    out = tmp_path / "p.json"
    assert fit_main(["--law", "prediction", "--csv", str(tmp_path / "summary.csv"),
                     "--runs-dir", str(tmp_path / "runs"), "--out", str(out)]) == 0
    laws = json.loads(out.read_text())["groups"]["gpt2"]["laws"]
    assert laws["power_flops"]["status"] == "fitted"
    assert laws["approach3"]["status"] == "not_fittable"


def test_without_curves_only_the_table_law_is_checked(noiseless, tmp_path):
    out = tmp_path / "p.json"
    assert fit_main(["--law", "prediction", "--csv", str(noiseless / "summary.csv"),
                     "--runs-dir", str(tmp_path / "none"), "--out", str(out)]) == 0
    laws = json.loads(out.read_text())["groups"]["transformer"]["laws"]
    assert laws["power_flops"]["status"] == "fitted"
    assert laws["lc_pure"]["status"] == "not_available" and "curve.csv" in laws["lc_pure"]["reason"]
