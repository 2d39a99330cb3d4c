"""The Snakemake profiles: what a dry run really asks of Slurm, per rule.

These run Snakemake itself (dry runs, a few seconds each) on a toy workflow with the project's
rule names and the project's real profiles, so they test what Snakemake 9 does with the files,
not what the files say.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROFILES = REPO / "workflow" / "profiles"

TOY_SNAKEFILE = """
rule all:
    input: "results/summary.csv"

rule prepare_corpus:
    output: "data/prepared.txt"
    log: "logs/prepare_corpus.log"
    shell: "touch {output} {log}"

rule pretrain:
    input: "data/prepared.txt"
    output: "results/runs/{run}/metrics.json"
    log: "logs/pretrain/{run}.log"
    shell: "touch {output} {log}"

rule evaluate_upstream:
    input: "results/runs/{run}/metrics.json"
    output: "results/upstream/{run}.json"
    log: "logs/evaluate_upstream/{run}.log"
    shell: "touch {output} {log}"

rule finetune:
    input: "results/runs/{run}/metrics.json"
    output: "results/finetune/{run}/rte.json"
    log: "logs/finetune/{run}.log"
    shell: "touch {output} {log}"

rule finetune_from_scratch:
    input: "results/runs/{run}/metrics.json"
    output: "results/finetune_scratch/{run}/rte.json"
    log: "logs/finetune_scratch/{run}.log"
    shell: "touch {output} {log}"

rule collect:
    input:
        "results/upstream/t5-pico.json",
        "results/finetune/t5-pico/rte.json",
        "results/finetune_scratch/t5-pico/rte.json",
    output: "results/summary.csv"
    log: "logs/collect.log"
    shell: "touch {output} {log}"
"""


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """A toy workflow dir laid out like the repo: Snakefile at the root, profiles -> workflow/profiles."""
    (tmp_path / "Snakefile").write_text(TOY_SNAKEFILE)
    (tmp_path / "workflow").mkdir()
    (tmp_path / "workflow" / "profiles").symlink_to(PROFILES)
    (tmp_path / "profiles").symlink_to("workflow/profiles")
    return tmp_path


def dry_run(workdir: Path, *args: str, env: dict[str, str] | None = None) -> tuple[str, dict[str, dict[str, str]]]:
    """Snakemake's dry-run output and, per rule, the resources it would request (first job of each)."""
    run_env = {k: v for k, v in os.environ.items() if k != "ARCHSCALE_GPUS_PER_JOB"}
    run_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", *args],
        cwd=workdir, env=run_env, capture_output=True, text=True, timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    resources: dict[str, dict[str, str]] = {}
    for block in re.finditer(r"^(?:local)?rule (\w+):\n((?:\s+\w+: .*\n)+)", out, re.M):
        m = re.search(r"^\s+resources: (.*)$", block.group(2), re.M)
        if m and block.group(1) not in resources:
            resources[block.group(1)] = dict(kv.split("=", 1) for kv in m.group(1).split(", "))
    return out, resources


