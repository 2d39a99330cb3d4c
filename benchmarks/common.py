"""Shared by the benchmarks: the machine/versions header, medians of interleaved rounds, and the
section of benchmarks/RESULTS.md that each benchmark owns (rewritten in place, the rest kept).

Every comparison runs both sides in one invocation, alternating, after warm-up; on shared CPUs the
median ratio is the figure of merit (absolute numbers move with the load average printed beside them).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import re
import shutil
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "RESULTS.md"
PACKAGES = ["torch", "transformers", "deepspeed", "accelerate", "tokenizers", "snakemake", "dvc"]


def versions() -> str:
    out = [f"python {platform.python_version()}"]
    for name in PACKAGES:
        try:
            out.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{name} absent")
    return ", ".join(out)


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{dt.date.today().isoformat()}, {os.cpu_count()} vCPU ({platform.machine()}), "
            f"load average {load:.1f}; {versions()}")


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def ratios(a: list[float], b: list[float]) -> float:
    """Median of per-round ratios a[i]/b[i]: both sides of a round saw the same load."""
    return median([x / y for x, y in zip(a, b) if y])


def md_table(header: list[str], rows: list[list]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def update_results(section: str, body: str, path: Path = RESULTS) -> None:
    """Replace (or append) the `<!-- section -->` block of RESULTS.md, atomically."""
    start, end = f"<!-- {section} -->", f"<!-- /{section} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmark results\n\nWritten by `benchmarks/*.py`.\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def report(section: str, title: str, body: str, quick: bool) -> None:
    """Print the table; a full run also records it in RESULTS.md (a quick run only checks that it works)."""
    text = f"## {title}\n\n{machine()}\n\n{body}"
    print(text)
    if quick:
        print("(--quick: RESULTS.md not updated)", file=sys.stderr)
    else:
        update_results(section, text)


def source_fingerprint(preset: str | None) -> str:
    """sha256 of what a scratch workspace is built from: the workflow files it copies, the preset,
    and the package its jobs import. A workspace left in /tmp by older code is rebuilt, not reused
    (a stale params.yaml or data layout made CI fail on the next commit)."""
    import hashlib

    sys.path.insert(0, str(REPO / "tests"))
    from workspace import WORKFLOW_FILES

    digest = hashlib.sha256(f"preset={preset}\n".encode())
    roots = [REPO / name for name in [*WORKFLOW_FILES, "src/archscale", *([preset] if preset else [])]]
    for root in roots:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for f in files:
            if f.exists() and "__pycache__" not in f.parts:
                digest.update(f"{f.relative_to(REPO)}\n".encode() + f.read_bytes())
    return digest.hexdigest()


def smoke_workspace(dest: Path, preset: str = "presets/smoke.yaml", target: str = "data/shards/meta.json") -> Path:
    """A scratch copy of the workflow on the shared Gutenberg corpus, built up to `target` (reused
    when already there). The pipeline runs with one core so it never crowds the machine."""
    import subprocess

    sys.path.insert(0, str(REPO / "tests"))
    from workspace import make_workspace

    shared = Path(os.environ.get("ARCHSCALE_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not (shared / "corpus" / "gutenberg").is_dir():
        sys.exit(f"benchmark needs the shared corpus at {shared}/corpus/gutenberg (set ARCHSCALE_SHARED_DATA)")
    stamp, source = dest / ".archscale-source", source_fingerprint(preset)
    if dest.exists() and (not stamp.exists() or stamp.read_text() != source):
        print(f"{dest}: built from other code or params, rebuilding", file=sys.stderr)
        shutil.rmtree(dest)
    if not dest.exists():
        make_workspace(dest, preset=preset, corpus=shared / "corpus" / "gutenberg", superglue=shared / "superglue")
        stamp.write_text(source)
    if target and not (dest / target).exists():
        subprocess.run(["snakemake", target, "--cores", "1", "--quiet", "all"], cwd=dest, check=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    return dest


def bench_env(threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
    env.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "archscale" / "torch_extensions"))
    return env
