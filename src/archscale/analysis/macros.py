"""Every number the paper's prose quotes, as LaTeX macros built from summary.csv and the fits.

The paper never types a number: it writes ``\\BestFUArchSpan`` or ``\\alphaFUTransformer`` and
paper/generated/macros.tex defines them. Macros are generic in the set of architectures (the
prose may only use the summary ones: counts, best/worst, reference), and per-architecture ones
exist for tables and for readers who want to cite one value.

Rankings of anything fitted to upstream loss (best/worst slope, reference, frontier owners) exist
only per objective family (family.py), with the family as the name's tail: ``\\BestFUArchSpan``,
``\\RefArchClm``, and a ``\\RankedFUMlm`` switch that is `yes` only when at least two architectures
of the family have that slope fitted. Every known family (span, clm, mlm) gets its macros in every
build (n/a, `no`), so main.tex compiles for every preset. Only downstream-only slopes (alpha_F_D,
alpha_P_D: SuperGLUE score, the same measure for every run) are also ranked across families.
"""

from __future__ import annotations

import statistics
from typing import Any

from archscale.analysis.family import KNOWN, arch_families, order, reference, suffix
from archscale.analysis.table import Row, number, tasks_of
from archscale.analysis.texfmt import DASH, count, fixed, macro_name, sci, tex

NA = "n/a"


