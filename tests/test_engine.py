"""The engine factory: a stage started from a process that already runs its own group gets its
own port (it inherits RANK/MASTER_PORT but must not reuse them); a stale torch extension lock does
not hang a start; the lr schedule is the one its docstring writes down."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")

CHILD = ("from archscale.train.engine import setup_distributed; import os; setup_distributed(); "
         "print(os.environ['MASTER_PORT'])")


def test_a_lock_left_by_a_killed_extension_build_does_not_hang_the_next_start(tmp_path):
    """A job killed while DeepSpeed JIT-compiled its shared-memory op (a Slurm time limit) leaves the
    torch extension lock file behind; torch waits on it forever (the Slurm tests hung so, and every job after).
    A start must neither build the op (no compiler, no lock) nor wait on such a lock."""
    ext = tmp_path / "torch_extensions"
    (ext / "deepspeed_shm_comm").mkdir(parents=True)
    (ext / "deepspeed_shm_comm" / "lock").touch()  # what the killed build left
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "MASTER_PORT", "ARCHSCALE_OWN_PORT")}
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=180,
                              env={**env, "PYTHONPATH": SRC, "TORCH_EXTENSIONS_DIR": str(ext)})
    except subprocess.TimeoutExpired:
        pytest.fail("setup_distributed waited 180 s on the stale extension lock")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not list(ext.rglob("*.so")), "the shared-memory op was compiled"


def test_child_of_a_self_initialised_process_picks_a_new_port():
    from archscale.train.engine import setup_distributed

    info = setup_distributed()
    assert info["world_size"] == 1
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": SRC})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-1] != os.environ["MASTER_PORT"]


def test_lr_schedule_warms_up_linearly_then_decays_by_cosine_to_the_floor():
    """lr_factor as written down (steps count from 0): warm-up over W = int(T * warmup_frac) steps
    rising linearly to the peak, (s + 1) / W; then cosine from 1 to min_ratio over the remaining
    T - W steps, min_ratio + (1 - min_ratio) * (1 + cos(pi * (s - W) / (T - W))) / 2; then the floor.
    T = 100, warm-up 20%, floor 0.1: every phase gives a value no other phase gives (0.05 is
    neither the floor nor the peak), and the expected numbers are worked out by hand below."""
    from archscale.train.engine import lr_factor

    def f(step: int) -> float:
        return lr_factor(step, 100, 0.2, 0.1)

    # warm-up: W = 20 steps, step s gives (s + 1) / 20
    assert f(0) == pytest.approx(0.05, abs=1e-12)
    assert f(9) == pytest.approx(0.5, abs=1e-12)
    assert f(19) == pytest.approx(1.0, abs=1e-12)  # the peak is reached on the last warm-up step
    # cosine over 80 steps: progress 0, 1/4, 1/2, 3/4 at steps 20, 40, 60, 80
    assert f(20) == pytest.approx(1.0, abs=1e-12)
    assert f(40) == pytest.approx(0.1 + 0.45 * (1 + math.sqrt(0.5)), abs=1e-12)  # 0.8682
    assert f(60) == pytest.approx(0.55, abs=1e-12)  # halfway between peak and floor
    assert f(80) == pytest.approx(0.1 + 0.45 * (1 - math.sqrt(0.5)), abs=1e-12)  # 0.2318
    # the floor at the end and after it (a resumed or overlong run never goes below min_ratio)
    assert f(100) == pytest.approx(0.1, abs=1e-12) and f(250) == pytest.approx(0.1, abs=1e-12)
    assert 0.1 < f(99) < 0.1 + 1e-3
    # shape: strictly rising through warm-up, never rising after the peak
    values = [f(s) for s in range(120)]
    assert all(a < b for a, b in zip(values[:19], values[1:20]))
    assert all(a >= b for a, b in zip(values[19:], values[20:]))
    # a constant schedule (min_ratio 1, fine-tuning) is flat after warm-up; no warm-up starts at the peak
    assert [lr_factor(s, 40, 0.1, 1.0) for s in (3, 4, 20, 39)] == pytest.approx([1.0] * 4, abs=1e-12)
    assert lr_factor(0, 100, 0.0, 0.1) == pytest.approx(1.0, abs=1e-12)
