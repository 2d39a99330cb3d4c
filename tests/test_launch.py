"""Every rank a job is given: the pretrain rule declared with 2 ranks runs 2 gloo processes under one
torchrun (each rank's pid in the job's log) and follows the 1-rank curve; launches that cannot work
stop before compute with the value to change."""

from __future__ import annotations

import csv
import re

import pytest
import yaml

from archscale.train import launch

RUN = "gpt2-nano"


def test_launch_command_one_node_and_many_nodes():
    one = launch.launch_command(["pretrain", "--run", RUN], 4, 1, env={})
    assert one[1:5] == ["-m", "torch.distributed.run", "--nproc-per-node", "4"]
    assert "--standalone" in one and one[-4:] == ["archscale.cli", "pretrain", "--run", RUN]
    many = launch.launch_command(["pretrain"], 8, 3, env={"SLURM_JOB_ID": "77"}, host="node1", port=29400)
    assert many[:4] == ["srun", "--ntasks=3", "--kill-on-bad-exit=1", "--export=ALL"]
    assert {"--nnodes=3", "--rdzv-backend=c10d", "--rdzv-endpoint=node1:29400", "--rdzv-id=archscale-77"} <= set(many)
    assert "--standalone" not in many


@pytest.mark.parametrize("nproc, nnodes, env, cuda, says", [
    (2, 2, {}, 0, "needs a Slurm allocation"),
    (4, 1, {"CUDA_VISIBLE_DEVICES": "0,1"}, 2, "sees 2 GPU(s)"),
    (0, 1, {}, 0, "must be >= 1"),
])
def test_impossible_launch_is_refused(nproc, nnodes, env, cuda, says):
    with pytest.raises(launch.LaunchError, match=re.escape(says)):
        launch.check_devices(nproc, nnodes, env=env, cuda_count=cuda)


def _curve(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_pretrain_rule_with_two_ranks_matches_one_rank(sample_data, tmp_path):
    """Same global batch (8): 1 rank x micro 4 x 2 accumulation vs 2 ranks x micro 4. Gradients are
    averaged by gloo's all-reduce instead of summed in one process, so sums are ordered differently:
    equal up to float32 rounding (tolerance rel 1e-5 on every curve point)."""
    from workspace import new_clone, sh

    ws = new_clone(tmp_path / "ws", sample_data)
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["train"]["micro_batch_size"] = params["train"]["batch_size"] // 2
    params["grid"] = {"architectures": ["gpt2"], "sizes": ["nano"]}
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    target = f"results/runs/{RUN}/metrics.json"
    sh(ws, "snakemake", target, "--cores", "2", "--quiet", "rules", timeout=900)
    one = _curve(ws / f"results/runs/{RUN}/curve.csv")
    assert "launching" not in (ws / f"results/runs/{RUN}/train.log").read_text()

    sh(ws, "snakemake", target, "--cores", "2", "--forcerun", "pretrain", "--set-resources",
       "pretrain:nproc_per_node=2", "--quiet", "rules", timeout=900)
    log = (ws / f"results/runs/{RUN}/train.log").read_text()
    assert "launching 1 x 2 ranks" in log and "torch.distributed.run" in log
    pids = {int(m.group(2)) for m in re.finditer(r"rank (\d)/2: pid (\d+)", log)}
    assert len(pids) == 2, log[-3000:]
    metrics = yaml.safe_load((ws / target).read_text())
    assert metrics["world_size"] == 2
    two = _curve(ws / f"results/runs/{RUN}/curve.csv")
    assert [r["step"] for r in two] == [r["step"] for r in one]
    for a, b in zip(two, one):
        for key in ("train_loss", "val_loss"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-5), (key, a, b)
