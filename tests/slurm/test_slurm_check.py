"""tests/slurm/check_slurm_jobs.py: it passes a real Slurm run and fails anything else."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from check_slurm_jobs import check, main, parse_main_log

REPO = Path(__file__).resolve().parents[2]

# An excerpt in the exact shape Snakemake 9.27 + snakemake-executor-plugin-slurm 2.8 write it.
MAIN_LOG = """\
[Mon Nov 23 09:43:49 2026]
rule prepare_corpus:
    output: data/corpus.txt
    log: logs/prepare_corpus.log
    jobid: 7
    reason: Missing output files: data/corpus.txt
    resources: tmpdir=<TBD>, mem_mb=4000, slurm_partition=debug, runtime=120
Shell command: archscale prepare_corpus --log logs/prepare_corpus.log
No SLURM account given, trying to guess.
Job 7 has been submitted with SLURM jobid 3 (log: /w/.snakemake/slurm_logs/rule_prepare_corpus/3.log).
[Mon Nov 23 09:44:03 2026]
Finished jobid: 7 (Rule: prepare_corpus)
1 of 4 steps (25%) done
[Mon Nov 23 09:44:03 2026]
rule pretrain:
    input: data/corpus.txt
    output: results/runs/a-x/metrics.json
    log: results/runs/a-x/train.log, results/runs/a-x/deepspeed.log
    jobid: 4
    wildcards: run=a-x
    resources: tmpdir=<TBD>, mem_mb=6000, slurm_partition=debug, runtime=1440
Job 4 has been submitted with SLURM jobid 8 (log: /w/.snakemake/slurm_logs/rule_pretrain/a-x/8.log).
[Mon Nov 23 09:44:20 2026]
Finished jobid: 4 (Rule: pretrain)
2 of 4 steps (50%) done
[Mon Nov 23 09:44:20 2026]
rule collect:
    input: results/runs/a-x/metrics.json
    output: results/summary.csv
    jobid: 2
    resources: tmpdir=<TBD>, mem_mb=2000, slurm_partition=debug, runtime=30
Job 2 has been submitted with SLURM jobid 9 (log: /w/.snakemake/slurm_logs/rule_collect/9.log).
[Mon Nov 23 09:44:30 2026]
Finished jobid: 2 (Rule: collect)
3 of 4 steps (75%) done
[Mon Nov 23 09:44:30 2026]
localrule all:
    input: results/summary.csv
    jobid: 0
    reason: Input files updated by another job: results/summary.csv
    resources: tmpdir=/tmp
[Mon Nov 23 09:44:30 2026]
Finished jobid: 0 (Rule: all)
4 of 4 steps (100%) done
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_parse_main_log_reads_rules_logs_and_slurm_ids() -> None:
    jobs = parse_main_log(MAIN_LOG)
    assert {j: (v.rule, v.slurm_id, v.local) for j, v in jobs.items()} == {
        "7": ("prepare_corpus", "3", False), "4": ("pretrain", "8", False),
        "2": ("collect", "9", False), "0": ("all", None, True),
    }
    assert jobs["4"].logs == ["results/runs/a-x/train.log", "results/runs/a-x/deepspeed.log"]
    assert all(j.finished for j in jobs.values())


def test_every_log_must_carry_the_id_sbatch_returned(tmp_path: Path) -> None:
    write(tmp_path / "logs/prepare_corpus.log", "2026-11-23 archscale.data INFO SLURM_JOB_ID=3\nok\n")
    write(tmp_path / "results/runs/a-x/train.log", "SLURM_JOB_ID=5\n")          # another job's id
    write(tmp_path / "results/runs/a-x/deepspeed.log", "no header at all\n")
    failures = check(parse_main_log(MAIN_LOG), tmp_path)
    assert failures == [
        "job 4 (rule pretrain): log results/runs/a-x/train.log says SLURM_JOB_ID=5, sbatch gave 8",
        "job 4 (rule pretrain): log results/runs/a-x/deepspeed.log has no SLURM_JOB_ID= line",
        "job 2 (rule collect) has no log: file, so nothing shows where it ran",
    ]
    # squeue's word counts too: a job Slurm did not complete is a failure
    write(tmp_path / "results/runs/a-x/train.log", "SLURM_JOB_ID=8\n")
    write(tmp_path / "results/runs/a-x/deepspeed.log", "x SLURM_JOB_ID=8 y\n")
    states = {"3": "COMPLETED", "8": "FAILED"}
    assert check(parse_main_log(MAIN_LOG), tmp_path, states)[:2] == [
        "job 4 (rule pretrain): Slurm job 8 is FAILED",
        "job 2 (rule collect) has no log: file, so nothing shows where it ran",
    ]


