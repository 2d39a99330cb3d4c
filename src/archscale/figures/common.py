"""What every figure shares: fixed style, stable colours, deterministic PDF/PNG bytes, inputs.

Figures are rebuilt by the pipeline and versioned by DVC, so the same inputs must give the same
bytes: the Agg backend, a fixed rcParams set (no user matplotlibrc), and no timestamps or
software strings in the PDF/PNG metadata. Every figure script always writes its files; when the
inputs lack what it needs (no downstream scores, no depth scan in this preset) it draws a panel
that says so, which keeps the paper compiling for every preset.
"""

from __future__ import annotations

import argparse
import io
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from archscale.analysis import family as fam  # noqa: E402
from archscale.analysis.table import Row, number, read_csv, read_json, write_atomic  # noqa: E402

# Sized for a paper column: a 6.5 in wide figure printed at 100%, 8-9 pt text.
STYLE: dict[str, Any] = {
    "figure.figsize": (6.5, 3.6),
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "lines.linewidth": 1.4,
    "lines.markersize": 4,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "pdf.fonttype": 42,
    "svg.hashsalt": "archscale",
    "path.simplify": False,
}
PDF_METADATA = {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None}
PNG_METADATA = {"Software": None}


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The options every figure takes (inputs and output folder); figures add their own."""
    p = argparse.ArgumentParser(prog=f"archscale figure {name}", description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--summary", default="results/summary.csv", help="one row per run")
    p.add_argument("--sweep", default="results/sweep.csv", help="every run of an lr sweep or repeat (collect)")
    p.add_argument("--fits-dir", default="results/fits", help="folder with the fit JSON files")
    p.add_argument("--runs-dir", default="results/runs", help="folder with {run}/curve.csv")
    p.add_argument("--out-dir", default="figures", help=f"writes {name}.pdf and {name}.png here")
    return p


def new_figure(ncols: int = 1, nrows: int = 1, *, height: float | None = None, **kw: Any):
    """A figure under the fixed style (the style is applied globally: one figure per process)."""
    plt.rcdefaults()
    plt.rcParams.update(STYLE)
    h = height if height is not None else STYLE["figure.figsize"][1]
    return plt.subplots(nrows, ncols, figsize=(STYLE["figure.figsize"][0], h), squeeze=False, **kw)


def save(fig: Any, out_dir: str | Path, name: str) -> list[Path]:
    """Write name.pdf and name.png atomically, with no timestamps or software strings; tick labels
    that would print over each other are thinned first (declutter_tick_labels)."""
    declutter_tick_labels(fig)
    out = []
    for ext, meta in (("pdf", PDF_METADATA), ("png", PNG_METADATA)):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, metadata=meta, bbox_inches="tight", pad_inches=0.03)
        path = Path(out_dir) / f"{name}.{ext}"
        write_atomic(path, buf.getvalue())
        out.append(path)
    plt.close(fig)
    return out


def _tick_key(value: float) -> float:
    return float(f"{value:.9g}")


def tick_label_boxes(axis: Any, renderer: Any) -> list[tuple[float, bool, str, Any]]:
    """(location, is_major, text, window extent) of every tick label `axis` draws: visible, not
    empty, inside the view interval (locators also return ticks beyond it, never drawn). Labels
    turned by an angle other than a multiple of 90 degrees are left out: their box, aligned with the
    axes, is no measure of where the text lies."""
    lo, hi = sorted(axis.get_view_interval())
    tol = 1e-9 * max(abs(lo), abs(hi), 1e-300)
    out = []
    for major in (True, False):
        locs = axis.get_majorticklocs() if major else axis.get_minorticklocs()
        ticks = axis.get_major_ticks(len(locs)) if major else axis.get_minor_ticks(len(locs))
        for loc, tick in zip(locs, ticks):
            if not lo - tol <= loc <= hi + tol:
                continue
            for label in (tick.label1, tick.label2):
                if label.get_visible() and label.get_text() and label.get_rotation() % 90 == 0:
                    out.append((float(loc), major, label.get_text(), label.get_window_extent(renderer)))
    return out


def _overlap(a: Any, b: Any, pad: float) -> bool:
    return a.x0 < b.x1 + pad and b.x0 < a.x1 + pad and a.y0 < b.y1 + pad and b.y0 < a.y1 + pad


def _overlapping_pairs(boxes: list, pad: float) -> list[tuple[int, int]]:
    """Index pairs (i < j) of the tick_label_boxes entries whose labels overlap."""
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
            if _overlap(boxes[i][3], boxes[j][3], pad)]


def tick_label_overlaps(fig: Any, pad: float = 0.0) -> list[tuple[str, str, str, str]]:
    """(panel title, axis, label, label) for every two tick labels of one axis that overlap (closer
    than `pad` pixels) in the drawn figure; empty when every label is readable."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    out = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for which, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            boxes = tick_label_boxes(axis, renderer)
            out += [(ax.get_title(), which, boxes[i][2], boxes[j][2]) for i, j in _overlapping_pairs(boxes, pad)]
    return out


