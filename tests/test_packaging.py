"""What an installed archscale carries: a wheel validates params on its own (the schema is package
data), `archscale --version` answers, and the licence and citation agree with the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import archscale

REPO = Path(__file__).resolve().parents[1]


def test_version_flag_prints_the_package_version():
    for flag in ("--version", "-V"):
        proc = subprocess.run(["archscale", flag], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == f"archscale {archscale.__version__}"


def test_licence_and_citation_match_the_package():
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'license = { text = "MIT" }' in pyproject
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert str(cff["version"]) == archscale.__version__ and cff["license"] == "MIT"
    assert cff["cff-version"] == "1.2.0" and cff["authors"] and cff["title"]


@pytest.mark.slow
def test_a_wheel_install_validates_params_outside_the_checkout(tmp_path):
    """Built without the checkout beside it: the schema must come with the package."""
    pkg = tmp_path / "pkg"  # a copy: pip builds in the source tree (build/, *.egg-info), never in the checkout
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, pkg / name)
    shutil.copytree(REPO / "src" / "archscale", pkg / "src" / "archscale",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(pkg)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("archscale-*.whl"))
    assert wheel.name.startswith(f"archscale-{archscale.__version__}-")
    target = tmp_path / "site"
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                           str(target), str(wheel)], capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stderr[-2000:]
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "params.yaml").read_text().replace("val_fraction: 0.1", "val_fraction: 2"))
    code = ("import sys; from archscale import config; "
            "assert config.__file__.startswith(sys.argv[1]), config.__file__; "
            "print(len(config.runs(config.load(sys.argv[2])))); config.load(sys.argv[3])")
    proc = subprocess.run([sys.executable, "-c", code, str(target), str(params), str(bad)], cwd=tmp_path,
                          env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.strip() == "9", proc.stderr[-2000:]
    assert "data.val_fraction" in proc.stderr and "ConfigError" in proc.stderr
