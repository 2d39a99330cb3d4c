"""Fine-tuning dropout reaches every dropout of every architecture, not only nn.Dropout modules
(Tay et al. fine-tune with T5's dropout 0.1; the models are pretrained with none)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archscale import config as cfg
from archscale.eval.heads import set_dropout
from archscale.models.registry import build_model, register_native

PARAMS = cfg.load(Path(__file__).resolve().parents[1] / "params.yaml")
SPECIAL = {"pad": 0, "eos": 1, "unk": 2, "mask": 3, "sentinels": list(range(4, 104)), "n_special": 104}


def _model(arch: str):
    register_native()
    return build_model(cfg.resolve_run(PARAMS, f"{arch}-pico"), 300, SPECIAL)


def _rates(model) -> list[float]:
    rates = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    return rates + [v for m in model.modules() for k, v in vars(m).items() if "dropout" in k and isinstance(v, float)]


# Architectures whose network has no dropout anywhere: fine-tuning's dropout reaches only its head.
NO_DROPOUT = {"mamba2": "transformers' Mamba2 (as the reference mamba_ssm) has no dropout layer or rate"}


@pytest.mark.parametrize("arch", sorted(PARAMS["architectures"]))
def test_every_dropout_rate_is_set(arch):
    model = _model(arch)
    if arch in NO_DROPOUT:
        assert _rates(model) == [], f"{arch} has dropout now: take it out of NO_DROPOUT"
        return
    assert _rates(model) and all(r == 0.0 for r in _rates(model)), "pretrained without dropout"
    set_dropout(model, 0.1)
    assert set(_rates(model)) == {0.1}


@pytest.mark.parametrize("arch", ["transformer", "lconv", "reformer"])
def test_dropout_changes_the_function_in_training_mode(arch):
    """Attention-probability / kernel dropout is live after set_dropout: with every nn.Dropout
    switched off again, two training-mode forwards still differ (they would be equal if only
    nn.Dropout modules had been set)."""
    model = _model(arch)
    set_dropout(model, 0.3)
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    ids = torch.randint(104, 300, (2, PARAMS["train"]["seq_len"]))
    batch = {"input_ids": ids, "labels": ids}
    model.train()
    torch.manual_seed(0)
    a = model(**batch).logits
    torch.manual_seed(1)
    b = model(**batch).logits
    assert not torch.allclose(a, b)
    model.eval()
    assert torch.allclose(model(**batch).logits, model(**batch).logits)
