"""Table rows and prose macros for the L(C), approach-3 and prediction fits (tables.py renders them).

Kept apart from the fits so a fit file written by an older or external run still renders: each
builder reads only the documented keys of its JSON and shows a dash for anything absent.
"""

from __future__ import annotations

import statistics
from typing import Any

from archscale.analysis.family import compute_axis, reference, suffix
from archscale.analysis.texfmt import fixed, macro_name, tex


def _groups(fit: dict[str, Any] | None) -> dict[str, Any]:
    return (fit or {}).get("groups", {})


def lc_context(fit: dict[str, Any] | None) -> dict[str, Any]:
    rows = []
    for arch, g in _groups(fit).items():
        pure, offset = g.get("pure", {}), g.get("offset", {})
        rows.append({
            "arch": arch, "status": g.get("status"), "reason": g.get("reason", ""), "n": g.get("n_frontier", 0),
            "runs": g.get("n_runs", 0),
            "alpha": pure.get("params", {}).get("alpha_C"), "cc": pure.get("params", {}).get("C_c"),
            "r2": pure.get("r2"),
            "alpha_e": offset.get("params", {}).get("alpha_C"), "cc_e": offset.get("params", {}).get("C_c"),
            "e": offset.get("params", {}).get("E"), "r2_e": offset.get("r2"),
            "alpha_alt": g.get("alt_compute", {}).get("pure", {}).get("alpha_C"),
            "family": g.get("family", ""), "compute": g.get("compute") or (fit or {}).get("compute", "flops"),
        })
    # Rows in family order, so the table never puts two families' architectures side by side unmarked.
    from archscale.analysis.family import label, order

    rank = {f: i for i, f in enumerate(order(r["family"] for r in rows))}
    rows.sort(key=lambda r: (rank[r["family"]], r["arch"]))
    for r in rows:
        r["family_label"] = label(r["family"]) if r["family"] else ""
    return {"available": fit is not None, "rows": rows, "warmup": bool((fit or {}).get("warmup")),
            "level": round(100 * (fit or {}).get("ci_level", 0.95))}


def approach3_context(fit: dict[str, Any] | None) -> dict[str, Any]:
    rows = []
    for name, g in _groups(fit).items():
        p = g.get("params", {})
        opt = g.get("compute_optimal", {})
        rows.append({"group": name, "status": g.get("status"), "reason": g.get("reason", ""), "n": g.get("n", 0),
                     "at_bound": bool(g.get("at_bound")),
                     "E": p.get("E"), "A": p.get("A"), "B": p.get("B"), "alpha": p.get("alpha"), "beta": p.get("beta"),
                     "a": opt.get("a"), "b": opt.get("b")})
    return {"available": fit is not None, "rows": rows, "points": (fit or {}).get("points", ""),
            "level": round(100 * (fit or {}).get("ci_level", 0.95))}


def prediction_context(fit: dict[str, Any] | None) -> dict[str, Any]:
    laws = (fit or {}).get("laws", [])
    rows = []
    for arch, g in _groups(fit).items():
        rows.append({"arch": arch, "status": g.get("status"), "reason": g.get("reason", ""),
                     "held_out": g.get("held_out", ""), "actual": g.get("actual"), "n_train": g.get("n_train", 0),
                     "preds": [g.get("laws", {}).get(law, {}) for law in laws]})
    return {"available": fit is not None, "rows": rows, "laws": [LAW_LABELS.get(x, x) for x in laws]}


LAW_LABELS = {"power_flops": r"$L \propto F^{-\alpha}$", "lc_pure": r"$(C_c/C)^{\alpha_C}$",
              "lc_offset": r"$E + (C_c/C)^{\alpha_C}$", "approach3": r"$E + A/N^\alpha + B/D^\beta$"}


COMPUTE_WORDS = {"6nd": "$6ND$", "flops": "measured training FLOPs"}


def _lc_macros(m: Any, fit: dict[str, Any] | None, fam_of: dict[str, str]) -> None:
    """alpha_C per architecture; per family the steepest (pure and with E), only over that family's
    architectures, and the compute axis its L(C) was fitted on (LCCompute<Family>)."""
    from archscale.analysis.macros import family_list, rank_macros

    lc = _groups(fit)
    ok = {a: g for a, g in lc.items() if g.get("status") == "fitted"}
    pure = {a: g.get("pure", {}).get("params", {}).get("alpha_C") for a, g in ok.items()}
    offset = {a: g.get("offset", {}).get("params", {}).get("alpha_C") for a, g in ok.items()}
    m.add("NumFittedLC", str(len(pure)))
    for arch, g in lc.items():
        m.fit(macro_name("alphaC", arch), pure.get(arch), key="value")
        m.fit(macro_name("alphaCE", arch), offset.get(arch), key="value")
        e = g.get("offset", {}).get("params", {}).get("E") if arch in ok else None
        m.fit(macro_name("lcE", arch), e, key="value")
    for fam in family_list(fam_of):
        tail = suffix(fam)
        archs = sorted(a for a, f in fam_of.items() if f == fam)
        axis = (fit or {}).get("families", {}).get(fam, {}).get("compute") or compute_axis(fam)
        m.add(f"LCCompute{tail}", COMPUTE_WORDS.get(axis, tex(axis)))
        for tag, values in (("LC", pure), ("LCE", offset)):
            mine = {a: v for a, v in values.items() if v and v.get("value") is not None and fam_of.get(a) == fam}
            rank_macros(m, tag, mine, reference(fam, archs), tail=tail, key="value")

