"""Compute-optimal allocation (Hoffmann et al. 2022, approaches 1 and 2): recovery of a known law,
bootstrap coverage, the CLI on results/isoflop.csv's contract, the figure, the table and macros.

Ground truth: L(N, D) = E + A/N^alpha + B/D^beta with C = 6ND, whose compute-optimal split is
N_opt ~ C^a, D_opt ~ C^b with a = beta/(alpha+beta), b = alpha/(alpha+beta) (Hoffmann et al. eq. 4).
Measured bias of approach 2 on the noiseless grids below (7 sizes fixed for 3 budgets over 2
decades, the sizes from N_opt(C_min)/4 to 4 N_opt(C_max)): a - a_true = -0.0055 for
(alpha, beta) = (0.34, 0.28) and -0.0066 for (0.5, 0.25) (the parabola is not the profile's exact
shape and the window is not centred on every budget's optimum); over 4 budgets on 3 decades with
the same design it grows to -0.016 and, for (0.28, 0.34), -0.030. Approach 1 (13 sizes over 4
budgets): +0.0007 and +0.0074; with 7 sizes its staircase gives errors up to 0.06. TOL = 0.02
(approach 2) and TOL1 = 0.03 (approach 1) are a few times the bias and well under half the gap to
the value a swapped alpha and beta would give (|beta - alpha| / (alpha + beta) = 0.097 and 0.33).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from archscale.analysis.cli import main as fit_main
from archscale.analysis.isoflop import approach1, approach2, envelope, fit_isoflop, parabola

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "paper" / "templates"
FIXTURE = REPO / "tests" / "fixtures" / "analysis"
HOFFMANN = (0.34, 0.28)  # Hoffmann et al.'s approach-3 exponents (alpha, beta)
OTHER = (0.5, 0.25)
TOL = 0.02  # approach 2: |a - a_true|, |b - b_true| (measured bias <= 0.007 on this design)
TOL1 = 0.03  # approach 1, 13 sizes (measured bias <= 0.0074)
BUDGETS = (1e18, 1e19, 1e20)
COLUMNS = ("run", "arch", "objective", "size", "seed", "budget", "step", "tokens", "flops", "final", "val_loss",
           "params", "non_embedding_params", "active_non_embedding_params")


def truth(alpha: float, beta: float) -> tuple[float, float]:
    return beta / (alpha + beta), alpha / (alpha + beta)


def law(alpha: float, beta: float) -> dict[str, float]:
    return {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": alpha, "beta": beta}


def n_opt(p: dict[str, float], c: float) -> float:
    """Hoffmann et al. eq. 4: N_opt = G (C/6)^a, G = (alpha A / (beta B))^(1/(alpha+beta))."""
    s = p["alpha"] + p["beta"]
    return (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / s) * (c / 6) ** (p["beta"] / s)


def loss_of(p: dict[str, float], n: float, d: float) -> float:
    return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]


def isoflop_rows(alpha: float, beta: float, *, budgets=BUDGETS, n_sizes: int = 7, pad: float = 4.0,
                 noise: float = 0.0, seed: int = 0, curve_points: int = 0, arch: str = "gpt2",
                 objective: str = "clm") -> list[dict[str, str]]:
    """results/isoflop.csv rows of one architecture: every size trained to exactly every budget
    (D = C / 6N, FLOPs = 6 N tokens), the final row and ``curve_points`` earlier eval points per run;
    losses times log-normal noise of sd ``noise``. Sizes log-spaced from N_opt(C_min)/pad to
    pad * N_opt(C_max), so every budget's optimum lies inside the grid."""
    p = law(alpha, beta)
    rng = np.random.default_rng(seed)
    sizes = np.geomspace(n_opt(p, min(budgets)) / pad, n_opt(p, max(budgets)) * pad, n_sizes)
    rows = []
    for c in budgets:
        for i, n in enumerate(sizes):
            d = c / (6 * n)
            fracs = [*(np.arange(1, curve_points + 1) / (curve_points + 1)), 1.0]
            for step, f in enumerate(fracs, start=1):
                tokens = float(d * f)
                loss = loss_of(p, n, tokens) * math.exp(rng.normal(0, noise) if noise else 0.0)
                rows.append({"run": f"{arch}-s{i}@C{c:.0e}", "arch": arch, "objective": objective, "size": f"s{i}",
                             "seed": "0", "budget": repr(c), "step": str(step), "tokens": repr(tokens),
                             "flops": repr(float(6 * n * tokens)), "final": "1" if f == 1.0 else "0",
                             "val_loss": repr(float(loss)), "params": repr(float(n * 1.2)),
                             "non_embedding_params": repr(float(n)), "active_non_embedding_params": repr(float(n))})
    return rows


