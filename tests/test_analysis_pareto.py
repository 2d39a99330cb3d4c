"""Pareto frontiers across architectures and tiered frontiers within one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archscale.analysis.cli import main as fit_main
from archscale.analysis.pareto import frontier, tiers

FIXTURE = Path(__file__).parent / "fixtures" / "analysis"


def test_frontier_keeps_only_undominated_points():
    pts = [(1.0, -5.0, "a"), (2.0, -4.0, "b"), (3.0, -4.5, "c"), (4.0, -3.0, "d"), (4.0, -3.5, "e"), (5.0, -3.0, "f")]
    assert [n for _, _, n in frontier(pts)] == ["a", "b", "d"]


def test_tiers_name_the_cheaper_run_that_is_as_good():
    pts = [(1.0, -5.0, "tiny"), (2.0, -4.0, "small"), (4.0, -4.1, "base"), (8.0, -3.0, "large")]
    t = tiers(pts)
    assert [(x["run"], x["not_better_than"]) for x in t] == [("base", "small")]
    assert tiers([(1.0, -5.0, "a"), (2.0, -4.0, "b")]) == []


def test_cli_finds_the_tiered_architecture_of_the_fixture(tmp_path):
    """The fixture gives bert_mlm a tier (its base is no better than its small)."""
    out = tmp_path / "pareto.json"
    assert fit_main(["--law", "pareto", "--csv", str(FIXTURE / "summary.csv"), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["tiered_groups"] == ["bert_mlm"]
    tier = data["groups"]["bert_mlm"]["upstream_vs_flops"]["tiers"]
    assert [(t["run"], t["not_better_than"]) for t in tier] == [("bert_mlm-base", "bert_mlm-small")]
    assert list(data["frontiers"]) == ["clm"], "the fixture is one objective family"
    front = data["frontiers"]["clm"]["upstream_vs_flops"]["frontier"]
    qualities = [f["quality"] for f in front]
    assert qualities == sorted(qualities) and len(set(qualities)) == len(qualities)
    assert data["frontiers"]["clm"]["downstream_vs_params"]["n"] == 9, "scan runs left out, 9 grid runs"
    assert data["cross_family"]["downstream_vs_params"]["n"] == 9
    assert data["references"] == {"clm": "gpt2"}


def test_repeats_make_one_point_their_mean(tmp_path):
    """Three repeats per (arch, size). transformer-small's mean (-4.0667) is below gpt2-small's
    (-4.0) at the same cost, but its lucky repeat +s2 (-3.8) beats every gpt2-small repeat: as
    separate points that one seed would own the frontier there. gpt2-base's mean (-4.05) is no
    better than gpt2-small's: a tier, between the two means."""
    from archscale.analysis.pareto import fit_pareto
    from archscale.analysis.synth import to_csv
    from archscale.analysis.table import read_csv

    runs = {("gpt2", "small", 1e12): (-4.0, -3.9, -4.1), ("transformer", "small", 1e12): (-4.2, -4.2, -3.8),
            ("gpt2", "base", 4e12): (-3.95, -4.05, -4.15), ("transformer", "base", 4e12): (-3.5, -3.6, -3.7)}
    rows = []
    for (arch, size, flops), losses in runs.items():
        for seed, u in enumerate(losses):
            rows.append({"run": f"{arch}-{size}" + (f"+s{seed}" if seed else ""), "arch": arch, "size": size,
                         "objective": "clm", "scan": "", "params": flops / 1e6, "train_flops": flops,
                         "neg_log_ppl": u, "downstream_avg": 50.0 + seed, "seed": seed})
    (tmp_path / "summary.csv").write_text(to_csv(rows))
    data = fit_pareto(read_csv(tmp_path / "summary.csv"))
    up = data["frontiers"]["clm"]["upstream_vs_flops"]
    assert up["n"] == 4, "one point per (arch, size)"
    assert [(f["run"], f["arch"], f["n_seeds"]) for f in up["frontier"]] == [
        ("gpt2-small", "gpt2", 3), ("transformer-base", "transformer", 3)]
    assert up["frontier"][0]["quality"] == pytest.approx(-4.0) and up["frontier"][1]["quality"] == pytest.approx(-3.6)
    assert data["cross_family"]["downstream_vs_flops"]["frontier"][0]["quality"] == pytest.approx(51.0)
    tier = data["groups"]["gpt2"]["upstream_vs_flops"]
    assert tier["n"] == 2 and [(t["run"], t["not_better_than"], t["n_seeds"], t["cheaper_n_seeds"])
                                for t in tier["tiers"]] == [("gpt2-base", "gpt2-small", 3, 3)]
    assert tier["tiers"][0]["quality"] == pytest.approx(-4.05)
    assert data["groups"]["gpt2"]["upstream_vs_flops"]["on_family_frontier"] == ["gpt2-small"]
    # not vacuous: as separate points, the lucky repeat is the frontier at that cost
    assert frontier([(r["train_flops"], r["neg_log_ppl"], r["run"]) for r in rows])[0][2] == "transformer-small+s2"
    # one seed per run: no n_seeds anywhere (the file of a one-seed study is unchanged)
    one = fit_pareto([r for r in read_csv(tmp_path / "summary.csv") if "+s" not in r["run"]])
    assert "n_seeds" not in json.dumps(one)
