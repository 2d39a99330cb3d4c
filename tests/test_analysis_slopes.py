"""Tay et al. slopes: recovery of a known exponent, interval coverage, not-fittable groups, CLI."""

from __future__ import annotations

import csv as csv_mod
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from archscale.analysis.cli import main as fit_main
from archscale.analysis.slopes import fit_slopes, loglog_slope
from archscale.analysis.synth import make_runs, to_csv

FIXTURE = Path(__file__).parent / "fixtures" / "analysis" / "summary.csv"


def _power_law(n: int, seed: int, alpha: float = 0.05, noise: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.geomspace(1e15, 1e19, n)
    return x, 3.0 * x**-alpha * np.exp(rng.normal(0.0, noise, n))


def test_noiseless_power_law_is_exact():
    x, y = _power_law(5, 0, noise=0.0)
    fit = loglog_slope(x, y, negate=True)
    assert fit["alpha"] == pytest.approx(0.05, rel=1e-9)
    assert fit["r2"] == pytest.approx(1.0)
    assert fit["ci"][0] == pytest.approx(0.05) and fit["ci"][1] == pytest.approx(0.05)


@pytest.mark.parametrize("n, floor", [(5, 0.88), (8, 0.88)])
def test_bootstrap_interval_covers_the_true_slope_in_most_seeds(n, floor):
    """Measured coverage of the 95% residual bootstrap-t interval over 400 seeds: 0.945 with 5
    sizes, 0.94 with 8 (and 0.71 with 3, see below)."""
    seeds = range(200)
    hits = [lo <= 0.05 <= hi
            for lo, hi in (loglog_slope(*_power_law(n, s), negate=True, n_boot=500, seed=s)["ci"] for s in seeds)]
    coverage = float(np.mean(hits))
    print(f"slope CI coverage with {n} sizes: {coverage:.3f}")
    assert floor <= coverage <= 1.0


def test_student_t_interval_covers_with_three_sizes():
    """With 3 sizes the bootstrap cannot know the tails (0.71 measured); the t interval can."""
    hits = [lo <= 0.05 <= hi for lo, hi in (loglog_slope(*_power_law(3, s), negate=True, n_boot=200, seed=s)["ci_t"]
                                            for s in range(200))]
    assert np.mean(hits) >= 0.9


def _write_power_law_csv(path: Path, flops: np.ndarray, loss: np.ndarray) -> Path:
    """A summary.csv of one architecture whose upstream loss is the given power law in FLOPs."""
    lines = ["run,arch,scan,params,train_flops,neg_log_ppl,downstream_avg"]
    pairs = zip(flops.tolist(), loss.tolist())
    lines += [f"a-{i},a,,{f / 1e6!r},{f!r},{-v!r},{40.0 + i}" for i, (f, v) in enumerate(pairs)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_recovers_a_known_exponent_with_an_interval_that_narrows_with_more_sizes(tmp_path):
    """Loss = 3 F^-0.05 x 1% log-normal noise, drawn here; through the CLI (CSV, sign of U):
    alpha is the least-squares slope computed here with numpy, both intervals contain the TRUE
    0.05, the Student-t one equals the textbook one computed here with scipy, and with 4x the
    sizes over the same range the interval is over 2x narrower (3.1x here; ~7x expected from
    1/sqrt(S_xx) and the t quantile, less the luck of the 6-point residual spread)."""
    widths = {}
    for n in (6, 24):
        flops, loss = _power_law(n, seed=3)
        csv = _write_power_law_csv(tmp_path / f"n{n}.csv", flops, loss)
        out = tmp_path / f"n{n}.json"
        assert fit_main(["--law", "slopes", "--csv", str(csv), "--out", str(out), "--n-boot", "1000"]) == 0
        fit = json.loads(out.read_text())["groups"]["a"]["alpha_F_U"]
        ref = stats.linregress(np.log(flops), np.log(loss))
        half = stats.t.ppf(0.975, n - 2) * ref.stderr
        assert fit["alpha"] == pytest.approx(-ref.slope, rel=1e-9)
        assert fit["ci_t"] == pytest.approx([-ref.slope - half, -ref.slope + half], rel=1e-9)
        for key in ("ci", "ci_t"):
            lo, hi = fit[key]
            assert lo < 0.05 < hi, f"{n} sizes: {key} {fit[key]} misses the true exponent 0.05"
        widths[n] = fit["ci"][1] - fit["ci"][0]
        assert 0.0 < widths[n] < 0.05, f"{n} sizes: a 95% interval {fit['ci']} as wide as the exponent says little"
    assert widths[24] < widths[6] / 2, widths


def test_fewer_than_three_sizes_is_not_fittable():
    rows, _ = make_runs(["transformer", "gpt2"], ["tiny", "small"], scans=False)
    csv_rows = [{k: str(v) for k, v in r.items()} for r in rows]
    out = fit_slopes(csv_rows)
    for arch in ("transformer", "gpt2"):
        fit = out["groups"][arch]["alpha_F_U"]
        assert fit["status"] == "not_fittable" and "alpha" not in fit and fit["n"] == 2


def test_missing_downstream_is_not_fittable_but_upstream_is(tmp_path):
    rows, _ = make_runs(["transformer"], ["tiny", "small", "base"], downstream=False, scans=False)
    csv = tmp_path / "summary.csv"
    csv.write_text(to_csv(rows))
    out = tmp_path / "slopes.json"
    assert fit_main(["--law", "slopes", "--csv", str(csv), "--out", str(out), "--n-boot", "200"]) == 0
    fits = json.loads(out.read_text())["groups"]["transformer"]
    assert fits["alpha_F_U"]["status"] == "fitted"
    assert fits["alpha_F_D"]["status"] == "not_fittable" and "downstream_avg" in fits["alpha_F_D"]["reason"]


def test_cli_recovers_loss_exponent_of_the_synthetic_grid(tmp_path):
    """Loss ~ F^-alpha locally; with D fixed the exponent lies below the law's N exponent (0.34)."""
    out = tmp_path / "s.json"
    assert fit_main(["--law", "slopes", "--csv", str(FIXTURE), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(data["groups"]) == {"bert_mlm", "gpt2", "transformer"}
    tr = data["groups"]["transformer"]["alpha_F_U"]
    assert tr["status"] == "fitted" and tr["n"] == 3 and 0.0 < tr["alpha"] < 0.34
    # the same slope computed here from the CSV: least squares of log(loss) on log(FLOPs), negated
    rows = [r for r in csv_mod.DictReader(FIXTURE.open()) if r["arch"] == "transformer" and not r["scan"]]
    flops, loss = (np.array([float(r[k]) for r in rows]) for k in ("train_flops", "val_loss"))
    assert tr["alpha"] == pytest.approx(-np.polyfit(np.log(flops), np.log(loss), 1)[0], rel=1e-9)
    assert data["options"]["law"] == "slopes" and data["options"]["csv"] == str(FIXTURE)
    assert all(r["scan"] == "" for r in data["rows"]), "scan runs must be left out of the slopes"


def test_cli_output_is_deterministic_and_errors_name_the_column(tmp_path, capsys):
    out = tmp_path / "a.json"
    first = None
    for _ in range(2):
        assert fit_main(["--law", "slopes", "--csv", str(FIXTURE), "--out", str(out), "--n-boot", "300"]) == 0
        first = first or out.read_bytes()
    assert out.read_bytes() == first
    assert fit_main(["--law", "slopes", "--csv", str(FIXTURE), "--flops", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_positive_upstream_is_rejected_with_its_line(tmp_path, capsys):
    rows, _ = make_runs(["transformer"], ["tiny", "small", "base"], scans=False)
    rows[1]["neg_log_ppl"] = 3.0
    csv = tmp_path / "summary.csv"
    csv.write_text(to_csv(rows))
    assert fit_main(["--law", "slopes", "--csv", str(csv)]) == 2
    assert f"{csv}:3" in capsys.readouterr().err


def test_zero_downstream_score_is_not_fittable_not_a_crash():
    from archscale.analysis.slopes import fit_slopes

    rows = [{"run": f"a-{i}", "arch": "a", "train_flops": str(10.0 ** (i + 9)), "params": str(10 ** (i + 5)),
             "neg_log_ppl": str(-5.0 + i * 0.3), "downstream_avg": str(0.0 if i == 0 else 40.0 + i), "__line__": i + 2}
            for i in range(3)]
    fits = fit_slopes(rows, n_boot=50)["groups"]["a"]
    assert fits["alpha_F_D"]["status"] == "not_fittable" and "downstream_avg" in fits["alpha_F_D"]["reason"]
    assert fits["alpha_F_U"]["status"] != "not_fittable"


def test_the_parameter_column_flag_is_not_the_params_file_flag(tmp_path, capsys):
    """`--params` is the params file in every other stage; fit names its column `--params-column`
    and refuses `--params` (no prefix abbreviation) instead of reading a column of that name."""
    flops, loss = _power_law(6, seed=3)
    csv = _write_power_law_csv(tmp_path / "runs.csv", flops, loss)
    with pytest.raises(SystemExit) as err:
        fit_main(["--law", "slopes", "--csv", str(csv), "--params", "params.yaml"])
    assert err.value.code == 2 and "unrecognized arguments: --params" in capsys.readouterr().err
    out = tmp_path / "fit.json"
    assert fit_main(["--law", "slopes", "--csv", str(csv), "--params-column", "params", "--out", str(out),
                     "--n-boot", "100"]) == 0
    assert json.loads(out.read_text())["groups"]["a"]["alpha_F_U"]["alpha"] > 0


def test_repeats_stay_separate_points_and_their_spread_widens_the_interval():
    """Three repeats per size are three points at one x (no averaging): n counts every row, the
    slope is the line through their middle, and the residual spread, hence the interval, grows
    with the seed noise (measured: CI width 0.0016 with one seed, 0.0149 with +-3% per seed)."""
    flops = np.geomspace(1e15, 1e18, 4)
    law = 3.0 * (flops / 1e15) ** -0.05

    def rows(factors):
        return [{"run": f"gpt2-s{i}" + (f"+s{k}" if k else ""), "arch": "gpt2", "train_flops": repr(float(c)),
                 "params": repr(float(c) / 1e9), "neg_log_ppl": repr(float(-loss * f * (1 + 0.001 * (-1) ** i)))}
                for i, (c, loss) in enumerate(zip(flops, law)) for k, f in enumerate(factors)]

    fits = {}
    for name, factors in (("one", (1.0,)), ("three", (0.97, 1.0, 1.03))):
        fits[name] = fit_slopes(rows(factors), n_boot=400)["groups"]["gpt2"]["alpha_F_U"]
    assert fits["one"]["n"] == 4 and fits["three"]["n"] == 12 and len(set(fits["three"]["runs"])) == 12
    assert fits["three"]["alpha"] == pytest.approx(0.05, abs=2e-3)
    width = {k: v["ci"][1] - v["ci"][0] for k, v in fits.items()}
    print("slopes CI width, one seed vs three:", width)
    assert width["three"] > 3 * width["one"]