class _Thinned:
    """A tick formatter that leaves some tick values unlabelled and defers to the original for the
    rest (shared axes share one formatter: the blanked values of each are merged)."""

    def __init__(self, inner: Any) -> None:
        from matplotlib.ticker import FuncFormatter

        self.inner, self.blank = inner, set()
        self.formatter = FuncFormatter(self)

    def __call__(self, value: float, pos: int | None = None) -> str:
        return "" if _tick_key(value) in self.blank else self.inner(value, pos)


def declutter_tick_labels(fig: Any, pad: float = 2.0) -> None:
    """Leave out tick labels that would overlap another one on the same axis, whatever the panel
    width: major ticks (powers of ten on a log axis) first, then minor ones, round values (5) before
    others (5.5), in axis order, each only where it fits beside those kept. A log axis spanning few
    decades in a narrow panel of a grid otherwise prints '2x10^13' over '5x10^13'; a fixed tick
    count would fit one grid size and not another."""
    from matplotlib.ticker import FixedFormatter

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis in (ax.xaxis, ax.yaxis):
            if isinstance(axis.get_major_formatter(), FixedFormatter):
                continue  # names (categories) are never left out; their figure turns them instead
            boxes = tick_label_boxes(axis, renderer)
            if not _overlapping_pairs(boxes, pad):
                continue
            kept: list[Any] = []
            for loc, major, _text, box in sorted(boxes, key=lambda b: (not b[1], _digits(b[0]), b[0])):
                if any(_overlap(box, k, pad) for k in kept):
                    _thinned(axis, major).blank.add(_tick_key(loc))
                else:
                    kept.append(box)


def _digits(value: float) -> int:
    """Significant digits of a tick value (5 and 5e13: 1; 2.5: 2): round values are labelled first."""
    if value == 0 or not math.isfinite(value):
        return 1
    mantissa = abs(value) / 10 ** math.floor(math.log10(abs(value)))
    return len(f"{mantissa:.6g}".replace(".", "").rstrip("0")) or 1


def _thinned(axis: Any, major: bool) -> _Thinned:
    """The axis's major or minor formatter, wrapped once in a _Thinned."""
    func = getattr((axis.major if major else axis.minor).formatter, "func", None)
    if not isinstance(func, _Thinned):
        func = _Thinned((axis.major if major else axis.minor).formatter)
        (axis.set_major_formatter if major else axis.set_minor_formatter)(func.formatter)
    return func


