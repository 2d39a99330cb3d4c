"""Resumable checkpoints with checksums: a corrupt or truncated checkpoint is never loaded.

Layout: <ckpt_dir>/step00000200/ (DeepSpeed's files) + CHECKSUMS.json (sha256 of every file,
written last and atomically: a checkpoint without it is incomplete). Loading walks the tags from
newest to oldest and takes the first whose files all match; a bad one is reported and skipped.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from archscale.config import NO_RERUN
from archscale.io import read_json, sha256_file, write_json

MANIFEST = "CHECKSUMS.json"
OWNER = "RUN.json"  # the configuration the checkpoints of a folder belong to
VOLATILE = ("threads", "code_version")  # keys that do not change what a step computes...
VOLATILE_TRAIN = tuple(k.removeprefix("train.") for k in NO_RERUN if k.startswith("train."))  # ...nor these of train


def fingerprint(run_config: dict) -> str:
    """sha256 of the resolved run config, minus keys that leave the training math unchanged."""
    kept = {k: v for k, v in run_config.items() if k not in VOLATILE}
    if isinstance(kept.get("train"), dict):
        kept["train"] = {k: v for k, v in kept["train"].items() if k not in VOLATILE_TRAIN}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def claim(ckpt_dir: Path, run_config: dict, log=None) -> None:
    """Make `ckpt_dir` this configuration's: checkpoints left by another configuration of the same
    run (params changed since they were written) are deleted, never resumed into this one."""
    owner, want = ckpt_dir / OWNER, fingerprint(run_config)
    if ckpt_dir.is_dir() and tags(ckpt_dir):
        try:
            have = read_json(owner).get("fingerprint")
        except (OSError, ValueError):
            have = None
        if have == want:
            return
        if log:
            log.warning("%s: its checkpoints belong to another configuration of %s (fingerprint %s, now %s); "
                        "starting this run from step 0", ckpt_dir, run_config.get("run"), have, want)
        shutil.rmtree(ckpt_dir)
    write_json(owner, {"run": run_config.get("run"), "fingerprint": want})


def tag_of(step: int) -> str:
    return f"step{step:08d}"


def write_manifest(tag_dir: Path) -> None:
    files = sorted(p for p in tag_dir.rglob("*") if p.is_file() and p.name != MANIFEST)
    write_json(tag_dir / MANIFEST, {str(p.relative_to(tag_dir)): sha256_file(p) for p in files})


def verify(tag_dir: Path) -> str | None:
    """None when the checkpoint is complete and intact, else the reason it is not."""
    manifest = tag_dir / MANIFEST
    if not manifest.is_file():
        return "no CHECKSUMS.json (incomplete save)"
    try:
        sums = read_json(manifest)
    except ValueError:
        return "CHECKSUMS.json is not valid JSON"
    for rel, digest in sums.items():
        path = tag_dir / rel
        if not path.is_file():
            return f"missing {rel}"
        if sha256_file(path) != digest:
            return f"checksum mismatch in {rel}"
    return None


def tags(ckpt_dir: Path) -> list[str]:
    """Checkpoint tags, newest first."""
    if not ckpt_dir.is_dir():
        return []
    return sorted((p.name for p in ckpt_dir.iterdir() if p.is_dir() and p.name.startswith("step")), reverse=True)


def latest_good(ckpt_dir: Path, log=None) -> str | None:
    for tag in tags(ckpt_dir):
        problem = verify(ckpt_dir / tag)
        if problem is None:
            return tag
        if log:
            log.warning("checkpoint %s rejected: %s; falling back to the previous one", ckpt_dir / tag, problem)
    return None


def save(engine, ckpt_dir: Path, step: int, client_state: dict, keep: int) -> None:
    """Save (all ranks), checksum (rank 0), and prune to the newest `keep` good checkpoints."""
    import torch.distributed as dist

    tag = tag_of(step)
    engine.save_checkpoint(str(ckpt_dir), tag=tag, client_state=client_state, save_latest=False)
    if dist.get_rank() == 0:
        write_manifest(ckpt_dir / tag)
        for old in tags(ckpt_dir)[keep:]:
            shutil.rmtree(ckpt_dir / old, ignore_errors=True)
    dist.barrier()
