"""Checkpoints belong to one configuration: a run whose params changed never resumes the old ones."""

from __future__ import annotations

from archscale.io import read_json
from archscale.train import checkpoint

RC = {"run": "gpt2-nano", "seed": 1, "shape": {"tokens": 7680}, "train": {"lr": 0.002}, "threads": 2,
      "code_version": "abc"}


def _ckpt(tmp_path, rc):
    ckpt = tmp_path / "ckpt"
    checkpoint.claim(ckpt, rc)
    (ckpt / checkpoint.tag_of(100)).mkdir()
    return ckpt


def test_same_configuration_keeps_its_checkpoints(tmp_path):
    ckpt = _ckpt(tmp_path, RC)
    # threads and code version do not change what a step computes
    checkpoint.claim(ckpt, {**RC, "threads": 8, "code_version": "def"})
    assert checkpoint.tags(ckpt) == [checkpoint.tag_of(100)]


def test_changed_configuration_starts_over(tmp_path):
    ckpt = _ckpt(tmp_path, RC)
    changed = {**RC, "shape": {"tokens": 768000}}
    checkpoint.claim(ckpt, changed)
    assert checkpoint.tags(ckpt) == []
    assert read_json(ckpt / checkpoint.OWNER)["fingerprint"] == checkpoint.fingerprint(changed)


def test_checkpoints_of_unknown_owner_are_not_resumed(tmp_path):
    ckpt = _ckpt(tmp_path, RC)
    (ckpt / checkpoint.OWNER).unlink()
    checkpoint.claim(ckpt, RC)
    assert checkpoint.tags(ckpt) == []


def test_cadence_and_compile_do_not_discard_checkpoints(tmp_path):
    rc = {**RC, "train": {"lr": 0.002, "checkpoint_every": 100, "keep_checkpoints": 2, "compile": False}}
    ckpt = _ckpt(tmp_path, rc)
    checkpoint.claim(ckpt, {**rc, "train": {"lr": 0.002, "checkpoint_every": 500, "keep_checkpoints": 3,
                                            "compile": True}})
    assert checkpoint.tags(ckpt) == [checkpoint.tag_of(100)]
    checkpoint.claim(ckpt, {**rc, "train": {**rc["train"], "lr": 0.001}})  # a new lr is another run
    assert checkpoint.tags(ckpt) == []
