"""Chinchilla approach 3: analytic gradient, recovery of a known law, Epoch's external refit."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import check_grad

from archscale.analysis.approach3 import MIN_EXPONENT, compute_optimal, fit_approach3, objective, optimal_allocation
from archscale.analysis.cli import main as fit_main

TRUE = {"E": 1.8, "A": 400.0, "alpha": 0.34, "B": 1000.0, "beta": 0.28}


def _grid(seed: int, noise: float = 0.01) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, d = (g.ravel() for g in np.meshgrid(np.geomspace(1e7, 1e9, 5), np.geomspace(1e9, 1e11, 5)))
    loss = TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / d ** TRUE["beta"]
    return n, d, loss * np.exp(rng.normal(0.0, noise, n.size))


def test_gradient_is_analytic_and_right():
    n, d, loss = _grid(0)
    data = (np.log(n), np.log(d), np.log(loss))
    for theta in ([6.0, 7.0, 0.6, 0.3, 0.3], [2.0, 9.0, -0.5, 0.8, 0.1]):
        assert check_grad(lambda t: objective(t, *data)[0], lambda t: objective(t, *data)[1], theta) < 1e-6


def test_noiseless_law_is_recovered():
    fit = fit_approach3(*_grid(0, noise=0.0), n_boot=0, keep=32)
    for k, v in TRUE.items():
        assert fit["params"][k]["value"] == pytest.approx(v, rel=2e-3), k


def test_intervals_cover_the_truth_in_most_seeds():
    """Measured over 100 seeds (95% nominal; 25 points, 1% noise, 100 replicates): E 0.97, A 0.97,
    alpha 0.96, B 0.98, beta 0.98. Here 8 seeds keep the test fast."""
    seeds = 8
    hits = {k: 0 for k in TRUE}
    for s in range(seeds):
        fit = fit_approach3(*_grid(s), n_boot=40, seed=s, keep=16)
        for k, v in TRUE.items():
            lo, hi = fit["params"][k]["ci"]
            hits[k] += lo <= v <= hi
    cov = {k: h / seeds for k, h in hits.items()}
    print("approach 3 coverage:", cov)
    assert min(cov.values()) >= 0.6 and np.mean(list(cov.values())) >= 0.8


def test_compute_optimal_allocation_spends_the_budget_and_minimises_loss():
    opt = compute_optimal(TRUE)
    assert opt["a"] + opt["b"] == pytest.approx(1.0)
    c = 1e21
    n_opt, d_opt = optimal_allocation(TRUE, c)
    assert 6 * n_opt * d_opt == pytest.approx(c, rel=1e-9)

    def loss_at(n: float) -> float:
        return TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / (c / (6 * n)) ** TRUE["beta"]

    assert loss_at(n_opt) < min(loss_at(n_opt * 1.1), loss_at(n_opt / 1.1))


def test_too_few_sizes_is_not_fittable():
    n, d, loss = _grid(0)
    keep = n < 1e8  # two distinct N
    assert fit_approach3(n[keep], d[keep], loss[keep], n_boot=0)["status"] == "not_fittable"


def test_epoch_chinchilla_refit(shared_data, tmp_path):
    """Besiroglu et al. 2024 refit of Hoffmann et al.'s Figure 4 runs: E 1.817, alpha 0.347, beta 0.367."""
    out = tmp_path / "epoch.json"
    assert fit_main(["--law", "approach3", "--csv", str(shared_data / "external" / "chinchilla_fig4_epoch.csv"),
                     "--group", "", "--n", "Model Size", "--c", "Training FLOP", "--loss", "loss",
                     "--exclude-top-loss", "5", "--n-boot", "20", "--out", str(out)]) == 0
    fit = json.loads(out.read_text())["groups"]["all"]
    assert fit["n"] == 240 and len(fit["excluded"]) == 5
    for key, ref in (("E", 1.817), ("alpha", 0.347), ("beta", 0.367)):
        assert abs(fit["params"][key]["value"] - ref) < 0.02, key


def _runs_with_correlated_errors(seed: int, n_runs: int = 8, n_points: int = 10, run_sd: float = 0.03):
    """Learning curves of ``n_runs`` sizes, ``n_points`` eval points each; every point of a run
    shares that run's error (seed, data order: sd 3% of the loss) plus 0.3% point noise."""
    rng = np.random.default_rng(seed)
    n, d, loss, runs = [], [], [], []
    for i, size in enumerate(np.geomspace(1e7, 1e9, n_runs)):
        tokens = np.geomspace(2e9, 5e10, n_points)
        clean = TRUE["E"] + TRUE["A"] / size ** TRUE["alpha"] + TRUE["B"] / tokens ** TRUE["beta"]
        loss += list(clean * np.exp(rng.normal(0.0, run_sd) + rng.normal(0.0, 0.003, n_points)))
        n += [size] * n_points
        d += list(tokens)
        runs += [f"run{i}"] * n_points
    return np.array(n), np.array(d), np.array(loss), np.array(runs)


