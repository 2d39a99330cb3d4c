"""IsoFLOP runs: each size trained to exactly each compute budget, by warmup-stable-decay branches.

Hoffmann et al. (2022, approach 2) train several sizes to each of several compute budgets C and
read the compute-optimal size off each budget's profile. Training every (size, budget) from scratch
with its own cosine costs the sum of all budgets per size; a warmup-stable-decay schedule (Hu et
al. 2024; Hagele et al. 2024) needs one run per size: the stable run (warm-up, then the peak lr)
is saved where each budget's cool-down starts, and each budget is a branch from that checkpoint
whose lr decays linearly to train.min_lr_ratio over its last `cooldown_frac` of steps. Because the
schedule before a cool-down never depends on it, and batches are a pure function of (seed, step),
a branch equals a run trained start to end with that schedule (tests/test_isoflop_training.py
checks it byte for byte, and that a branch lands within a stated tolerance of a cosine run of
the same length).

A budget is training FLOPs as everywhere in archscale: 3 x the measured forward FLOPs per token x
tokens (for a mixture of experts, the FLOPs a token runs: active, not total). Its steps are
round(C / (3 f tokens_per_step)); the warm-up (train.warmup_frac of the smallest budget's steps) is
shared by every branch of a size, so every branch spends at most that fraction warming up.

    results/isoflop/stable/<arch>-<size>/   plan.json, curve.csv, ckpt/ (+ ckpt/branches/<C>/)
    results/isoflop/branches/<arch>-<size>/<C>/   metrics.json, curve.csv (stable rows, then its own)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from archscale.runs import budget_label, isoflop_runs, number
from archscale.train.engine import wsd_factor

STABLE = "stable"
ROOT = "results/isoflop"


class IsoflopError(ValueError):
    """A budget the run cannot honour (too few steps, more text than the corpus allows)."""


def stable_dir(base: str, root: str = ROOT) -> str:
    return f"{root}/stable/{base}"


def branch_dir(base: str, budget: float, root: str = ROOT) -> str:
    return f"{root}/branches/{base}/{budget_label(budget)}"


def branch_checkpoints(stable: Path, budget: float) -> Path:
    """Where the stable run keeps the checkpoint a budget's branch starts from (inside its ckpt/,
    so a stable run restarted for other params drops them with the rest)."""
    return Path(stable) / "ckpt" / "branches" / budget_label(budget)


@dataclass(frozen=True)
class Plan:
    """What one IsoFLOP job trains: steps to run, the lr multiplier per step, where to save the
    branch checkpoints (stable run) or which one to start from (a branch)."""

    total_steps: int
    factor: object  # step -> multiplier of the peak lr
    save_at: dict[int, Path] = field(default_factory=dict)
    start_from: Path | None = None
    steps: dict[str, int] = field(default_factory=dict)  # budget label -> its branch's total steps
    branch_step: dict[str, int] = field(default_factory=dict)  # budget label -> where its cool-down starts
    warmup: int = 1


def budget_steps(budgets: list[float], flops_per_step: float) -> dict[str, int]:
    """Budget label -> total steps of its branch: round(C / training FLOPs per step), at least 1."""
    return {budget_label(c): max(round(c / flops_per_step), 1) for c in budgets}


def make_plan(iso: dict, min_ratio: float, warmup_frac: float, flops_per_step: float, tokens_per_step: int,
              train_tokens: int, max_epochs: float, stable: Path, where: str) -> Plan:
    """The plan of the stable run (iso['branch'] == 'stable') or of one budget's branch, from the
    run's `isoflop` config (budgets, cooldown_frac, branch) and its measured FLOPs per step.
    Raises IsoflopError, naming `where` (the params key), before any step is trained."""
    steps = budget_steps(iso["budgets"], flops_per_step)
    cool = {label: max(round(iso["cooldown_frac"] * t), 1) for label, t in steps.items()}
    start = {label: t - cool[label] for label, t in steps.items()}
    warmup = max(int(min(steps.values()) * warmup_frac), 1)
    for label, t in steps.items():
        if start[label] < warmup:
            raise IsoflopError(f"{where}: budget {label[1:]} is {t} steps at this size, too few for a {warmup}-step "
                               f"warm-up and a {cool[label]}-step cool-down: raise the budget or drop the size")
    if len(set(steps.values())) != len(steps) or len(set(start.values())) != len(start):
        raise IsoflopError(f"{where}: budgets {sorted(steps)} round to the same number of steps at this size "
                           f"({sorted(steps.values())}): space them further apart")
    most = max(steps.values()) * tokens_per_step
    if most > max_epochs * train_tokens:
        raise IsoflopError(f"{where}: the largest budget reads {most:,} tokens, {most / train_tokens:.2f} epochs of "
                           f"the {train_tokens:,}-token train split (data.max_epochs = {max_epochs}): lower it or "
                           "add text")
    if iso["branch"] == STABLE:
        return Plan(max(start.values()), partial(wsd_factor, warmup=warmup, decay_start=None, total_steps=0,
                                                 min_ratio=min_ratio),
                    save_at={start[label]: branch_checkpoints(stable, float(label[1:])) for label in steps},
                    steps=steps, branch_step=start, warmup=warmup)
    label = budget_label(iso["branch"])
    return Plan(steps[label], partial(wsd_factor, warmup=warmup, decay_start=start[label], total_steps=steps[label],
                                      min_ratio=min_ratio),
                start_from=branch_checkpoints(stable, iso["branch"]), steps=steps, branch_step=start, warmup=warmup)


def resolve(params: dict, rc: dict, branch: str) -> dict:
    """The run config of an IsoFLOP job of `rc`'s `<arch>-<size>`: `branch` is 'stable' or a budget
    (as its label or a number). Its `isoflop` entry is what the job's result depends on: every
    budget (the warm-up is the smallest one's) and the cool-down fraction."""
    iso = params.get("isoflop") or {}
    if rc["run"] not in isoflop_runs(params):
        raise IsoflopError(f"run {rc['run']!r} is not in the IsoFLOP grid (isoflop.architectures x isoflop.sizes)")
    budgets = [float(b) for b in iso["budgets"]]
    if branch != STABLE:
        value = float(branch.removeprefix("C"))
        if budget_label(value) not in {budget_label(b) for b in budgets}:
            raise IsoflopError(f"budget {branch!r} is not in isoflop.budgets {[number(b) for b in budgets]}")
        branch = value
    label = STABLE if branch == STABLE else budget_label(branch)
    return {**rc, "run": f"{rc['run']}@{label}",
            "isoflop": {"budgets": budgets, "cooldown_frac": iso.get("cooldown_frac", 0.2), "branch": branch}}
