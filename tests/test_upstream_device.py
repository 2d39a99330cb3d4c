"""evaluate_upstream runs on the job's GPU when it has one: main() moves the model there and hands
the same device to both scorers (they default to the CPU). The GPU is faked, so this runs anywhere."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from archscale.eval import upstream
from archscale.models import registry


class _Model:
    """Stands in for the loaded model; remembers where it was moved."""
    device = None

    def to(self, device):
        self.device = torch.device(device)
        return self


@pytest.mark.parametrize("cuda", [True, False])
def test_main_scores_on_the_gpu_when_there_is_one(tiny_lm_data, tmp_path, monkeypatch, cuda):
    root, params = tiny_lm_data
    run = tmp_path / "run"
    shutil.copytree(root / "tok", run / "model")  # the export holds the tokenizer beside the weights
    tr = params["train"]
    (run / "config.json").write_text(json.dumps({"run": "bert_mlm-nano", "objective": "mlm", "seed": 0,
                                                 "objectives": params["objectives"], "train": tr}))
    model, seen = _Model(), {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(registry, "load_pretrained", lambda *a, **k: model)

    def fake_evaluate(m, shard, kind, **kw):
        seen["evaluate"] = kw.get("device")
        return {"val_loss": 1.0, "val_ppl": 2.7, "target_tokens": 1, "val_bpb": None, "val_loss_no_memory": None}

    def fake_sentence_accuracy(m, shard, **kw):
        seen["sentence_accuracy"] = kw.get("device")
        return 0.5

    monkeypatch.setattr(upstream, "evaluate", fake_evaluate)
    monkeypatch.setattr(upstream, "sentence_accuracy", fake_sentence_accuracy)
    out = tmp_path / "upstream.json"
    assert upstream.main(["--run-dir", str(run), "--shards", str(root / "shards"), "--out", str(out)]) == 0
    want = torch.device("cuda" if cuda else "cpu")
    assert model.device == want
    assert seen == {"evaluate": want, "sentence_accuracy": want}
    assert json.loads(out.read_text())["sentence_acc"] == 0.5
