"""Losses are compared only within one objective family (analysis/family.py).

Span-corruption, causal-LM and masked-LM losses are per-target-token losses of different tasks. The
table built here has two families, span (transformer, glu) and mlm (bert_mlm, roberta), where the
masked-LM losses are far lower and scale more steeply than the span ones: any frontier, best/worst
pick, macro or reference line computed across families would name an mlm architecture (or draw
bert_mlm's line beside glu). Every one of them must stay inside its family.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from archscale.analysis.family import arch_families, reference, references, split, suffix
from archscale.analysis.lc import fit_lc_from_runs
from archscale.analysis.macros import build_macros
from archscale.analysis.pareto import fit_pareto
from archscale.analysis.slopes import fit_slopes
from archscale.analysis.synth import to_csv
from archscale.analysis.table import read_csv
from archscale.figures.cli import main as figure_main

REPO = Path(__file__).resolve().parents[1]
OBJECTIVE = {"transformer": "span", "glu": "span", "bert_mlm": "mlm", "roberta": "mlm"}
# loss = SCALE[objective] * (C / 1e12)^-SLOPE[arch]: within span transformer is steeper than glu,
# within mlm bert_mlm than roberta; across families both mlm archs are steeper and every mlm loss
# is lower than every span loss.
SLOPE = {"transformer": 0.10, "glu": 0.08, "bert_mlm": 0.20, "roberta": 0.15}
SCALE = {"span": 6.0, "mlm": 2.0}
SHAPES = {"tiny": (2, 64), "small": (4, 128), "base": (6, 256), "large": (8, 384)}
STEPS, EVAL_EVERY, WARMUP_FRAC, TOKENS_PER_STEP = 40, 5, 0.25, 50_000
FAMILY_ARCHS = {"span": {"transformer", "glu"}, "mlm": {"bert_mlm", "roberta"}}


def loss_at(arch: str, c: float) -> float:
    return SCALE[OBJECTIVE[arch]] * (c / 1e12) ** -SLOPE[arch]


def two_families(root: Path) -> Path:
    """summary.csv, curves and config.json of 4 archs x 4 sizes; C = 6 N D exactly (forward FLOPs
    2N per token), so measured FLOPs and 6ND give the same frontier."""
    rows = []
    for arch, obj in OBJECTIVE.items():
        for size, (layers, d) in SHAPES.items():
            n = 12 * layers * d * d
            run = f"{arch}-{size}"
            curve = []
            for step in range(1, STEPS + 1):
                tokens = step * TOKENS_PER_STEP
                c = 6.0 * n * tokens
                val = loss_at(arch, c) if step % EVAL_EVERY == 0 else ""
                curve.append({"step": step, "tokens": tokens, "flops": c, "train_loss": loss_at(arch, c),
                              "val_loss": val, "lr": 1e-3, "wall_s": float(step)})
            (root / "runs" / run).mkdir(parents=True)
            (root / "runs" / run / "curve.csv").write_text(to_csv(curve))
            (root / "runs" / run / "config.json").write_text(json.dumps({"train": {"warmup_frac": WARMUP_FRAC}}))
            tokens = STEPS * TOKENS_PER_STEP
            final = loss_at(arch, 6.0 * n * tokens)
            rows.append({"run": run, "arch": arch, "size": size, "objective": obj, "scan": "", "params": n + 8192 * d,
                         "non_embedding_params": n, "train_flops": 6.0 * n * tokens, "tokens": tokens, "steps": STEPS,
                         "val_loss": final, "neg_log_ppl": -final,
                         # the same downstream score for the same compute: no family wins downstream
                         "downstream_avg": round(20 + 5 * np.log10(6.0 * n * tokens / 1e12), 3)})
    (root / "summary.csv").write_text(to_csv(rows))
    return root / "summary.csv"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("families")
    two_families(root)
    return root


def _macros(rows, fits) -> dict[str, str]:
    return dict(build_macros(rows, fits))


def test_family_key_reference_and_fallback():
    rows = [{"arch": a, "objective": o} for a, o in OBJECTIVE.items()] + [{"arch": "gpt2", "objective": "clm"}]
    assert list(split(rows)) == ["span", "clm", "mlm"], "the paper's order"
    assert references(rows) == {"span": "transformer", "clm": "gpt2", "mlm": "bert_mlm"}
    assert reference("clm", ["transfo_xl", "reformer"]) == "reformer", "named reference absent: the first present"
    assert suffix("span") == "Span" and suffix("clm+bpe") == "ClmBpe", "a tokenizer column would join the key"
    with pytest.raises(ValueError, match="two objective families"):
        arch_families([{"arch": "bert", "objective": "mlm"}, {"arch": "bert", "objective": "clm"}])


def test_pareto_frontiers_stay_inside_their_family(data):
    rows = read_csv(data / "summary.csv")
    fit = fit_pareto(rows)
    assert set(fit["frontiers"]) == {"span", "mlm"}
    for fam, fronts in fit["frontiers"].items():
        for key in ("upstream_vs_flops", "upstream_vs_params"):
            owners = {f["arch"] for f in fronts[key]["frontier"]}
            assert owners and owners <= FAMILY_ARCHS[fam], f"{fam} {key} frontier held by {owners}"
    # a frontier over both families would be all mlm (lower loss everywhere): span's must exist on its own
    assert {f["arch"] for f in fit["frontiers"]["span"]["upstream_vs_flops"]["frontier"]} == {"transformer"}
    assert fit["references"] == {"span": "transformer", "mlm": "bert_mlm"}


def test_slope_and_lc_picks_and_references_are_per_family(data):
    rows = read_csv(data / "summary.csv")
    slopes = fit_slopes(rows, n_boot=50)
    lc = fit_lc_from_runs(rows, data / "runs", n_col="non_embedding_params", n_boot=0)
    m = _macros(rows, {"slopes": slopes, "lc_frontier": lc, "pareto": fit_pareto(rows)})
    expect = {"Span": ("transformer", "glu", "transformer"), "Mlm": (r"bert\_mlm", "roberta", r"bert\_mlm")}
    for tail, (best, worst, ref) in expect.items():
        assert (m[f"BestFUArch{tail}"], m[f"WorstFUArch{tail}"], m[f"RefArch{tail}"]) == (best, worst, ref), tail
        assert m[f"RankedFU{tail}"] == "yes" and m[f"MultiArch{tail}"] == "yes"
        assert m[f"BestLCArch{tail}"] == best, (tail, m[f"BestLCArch{tail}"])
        assert m[f"BestFU{tail}"] == f"{SLOPE[best.replace(chr(92), '')]:.3f}"
    assert m["HasFamilyClm"] == "no" and m["BestFUArchClm"] == "n/a" and m["RankedFUClm"] == "no"
    # no pick may span the families, whatever its name: every *Arch<Family> names an arch of that family
    for name, value in m.items():
        hit = re.fullmatch(r"(Best|Worst|Ref)\w*Arch(Span|Mlm)", name)
        if hit and value != "n/a":
            assert value.replace("\\", "") in FAMILY_ARCHS[hit.group(2).lower()], (name, value)
        assert not re.fullmatch(r"(Best|Worst)(FU|PU|UD|LC|LCE)Arch", name), f"\\{name} ranks across families"
    assert set(m["FrontierArchsSpan"].split(", ")) <= FAMILY_ARCHS["span"]
    assert m["FrontierArchsMlm"] == r"bert\_mlm"


def test_one_architecture_per_family_ranks_nothing(data):
    rows = [r for r in read_csv(data / "summary.csv") if r["arch"] in ("glu", "roberta")]
    m = _macros(rows, {"slopes": fit_slopes(rows, n_boot=20)})
    for tail in ("Span", "Mlm"):
        assert m[f"NumFittedFU{tail}"] == "1" and m[f"RankedFU{tail}"] == "no" and m[f"MultiArch{tail}"] == "no"
    assert (m["RefArchSpan"], m["RefArchMlm"]) == ("glu", "roberta"), "named references absent: the one present"


def test_main_tex_ranks_only_within_a_family():
    """The prose may quote a pick of upstream scaling only through its family's macro, and only
    where that family has two fitted architectures (inside \\IfYes{\\Ranked<slope><Family>})."""
    tex = re.sub(r"(?<!\\)%.*", "", (REPO / "paper" / "main.tex").read_text())
    assert not re.findall(r"\\(?:Best|Worst)(?:FU|PU|UD|LC|LCE)(?:Arch)?(?![A-Za-z])", tex), "a pick across families"
    assert not re.search(r"\\(?:RefArch|FrontierArchs|RefFU|RefPU)(?![A-Za-z])", tex), "a reference across families"
    for tail in ("Span", "Clm", "Mlm"):
        assert f"\\BestFUArch{tail}" in tex and f"\\IfYes{{\\RankedFU{tail}}}" in tex and "only one architecture" in tex


def _drawn(monkeypatch, name: str, data: Path, fits: Path, tmp: Path):
    import matplotlib.pyplot as plt

    saved = []
    with monkeypatch.context() as mp:
        mp.setattr(plt, "close", saved.append)
        assert figure_main([name, "--summary", str(data / "summary.csv"), "--runs-dir", str(data / "runs"),
                            "--fits-dir", str(fits), "--out-dir", str(tmp)]) == 0
    return saved[0]


def test_figures_draw_each_family_with_its_own_reference(data, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    rows = read_csv(data / "summary.csv")
    fits = tmp_path / "fits"
    fits.mkdir()
    (fits / "slopes.json").write_text(json.dumps(fit_slopes(rows, n_boot=20)))
    (fits / "lc_frontier.json").write_text(
        json.dumps(fit_lc_from_runs(rows, data / "runs", n_col="non_embedding_params", n_boot=0)))
    finals = {a: sorted((float(r["train_flops"]), float(r["neg_log_ppl"])) for r in rows if r["arch"] == a)
              for a in OBJECTIVE}

    fig = _drawn(monkeypatch, "scaling_per_arch", data, fits, tmp_path)
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    assert sorted(panels) == ["glu", "roberta"], "one panel per non-reference architecture"
    for arch, ref in (("glu", "transformer"), ("roberta", "bert_mlm")):
        grey = [ln for ln in panels[arch].lines if ln.get_label() == ref.replace("_", " ")]
        assert len(grey) == 1, f"{arch}: reference lines {[ln.get_label() for ln in panels[arch].lines]}"
        assert list(zip(grey[0].get_xdata(), grey[0].get_ydata())) == finals[ref]
    plt.close(fig)

    fig = _drawn(monkeypatch, "upstream_vs_flops", data, fits, tmp_path)
    for ax in (a for a in fig.axes if a.get_visible()):
        drawn = [list(zip(ln.get_xdata(), ln.get_ydata())) for ln in ax.lines]
        archs = {a for a in OBJECTIVE for pts in drawn if pts == finals[a]}
        assert len(archs) == len(drawn) and len({OBJECTIVE[a] for a in archs}) == 1, f"{ax.get_title()}: {archs}"
    plt.close(fig)

    lc = json.loads((fits / "lc_frontier.json").read_text())["groups"]
    fig = _drawn(monkeypatch, "lc_frontier", data, fits, tmp_path)
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    # panels on different compute axes say which: span on measured FLOPs, mlm (Oyedele's) on 6ND
    assert "C = measured FLOPs" in [t.get_text() for t in panels["glu"].texts]
    assert "C = 6ND" in [t.get_text() for t in panels["roberta"].texts]
    for arch, ref in (("glu", "transformer"), ("roberta", "bert_mlm")):
        (dotted,) = [ln for ln in panels[arch].lines if ln.get_linestyle() == ":"]
        assert np.allclose(dotted.get_xydata(), [f[:2] for f in lc[ref]["frontier"]]), f"{arch}: not {ref}'s frontier"
    assert not [ln for ln in panels["transformer"].lines if ln.get_linestyle() == ":"], "no reference beside itself"
    plt.close(fig)
