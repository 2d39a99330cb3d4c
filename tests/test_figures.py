"""Figures: every script writes PDF + PNG, the same bytes from the same inputs, no timestamps,
an annotated figure (not a crash) when its inputs are missing, and draws the fitted values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from archscale.analysis.cli import main as fit_main
from archscale.figures.cli import FIGURES
from archscale.figures.cli import main as figure_main

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "analysis"
# fit file -> (law, extra options), as the pipeline calls `archscale fit`
FITS = {"slopes": ("slopes", []), "lc_frontier": ("lc", []), "approach3": ("approach3", ["--points", "curves"]),
        "pareto": ("pareto", []), "prediction": ("prediction", [])}


@pytest.fixture(scope="session")
def fitted(tmp_path_factory) -> Path:
    """Every fit of the synthetic fixture, as the pipeline writes them (small bootstrap)."""
    fits = tmp_path_factory.mktemp("fits")
    for name, (law, extra) in FITS.items():
        assert fit_main(["--law", law, "--csv", str(FIXTURE / "summary.csv"), "--runs-dir", str(FIXTURE / "runs"),
                         "--out", str(fits / f"{name}.json"), "--n-boot", "30", *extra]) == 0
    # the IsoFLOP grid is its own table (results/isoflop.csv), fitted as the workflow calls it
    assert fit_main(["--law", "isoflop", "--csv", str(FIXTURE / "isoflop.csv"), "--n", "active_non_embedding_params",
                     "--d", "tokens", "--flops", "flops", "--loss", "val_loss", "--out", str(fits / "isoflop.json"),
                     "--n-boot", "30"]) == 0
    return fits


def draw_all(out: Path, fits: Path, summary: Path = FIXTURE / "summary.csv", runs: Path = FIXTURE / "runs") -> None:
    """Every figure in a fresh interpreter, as the pipeline runs them."""
    code = ("import sys; from archscale.figures.cli import main, FIGURES\n"
            "for n in FIGURES: assert main([n, *sys.argv[1:]]) == 0")
    args = ["--summary", str(summary), "--runs-dir", str(runs), "--fits-dir", str(fits), "--out-dir", str(out)]
    subprocess.run([sys.executable, "-c", code, *args], check=True, cwd=REPO,
                   env={**os.environ, "PYTHONPATH": str(REPO / "src")})


@pytest.mark.slow
def test_every_figure_is_byte_reproducible(tmp_path, fitted):
    draw_all(tmp_path / "a", fitted)
    draw_all(tmp_path / "b", fitted)
    for name in FIGURES:
        for ext, magic in (("pdf", b"%PDF"), ("png", b"\x89PNG")):
            a = (tmp_path / "a" / f"{name}.{ext}").read_bytes()
            b = (tmp_path / "b" / f"{name}.{ext}").read_bytes()
            assert a.startswith(magic) and a == b, f"{name}.{ext} differs between two builds"
        pdf = (tmp_path / "a" / f"{name}.pdf").read_bytes()
        assert b"CreationDate" not in pdf and b"Matplotlib" not in pdf, name


# What each figure says in every panel when its inputs are missing (archscale.figures.common.no_data).
NO_DATA = {
    "upstream_vs_flops": "no runs with both train_flops and neg_log_ppl",
    "pareto": "in this preset\n(no run was",
    "scaling_per_arch": "no runs with neg_log_ppl in this preset",
    "downstream_scaling": "no runs with downstream_avg in this preset",
    "depth_scan": "no depth-scan runs with",
    "width_scan": "no width-scan runs with",
    "lc_frontier": "L(C) not fitted (no fits/lc_frontier.json)",
    "learning_curves": "no learning curves under",
    "fit_residuals": "law not fitted for any architecture",
    "prediction_check": "prediction check not run",
    "lr_sweep": "no learning-rate sweep in this preset",
    "isoflop": "no IsoFLOP runs in this preset",
}


def drawn(monkeypatch, name: str, args: list[str]):
    """Draw one figure in this process; returns the matplotlib Figure it saved (caught at
    plt.close, which `save` calls last), to read what was drawn."""
    import matplotlib.pyplot as plt

    saved = []
    with monkeypatch.context() as m:
        m.setattr(plt, "close", saved.append)
        assert figure_main([name, *args]) == 0
    assert len(saved) == 1, f"{name}: expected one saved figure, got {saved}"
    return saved[0]


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts if t.get_visible()]


def test_missing_inputs_give_annotated_figures(tmp_path, monkeypatch):
    """No summary, no fits, no curves: every figure is still written (the paper still builds), and
    every panel it draws says what is missing and plots nothing."""
    import matplotlib.pyplot as plt

    assert set(NO_DATA) == set(FIGURES), "every figure needs its no-data message here"
    out = tmp_path / "out"
    args = ["--summary", str(tmp_path / "absent.csv"), "--sweep", str(tmp_path / "absent_sweep.csv"),
            "--runs-dir", str(tmp_path / "no_runs"),
            "--fits-dir", str(tmp_path / "no_fits"), "--out-dir", str(out)]
    for name in FIGURES:
        fig = drawn(monkeypatch, name, args)
        panels = [ax for ax in fig.axes if ax.get_visible()]
        assert panels, name
        for ax in panels:
            assert any(NO_DATA[name] in t for t in texts(ax)), f"{name}: panel {ax.get_title()!r} says {texts(ax)}"
            assert not ax.lines and not ax.collections, f"{name}: a panel without inputs plots something"
        plt.close(fig)
        assert (out / f"{name}.pdf").read_bytes().startswith(b"%PDF"), name
        assert (out / f"{name}.png").read_bytes().startswith(b"\x89PNG"), name


def test_fitted_figures_draw_and_annotate_the_fitted_values(fitted, tmp_path, monkeypatch):
    """scaling_per_arch: a panel per architecture other than its family's reference (the fixture is
    all causal LM: gpt2), titled with it, whose dots are its grid runs' (FLOPs, neg. log-ppl) from
    summary.csv, whose line is the fitted power law and whose label is alpha_F_U of
    fits/slopes.json. lc_frontier: a panel per architecture with one learning curve per run, the
    frontier of fits/lc_frontier.json as dots (on C = 6ND, the causal family's axis) and the same
    envelope on measured FLOPs as open circles, both fitted laws as lines and their alpha_C and E
    in the label, and the reference's frontier dotted beside every other architecture."""
    import csv

    import matplotlib.pyplot as plt
    import numpy as np

    from archscale.figures.common import arch_label

    REFERENCE_ARCH = "gpt2"  # the causal-LM family's reference (analysis/family.py)

    args = ["--summary", str(FIXTURE / "summary.csv"), "--runs-dir", str(FIXTURE / "runs"), "--fits-dir", str(fitted),
            "--out-dir", str(tmp_path)]
    rows = [r for r in csv.DictReader((FIXTURE / "summary.csv").open()) if not r["scan"]]

    slopes = json.loads((fitted / "slopes.json").read_text())["groups"]
    fig = drawn(monkeypatch, "scaling_per_arch", args)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    archs = sorted({r["arch"] for r in rows} - {REFERENCE_ARCH})
    assert [ax.get_title() for ax in panels] == [arch_label(a) for a in archs]
    for ax, arch in zip(panels, archs):
        fit = slopes[arch]["alpha_F_U"]
        assert f"$\\alpha$ = {fit['alpha']:.3f}" in texts(ax), texts(ax)
        pts = sorted((float(r["train_flops"]), float(r["neg_log_ppl"])) for r in rows if r["arch"] == arch)
        (dots,) = [ln for ln in ax.lines if ln.get_linestyle() == "None"]
        assert list(zip(dots.get_xdata(), dots.get_ydata())) == pts
        (law,) = [ln for ln in ax.lines if ln.get_linestyle() == "-" and ln.get_label() != arch_label(REFERENCE_ARCH)]
        xs = np.asarray(law.get_xdata())
        assert xs[0] == pts[0][0] and xs[-1] == pts[-1][0]
        assert np.allclose(law.get_ydata(), -np.exp(fit["intercept"]) * xs ** -fit["alpha"], rtol=1e-12, atol=0)
    plt.close(fig)

    lc = json.loads((fitted / "lc_frontier.json").read_text())["groups"]
    fig = drawn(monkeypatch, "lc_frontier", args)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == [arch_label(a) for a in lc]
    for ax, (arch, g) in zip(panels, lc.items()):
        pure = {k: v["value"] for k, v in g["pure"]["params"].items()}
        off = {k: v["value"] for k, v in g["offset"]["params"].items()}
        label = (f"pure: $\\alpha_C$ = {pure['alpha_C']:.3f}\n"
                 f"with E: $\\alpha_C$ = {off['alpha_C']:.3f}, E = {off['E']:.2f}")
        assert label in texts(ax), texts(ax)
        alt, front = ax.collections
        assert np.array_equal(front.get_offsets(), [[c, loss] for c, loss, _ in g["frontier"]])
        assert np.array_equal(alt.get_offsets(), [[c, loss] for c, loss, _ in g["alt_compute"]["frontier"]])
        assert g["compute"] == "6nd" and g["alt_compute"]["compute"] == "flops"
        for c, _, run in g["frontier"]:  # C = 6 N D: N non-embedding params, D tokens of one eval point
            n = float(next(r for r in rows if r["run"] == run)["non_embedding_params"])
            tokens = {float(p["tokens"]) for p in csv.DictReader((FIXTURE / "runs" / run / "curve.csv").open())}
            assert c / (6 * n) in tokens, (run, c)
        dotted = [ln for ln in ax.lines if ln.get_linestyle() == ":"]
        assert len(dotted) == (arch != REFERENCE_ARCH)
        if dotted:
            assert np.array_equal(dotted[0].get_xydata(), [f[:2] for f in lc[REFERENCE_ARCH]["frontier"]])
        curves = [ln for ln in ax.lines if ln.get_linestyle() == "-" and ln.get_linewidth() == 0.7]
        assert len(curves) == sum(r["arch"] == arch for r in rows) == g["n_runs"]
        (dashed,) = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
        (solid,) = [ln for ln in ax.lines if ln.get_linestyle() == "-" and ln.get_linewidth() == 1.0]
        c = np.asarray(dashed.get_xdata())
        assert c[0] == g["frontier"][0][0] and c[-1] == g["frontier"][-1][0]
        assert np.allclose(dashed.get_ydata(), (pure["C_c"] / c) ** pure["alpha_C"], rtol=1e-12, atol=0)
        assert np.allclose(solid.get_ydata(), off["E"] + (off["C_c"] / c) ** off["alpha_C"], rtol=1e-12, atol=0)
    plt.close(fig)


def test_lr_sweep_draws_the_seed_mean_per_lr_and_rings_the_chosen_one(tmp_path, monkeypatch):
    """lr_sweep: a panel per swept architecture (an unswept one gets none), a line per size through
    the mean val_loss over seeds at each lr, and one ring, on the selected lr's mean."""
    import csv

    import numpy as np

    rows = []
    for size, offset in (("nano", 0.0), ("micro", -0.5)):
        for lr, losses, chosen in ((0.001, (4.0, 4.2), "no"), (0.002, (3.8, 3.9), "yes"), (0.004, (4.4, 4.6), "no")):
            for seed, loss in enumerate(losses):
                rows.append({"run": f"gpt2-{size}+lr{lr}" + (f"+s{seed}" if seed else ""), "arch": "gpt2",
                             "size": size, "objective": "clm", "scan": "", "params": 1e5 if size == "nano" else 2e5,
                             "lr": lr, "seed": seed, "val_loss": loss + offset, "selected": chosen})
    rows.append({"run": "transformer-nano", "arch": "transformer", "size": "nano", "objective": "span", "scan": "",
                 "params": 1e5, "lr": 0.01, "seed": 0, "val_loss": 3.0, "selected": "yes"})
    path = tmp_path / "sweep.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    fig = drawn(monkeypatch, "lr_sweep", ["--sweep", str(path), "--out-dir", str(tmp_path)])
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["gpt2"]
    ax = panels[0]
    means = sorted(tuple(np.round(np.asarray(line.get_ydata(), float), 6)) for line in ax.lines
                   if line.get_linestyle() == "-")
    assert means == [(3.6, 3.35, 4.0), (4.1, 3.85, 4.5)]
    rings = [line for line in ax.lines if line.get_linestyle() == "None" and line.get_markerfacecolor() == "none"]
    assert sorted((float(r.get_xdata()[0]), round(float(r.get_ydata()[0]), 6)) for r in rings) == [
        (0.002, 3.35), (0.002, 3.85)]


def test_unknown_figure_is_an_error(capsys):
    assert figure_main(["nope"]) == 2
    assert "unknown figure" in capsys.readouterr().err