def fake_sinfo(tmp_path: Path, gres: str) -> dict[str, str]:
    """PATH with an `sinfo` that reports `gres` for the %G field: a cluster we do not have. It has a
    `squeue` too: the Slurm executor plugin, on import, requires squeue or sacct wherever sinfo exists."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    for tool, body in (("sinfo", f"echo '{gres}'"), ("squeue", "exit 0")):
        (bin_dir / tool).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / tool).chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def test_workflow_profile_is_picked_up_beside_a_root_snakefile(toy: Path) -> None:
    out, res = dry_run(toy)
    assert "workflow specific profile profiles/default" in out
    assert res["evaluate_upstream"]["runtime"] == "60"


def test_gpus_per_job_from_the_environment(toy: Path) -> None:
    _, res = dry_run(toy, env={"ARCHSCALE_GPUS_PER_JOB": "4"})
    assert res["pretrain"]["gpu"] == "4"
    assert res["pretrain"]["tasks_per_gpu"] == "0"  # one DeepSpeed launcher over all GPUs
    assert int(res["pretrain"]["mem_mb"]) == 4 * int(res["finetune"]["mem_mb"])
    assert res["pretrain"]["nproc_per_node"] == "4"  # one rank per GPU under one torchrun
    assert res["pretrain"]["slurm_extra"] == "--signal=TERM@300"  # a checkpoint before the time limit
    assert res["finetune"]["gpu"] == res["evaluate_upstream"]["gpu"] == res["finetune_from_scratch"]["gpu"] == "1"
    assert "gpu" not in res["prepare_corpus"] and "gpu" not in res["collect"]


def test_a_machine_without_gpus_requests_none(toy: Path, tmp_path: Path) -> None:
    for env in ({"ARCHSCALE_GPUS_PER_JOB": "0"}, fake_sinfo(tmp_path, "(null)")):
        _, res = dry_run(toy, env=env)
        for rule, values in res.items():
            assert not {"gpu", "gpus", "gres", "cpus_per_gpu"} & set(values), (env, rule, values)
            assert int(values.get("mem_mb", 0)) <= 6000, (rule, values)  # fits a small CI node


def test_a_cluster_with_gpu_gres_gets_gpu_requests(toy: Path, tmp_path: Path) -> None:
    _, res = dry_run(toy, env=fake_sinfo(tmp_path, "gpu:a100:4(S:0-1)"))
    assert res["pretrain"]["gpu"] == "1"
    assert res["pretrain"]["tasks_per_gpu"] == "0"
    assert res["prepare_corpus"]["cpus_per_task"] == "1"  # one streaming shard job: one core


def test_many_nodes_per_job(toy: Path) -> None:
    """One launcher per node: the job asks Slurm for N nodes x 1 task with the GPUs per node as gres,
    and `mpi` keeps the job step from wrapping the rule in `srun -n1` (the rule calls srun itself)."""
    _, res = dry_run(toy, env={"ARCHSCALE_GPUS_PER_JOB": "8", "ARCHSCALE_NODES_PER_JOB": "2"})
    job = res["pretrain"]
    got = (job["nodes"], job["tasks"], job["mpi"], job["gres"], job["nproc_per_node"])
    assert got == ("2", "2", "srun", "gpu:8", "8")
    assert "gpu" not in job and "tasks_per_gpu" not in job
    assert "nodes" not in res["finetune"]  # evaluation and fine-tuning stay on one GPU


def test_pretrain_runtime_follows_the_run_size(tmp_path: Path) -> None:
    """The real Snakefile: each pretrain job's time limit is its size's (scans: their base size's)."""
    sys.path.insert(0, str(REPO / "tests"))
    from workspace import make_workspace

    ws = make_workspace(tmp_path / "ws", preset="presets/paper.yaml", corpus=REPO / "tests" / "data" / "corpus")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "results/runs/transformer-tiny/metrics.json",
         "results/runs/transformer-base/metrics.json"],
        cwd=ws, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    runtime = dict(re.findall(r"rule pretrain:\n(?:\s+\w+: .*\n)*?\s+wildcards: run=(\S+)\n(?:\s+\w+: .*\n)*?"
                              r"\s+resources: .*?runtime=(\d+)", out))
    assert runtime == {"transformer-tiny": "240", "transformer-base": "1440"}, out[-3000:]


def test_bad_gpu_count_is_a_clear_error(toy: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1"], cwd=toy, capture_output=True, text=True,
        env={**os.environ, "ARCHSCALE_GPUS_PER_JOB": "two"}, timeout=120,
    )
    assert proc.returncode != 0
    assert "ARCHSCALE_GPUS_PER_JOB" in proc.stdout + proc.stderr


def test_shipped_slurm_template_works_as_the_user_profile(toy: Path, tmp_path: Path) -> None:
    """`snakemake -n --profile slurm` after the README's install step, with the site keys unset."""
    config_home = tmp_path / "xdg"
    (config_home / "snakemake").mkdir(parents=True)
    shutil.copytree(PROFILES / "slurm", config_home / "snakemake" / "slurm")
    env = {"XDG_CONFIG_HOME": str(config_home), "ARCHSCALE_GPUS_PER_JOB": "2"}
    out, res = dry_run(toy, "--profile", "slurm", env=env)
    assert "Using profiles slurm and workflow specific profile profiles/default" in out
    # the workflow profile adds per-rule sizes without dropping the site's default-resources
    for rule in ("collect", "pretrain"):
        assert res[rule]["slurm_account"] == "SITE_ACCOUNT", res[rule]
        assert res[rule]["slurm_partition"] == "SITE_PARTITION", res[rule]
    assert res["pretrain"]["gpu"] == "2"
    assert res["collect"]["runtime"] == "60"


def test_workflow_profile_never_sets_default_resources() -> None:
    """default-resources here would replace the slurm profile's (account, partition) wholesale."""
    text = (PROFILES / "default" / "config.yaml").read_text()
    assert not re.search(r"^default-resources:", text, re.M)


def test_every_rule_the_workflow_profile_sizes_exists() -> None:
    """Snakemake silently ignores set-resources for an unknown rule name: catch typos here."""
    sized = set(yaml.safe_load((PROFILES / "default" / "config.yaml").read_text())["set-resources"])
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--list-rules"], cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rules = set(proc.stdout.split())
    assert sized <= rules, f"sized in workflow/profiles/default but not rules of the Snakefile: {sorted(sized - rules)}"
