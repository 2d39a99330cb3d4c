"""Pretraining on a real Slurm: two launchers through srun, time-limit cuts, the workstation device pool.

These need the one-node cluster of workflow/profiles/workstation/local-slurm.sh with pretend GPUs
(`GPUS=4 ... up`); CI brings it up and sets ARCHSCALE_REQUIRE_SLURM=1, so there they fail instead of
skipping. Every run is compared with the same run made without Slurm, in one process.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from workspace import new_clone, sh

REPO = Path(__file__).resolve().parents[2]

PROFILE = str(REPO / "workflow" / "profiles" / "workstation")
SHORT, LONG = "gpt2-pico", "gpt2-nano"  # a 120-step run for the launchers, a 15,000-step one for the cuts


def _cluster_gpus() -> int | None:
    """GPUs of the local cluster's node, or None when no cluster answers."""
    if not shutil.which("sinfo"):
        return None
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%G %t"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or not re.search(r"\b(idle|mix|alloc)\b", out.stdout):
        return None
    m = re.search(r"gpu:(\d+)", out.stdout)
    return int(m.group(1)) if m else 0


GPUS = _cluster_gpus()
if GPUS is None or GPUS < 4:
    why = f"needs the local Slurm with 4 pretend GPUs (GPUS=4 {PROFILE}/local-slurm.sh up); sinfo says {GPUS}"
    if os.environ.get("ARCHSCALE_REQUIRE_SLURM") == "1":
        raise RuntimeError(why)
    pytestmark = pytest.mark.skip(reason=why)


def _curve(run_dir: Path) -> list[dict]:
    with open(run_dir / "curve.csv") as fh:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(fh)]


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def ws(sample_data, tmp_path_factory):
    """The smoke workflow narrowed to two GPT-2 runs (micro-batch 4, so 2 ranks keep the global batch),
    each trained once without Slurm as the reference (kept in ref/)."""
    ws = new_clone(tmp_path_factory.mktemp("slurm") / "ws", sample_data)
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["grid"] = {"architectures": ["gpt2"], "sizes": ["pico", "nano"]}
    params["train"].update(micro_batch_size=4, eval_every=200, checkpoint_every=100)
    params["sizes"]["pico"]["tokens"] = 120 * 256
    # A one-minute attempt trained 4,209 and 5,341 steps (2 cores, 2026-11-30; Slurm enforces the limit
    # up to a minute late), so 6,000 steps were cut once, not twice: 15,000 need three attempts or more.
    params["sizes"]["nano"]["tokens"] = 15000 * 256
    params["data"]["max_epochs"] = 10  # the sample corpus holds 0.5M train tokens: nano rereads it ~8 times
    for arch in params["architectures"].values():  # BERT's own batch (8 x 8) would not split over 2 ranks
        arch.pop("train", None)
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    targets = [f"results/runs/{run}/metrics.json" for run in (SHORT, LONG)]
    sh(ws, "snakemake", *targets, "--cores", "2", "--quiet", "rules", timeout=1200)
    for run in (SHORT, LONG):
        shutil.copytree(ws / "results" / "runs" / run, ws / "ref" / run, ignore=shutil.ignore_patterns("ckpt", "model"))
        shutil.rmtree(ws / "results" / "runs" / run / "ckpt")  # the Slurm runs start from step 0
    return ws