def write_csv(path: Path, rows: list[dict[str, str]], columns=COLUMNS) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def finals(rows: list[dict[str, str]]) -> list[tuple[float, float, float, float, str]]:
    return [(float(r["budget"]), float(r["active_non_embedding_params"]), float(r["tokens"]), float(r["val_loss"]),
             r["run"]) for r in rows if r["final"] == "1"]


# ---------------------------------------------------------------- approach 2


def test_parabola_vertex_and_refusals():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    fit = parabola(x, 2.0 + 0.5 * (x - 2.5) ** 2)
    assert fit["x_opt"] == pytest.approx(2.5) and fit["y_min"] == pytest.approx(2.0) and fit["interior"]
    p0, p1, p2 = fit["coef"]
    assert p0 + p1 * 3.0 + p2 * 9.0 == pytest.approx(2.125)
    assert "not convex" in parabola(x, -(x - 2.5) ** 2)["reason"]
    assert "2 distinct sizes" in parabola(np.array([1.0, 1.0, 2.0]), np.array([1.0, 1.1, 1.2]))["reason"]


@pytest.mark.parametrize("alpha, beta", [HOFFMANN, OTHER])
def test_approach2_recovers_the_compute_optimal_exponents(alpha, beta):
    a_true, b_true = truth(alpha, beta)
    fit = approach2(finals(isoflop_rows(alpha, beta)), n_boot=0)
    a, b = fit["a"]["value"], fit["b"]["value"]
    print(f"approach 2 bias ({alpha}, {beta}): a {a - a_true:+.4f}, b {b - b_true:+.4f}")
    assert abs(a - a_true) < TOL and abs(b - b_true) < TOL
    # the tolerance tells the truth from swapped exponents
    assert abs(a - b_true) > TOL and abs(b - a_true) > TOL
    assert fit["a_plus_b"]["value"] == pytest.approx(1.0, abs=1e-6)
    p = law(alpha, beta)
    # Each vertex near the true optimum (measured: |ln N_opt error| <= 0.15, min loss within 0.5%),
    # and D_opt, fitted on its own, spends the budget (C = 6ND holds exactly in this data).
    for entry in fit["budgets"]:
        assert entry["status"] == "fitted" and entry["interior_n"]
        assert abs(math.log(entry["N_opt"] / n_opt(p, entry["C"]))) < 0.25
        assert 6 * entry["N_opt"] * entry["D_opt"] == pytest.approx(entry["C"], rel=1e-6)
        n0 = n_opt(p, entry["C"])
        assert entry["min_loss"] == pytest.approx(loss_of(p, n0, entry["C"] / (6 * n0)), rel=0.01)
    assert math.exp(fit["k_n"]["value"]) * BUDGETS[1] ** a == pytest.approx(fit["budgets"][1]["N_opt"], rel=0.1)


def test_bootstrap_interval_covers_the_truth_and_excludes_swapped_exponents():
    """0.5% log-normal noise, 200 replicates. Measured over 60 seeds: the 95% interval of a covers the
    truth in 95% (0.34, 0.28) and 100% (0.5, 0.25) of seeds, median width 0.12 and 0.17; here 10 seeds."""
    for alpha, beta in (HOFFMANN, OTHER):
        a_true, b_true = truth(alpha, beta)
        cover = exclude = 0
        for s in range(10):
            fit = approach2(finals(isoflop_rows(alpha, beta, noise=0.005, seed=s)), n_boot=200, seed=s)
            lo, hi = fit["a"]["ci"]
            blo, bhi = fit["b"]["ci"]
            cover += lo <= a_true <= hi and blo <= b_true <= bhi
            exclude += not lo <= b_true <= hi
            assert fit["n_boot_used"] + fit["n_boot_dropped"] == 200 and fit["n_boot_used"] >= 150
            band = fit["band"]
            assert all(x <= y for x, y in zip(band["N_lo"], band["N_hi"]))
        assert cover >= 8, (alpha, beta, cover)
        assert exclude >= 8, (alpha, beta, exclude)