class Macros:
    """An ordered name -> LaTeX value map that refuses two ids mapping to one macro name."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}

    def add(self, name: str, value: str) -> None:
        if name in self.items:
            raise ValueError(f"two values map to the LaTeX macro \\{name}; rename one of the ids")
        self.items[name] = value

    def fit(self, name: str, fit: dict[str, Any] | None, key: str = "alpha", digits: int = 3) -> None:
        """name, nameLo, nameHi from a fitted quantity (n/a when not fitted)."""
        ok = bool(fit) and fit.get("status", "fitted") == "fitted" and fit.get(key) is not None
        lo, hi = (fit.get("ci") or [None, None]) if ok else (None, None)
        self.add(name, fixed(fit[key], digits) if ok else NA)
        self.add(name + "Lo", fixed(lo, digits) if ok and lo is not None else NA)
        self.add(name + "Hi", fixed(hi, digits) if ok and hi is not None else NA)


def _run_macros(m: Macros, rows: list[Row]) -> None:
    main = [r for r in rows if not r.get("scan")]
    archs = sorted({r.get("arch", "") for r in main})
    m.add("NumRuns", str(len(rows)))
    m.add("NumMainRuns", str(len(main)))
    m.add("NumScanRuns", str(len(rows) - len(main)))
    m.add("NumArchs", str(len(archs)))
    m.add("NumSizes", str(len({r.get("size", "") for r in main})))
    m.add("ArchList", ", ".join(tex(a) for a in archs) or NA)
    params = [v for r in main if (v := number(r, "params")) is not None]
    flops = [v for r in rows if (v := number(r, "train_flops")) is not None]
    m.add("MinParams", count(min(params)) if params else NA)
    m.add("MaxParams", count(max(params)) if params else NA)
    m.add("MinFlops", sci(min(flops)) if flops else NA)
    m.add("MaxFlops", sci(max(flops)) if flops else NA)
    m.add("TotalFlops", sci(sum(flops)) if flops else NA)
    down = [r for r in rows if number(r, "downstream_avg") is not None]
    m.add("NumDownstreamRuns", str(len(down)))
    devices = sorted({r.get("device", "") for r in rows if r.get("device")})
    m.add("Devices", ", ".join(tex(d) for d in devices) or NA)


def _transfer_macros(m: Macros, rows: list[Row]) -> None:
    """How often fine-tuning from pretrained weights beats a random init of the same shape."""
    tasks = tasks_of(rows, "scratch_")
    gains = sorted(a - b for r in rows for t in tasks
                   if (a := number(r, f"score_{t}")) is not None and (b := number(r, f"scratch_{t}")) is not None)
    m.add("NumTransferPairs", str(len(gains)))
    m.add("NumTransferWins", str(sum(g > 0 for g in gains)))
    m.add("MedianTransferGain", fixed(statistics.median(gains), 1) if gains else NA)


def _section_macros(m: Macros, rows: list[Row]) -> None:
    """yes/no switches for the parts of the paper a preset may have no runs for: main.tex leaves out
    a figure, table or sentence whose switch is `no` (``\\IfYes{\\HasDepthScan}{...}{}``) instead of
    printing an empty placeholder. A summary without scan rows (the default and smoke presets) has
    no depth or width scan; one without downstream scores no downstream figure; one without
    ``scratch_*`` scores no transfer table (Table 3)."""
    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    scans = {r.get("scan", "") for r in rows}
    scratch = tasks_of(rows, "scratch_")
    m.add("HasDepthScan", yes("depth" in scans))
    m.add("HasWidthScan", yes("width" in scans))
    m.add("HasScan", yes(bool(scans - {""})))
    m.add("HasDownstream", yes(any(number(r, "downstream_avg") is not None for r in rows)))
    m.add("HasTransfer", yes(any(number(r, f"score_{t}") is not None and number(r, f"scratch_{t}") is not None
                                 for r in rows for t in scratch)))
    # lrs: how many learning rates collect chose each run's from (1 outside a sweep; sweep.csv has them all)
    lrs = max((int(number(r, "lrs")) for r in rows if number(r, "lrs") is not None), default=1)
    m.add("HasLrSweep", yes(lrs > 1))
    m.add("NumSweepLrs", str(lrs))


def families(rows: list[Row], fits: dict[str, dict[str, Any] | None] | None = None) -> dict[str, str]:
    """Architecture -> objective family, from summary.csv's main grid and the rows each fit file was
    fitted on (a fit made elsewhere still gets its families)."""
    out: dict[str, str] = {}
    for fit in (fits or {}).values():
        out.update(arch_families([r for r in (fit or {}).get("rows", []) if not r.get("scan")]))
    out.update(arch_families([r for r in rows if not r.get("scan")]))
    return out


def family_list(fam_of: dict[str, str]) -> list[str]:
    """The families macros are made for: every known one (span, clm, mlm), then any other present."""
    return order(set(KNOWN) | set(fam_of.values()))


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _family_macros(m: Macros, fam_of: dict[str, str]) -> None:
    """Per family: is it in this build, its architectures and its reference."""
    present = [f for f in family_list(fam_of) if f in fam_of.values()]
    m.add("NumFamilies", str(len(present)))
    for fam in family_list(fam_of):
        archs = sorted(a for a, f in fam_of.items() if f == fam)
        tail = suffix(fam)
        m.add(f"HasFamily{tail}", _yes(bool(archs)))
        m.add(f"MultiArch{tail}", _yes(len(archs) >= 2))
        m.add(f"NumArchs{tail}", str(len(archs)))
        m.add(f"FamilyArchs{tail}", ", ".join(tex(a) for a in archs) or "none")
        ref = reference(fam, archs)
        m.add(f"RefArch{tail}", tex(ref) if ref else NA)


def rank_macros(m: Macros, tag: str, values: dict[str, Any], ref: str | None = None, *, tail: str = "",
                key: str = "alpha", with_ref: bool = True) -> None:
    """NumFitted<tag><tail>, Ranked<tag><tail> (yes with >= 2 fitted), Best<tag>Arch<tail> and
    Best<tag><tail> (Lo, Hi), the same for Worst, and Ref<tag><tail> of ``ref``, over ``values``
    (arch -> fit, larger ``key`` = steeper); n/a where absent. ``tail`` names the family
    (\\BestFUArchSpan); callers pass one family's architectures only, or a measure that means the
    same across families (no tail)."""
    m.add(f"NumFitted{tag}{tail}", str(len(values)))
    m.add(f"Ranked{tag}{tail}", _yes(len(values) >= 2))
    for which, pick in (("Best", max), ("Worst", min)):
        arch = pick(sorted(values), key=lambda a: values[a][key]) if values else None
        m.add(f"{which}{tag}Arch{tail}", tex(arch) if arch else NA)
        m.fit(f"{which}{tag}{tail}", values.get(arch) if arch else None, key=key)
    if with_ref:
        m.fit(f"Ref{tag}{tail}", values.get(ref) if ref else None, key=key)


# Slopes with upstream loss in them are ranked within a family only; downstream-only ones across all.
FAMILY_SLOPES = ("alpha_F_U", "alpha_P_U", "alpha_U_D")
CROSS_SLOPES = ("alpha_F_D", "alpha_P_D")


def _slope_macros(m: Macros, slopes: dict[str, Any] | None, fam_of: dict[str, str]) -> None:
    groups = (slopes or {}).get("groups", {})
    m.add("CILevel", str(round(100 * (slopes or {}).get("ci_level", 0.95))))
    for key in FAMILY_SLOPES + CROSS_SLOPES:
        short = key.replace("alpha_", "").replace("_", "")
        fitted = {a: f[key] for a, f in groups.items() if f.get(key, {}).get("status") == "fitted"}
        for arch, fits in groups.items():
            m.fit(macro_name("alpha" + short, arch), fits.get(key))
        if key in CROSS_SLOPES:
            rank_macros(m, short, fitted, with_ref=False)
            continue
        m.add(f"NumFitted{short}", str(len(fitted)))
        for fam in family_list(fam_of):
            archs = sorted(a for a, f in fam_of.items() if f == fam)
            rank_macros(m, short, {a: f for a, f in fitted.items() if fam_of.get(a) == fam}, reference(fam, archs),
                        tail=suffix(fam))


def _downstream_macros(m: Macros, rows: list[Row]) -> None:
    """Which SuperGLUE tasks downstream_avg averages (collect.py writes downstream_tasks and
    downstream_partial; an older summary: the tasks with a score in that row), and how many runs
    average fewer tasks than the preset fine-tunes (partial)."""
    all_tasks = tasks_of(rows)
    scored = [r for r in rows if number(r, "downstream_avg") is not None]
    used, partial = [], 0
    for r in scored:
        tasks = (r.get("downstream_tasks") or "").split() if "downstream_tasks" in r else \
            [t for t in all_tasks if number(r, f"score_{t}") is not None]
        used.append(tasks)
    union = [t for t in all_tasks if any(t in u for u in used)] + sorted({t for u in used for t in u} - set(all_tasks))
    for r, tasks in zip(scored, used):
        flag = (r.get("downstream_partial") or "").lower()
        partial += flag in {"yes", "true", "1"} if "downstream_partial" in r else set(tasks) != set(union)
    m.add("DownstreamTasks", ", ".join(tex(t) for t in union) or NA)
    m.add("NumDownstreamTasks", str(len(union)))
    m.add("NumPartialDownstream", str(partial))
    m.add("HasPartialDownstream", _yes(partial > 0))


def _percent_macros(m: Macros, name: str, value: float | None, ci: list[float] | None) -> None:
    """name, nameLo, nameHi of a fraction in percent with the sign in the value (n/a, not n/a%, when absent)."""
    lo, hi = ci or (None, None)
    for key, v in ((name, value), (name + "Lo", lo), (name + "Hi", hi)):
        m.add(key, fixed(100 * v, 1) + r"\%" if v is not None else NA)


def _sci_macros(m: Macros, name: str, value: float | None, ci: list[float | None] | None) -> None:
    lo, hi = ci or (None, None)
    for key, v in ((name, value), (name + "Lo", lo), (name + "Hi", hi)):
        m.add(key, sci(v) if v is not None else NA)


def _claims_family_macros(m: Macros, tail: str, f: dict[str, Any]) -> None:
    """One family's claims: best at its largest ranked size and the tiers there, whether and where the
    best changes (the crossover of the last change, the one at the largest scale), the L(C) ties, and
    the reference architecture's gain between its two largest sizes."""
    from archscale.analysis.report import WHERE_WORDS

    ranked = [r for r in f.get("rankings", []) if r.get("ranked")]
    last = ranked[-1] if ranked else None
    best = last["entries"][0] if last else None
    m.add(f"RankedLoss{tail}", _yes(last is not None))
    m.add(f"BestLossSize{tail}", tex(last["size"]) if last else NA)
    m.add(f"BestLossArch{tail}", tex(best["arch"]) if best else NA)
    m.fit(f"BestLoss{tail}", {"value": best["loss"], "ci": best.get("ci")} if best else None, key="value")
    m.add(f"NumLossTiers{tail}", str(len(last["tiers"])) if last else NA)
    m.add(f"TopTier{tail}", ", ".join(tex(a) for a in last["tiers"][0]) if last else NA)
    changes = f.get("changes", [])
    ch = changes[-1] if changes else {}
    x = ch.get("crossover", {})
    crossing = x.get("status") == "crossing" and x.get("C") is not None
    m.add(f"BestChanges{tail}", _yes(bool(changes)))
    m.add(f"NumBestChanges{tail}", str(len(changes)))
    m.add(f"HasCrossover{tail}", _yes(crossing))
    _sci_macros(m, f"Crossover{tail}", x.get("C") if crossing else None, x.get("ci") if crossing else None)
    m.add(f"CrossoverWhere{tail}", WHERE_WORDS.get(x.get("where"), NA))
    for key, field in (("From", "before"), ("To", "after"), ("FromSize", "from_size"), ("ToSize", "to_size")):
        m.add(f"Crossover{key}{tail}", tex(ch[field]) if ch else NA)
    lc = f.get("lc", {})
    pairs = lc.get("pairs", [])
    m.add(f"NumLCPairs{tail}", str(len(pairs)))
    m.add(f"NumLCTies{tail}", str(sum(bool(p.get("tie")) for p in pairs)))
    m.add(f"NumLCTiers{tail}", str(len(lc["tiers"])) if lc.get("tiers") else NA)
    ref = f.get("reference")
    g = (f.get("gains", {}).get(ref) or [None])[-1] if ref else None
    _percent_macros(m, f"GainRef{tail}", g["gain"] if g else None, g.get("ci") if g else None)
    m.add(f"GainRefSizes{tail}", f"{tex(g['from_size'])} to {tex(g['to_size'])}" if g else NA)


