"""Start a stage on every device of its job: one torchrun per node, N ranks each.

A job declares `nproc_per_node` ranks (its GPUs; gloo processes on a CPU) and `nnodes`
launchers. With 1 x 1 the stage runs in this process, as before. Otherwise this process is
replaced by the launcher:

- one node: `torchrun --standalone --nproc-per-node N` (a free local rendezvous port);
- several nodes (Slurm only): `srun --ntasks M` starts one torchrun per task; they meet by c10d
  rendezvous on this host (the batch host, the job's first node) at a free port, with the Slurm
  job id as the rendezvous id, so a requeued job never joins its previous incarnation.

Every rank then sees RANK/WORLD_SIZE/LOCAL_RANK from torchrun, and `engine.setup_distributed`
takes them as given; a rank binds `cuda:LOCAL_RANK` among the devices the job was given
(CUDA_VISIBLE_DEVICES, set by Slurm or by the workstation pool).
"""

from __future__ import annotations

import os
import shlex
import socket
import sys


class LaunchError(ValueError):
    """A launch that cannot work here; raised before any compute."""


def free_port(host: str = "") -> int:
    """A TCP port free on `host` now ("" = every interface, for a rendezvous other nodes reach)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def is_launched(env=os.environ) -> bool:
    """True inside a rank that torchrun (or the DeepSpeed launcher) started."""
    return "TORCHELASTIC_RUN_ID" in env or "LOCAL_RANK" in env and "ARCHSCALE_OWN_PORT" not in env


def check_devices(nproc_per_node: int, nnodes: int, env=os.environ, cuda_count: int | None = None) -> None:
    """Refuse a launch the job cannot honour, naming the value to change."""
    if nproc_per_node < 1 or nnodes < 1:
        raise LaunchError(f"--nproc-per-node {nproc_per_node} / --nnodes {nnodes}: both must be >= 1")
    if nnodes > 1 and "SLURM_JOB_ID" not in env:
        raise LaunchError(f"--nnodes {nnodes} needs a Slurm allocation (srun starts one launcher per node); "
                          "outside Slurm use --nnodes 1")
    if cuda_count and nproc_per_node > cuda_count:
        raise LaunchError(f"--nproc-per-node {nproc_per_node} but this job sees {cuda_count} GPU(s) "
                          f"(CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', 'unset')}): "
                          "request as many GPUs as ranks (resource `gpu`/`gres`)")


def launch_command(stage_argv: list[str], nproc_per_node: int, nnodes: int, env=os.environ,
                   host: str | None = None, port: int | None = None) -> list[str]:
    """The command that runs `archscale <stage_argv>` on nnodes x nproc_per_node ranks."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc_per_node)]
    # "--" ends torchrun's own options (else a stage flag such as --run is read as a torchrun prefix)
    stage = ["-m", "--", "archscale.cli", *stage_argv]
    if nnodes == 1:
        return [*torchrun, "--standalone", *stage]
    host = host or socket.gethostname()
    port = port or free_port()
    # --kill-on-bad-exit: one failed launcher ends the others instead of leaving them at a barrier
    srun = ["srun", f"--ntasks={nnodes}", "--kill-on-bad-exit=1", "--export=ALL"]
    return [*srun, *torchrun, f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={host}:{port}",
            f"--rdzv-id=archscale-{env.get('SLURM_JOB_ID', 'local')}", *stage]


def relaunch(stage: str, argv: list[str], nproc_per_node: int, nnodes: int, log) -> None:
    """Replace this process by the launcher when more than one rank is asked for; else return."""
    if nproc_per_node * nnodes == 1 or is_launched():
        return
    import torch

    check_devices(nproc_per_node, nnodes, cuda_count=torch.cuda.device_count() if torch.cuda.is_available() else 0)
    cmd = launch_command([stage, *argv], nproc_per_node, nnodes)
    log.info("launching %d x %d ranks: %s", nnodes, nproc_per_node, shlex.join(cmd))
    for handler in log.handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(cmd[0], cmd)
