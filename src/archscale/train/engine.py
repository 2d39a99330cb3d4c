"""The one DeepSpeed engine factory and the one optimizer step used by pretraining and fine-tuning.

CPU: gloo backend, fp32, torch AdamW. GPU: nccl, bf16 (precision `auto`), fused AdamW. A plain
`python -m ...` start becomes a one-process group; under the DeepSpeed launcher or torchrun the
environment (RANK, WORLD_SIZE, ...) is taken as given.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from archscale.train.launch import free_port

# DeepSpeed's CPU backend compiles this shared-memory op at every init, though only its
# inference_all_reduce uses it, never training. Marked incompatible, it is skipped: no C++ compiler
# needed, no ~40 s build on a first start, and no torch extension lock file, which a job killed
# mid-build (a Slurm time limit) leaves behind for every later start to wait on forever.
SHM_OP = "deepspeed_shm_comm"


def setup_distributed() -> dict:
    """Initialise torch.distributed through DeepSpeed; returns rank/world/device info."""
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "archscale" / "torch_extensions"))
    import deepspeed
    import torch

    # A single process starts its own group on a free port. The variables it sets are inherited by
    # its children (a test or a stage that starts another stage), which must not reuse that port:
    # ARCHSCALE_OWN_PORT marks a group this code made, as opposed to one a launcher set up.
    inherited = os.environ.get("ARCHSCALE_OWN_PORT") == os.environ.get("MASTER_PORT")
    if "RANK" not in os.environ or (inherited and not torch.distributed.is_initialized()):
        port = str(free_port("127.0.0.1"))
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1",
                          MASTER_ADDR="127.0.0.1", MASTER_PORT=port, ARCHSCALE_OWN_PORT=port)

    cuda = torch.cuda.is_available()
    if not cuda:  # before DeepSpeed's CPU backend JIT-compiles it (see SHM_OP)
        deepspeed.ops.__compatible_ops__[SHM_OP] = False
    if not torch.distributed.is_initialized():
        deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo", verbose=False)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if cuda:
        torch.cuda.set_device(local_rank)
    return {"rank": torch.distributed.get_rank(), "world_size": torch.distributed.get_world_size(),
            "device": torch.device("cuda", local_rank) if cuda else torch.device("cpu"),
            "device_name": torch.cuda.get_device_name(local_rank) if cuda else "cpu"}


def resolve_precision(precision: str) -> str:
    import torch

    if precision == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return precision


def lr_factor(step: int, total_steps: int, warmup_frac: float, min_ratio: float, schedule: str = "cosine") -> float:
    """The multiplier of the peak lr at `step` (counting from 0).

    cosine: linear warm-up over warmup_frac of the steps, then cosine decay to `min_ratio` of the peak.
    rsqrt: T5's inverse square root (Raffel et al. 2020, Sec. 3.1.2; Tay et al. 2022 pretrain with it):
    the peak for the first w = warmup_frac x steps steps, then sqrt(w / step), never a ramp and no
    floor (min_ratio unused). T5's 1/sqrt(max(step, 10^4)) is peak 0.01 with w = 10^4."""
    warmup = max(int(total_steps * warmup_frac), 1)
    if schedule == "rsqrt":
        return math.sqrt(warmup / max(step + 1, warmup))
    if step < warmup:
        return (step + 1) / warmup
    progress = min((step - warmup) / max(total_steps - warmup, 1), 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def wsd_factor(step: int, warmup: int, decay_start: int | None, total_steps: int, min_ratio: float) -> float:
    """Warmup-stable-decay (Hu et al. 2024, MiniCPM; Hagele et al. 2024): the multiplier of the peak lr
    at `step` (from 0): linear warm-up over `warmup` steps, the peak until `decay_start`, then a
    linear decay that reaches `min_ratio` at `total_steps` (None: no decay, the stable phase of an
    IsoFLOP run, train/isoflop.py). Steps before `decay_start` never depend on where the decay
    starts or ends, so a run saved there can branch into any cool-down."""
    if step < warmup:
        return (step + 1) / warmup
    if decay_start is None or step < decay_start:
        return 1.0
    progress = min((step - decay_start + 1) / max(total_steps - decay_start, 1), 1.0)
    return 1.0 - (1.0 - min_ratio) * progress


def accumulation_steps(train: dict, world_size: int) -> int:
    """Micro-batches per rank per step; the global batch must split evenly over the ranks."""
    micro = train["micro_batch_size"]
    if train["batch_size"] % (micro * world_size):
        raise ValueError(f"train.batch_size {train['batch_size']} is not a multiple of micro_batch_size x processes "
                         f"({micro} x {world_size})")
    return train["batch_size"] // (micro * world_size)


def ds_config(train: dict, world_size: int, precision: str) -> dict:
    micro = train["micro_batch_size"]
    return {
        "train_batch_size": train["batch_size"],
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": accumulation_steps(train, world_size),
        "gradient_clipping": train["grad_clip"],
        "zero_optimization": {"stage": train["zero_stage"]},
        "bf16": {"enabled": precision == "bf16"},
        "fp16": {"enabled": precision == "fp16"},
        "steps_per_print": 1 << 30,
        "wall_clock_breakdown": False,
        # DeepSpeed's ZeRO refuses optimisers it has not vetted unless told; Adafactor keeps its own
        # factored state per parameter, which ZeRO 1-2 partition like any other
        "zero_allow_untested_optimizer": train.get("optimizer", "adamw") != "adamw",
    }


def make_optimizer(groups: list[dict], train: dict):
    """adamw (default): torch AdamW, fused on GPU. adafactor: T5's optimiser (Shazeer and Stern 2018;
    Raffel et al. 2020, Sec. 3.1.2), as transformers implements it with T5's settings: factored
    second moments (decay -0.8), no first moment (beta1 None), update clipping at 1.0, updates scaled
    by each parameter's RMS; its lr comes from train.lr and the schedule, not its own relative step."""
    import torch

    if train.get("optimizer", "adamw") == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(groups, lr=train["lr"], eps=(1e-30, 1e-3), clip_threshold=1.0, decay_rate=-0.8, beta1=None,
                         scale_parameter=True, relative_step=False, warmup_init=False)
    return torch.optim.AdamW(groups, lr=train["lr"], betas=tuple(train["betas"]), eps=1e-8,
                             fused=torch.cuda.is_available())


def make_engine(model, train: dict, total_steps: int, world_size: int, precision: str, factor=None):
    """(engine, optimizer, scheduler) for `model` with the run's optimisation settings; `factor`
    (step -> multiplier of the peak lr) replaces train.schedule (an IsoFLOP run's wsd_factor)."""
    import deepspeed
    import torch

    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": train["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    opt = make_optimizer(groups, train)
    schedule = train.get("schedule", "cosine")
    factor = factor or (lambda s: lr_factor(s, total_steps, train["warmup_frac"], train["min_lr_ratio"], schedule))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    engine, opt, _, sched = deepspeed.initialize(model=model, optimizer=opt, lr_scheduler=sched,
                                                 config=ds_config(train, world_size, precision))
    if world_size == 1 and train["zero_stage"] == 0:
        # One process, no ZeRO: DeepSpeed would still flatten every gradient, all-reduce it with
        # itself and copy it back after each backward (~3 ms per step at nano size, 2-3% of the
        # step); the values are unchanged by it, so skipping it keeps the run's bytes.
        engine.enable_backward_allreduce = False
    return engine, opt, sched


def optimizer_step(engine, micro_batches, device, loss_sum, mems: list | None = None):
    """One optimizer step, the one loop pretraining and fine-tuning share: each micro-batch (a dict of
    tensors or arrays, built lazily by the caller) goes forward and backward through the DeepSpeed
    engine, which steps the optimiser at the accumulation boundary. Adds each micro-batch's loss to
    `loss_sum` (a device tensor: no sync per step) in place and returns the last loss. The model
    returns either the loss or an output with `.loss`. For a recurrent model `mems` holds one memory
    per micro-batch (None before the first step), replaced in place by the memory it leaves."""
    import torch

    loss = None
    for g, batch in enumerate(micro_batches):
        part = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v).to(device) for k, v in batch.items()}
        if mems is None:
            out = engine(**part)
            loss = out if torch.is_tensor(out) else out.loss
        else:
            out = engine(**part, mems=mems[g])
            loss, mems[g] = out.loss, [m.detach() for m in out.mems]
        engine.backward(loss)
        engine.step()
        loss_sum += loss.detach().float()
    return loss