def _slurm(ws: Path, run: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return sh(ws, "snakemake", f"results/runs/{run}/metrics.json", "--cores", "all", "--profile", PROFILE,
              "--forcerun", "pretrain", *args, timeout=timeout)


def _stamp(line: str) -> datetime:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")


def test_two_launchers_through_srun_match_one_process(ws):
    """`tasks: 2` + `mpi`: the rule's srun starts 2 torchruns (one per 'node'), they meet by c10d
    rendezvous, and the run equals the 1-process run up to float32 all-reduce rounding (rel 1e-5)."""
    _slurm(ws, SHORT, "--retries", "0", "--set-resources", "pretrain:tasks=2", "pretrain:mpi=srun",
           "pretrain:mem_mb=3000")
    run_dir = ws / "results" / "runs" / SHORT
    log = (run_dir / "train.log").read_text()
    assert re.search(r"launching 2 x 1 ranks: srun --ntasks=2 .* --rdzv-backend=c10d", log), log[-3000:]
    ranks = re.findall(r"^(.{23}) pretrain INFO rank (\d)/2: pid (\d+)", log, re.M)
    assert sorted(r[1] for r in ranks) == ["0", "1"] and len({r[2] for r in ranks}) == 2, log[-3000:]
    job_ids = set(re.findall(r"SLURM_JOB_ID=(\d+)", log))
    assert len(job_ids) == 1, job_ids  # both ranks in the one Slurm job
    launched = next(_stamp(line) for line in log.splitlines() if "launching" in line)
    print(f"srun launch -> both ranks up: {(max(_stamp(r[0]) for r in ranks) - launched).total_seconds():.1f} s")
    assert _metrics(run_dir)["world_size"] == 2
    got, want = _curve(run_dir), _curve(ws / "ref" / SHORT)
    assert [r["step"] for r in got] == [r["step"] for r in want]
    worst = max(abs(float(a[k]) / float(b[k]) - 1) for a, b in zip(got, want) for k in ("train_loss", "val_loss"))
    print(f"2 launchers vs 1 process: largest relative curve difference {worst:.2e}")
    assert worst < 1e-5


def test_run_longer_than_its_time_limit_is_cut_and_resumed_to_the_same_result(ws):
    """A 1-minute limit (Slurm's smallest) on a run of three such attempts or more: at the limit Slurm
    sends SIGTERM, the run checkpoints within KillWait (5 s here) and fails, Snakemake resubmits it, and
    the finished run equals the uncut one exactly. (The profile's early --signal is the same SIGTERM, sooner; with a
    1-minute limit it would leave too little of each attempt after start-up.)"""
    proc = _slurm(ws, LONG, "--retries", "8", "--set-resources", "pretrain:runtime=1", "pretrain:mem_mb=3000",
                  timeout=1800)
    run_dir = ws / "results" / "runs" / LONG
    metrics, ref = _metrics(run_dir), _metrics(ws / "ref" / LONG)
    jobs = re.findall(r"submitted with SLURM jobid (\d+)", proc.stdout + proc.stderr)
    print(f"attempts {len(jobs)} (Slurm jobs {jobs}), resumed at steps {metrics['resumed_at']}")
    assert len(metrics["resumed_at"]) >= 2 and len(jobs) == len(metrics["resumed_at"]) + 1
    assert ref["resumed_at"] == []
    assert _curve(run_dir) == _curve(ws / "ref" / LONG)
    for key in ("val_loss", "train_loss", "steps", "tokens", "train_flops"):
        assert metrics[key] == ref[key], key


def test_workstation_pool_gives_each_job_its_own_devices(ws):
    """The workstation profile on 4 (pretend) GPUs, 2 per pretrain job: concurrent jobs never share a
    device, and a failed job's devices go back to the pool."""
    fail = subprocess.run(["sbatch", "--parsable", "--wait", "-p", "debug", "--gpus=4", "--mem=100", "-o", "/dev/null",
                           "--wrap", "exit 3"], capture_output=True, text=True, timeout=300)
    assert fail.returncode != 0  # the job failed, holding every GPU while it ran...
    after = subprocess.run(["srun", "-p", "debug", "--gpus=4", "--mem=100", "bash", "-c", "echo $CUDA_VISIBLE_DEVICES"],
                           capture_output=True, text=True, timeout=300)
    assert after.stdout.split() == ["0,1,2,3"], after.stderr  # ...and all four are free again

    for run in (SHORT, LONG):
        shutil.rmtree(ws / "results" / "runs" / run / "ckpt", ignore_errors=True)
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["grid"]["architectures"] = ["gpt2", "transformer", "bert_mlm"]
    params["grid"]["sizes"] = ["pico"]
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    runs = [f"{a}-pico" for a in params["grid"]["architectures"]]
    env_gpus = {**os.environ, "ARCHSCALE_GPUS_PER_JOB": "2"}
    proc = subprocess.run(
        ["snakemake", *[f"results/runs/{r}/metrics.json" for r in runs], "--cores", "all", "--profile", PROFILE,
         "--retries", "0", "--forcerun", "pretrain"],
        cwd=ws, env={**env_gpus, "PYTHONPATH": str(ws / "src"), "OMP_NUM_THREADS": "1"},
        capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    spans = {}
    for run in runs:
        lines = (ws / "results" / "runs" / run / "train.log").read_text().splitlines()
        devices = {m.group(1) for line in lines for m in [re.search(r"CUDA_VISIBLE_DEVICES=([\d,]+)\)", line)] if m}
        assert len(devices) == 1, (run, devices)  # both ranks of a job see the job's two devices
        spans[run] = (_stamp(lines[0]), _stamp(lines[-1]), set(devices.pop().split(",")))
    print("device assignments:", {r: ",".join(sorted(d)) for r, (_, _, d) in spans.items()})
    overlaps = 0
    for a in runs:
        assert len(spans[a][2]) == 2 and spans[a][2] <= {"0", "1", "2", "3"}
        for b in runs:
            if a < b and spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]:
                overlaps += 1
                assert not spans[a][2] & spans[b][2], (a, b, spans)
    assert overlaps >= 1, spans  # two jobs did run at the same time
