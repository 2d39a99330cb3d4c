"""`archscale plan` prices a params file before any job: its parameter counts, tokens and FLOPs are
the ones the smoke build's real runs recorded, its epochs follow the tokenized corpus, and bad
arguments stop it with the value named."""

from __future__ import annotations

import json
import re

import pytest
from workspace import sh


def _table(stdout: str) -> dict[str, list[str]]:
    rows = {}
    for line in stdout.splitlines():
        cells = line.split()
        if len(cells) == 7 and re.match(r"[a-z0-9_]+-[a-z0-9_]+$", cells[0]):
            rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.slow
def test_plan_matches_what_the_runs_recorded(smoke_build):
    out = sh(smoke_build, "archscale", "plan", "--configfile", "params.yaml", "--gpu", "H100", "--mfu", "0.5").stdout
    rows = _table(out)
    runs = sorted(p.parent.name for p in (smoke_build / "results" / "runs").glob("*/metrics.json"))
    assert sorted(rows) == runs and runs
    train_tokens = json.loads((smoke_build / "data" / "shards" / "meta.json").read_text())["splits"]["train"]["tokens"]
    assert f"{train_tokens:,} train tokens" in out
    for run in runs:
        m = json.loads((smoke_build / "results" / "runs" / run / "metrics.json").read_text())
        params, tokens, flops, epochs, _, gpu_hours = rows[run]
        assert int(params.replace(",", "")) == m["params"], run
        assert int(tokens.replace(",", "")) == m["tokens"], run
        analytic = 3 * m["flops_per_token_fwd_analytic"] * m["tokens"]
        assert float(flops) == pytest.approx(analytic, rel=5e-3), run  # printed to 3 digits
        assert float(gpu_hours.replace(",", "")) == pytest.approx(analytic / (989e12 * 0.5) / 3600, abs=0.05)
        assert float(epochs) > 0
    # an IsoFLOP size is priced as its stable run plus every cool-down branch, as they recorded
    iso = {line.split()[0]: line.split()[1:] for line in out.splitlines() if "@isoflop" in line}
    sizes = sorted(p.name for p in (smoke_build / "results" / "isoflop" / "stable").iterdir())
    assert sorted(iso) == [f"{s}@isoflop" for s in sizes] and sizes
    for base in sizes:
        stable = json.loads((smoke_build / "results" / "isoflop" / "stable" / base / "plan.json").read_text())
        per_step = stable["tokens"] // stable["steps"]
        tokens = stable["tokens"] + sum(
            m["tokens"] - m["branch_step"] * per_step
            for m in (json.loads(f.read_text()) for f in (smoke_build / "results" / "isoflop" / "branches" / base)
                      .glob("*/metrics.json")))
        assert int(iso[f"{base}@isoflop"][1].replace(",", "")) == tokens, base
    # span corruption draws more raw tokens per step than it feeds the encoder: more epochs per token
    assert float(rows["transformer-pico"][3]) > float(rows["gpt2-pico"][3])
    assert re.search(r"^total \(12 runs\)", out, re.M)  # 9 grid runs and 3 IsoFLOP sizes


@pytest.mark.parametrize("args, says", [(["--gpu", "V100"], "--gpu 'V100'"), (["--mfu", "45"], "--mfu 45.0")])
def test_plan_refuses_unknown_gpu_and_impossible_mfu(tmp_path, capsys, args, says):
    from workspace import REPO

    from archscale.plan import main

    assert main(["--configfile", str(REPO / "presets" / "smoke.yaml"), "--shards", str(tmp_path), *args]) == 2
    assert says in capsys.readouterr().err


def test_plan_checks_isoflop_epochs_against_the_params_cap(capsys):
    """The modern preset allows 3 epochs (data.max_epochs), and its femto IsoFLOP runs read ~1.85 of a
    9M-token corpus: priced, not refused; a 4M-token corpus (~4.2 epochs) is refused, naming the cap."""
    from workspace import REPO

    from archscale.plan import main

    modern = str(REPO / "presets" / "modern.yaml")
    assert main(["--configfile", modern, "--train-tokens", "9e6"]) == 0
    assert "femto@isoflop" in capsys.readouterr().out
    assert main(["--configfile", modern, "--train-tokens", "4e6"]) != 0
    assert "data.max_epochs = 3" in capsys.readouterr().err