def test_a_run_without_slurm_fails_the_check(tmp_path: Path) -> None:
    """A real local Snakemake run writes every output, and the check must still refuse it."""
    (tmp_path / "Snakefile").write_text(
        'rule all:\n    input: "b.txt"\n'
        'rule make:\n    output: "b.txt"\n    log: "make.log"\n'
        '    shell: \'echo "SLURM_JOB_ID=${{SLURM_JOB_ID:-none}}" > {log}; touch {output}\'\n'
    )
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--workflow-profile", "none"],
                   cwd=tmp_path, check=True, capture_output=True, timeout=120)
    assert (tmp_path / "b.txt").exists()
    assert main(["--workdir", str(tmp_path)]) == 1


def test_only_declared_local_rules_may_run_outside_slurm(tmp_path: Path) -> None:
    """collect run as a local rule with a log: a failure unless --local-rules names it."""
    local = MAIN_LOG.replace("rule collect:", "localrule collect:").replace(
        "    output: results/summary.csv\n", "    output: results/summary.csv\n    log: logs/collect.log\n").replace(
        "Job 2 has been submitted with SLURM jobid 9 (log: /w/.snakemake/slurm_logs/rule_collect/9.log).\n", "")
    write(tmp_path / "logs/prepare_corpus.log", "SLURM_JOB_ID=3\n")
    write(tmp_path / "results/runs/a-x/train.log", "SLURM_JOB_ID=8\n")
    write(tmp_path / "results/runs/a-x/deepspeed.log", "SLURM_JOB_ID=8\n")
    write(tmp_path / "logs/collect.log", "SLURM_JOB_ID=none\n")
    jobs = parse_main_log(local)
    assert check(jobs, tmp_path) == ["job 2 (rule collect) is a local rule with a log: it ran outside Slurm"]
    assert check(jobs, tmp_path, local_rules=("fit_law", "coll*")) == []
    assert check(jobs, tmp_path, local_rules=("draw_*",)) != []


def cluster_up() -> bool:
    return shutil.which("scontrol") is not None and subprocess.run(
        ["scontrol", "ping"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not cluster_up(),
                    reason="no Slurm cluster answers here (workflow/profiles/workstation/local-slurm.sh up starts one)")
def test_a_real_slurm_run_passes_the_check(tmp_path: Path) -> None:
    """Two jobs through snakemake-executor-plugin-slurm with the CI profile (~30 s)."""
    (tmp_path / "Snakefile").write_text(
        'rule all:\n    input: "c.txt"\n'
        'rule make:\n    output: "b.txt"\n    log: "logs/make.log"\n'
        '    shell: \'echo "SLURM_JOB_ID=${{SLURM_JOB_ID:-none}}" > {log}; touch {output}\'\n'
        'rule collect:\n    input: "b.txt"\n    output: "c.txt"\n    log: "logs/collect.log"\n'
        '    shell: \'echo "SLURM_JOB_ID=${{SLURM_JOB_ID:-none}}" > {log}; cp {input} {output}\'\n'
    )
    env = {**os.environ, "ARCHSCALE_GPUS_PER_JOB": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "--profile", str(REPO / "workflow/profiles/workstation")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert main(["--workdir", str(tmp_path), "--squeue"]) == 0