def test_budgets_without_an_optimum_are_null_with_a_reason():
    rows = isoflop_rows(*HOFFMANN)
    # the smallest budget keeps two sizes: no parabola there, and two budgets remain
    kept = [r for r in rows if float(r["budget"]) != BUDGETS[0] or r["size"] in {"s0", "s1"}]
    fit = approach2(finals(kept), n_boot=20)
    first = fit["budgets"][0]
    assert first["status"] == "not_fittable" and first["N_opt"] is None and "2 distinct sizes" in first["reason"]
    assert fit["status"] == "fitted" and fit["n_budgets_used"] == 2
    only_one = [r for r in kept if float(r["budget"]) != BUDGETS[2]]
    fit = approach2(finals(only_one), n_boot=20)
    assert fit["status"] == "not_fittable" and "1 budget(s)" in fit["reason"]


def test_a_vertex_outside_the_trained_sizes_is_not_used():
    """Every size larger than each budget's optimum (as on a CPU, where the smallest model wins):
    the parabolas still have vertices, far below the sizes; they are recorded, marked
    not_bracketed, and no exponent is fitted on them."""
    rows = isoflop_rows(*HOFFMANN)
    p = law(*HOFFMANN)
    above = [r for r in rows if float(r["active_non_embedding_params"]) > 1.5 * n_opt(p, float(r["budget"]))]
    fit = approach2(finals(above), n_boot=20)
    bracketed = [b for b in fit["budgets"] if b["status"] == "fitted"]
    outside = [b for b in fit["budgets"] if b["status"] == "not_bracketed"]
    assert outside and len(bracketed) < 2, fit["budgets"]
    for b in outside:
        smallest = min(pt[0] for pt in b["points"])
        assert b["N_opt"] < smallest and "does not bracket the optimum" in b["reason"]
    assert fit["status"] == "not_fittable" and "inside the trained sizes" in fit["reason"]


def test_replicates_that_lose_a_size_are_dropped_and_counted():
    """Three sizes per budget: a replicate keeps all three only with probability 3!/3^3 per budget."""
    rows = isoflop_rows(*HOFFMANN, n_sizes=3, pad=1.5, noise=0.002)
    fit = approach2(finals(rows), n_boot=100, seed=1)
    assert fit["n_boot_dropped"] > 50 and fit["n_boot_used"] + fit["n_boot_dropped"] == 100


# ---------------------------------------------------------------- approach 1


def test_envelope_keeps_the_lowest_loss_reached_so_far():
    c = np.array([1.0, 2.0, 3.0, 4.0, 2.5])
    loss = np.array([5.0, 4.0, 4.5, 3.0, 3.5])
    ec, el = envelope(c, loss)
    assert ec.tolist() == [1.0, 2.0, 2.5, 4.0] and el.tolist() == [5.0, 4.0, 3.5, 3.0]


@pytest.mark.parametrize("alpha, beta", [HOFFMANN, OTHER])
def test_approach1_recovers_a_from_the_training_curves(alpha, beta):
    budgets = (1e18, 1e19, 1e20, 1e21)
    rows = isoflop_rows(alpha, beta, budgets=budgets, n_sizes=13, curve_points=9)
    pts = [(float(r["active_non_embedding_params"]), float(r["tokens"]), float(r["flops"]), float(r["val_loss"]))
           for r in rows]
    fit = approach1(pts, list(budgets))
    a_true, b_true = truth(alpha, beta)
    print(f"approach 1 bias ({alpha}, {beta}): a {fit['a'] - a_true:+.4f}")
    assert abs(fit["a"] - a_true) < TOL1 and abs(fit["b"] - b_true) < TOL1
    assert abs(fit["a"] - b_true) > TOL1
    sizes = {p[0] for p in pts}
    assert {g[1] for g in fit["grid"]} <= sizes, "approach 1's N_opt is always a trained size"
    assert fit["grid"][0][0] == pytest.approx(budgets[0]) and fit["grid"][-1][0] == pytest.approx(budgets[-1])


# ---------------------------------------------------------------- fit_isoflop and the CLI


