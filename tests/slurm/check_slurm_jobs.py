"""Prove that every job of a Snakemake run really ran under Slurm.

Why a separate check: the Slurm executor falls back to nothing silently, but a profile mistake
(wrong executor, a rule declared local, `--executor local` on the command line) would still
produce every output. The proof is the job's own log: each archscale stage writes the token
``SLURM_JOB_ID=<id>`` near its top (empty id outside Slurm), and that id must be the one the
executor got back from ``sbatch`` for that very job.

Input is the Snakemake main log of the run (``.snakemake/log/*.snakemake.log``), which lists
for every job its rule, its ``log:`` files and its Snakemake job id, then
``Job <n> has been submitted with SLURM jobid <id>`` and ``Finished jobid: <n>``. Checks:

- every finished job that is not a local rule was submitted to Slurm, has a ``log:`` file, and
  the first ``SLURM_JOB_ID=`` token in each of its logs equals the id it was submitted as;
- a local rule (run on the submitting host) may only be one without a log (a target such as
  ``all``) or one the workflow declares local (``--local-rules``: the Snakefile's ``localrules``,
  small jobs that read a few files); any other with a log did work outside Slurm;
- with ``--squeue``, Slurm itself still knows each id as COMPLETED (needs MinJobAge > run time).

Usage: python tests/slurm/check_slurm_jobs.py [--workdir DIR] [--log FILE] [--squeue] [--local-rules A,B,draw_*]
Exit status 0 when all jobs pass, 1 with one line per failure otherwise.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

RULE_RE = re.compile(r"^(local)?rule (\w+):$")
FIELD_RE = re.compile(r"^\s+(\w+): (.*)$")
SUBMIT_RE = re.compile(r"^Job (\d+) has been submitted with SLURM jobid (\S+?)(?: \(log: .*\))?\.?$")
FINISH_RE = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)")
TOKEN_RE = re.compile(r"(?:^|\s)SLURM_JOB_ID=(\S*)")


@dataclass
class Job:
    """One Snakemake job as the main log describes it."""

    jobid: str
    rule: str
    local: bool
    logs: list[str] = field(default_factory=list)
    slurm_id: str | None = None
    finished: bool = False


def parse_main_log(text: str) -> dict[str, Job]:
    """Jobs by Snakemake job id, from the text of a Snakemake main log."""
    jobs: dict[str, Job] = {}
    block: dict[str, str] | None = None
    header: tuple[str, bool] | None = None
    for line in text.splitlines():
        if m := RULE_RE.match(line):
            header, block = (m.group(2), bool(m.group(1))), {}
            continue
        if block is not None and (m := FIELD_RE.match(line)):
            block[m.group(1)] = m.group(2)
            if m.group(1) == "jobid" and header is not None:
                logs = [p.strip() for p in block.get("log", "").split(",") if p.strip()]
                jobs[m.group(2)] = Job(m.group(2), header[0], header[1], logs)
            continue
        block = None
        if m := SUBMIT_RE.match(line):
            if m.group(1) in jobs:
                jobs[m.group(1)].slurm_id = m.group(2)  # a retry's later submission wins
        elif m := FINISH_RE.match(line):
            if m.group(1) in jobs:
                jobs[m.group(1)].finished = True
    return jobs


def logged_job_id(path: Path) -> str | None:
    """The first SLURM_JOB_ID token of a log file ('' = written outside Slurm; None = absent)."""
    with path.open(errors="replace") as fh:
        for line in fh:
            if m := TOKEN_RE.search(line):
                return m.group(1)
    return None


def slurm_states(ids: list[str]) -> dict[str, str]:
    """Job id -> state as squeue still reports it (finished jobs stay for MinJobAge)."""
    if not ids:
        return {}
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i %T"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout
    return dict(line.split(maxsplit=1) for line in out.splitlines() if line.strip())


def check(jobs: dict[str, Job], workdir: Path, states: dict[str, str] | None = None,
          local_rules: tuple[str, ...] = ()) -> list[str]:
    """Failures, one readable line each; empty when every finished job provably ran under Slurm,
    but those of `local_rules` (fnmatch patterns), which the workflow runs on the submitting host."""
    failures = []
    finished = [j for j in jobs.values() if j.finished]
    if not finished:
        return ["no finished job in the Snakemake log: nothing was run, nothing is proven"]
    for job in finished:
        what = f"job {job.jobid} (rule {job.rule})"
        if job.local:
            if job.logs and not any(fnmatch.fnmatchcase(job.rule, pattern) for pattern in local_rules):
                failures.append(f"{what} is a local rule with a log: it ran outside Slurm")
            continue
        if job.slurm_id is None:
            failures.append(f"{what} finished but was never submitted to Slurm")
            continue
        if not job.logs:
            failures.append(f"{what} has no log: file, so nothing shows where it ran")
        for log in job.logs:
            path = workdir / log
            if not path.is_file():
                failures.append(f"{what}: log {log} is missing")
                continue
            got = logged_job_id(path)
            if got is None:
                failures.append(f"{what}: log {log} has no SLURM_JOB_ID= line")
            elif got != job.slurm_id:
                failures.append(f"{what}: log {log} says SLURM_JOB_ID={got!s}, sbatch gave {job.slurm_id}")
        if states is not None and states.get(job.slurm_id) != "COMPLETED":
            failures.append(f"{what}: Slurm job {job.slurm_id} is {states.get(job.slurm_id, 'unknown to squeue')}")
    return failures


def newest_main_log(workdir: Path) -> Path:
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        raise FileNotFoundError(f"no Snakemake log in {workdir / '.snakemake' / 'log'}")
    return logs[-1]  # names are ISO timestamps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("."), help="where Snakemake ran (default: .)")
    parser.add_argument("--log", type=Path, help="Snakemake main log (default: newest in WORKDIR/.snakemake/log)")
    parser.add_argument("--squeue", action="store_true", help="also ask Slurm that every job COMPLETED")
    parser.add_argument("--local-rules", default="", help="comma-separated rules (fnmatch patterns) the workflow "
                        "declares local: their jobs may run on the submitting host")
    args = parser.parse_args(argv)
    log = args.log or newest_main_log(args.workdir)
    jobs = parse_main_log(log.read_text(errors="replace"))
    ids = [j.slurm_id for j in jobs.values() if j.finished and j.slurm_id]
    states = slurm_states(ids) if args.squeue else None
    failures = check(jobs, args.workdir, states, tuple(filter(None, args.local_rules.split(","))))
    for line in failures:
        print(f"FAIL {line}", file=sys.stderr)
    n_slurm = sum(1 for j in jobs.values() if j.finished and not j.local)
    print(f"{log}: {n_slurm} Slurm jobs checked, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