def _claims_macros(m: Macros, fit: dict[str, Any] | None, fam_of: dict[str, str]) -> None:
    """The studies' claims (claims.json): Oyedele's tie threshold, the seeds behind the intervals,
    Tay et al.'s published gains (quoted, from claims.TAY_GAINS), and per family (every known one,
    n/a and `no` without data) the macros of ``_claims_family_macros``."""
    from archscale.analysis.claims import TAY_GAINS, TIE

    fams = (fit or {}).get("families", {})
    m.add("TiePercent", f"{100 * (fit or {}).get('tie', TIE):g}")
    seeds = [e.get("n_seeds", 0) for f in fams.values() for r in f.get("rankings", []) for e in r.get("entries", [])]
    m.add("MaxSeeds", str(max(seeds, default=0)))
    m.add("HasRepeats", _yes(max(seeds, default=0) >= 2))
    for arch, value in sorted(TAY_GAINS.items()):
        m.add(macro_name("TayGain", arch), fixed(100 * value, 1) + r"\%")
    for fam in family_list(fam_of):
        _claims_family_macros(m, suffix(fam), fams.get(fam, {}))


def _isoflop_macros(m: Macros, fit: dict[str, Any] | None) -> None:
    """Compute-optimal allocation (isoflop.json, Hoffmann et al. approach 2): the \\HasIsoflop switch
    (yes when the preset has IsoFLOP runs) and \\HasIsoflopFit (yes when an architecture has a and b),
    per architecture a (N_opt ~ C^a) and b (D_opt ~ C^b) with Lo/Hi (\\isoflopAGptTwo,
    \\isoflopBGptTwo), and the smallest and largest a and b over the fitted architectures with their
    owners (\\IsoflopAMin, \\IsoflopAMinArch, ...). a and b are exponents of size and tokens in
    compute, not losses, so they are compared across objective families."""
    groups = (fit or {}).get("groups", {})
    m.add("HasIsoflop", _yes(bool(groups)))
    m.add("NumIsoflopArchs", str(len(groups)))
    fitted = {a: g["approach2"] for a, g in groups.items() if g.get("approach2", {}).get("status") == "fitted"}
    m.add("NumFittedIsoflop", str(len(fitted)))
    m.add("HasIsoflopFit", _yes(bool(fitted)))
    for arch in groups:
        for key in ("a", "b"):
            m.fit(macro_name("isoflop" + key.upper(), arch), fitted.get(arch, {}).get(key), key="value")
    for key in ("a", "b"):
        for which, pick in (("Min", min), ("Max", max)):
            arch = pick(sorted(fitted), key=lambda a: fitted[a][key]["value"]) if fitted else None
            m.add(f"Isoflop{key.upper()}{which}Arch", tex(arch) if arch else NA)
            m.fit(f"Isoflop{key.upper()}{which}", fitted[arch][key] if arch else None, key="value")


def build_macros(rows: list[Row], fits: dict[str, dict[str, Any] | None]) -> list[tuple[str, str]]:
    """(name, value) pairs in a stable order; values are LaTeX, names letters only."""
    m = Macros()
    fam_of = families(rows, fits)
    _run_macros(m, rows)
    _family_macros(m, fam_of)
    _downstream_macros(m, rows)
    _transfer_macros(m, rows)
    _section_macros(m, rows)
    _slope_macros(m, fits.get("slopes"), fam_of)
    from archscale.analysis.report import fit_macros

    fit_macros(m, fits, fam_of)
    _claims_macros(m, fits.get("claims"), fam_of)
    _isoflop_macros(m, fits.get("isoflop"))
    return [(k, v if v != "" else DASH) for k, v in m.items.items()]