def _fit_cli(tmp_path: Path, csv_path: Path, *extra: str) -> dict:
    out = tmp_path / "isoflop.json"
    assert fit_main(["--law", "isoflop", "--csv", str(csv_path), "--n", "active_non_embedding_params",
                     "--d", "tokens", "--flops", "flops", "--loss", "val_loss", "--out", str(out),
                     "--n-boot", "50", *extra]) == 0
    return json.loads(out.read_text())


def test_cli_fits_every_architecture_of_the_csv(tmp_path):
    rows = isoflop_rows(*HOFFMANN, curve_points=4) + isoflop_rows(*OTHER, curve_points=4, arch="transformer")
    fit = _fit_cli(tmp_path, write_csv(tmp_path / "isoflop.csv", rows))
    assert fit["law"] == "isoflop" and fit["empty"] is False and fit["compute_approach1"] == "column 'flops'"
    assert len(fit["rows"]) == len(rows) and fit["options"]["budget_column"] == "budget"
    for arch, (alpha, beta) in (("gpt2", HOFFMANN), ("transformer", OTHER)):
        g = fit["groups"][arch]
        assert g["family"] == "clm" and g["n_final"] == 21 and len(g["sizes"]) == 7 and g["budgets"] == list(BUDGETS)
        assert abs(g["approach2"]["a"]["value"] - truth(alpha, beta)[0]) < TOL
        assert g["approach1"]["status"] == "fitted"


def test_cli_without_final_or_flops_columns(tmp_path):
    """A table of finished runs only: every row is final; approach 1 then uses C = 6ND and says so."""
    rows = isoflop_rows(*HOFFMANN)
    fit = _fit_cli(tmp_path, write_csv(tmp_path / "t.csv", rows, [c for c in COLUMNS if c not in {"final", "flops"}]))
    g = fit["groups"]["gpt2"]
    assert fit["final_column"] is None and fit["compute_approach1"] == "6ND (no column 'flops')"
    assert g["n_final"] == len(rows) and abs(g["approach2"]["a"]["value"] - truth(*HOFFMANN)[0]) < TOL


def test_header_only_csv_is_an_empty_fit(tmp_path):
    fit = _fit_cli(tmp_path, write_csv(tmp_path / "isoflop.csv", []))
    assert fit["empty"] is True and fit["groups"] == {} and fit["rows"] == []


@pytest.mark.parametrize("rows", [[], isoflop_rows(*HOFFMANN)[:5]], ids=["header_only", "with_rows"])
def test_missing_budget_column_names_the_column_and_file(tmp_path, capsys, rows):
    path = write_csv(tmp_path / "nobudget.csv", rows, [c for c in COLUMNS if c != "budget"])
    assert fit_main(["--law", "isoflop", "--csv", str(path), "--n", "active_non_embedding_params"]) == 2
    err = capsys.readouterr().err
    assert "'budget'" in err and str(path) in err, err


def test_a_group_with_two_objectives_is_an_error():
    rows = isoflop_rows(*HOFFMANN) + isoflop_rows(*HOFFMANN, objective="mlm")
    with pytest.raises(ValueError, match="objective families"):
        fit_isoflop(rows, n_boot=0)


# ---------------------------------------------------------------- figure, table, macros


def _fixture_fit(tmp_path: Path) -> Path:
    fits = tmp_path / "fits"
    fits.mkdir()
    assert fit_main(["--law", "isoflop", "--csv", str(FIXTURE / "isoflop.csv"), "--n", "active_non_embedding_params",
                     "--flops", "flops", "--out", str(fits / "isoflop.json"), "--n-boot", "50"]) == 0
    return fits