def no_data(ax: Any, message: str) -> None:
    """Mark a panel whose inputs this preset does not have, instead of leaving it out."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=8, color="0.35", wrap=True)


# The references of up to three families drawn in one panel (a downstream frontier) stay apart.
REFERENCE_SHADES = ("black", "0.4", "0.62")


def colors(archs: list[str], refs: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """One colour per architecture, stable for a given set; each family's reference (``refs``, in
    family order: family.references) black or a grey, the others from tab10/tab20."""
    cmap = plt.get_cmap("tab10" if len(archs) <= 10 else "tab20")
    shades = {r: REFERENCE_SHADES[min(i, len(REFERENCE_SHADES) - 1)] for i, r in enumerate(dict.fromkeys(refs))}
    others = [a for a in sorted(archs) if a not in shades]
    out: dict[str, Any] = {a: cmap(i % cmap.N) for i, a in enumerate(others)}
    out.update({r: c for r, c in shades.items() if r in archs})
    return out


def families(rows: list[Row]) -> tuple[dict[str, str], dict[str, str]]:
    """(arch -> objective family, family -> reference architecture) of summary rows (family.py):
    every figure draws a reference line only beside architectures of its own family."""
    return fam.arch_families(rows), fam.references(rows)


def by_family(archs, arch_family: dict[str, str]) -> dict[str, list[str]]:
    """Architectures grouped by family, families in the paper's order, archs sorted in each."""
    out: dict[str, list[str]] = {}
    for a in sorted(archs):
        out.setdefault(arch_family.get(a, fam.NO_FAMILY), []).append(a)
    return {f: out[f] for f in fam.order(out)}


def share_within(axes: list, keys: list[str], which: str = "y") -> None:
    """Share the x or y axis among panels with the same key (family) only: a shared loss axis
    across families would invite comparing losses of different tasks."""
    first: dict[str, Any] = {}
    for ax, key in zip(axes, keys):
        if key in first:
            (ax.sharey if which == "y" else ax.sharex)(first[key])
        else:
            first[key] = ax


def main_grid(rows: list[Row]) -> list[Row]:
    """Runs of the main size grid (depth/width scan runs have a non-empty `scan`)."""
    return [r for r in rows if not r.get("scan")]


def by_arch(rows: list[Row], x: str, y: str) -> dict[str, list[tuple[float, float, Row]]]:
    """(x, y, row) points per arch with both values present, sorted by x."""
    out: dict[str, list[tuple[float, float, Row]]] = {}
    for r in rows:
        xv, yv = number(r, x), number(r, y)
        if xv is not None and yv is not None:
            out.setdefault(r.get("arch", ""), []).append((xv, yv, r))
    return {a: sorted(p, key=lambda t: t[0]) for a, p in sorted(out.items())}


def load_summary(path: str | Path) -> list[Row]:
    """summary.csv rows, or none when the file is missing (the figure then says so)."""
    return read_csv(path) if Path(path).is_file() else []


def load_fit(fits_dir: str | Path, name: str) -> dict[str, Any] | None:
    path = Path(fits_dir) / f"{name}.json"
    return read_json(path) if path.is_file() else None


