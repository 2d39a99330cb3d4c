"""DVC rebuilds exactly what Snakemake built, and the other way round (README "DVC").

One smoke-preset build by plain `snakemake` in a DVC workspace (the `smoke_build` session fixture in
conftest.py, built once and shared with test_pipeline_smoke.py); every test here works on a copy of it.
Checked: the build leaves `dvc status` / `dvc repro` with nothing to do
(the Snakefile's onsuccess hook records dvc.lock); `dvc repro` leaves `snakemake -n` with nothing to
do, and so does `dvc checkout` / `dvc pull` followed by `snakemake --touch` (restored files get fresh
dates in no order, and Snakemake 9 always compares dates); a per-run rule's stage rebuilds only its
missing job and leaves the rule's other results in place; metrics and learning curves show through
`dvc metrics show` / `dvc plots show`; after a push to a local remote a fresh clone pulls every figure
and table back byte for byte; a tampered object is reported (remote: `verify`, local: dvc-fsck.sh).

ARCHSCALE_SMOKE_BUILD=<dir> builds in <dir> (wiped first) and keeps it, so CI can compare it with
the Slurm smoke build (.ci/compare-builds.sh); with ARCHSCALE_SMOKE_REUSE=1 a finished build there
(dvc.lock present) is reused as it is, to iterate on these tests without rebuilding.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from workspace import REPO, WORKFLOW_FILES, sh


# what people read: the files the two-clone comparison and the pull test check byte for byte
def report_files(ws: Path) -> dict[str, str]:
    """Repo-relative path -> sha256 of summary.csv, fits, figures and generated tables."""
    paths = [ws / "results" / "summary.csv", *sorted((ws / "results" / "fits").glob("*.json")),
             *sorted((ws / "figures").glob("*.p[dn][fg]")), *sorted((ws / "paper" / "generated").glob("*.tex"))]
    return {str(p.relative_to(ws)): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def clone_of(ws: Path, dest: Path) -> Path:
    """What a git clone of `ws` would hold: its tracked files (workflow, package, dvc.lock, .dvc/config)
    and the links to the raw data; no outputs, no DVC cache, no Snakemake records."""
    for name in [*WORKFLOW_FILES, "src", "dvc.lock", ".dvc/config", "data/raw/corpus", "data/raw/superglue"]:
        src, dst = ws / name, dest / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(src.readlink())
        elif src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dst)
    return dest


def snakemake_idle(ws: Path) -> str:
    out = sh(ws, "snakemake", "--cores", "1", "-n")
    text = out.stdout + out.stderr
    reasons = sorted({line.strip() for line in text.splitlines() if "reason:" in line and "another job" not in line})
    assert "Nothing to be done" in text, "\n".join(reasons) or text[-4000:]
    return text


def dvc_clean(ws: Path) -> None:
    out = sh(ws, "dvc", "status")
    assert "Data and pipelines are up to date" in out.stdout, out.stdout[-4000:]


@pytest.fixture
def ws(smoke_build, tmp_path) -> Path:
    """A private copy of the built workspace (symlinks to the shared data kept as links)."""
    return Path(shutil.copytree(smoke_build, tmp_path / "ws", symlinks=True))


@pytest.mark.slow
def test_snakemake_build_leaves_dvc_nothing_to_do(ws):
    assert (ws / "dvc.lock").is_file(), "the onsuccess hook did not record dvc.lock"
    dvc_clean(ws)
    repro = sh(ws, "dvc", "repro")
    assert "Running stage" not in repro.stdout, repro.stdout[-4000:]
    snakemake_idle(ws)


@pytest.mark.slow
def test_dvc_repro_and_checkout_leave_snakemake_nothing_to_do(ws):
    # a code edit that does not change the tables: DVC reruns render_tables (through Snakemake) and
    # skips build_paper by checksum, leaving the tables newer than the PDF they went into
    (ws / "src/archscale/tables.py").write_text((ws / "src/archscale/tables.py").read_text() + "# edited\n")
    before = report_files(ws)
    repro = sh(ws, "dvc", "repro")
    assert "Running stage 'render_tables'" in repro.stdout and "Running stage 'build_paper'" not in repro.stdout
    assert report_files(ws) == before
    dvc_clean(ws)
    snakemake_idle(ws)
    # outputs deleted and restored from the cache come back with fresh dates, in no DAG order
    for folder in ("data/shards", "figures", "paper/generated", "results/fits"):
        shutil.rmtree(ws / folder)
    sh(ws, "dvc", "checkout", "-q")
    assert report_files(ws) == before
    dvc_clean(ws)
    sh(ws, "snakemake", "--cores", "1", "--touch", "--quiet", "rules")
    snakemake_idle(ws)
    dvc_clean(ws)


@pytest.mark.slow
def test_dvc_repro_of_a_rule_stage_rebuilds_only_the_missing_job(ws):
    """A per-run rule is one DVC stage over its folder (persist): DVC runs it, Snakemake inside reruns
    the one job whose output is gone, and every other job's files stay as they were."""
    others = {p: p.stat().st_mtime_ns for p in (ws / "results/finetune").rglob("*") if p.is_file()
              and "gpt2-nano/CB" not in str(p)}
    summary = (ws / "results/summary.csv").read_bytes()
    shutil.rmtree(ws / "results/finetune/gpt2-nano/CB")
    repro = sh(ws, "dvc", "repro")
    ran = [line for line in repro.stdout.splitlines() if line.startswith("Running stage")]
    assert ran == ["Running stage 'finetune':", "Running stage 'collect':"], repro.stdout[-3000:]
    assert (ws / "results/finetune/gpt2-nano/CB/metrics.json").is_file()
    assert {p: p.stat().st_mtime_ns for p in others} == others, "other fine-tunes were rerun or rewritten"
    assert (ws / "results/summary.csv").read_bytes() == summary  # so DVC skips the fits, figures and paper
    dvc_clean(ws)
    snakemake_idle(ws)