def test_figure_draws_profiles_and_the_fitted_law(tmp_path, monkeypatch):
    from test_figures import drawn, texts

    fits = _fixture_fit(tmp_path)
    fit = json.loads((fits / "isoflop.json").read_text())
    fig = drawn(monkeypatch, "isoflop", ["--fits-dir", str(fits), "--out-dir", str(tmp_path)])
    left, right = fig.axes
    archs = sorted(fit["groups"])
    n_budgets = sum(len(g["approach2"]["budgets"]) for g in fit["groups"].values())
    stars = [ln for ln in left.lines if ln.get_marker() == "*"]
    assert len(stars) == n_budgets
    legend = [t.get_text() for t in right.get_legend().get_texts()]
    for arch in archs:
        a2 = fit["groups"][arch]["approach2"]
        lo, hi = a2["a"]["ci"]
        assert any(t.startswith(f"{arch}: a = {a2['a']['value']:.2f} [{lo:.2f}, {hi:.2f}]") for t in legend), legend
        (law_line,) = [ln for ln in right.lines if ln.get_label().startswith(f"{arch}:")]
        c = np.asarray(law_line.get_xdata())
        assert np.allclose(law_line.get_ydata(), math.exp(a2["k_n"]["value"]) * c ** a2["a"]["value"], rtol=1e-12)
    assert len(right.collections) == len(archs), "one bootstrap band per architecture"
    assert not texts(left)
    for ext, magic in (("pdf", b"%PDF"), ("png", b"\x89PNG")):
        assert (tmp_path / f"isoflop.{ext}").read_bytes().startswith(magic)


def test_figure_placeholder_when_there_are_no_isoflop_runs(tmp_path, monkeypatch):
    from test_figures import drawn, texts

    fits = tmp_path / "fits"
    assert fit_main(["--law", "isoflop", "--csv", str(write_csv(tmp_path / "e.csv", [])),
                     "--out", str(fits / "isoflop.json")]) == 0
    fig = drawn(monkeypatch, "isoflop", ["--fits-dir", str(fits), "--out-dir", str(tmp_path)])
    (ax,) = fig.axes
    assert texts(ax) == ["no IsoFLOP runs in this preset"] and not ax.lines and not ax.collections
    assert (tmp_path / "isoflop.pdf").is_file() and (tmp_path / "isoflop.png").is_file()


def _render(tmp_path: Path, fits: Path) -> tuple[str, dict[str, str]]:
    import re

    from archscale.tables import main as tables_main

    out = tmp_path / "generated"
    assert tables_main(["--summary", str(FIXTURE / "summary.csv"), "--fits-dir", str(fits), "--templates",
                        str(TEMPLATES), "--out-dir", str(out), "--only", "isoflop", "macros"]) == 0
    macros = dict(re.findall(r"^\\newcommand\{\\([A-Za-z]+)\}\{(.*)\}$", (out / "macros.tex").read_text(), re.M))
    return (out / "isoflop.tex").read_text(), macros


def test_table_and_macros_with_the_fit(tmp_path):
    fits = _fixture_fit(tmp_path)
    fit = json.loads((fits / "isoflop.json").read_text())
    table, macros = _render(tmp_path, fits)
    assert macros["HasIsoflop"] == "yes" and macros["HasIsoflopFit"] == "yes"
    for arch, g in fit["groups"].items():
        a2 = g["approach2"]
        a, (lo, hi) = a2["a"]["value"], a2["a"]["ci"]
        row = next(line for line in table.splitlines() if line.startswith(arch + " "))
        assert f"{a:.2f} [{lo:.2f}, {hi:.2f}]" in row and f"{a2['n_budgets_used']} of 3" in row, row
        assert f"{a2['a_plus_b']['value']:.2f}" in row
        name = "isoflopA" + {"gpt2": "GptTwo", "transformer": "Transformer"}[arch]
        assert (macros[name], macros[name + "Lo"], macros[name + "Hi"]) == (f"{a:.3f}", f"{lo:.3f}", f"{hi:.3f}")
    low = min(fit["groups"], key=lambda x: fit["groups"][x]["approach2"]["a"]["value"])
    assert macros["IsoflopAMinArch"] == low
    assert "no IsoFLOP runs" not in table


def test_table_and_macros_without_the_fit_or_with_no_runs(tmp_path):
    table, macros = _render(tmp_path / "absent", tmp_path / "no_fits")
    assert "no IsoFLOP runs in this preset (no fits/isoflop.json)" in table
    assert macros["HasIsoflop"] == "no" and macros["IsoflopAMin"] == "n/a"
    fits = tmp_path / "fits"
    assert fit_main(["--law", "isoflop", "--csv", str(write_csv(tmp_path / "e.csv", [])),
                     "--out", str(fits / "isoflop.json")]) == 0
    table, macros = _render(tmp_path / "empty", fits)
    assert "no IsoFLOP runs in this preset." in table and macros["HasIsoflop"] == "no"