def test_every_bootstrap_replicate_is_made_of_whole_runs():
    from archscale.analysis.approach3 import run_bootstrap

    runs = np.array(["a"] * 3 + ["b"] * 5 + ["c"] * 2)
    for idx in run_bootstrap(runs, 50, np.random.default_rng(0)):
        drawn = runs[idx]
        for run in set(drawn):
            size = (runs == run).sum()
            assert (drawn == run).sum() % size == 0, f"run {run}: {(drawn == run).sum()} of its {size} points"
            assert set(idx[drawn == run]) == set(np.flatnonzero(runs == run)), "all of a drawn run's points"
        assert len(set(runs[idx])) <= 3 and sum((runs[idx] == r).sum() // (runs == r).sum() for r in "abc") == 3


def test_run_bootstrap_is_wider_than_point_bootstrap_for_correlated_points():
    """Theory: when the points of one run share an error, the N exponent (alpha, identified only
    between runs) has 8 independent pieces of evidence, not 80; resampling points treats the run
    errors as 80 independent draws and its interval comes out too narrow. Measured over seeds 0-3
    (40 replicates): the run bootstrap's alpha interval is 4.7, 5.2, 6.8 and 14.9 times wider. One
    seed here (~4 s on an idle 2-core machine)."""
    for seed in (0,):
        n, d, loss, runs = _runs_with_correlated_errors(seed)
        by_point = fit_approach3(n, d, loss, n_boot=30, keep=16, seed=seed)
        by_run = fit_approach3(n, d, loss, n_boot=30, keep=16, seed=seed, runs=runs)
        width = {name: f["params"]["alpha"]["ci"][1] - f["params"]["alpha"]["ci"][0]
                 for name, f in (("point", by_point), ("run", by_run))}
        assert width["run"] > 2 * width["point"], (seed, width)
        assert by_run["n_runs"] == 8 and by_point["n_runs"] == 80


def test_compute_optimal_with_beta_at_zero_says_so():
    """beta -> 0 (the loss does not fall with D): no compute-optimal split, a status and a reason
    instead of a ZeroDivisionError; a fit whose beta lands on 0 still writes its file."""
    from archscale.analysis.table import dumps

    for beta in (0.0, 1e-9):
        opt = compute_optimal({**TRUE, "beta": beta})
        assert opt["status"] == "not_identified" and "beta" in opt["reason"] and np.isnan(opt["a"])
    assert compute_optimal({**TRUE, "alpha": 0.0})["status"] == "not_identified"
    assert compute_optimal(TRUE)["status"] == "fitted"
    with pytest.raises(ValueError, match="no compute-optimal allocation: beta"):
        optimal_allocation({**TRUE, "beta": 0.0}, 1e21)
    # The 12 curve points of synth's "funnel" (13-architecture grid of tests/test_figure_ticks.py, 60
    # steps): within each run the loss does not fall with D over 10-20M tokens, so beta lands on 0
    # (measured: beta 0.0, alpha 0.158); the fit used to die here with a ZeroDivisionError.
    points = [  # (N, D, loss, run) in the order the CLI fits them (by loss)
        (4718592.0, 20000000.0, 10.743601466854752, "base"), (4718592.0, 10000000.0, 10.93927132691934, "base"),
        (4718592.0, 16666666.0, 11.03194890132995, "base"), (4718592.0, 13333333.0, 11.06766044855162, "base"),
        (786432.0, 13333333.0, 13.648586972120517, "small"), (786432.0, 16666666.0, 13.769698867822463, "small"),
        (786432.0, 10000000.0, 13.974908763177472, "small"), (786432.0, 20000000.0, 14.061063168173439, "small"),
        (98304.0, 10000000.0, 17.999572997764652, "tiny"), (98304.0, 20000000.0, 18.15167563614203, "tiny"),
        (98304.0, 16666666.0, 18.1636185806963, "tiny"), (98304.0, 13333333.0, 18.229770103632312, "tiny")]
    n, d, loss, runs = (np.array(v) for v in zip(*points))
    fit = fit_approach3(n, d, loss.astype(float), n_boot=3, runs=runs, keep=32)
    assert fit["params"]["beta"]["value"] < MIN_EXPONENT, fit["params"]["beta"]
    opt = fit["compute_optimal"]
    assert opt["status"] == "not_identified" and "beta" in opt["reason"] and np.isnan(opt["a"]["value"])
    assert '"status": "not_identified"' in dumps(fit) and '"a": {\n' in dumps(fit), "JSON with null, not NaN"