@pytest.mark.slow
def test_metrics_and_learning_curves_show_through_dvc(ws, tmp_path):
    runs = sorted(p.name for p in (ws / "results" / "runs").iterdir())
    shown = json.loads(sh(ws, "dvc", "metrics", "show", "--json").stdout)
    files = next(iter(shown.values()))["data"]  # one revision: the workspace ("" without git)
    for run in runs:
        metrics = files[f"results/runs/{run}/metrics.json"]["data"]
        assert metrics["val_loss"] == json.loads((ws / "results/runs" / run / "metrics.json").read_text())["val_loss"]
    out = tmp_path / "plots"
    sh(ws, "dvc", "plots", "show", "-o", str(out))
    html = (out / "index.html").read_text()
    for run in runs:  # one learning curve per run, titled with the run id
        assert f"results_runs_{run}_curve_csv" in html and f"{run}: validation loss" in html
    assert "upstream_vs_flops" in html


@pytest.mark.slow
def test_push_wipe_pull_restores_reports_byte_for_byte_and_flags_tampering(ws, tmp_path):
    # bytecode beside the code deps (Python writes it unless PYTHONDONTWRITEBYTECODE) is no code change
    stray = ws / "src/archscale/models/__pycache__/registry.cpython-311.pyc"
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(b"not code")
    dvc_clean(ws)
    remote = tmp_path / "remote"
    sh(ws, "dvc", "remote", "add", "-d", "-q", "local", str(remote))
    sh(ws, "dvc", "push", "-q")
    built_hashes = report_files(ws)
    assert len(built_hashes) > 20
    # a fresh clone: tracked files only (dvc.yaml, dvc.lock, params, .dvc/config), no cache, no outputs
    clone = clone_of(ws, tmp_path / "clone")
    sh(clone, "dvc", "pull", "-q")
    assert report_files(clone) == built_hashes
    assert (clone / "paper/build/main.pdf").read_bytes() == (ws / "paper/build/main.pdf").read_bytes()
    dvc_clean(clone)
    sh(clone, "snakemake", "--cores", "1", "--touch", "--quiet", "rules")  # pulled files: dates in no order
    snakemake_idle(clone)
    assert sh(clone, "bash", str(REPO / ".ci/dvc-fsck.sh")).returncode == 0
    # tampered objects: the remote's is caught on download (verify), the local cache's by dvc-fsck.sh
    table = clone / "paper/generated/table1_runs.tex"
    md5 = hashlib.md5(table.read_bytes()).hexdigest()
    for cache in (remote, clone / ".dvc/cache"):
        obj = cache / "files/md5" / md5[:2] / md5[2:]
        obj.chmod(0o644)
        obj.write_bytes(obj.read_bytes().replace(b"Generated", b"Genera7ed"))
        obj.chmod(0o444)
    fsck = sh(clone, "bash", str(REPO / ".ci/dvc-fsck.sh"), ok=False)
    assert fsck.returncode == 1 and f"corrupt: .dvc/cache/files/md5/{md5[:2]}/{md5[2:]}" in fsck.stdout, fsck.stdout
    assert sh(clone, "bash", str(REPO / ".ci/dvc-fsck.sh"), str(remote), ok=False).returncode == 1
    again = clone_of(ws, tmp_path / "again")
    sh(again, "dvc", "remote", "modify", "local", "verify", "true")
    pull = sh(again, "dvc", "pull", ok=False)
    assert pull.returncode != 0 and "paper/generated" in pull.stdout + pull.stderr, pull.stderr[-4000:]
    assert not (again / "paper/generated/table1_runs.tex").exists()