def log_axis(ax: Any, which: str = "x") -> None:
    """Log scale labelled at powers of ten, plus 2x and 5x when the data span under two decades.

    Call after plotting (it reads the data range); matplotlib's own minor labels collide.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    lo, hi = ax.get_xlim() if which == "x" else ax.get_ylim()
    short = lo > 0 and math.log10(hi / lo) < 2
    axis.set_major_locator(LogLocator(base=10, numticks=12))
    axis.set_major_formatter(FuncFormatter(_mantissa_label))
    axis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0) if short else tuple(range(2, 10)), numticks=12))
    axis.set_minor_formatter(FuncFormatter(_mantissa_label) if short else NullFormatter())


def _mantissa_label(value: float, _pos: int) -> str:
    """Plain numbers (5, 20, 0.5) in everyday ranges, '2x10^13' in mathtext beyond them."""
    if value <= 0:
        return ""
    if 1e-3 <= value < 1e4:
        return f"{value:g}"
    exp = math.floor(math.log10(value) + 1e-9)
    mant = round(value / 10**exp)
    return f"$10^{{{exp}}}$" if mant == 1 else f"${mant}\\times10^{{{exp}}}$"


def arch_label(arch: str) -> str:
    return arch.replace("_", " ")


FLOPS_LABEL = "training compute (FLOPs)"
PARAMS_LABEL = "parameters"
UPSTREAM_LABEL = "upstream: neg. log-perplexity (nats/token)"
DOWNSTREAM_LABEL = "downstream: SuperGLUE average (score, 0-100)"


def panel_grid(n: int, *, max_cols: int = 4, **kw: Any):
    """A grid of ``n`` small panels sized for one page (extra cells hidden); returns fig, axes list.

    Each row gets its panels' height (3:4 of their width) plus room for a title and tick labels, so
    panels keep their size however many rows there are (19 architectures: 4 rows of 5). Label the
    axes with grid_labels: one x and one y label for the whole grid."""
    ncols = max(1, min(n, max_cols if n <= 12 else 5))
    nrows = max(1, -(-n // ncols))
    width = STYLE["figure.figsize"][0]
    fig, axes = new_figure(ncols, nrows, height=min(9.0, nrows * (0.75 * width / ncols + 0.45) + 0.6), **kw)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[: max(n, 1)]


GRID_LABEL_SIZE = 8


def grid_labels(fig: Any, axes: list, xlabel: str, ylabel: str) -> None:
    """Axis labels of a panel grid: once for the whole figure (centred below and left of the panels),
    not on every panel, where a long label is wider than a narrow panel and runs into the next one;
    a single panel is labelled as usual. Call figure_legend after it (it places the x label)."""
    if len(axes) == 1:
        axes[0].set_xlabel(xlabel, fontsize=GRID_LABEL_SIZE)
        axes[0].set_ylabel(ylabel, fontsize=GRID_LABEL_SIZE)
        return
    fig.supxlabel(xlabel, fontsize=GRID_LABEL_SIZE, va="bottom")
    fig.supylabel(ylabel, fontsize=GRID_LABEL_SIZE, x=0.0, ha="left")


def panel_text_size(ax: Any, size: float = 7.0) -> float:
    """Font size for text inside a panel: smaller in a grid of four or more columns."""
    spec = ax.get_subplotspec()
    ncols = spec.get_gridspec().ncols if spec is not None else 1
    return size if ncols < 4 else size - 1.5


def figure_legend(fig: Any, handles: list, labels: list[str]) -> None:
    """One legend for the whole figure, below the panels (and below the shared x label of a panel
    grid), in as many columns as fit; then the layout."""
    bottom = 0.0
    xlabel = getattr(fig, "_supxlabel", None)
    if handles:
        legend = fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, -0.02), frameon=False,
                            ncol=min(len(labels), 6), fontsize=STYLE["legend.fontsize"])
        bottom = 0.04 + 0.03 * ((len(labels) - 1) // 6)
        if xlabel is not None:
            box = legend.get_window_extent(fig.canvas.get_renderer()).transformed(fig.transFigure.inverted())
            bottom = max(bottom, box.y1 + 0.01)
    if xlabel is not None:  # tight_layout keeps a pad (1.08 font sizes) on each side: take the lower one
        xlabel.set_y(bottom + 1.08 * STYLE["font.size"] / 72 / fig.get_figheight())
    if bottom:
        fig.tight_layout(rect=(0, bottom, 1, 1))
    else:
        fig.tight_layout()


def load_curves(runs_dir: str | Path, rows: list[Row]) -> dict[str, list[dict[str, float]]]:
    """Eval points of each run whose curve.csv exists (runs without one are left out)."""
    from archscale.analysis.curves import load_curve

    return {r["run"]: load_curve(runs_dir, r["run"]) for r in rows
            if r.get("run") and (Path(runs_dir) / r["run"] / "curve.csv").is_file()}
