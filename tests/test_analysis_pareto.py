"""Pareto frontiers across architectures and tiered frontiers within one."""

from __future__ import annotations

import json
from pathlib import Path

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
