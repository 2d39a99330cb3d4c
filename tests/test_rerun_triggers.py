"""Per-key rerun triggers (config.stage_keys): on the built smoke workspace, a params change reruns
exactly the jobs whose result it changes, in Snakemake (`snakemake -n --config ...`) and in DVC
(`dvc status` after editing params.yaml).

Adding a fine-tuning task plans that task's jobs only (and the summary, fits, figures, tables and
paper that gather them); a per-task setting reruns that task; a masked-LM setting reruns the
masked-LM runs; threads and checkpoint cadence rerun nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from workspace import dry_run_jobs, sh

from archscale import config as cfg
from archscale.dvcyaml import render

GATHER = {"collect", "fit_law", "render_tables", "build_paper"}  # jobs that read every run (and draw_*)


def planned(ws: Path, override: str | None, args: tuple | list = ()) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job `snakemake -n [--config <override>] [args]` would run."""
    out = sh(ws, "snakemake", "--cores", "1", "-n", *(["--config", override] if override else []), *args)
    assert out.returncode == 0, out.stderr[-3000:]
    return [(job["rule"], job["wildcards"]) for job in dry_run_jobs(out.stdout + out.stderr)]


def own_jobs(jobs):
    return sorted(j for j in jobs if j[0] not in GATHER and not j[0].startswith("draw_"))


@pytest.mark.slow
def test_threads_and_checkpoint_cadence_rerun_nothing(smoke_build):
    jobs = planned(smoke_build, "train={threads: 2, checkpoint_every: 7, keep_checkpoints: 5, compile: true}")
    assert jobs == [], jobs


@pytest.mark.slow
def test_adding_a_task_runs_only_that_tasks_jobs(smoke_build):
    runs = cfg.runs(cfg.load(smoke_build / "params.yaml"))
    jobs = planned(smoke_build, "finetune={tasks: [CB, COPA, RTE, WiC]}")
    assert own_jobs(jobs) == sorted(("finetune", f"run={r}, task=WiC") for r in runs)
    assert {"collect", "build_paper"} <= {rule for rule, _ in jobs}


@pytest.mark.slow
def test_a_per_task_setting_reruns_that_task_and_an_mlm_setting_the_mlm_runs(smoke_build):
    runs = cfg.runs(cfg.load(smoke_build / "params.yaml"))
    jobs = planned(smoke_build, "finetune={per_task: {COPA: {steps: 3}}}")
    assert own_jobs(jobs) == sorted(("finetune", f"run={r}, task=COPA") for r in runs)
    mlm = [r for r in runs if r.startswith("bert_mlm-")]
    jobs = own_jobs(planned(smoke_build, "objectives={mlm: {mask_prob: 0.2}}"))
    assert {w for rule, w in jobs if rule == "pretrain"} == {f"run={r}" for r in mlm}
    assert all(w.split(",")[0] in {f"run={r}" for r in mlm} for _, w in jobs)


@pytest.mark.slow
def test_a_code_edit_reruns_the_jobs_of_the_rules_that_run_that_code(smoke_build, tmp_path):
    """The per-run rules' param `code` (dvcyaml.code_version): their DVC stage keeps old results in
    place, so Snakemake must see the edit itself."""
    ws = Path(shutil.copytree(smoke_build, tmp_path / "ws", symlinks=True))
    params = cfg.load(ws / "params.yaml")
    runs, tuned = cfg.runs(params), cfg.tuned_runs(params)
    upstream = ws / "src/archscale/eval/upstream.py"  # run by evaluate_upstream, in the fine-tunes' eval/
    upstream.write_text(upstream.read_text() + "# edited\n")
    assert own_jobs(planned(ws, None)) == sorted(
        [("evaluate_upstream", f"run={r}") for r in runs]
        + [("finetune", f"run={r}, task={t}") for r in tuned for t in params["finetune"]["tasks"]]
        + [("finetune_from_scratch", f"run={r}, task={t}") for r in tuned for t in params["finetune"]["scratch_tasks"]])
    (ws / "src/archscale/tables.py").write_text((ws / "src/archscale/tables.py").read_text() + "# edited\n")
    upstream.write_text(upstream.read_text().removesuffix("# edited\n"))
    assert planned(ws, None) == [], "the tables' code is DVC's to track (render_tables has no code param)"


@pytest.mark.slow
def test_dvc_reruns_nothing_for_threads_and_only_the_new_tasks_stages(smoke_build, tmp_path):
    ws = Path(shutil.copytree(smoke_build, tmp_path / "ws", symlinks=True))
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["train"].update(threads=2, checkpoint_every=7)
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert "Data and pipelines are up to date" in sh(ws, "dvc", "status").stdout
    params["finetune"]["tasks"].append("WiC")
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (ws / "dvc.yaml").write_text(render("params.yaml", root=str(ws)))
    status = sh(ws, "dvc", "status").stdout
    changed = {line[:-1] for line in status.splitlines() if line and not line.startswith((" ", "\t"))}
    runs = cfg.runs(cfg.load(ws / "params.yaml"))
    own = {c for c in changed if not c.startswith(("collect", "fit_law", "draw_", "render_tables", "build_paper"))}
    assert own == {"finetune"}, status[-3000:]  # the rule's one stage, which runs Snakemake on its target:
    cmd = yaml.safe_load((ws / "dvc.yaml").read_text())["stages"]["finetune"]["cmd"].split()
    jobs = planned(ws, None, cmd[cmd.index("--allowed-rules"):])
    assert sorted(jobs) == sorted([("finetune", f"run={r}, task=WiC") for r in runs] + [("all_finetune", "")])