def fit_macros(m: Any, fits: dict[str, dict[str, Any] | None], fam_of: dict[str, str]) -> None:
    """Add the macros of the L(C), approach-3, Pareto and prediction fits to ``m`` (a macros.Macros)."""
    from archscale.analysis.macros import family_list

    _lc_macros(m, fits.get("lc_frontier"), fam_of)
    a3 = _groups(fits.get("approach3"))
    m.add("NumFittedAThree", str(sum(g.get("status") == "fitted" for g in a3.values())))
    for name, g in a3.items():
        ok = g.get("status") == "fitted"
        for key in ("E", "alpha", "beta"):
            m.fit(macro_name("aThree", key, name), g.get("params", {}).get(key) if ok else None, key="value")

    pareto = fits.get("pareto") or {}
    tiered = pareto.get("tiered_groups", [])
    m.add("NumTiered", str(len(tiered)))
    m.add("TieredArchs", ", ".join(tex(a) for a in tiered) if tiered else "none")
    # Upstream frontiers per family (losses of one task); the downstream one across all runs.
    for fam in family_list(fam_of):
        front = pareto.get("frontiers", {}).get(fam, {}).get("upstream_vs_flops", {}).get("frontier", [])
        owners = sorted({f["arch"] for f in front})
        m.add(f"FrontierArchs{suffix(fam)}", ", ".join(tex(a) for a in owners) if owners else "n/a")
    down = sorted({f["arch"]
                   for f in pareto.get("cross_family", {}).get("downstream_vs_flops", {}).get("frontier", [])})
    m.add("DownstreamFrontierArchs", ", ".join(tex(a) for a in down) if down else "n/a")

    pred = _groups(fits.get("prediction"))
    errors = {law: [abs(g["laws"][law]["rel_error"]) for g in pred.values()
                    if g.get("status") == "fitted" and g.get("laws", {}).get(law, {}).get("rel_error") is not None]
              for law in (fits.get("prediction") or {}).get("laws", [])}
    m.add("NumPredicted", str(max((len(v) for v in errors.values()), default=0)))
    for law in ("power_flops", "lc_pure", "lc_offset", "approach3"):
        errs = errors.get(law, [])
        short = macro_name(law)
        # The percent sign is part of the value, so a missing fit reads "n/a", not "n/a%".
        m.add(f"PredMedianErr{short[:1].upper() + short[1:]}",
              fixed(100 * statistics.median(errs), 1) + r"\%" if errs else "n/a")
        m.add(f"PredMaxErr{short[:1].upper() + short[1:]}", fixed(100 * max(errs), 1) + r"\%" if errs else "n/a")


WHERE_WORDS = {"within": "within the runs' compute", "near": "near the runs' compute",
               "outside": "far outside the runs' compute", "parallel": "parallel lines, no crossing"}


def _percent(value: float | None, ci: list[float] | None) -> dict[str, Any] | None:
    """A fraction as a fitted quantity in percent, for the ``ci`` filter."""
    if value is None:
        return None
    return {"value": 100 * value, "ci": [100 * c for c in ci] if ci else None}


def _claims_rows(f: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (size, architecture) by rank, with the gain from the architecture's previous size."""
    gains = {(a, g.get("to_size")): g for a, gs in f.get("gains", {}).items() for g in gs}
    rows = []
    for r in f.get("rankings", []):
        for i, e in enumerate(r.get("entries", [])):
            g = gains.get((e.get("arch"), r.get("size")))
            rows.append({"arch": e.get("arch", ""), "size": r.get("size", ""), "rank": e.get("rank"),
                         "tier": e.get("tier"), "n_seeds": e.get("n_seeds"), "first_of_size": i == 0,
                         "loss": {"value": e.get("loss"), "ci": e.get("ci")},
                         "gain": _percent(g.get("gain"), g.get("ci")) if g else None,
                         "gain_from": g.get("from_size", "") if g else ""})
    return rows


def claims_context(fit: dict[str, Any] | None) -> dict[str, Any]:
    """Per family: the ranking rows, where the best architecture changes (with the crossover), the
    L(C) ties and tiers (Oyedele's rule); families in the fit's order (span, clm, mlm)."""
    from archscale.analysis.claims import TIE

    fams = []
    for fam, f in (fit or {}).get("families", {}).items():
        changes = []
        for ch in f.get("changes", []):
            x = ch.get("crossover", {})
            changes.append({**{k: ch.get(k, "") for k in ("from_size", "to_size", "before", "after")},
                            "status": x.get("status", ""), "C": x.get("C"), "ci": x.get("ci") or [None, None],
                            "ci_reason": x.get("ci_reason") or "", "where": WHERE_WORDS.get(x.get("where"), "")})
        lc = f.get("lc", {})
        fams.append({"family": fam, "label": f.get("label", fam), "reference": f.get("reference") or "",
                     "rows": _claims_rows(f), "changes": changes, "ranked": any(
                         r.get("ranked") for r in f.get("rankings", [])),
                     "lc_status": lc.get("status", ""), "lc_reason": lc.get("reason", ""),
                     "lc_compute": COMPUTE_WORDS.get(lc.get("compute"), lc.get("compute", "")),
                     "lc_ties": [p for p in lc.get("pairs", []) if p.get("tie")],
                     "lc_pairs": len(lc.get("pairs", [])), "lc_tiers": lc.get("tiers", []), "lc_at": lc.get("at")})
    return {"available": fit is not None, "families": fams,
            "tie_percent": f"{100 * (fit or {}).get('tie', TIE):g}",
            "level": round(100 * (fit or {}).get("ci_level", 0.95))}
