"""Every number the paper's prose quotes, as LaTeX macros built from summary.csv and the fits.

The paper never types a number: it writes ``\\BestFUArch`` or ``\\alphaFUTransformer`` and
paper/generated/macros.tex defines them. Macros are generic in the set of architectures (the
prose may only use the summary ones: counts, best/worst, reference), and per-architecture ones
exist for tables and for readers who want to cite one value.
"""

from __future__ import annotations

import statistics
from typing import Any

from archscale.analysis import REFERENCE_ARCH
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
    m.add("RefArch", tex(REFERENCE_ARCH))
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


def _slope_macros(m: Macros, slopes: dict[str, Any] | None) -> None:
    groups = (slopes or {}).get("groups", {})
    m.add("CILevel", str(round(100 * (slopes or {}).get("ci_level", 0.95))))
    for key in ("alpha_F_U", "alpha_P_U", "alpha_F_D", "alpha_P_D", "alpha_U_D"):
        short = key.replace("alpha_", "").replace("_", "")
        fitted = {a: f[key] for a, f in groups.items() if f.get(key, {}).get("status") == "fitted"}
        m.add(f"NumFitted{short}", str(len(fitted)))
        for arch, fits in groups.items():
            m.fit(macro_name("alpha" + short, arch), fits.get(key))
        for which, pick in (("Best", max), ("Worst", min)):
            arch = pick(sorted(fitted), key=lambda a: fitted[a]["alpha"]) if fitted else None
            m.add(f"{which}{short}Arch", tex(arch) if arch else NA)
            m.fit(f"{which}{short}", fitted.get(arch) if arch else None)
        ref = groups.get(REFERENCE_ARCH, {}).get(key)
        m.fit(f"Ref{short}", ref)


def build_macros(rows: list[Row], fits: dict[str, dict[str, Any] | None]) -> list[tuple[str, str]]:
    """(name, value) pairs in a stable order; values are LaTeX, names letters only."""
    m = Macros()
    _run_macros(m, rows)
    _transfer_macros(m, rows)
    _section_macros(m, rows)
    _slope_macros(m, fits.get("slopes"))
    from archscale.analysis.report import fit_macros

    fit_macros(m, fits)
    return [(k, v if v != "" else DASH) for k, v in m.items.items()]

