"""The building blocks on their own: FAVOR+ converges to softmax attention, Switch routes every
token to exactly one expert and reports its load-balancing loss, Transformer-XL's relative shift,
Funnel's pooling, and the registry's errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from test_models_common import ARCHS, SEQ, SPECIAL, VOCAB, build, make_batch, rc_for

from archscale.models import encdec
from archscale.models.funnel import block_starts
from archscale.models.performer import favor, orthogonal_features
from archscale.models.registry import build_model
from archscale.models.switch import SwitchFFN
from archscale.models.transfo_xl import rel_shift

torch.set_num_threads(1)


def softmax_attention(q, k, v, causal):
    """The attention FAVOR+ estimates: softmax(q k^T) v, T5-style (no 1/sqrt(d))."""
    scores = q @ k.transpose(-1, -2)
    if causal:
        scores = scores.masked_fill(torch.ones_like(scores, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


@pytest.mark.parametrize("causal", [False, True])
def test_favor_error_falls_as_features_grow(causal):
    """Relative error of the estimated attention matrix (values = identity), mean over 4 draws, at
    m = 16, 64, 256, 1024 random features: it falls at every step and by 4x overall (a Monte Carlo
    estimate: ~1/sqrt(m), Choromanski et al. 2021, Thm. 1 and Sec. 2.4)."""
    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(2, 2, 48, 16, generator=g) * 0.25 for _ in range(2))
    v = torch.eye(48).expand(2, 2, 48, 48)
    exact = softmax_attention(q, k, v, causal)
    errors = []
    for m in (16, 64, 256, 1024):
        err = 0.0
        for seed in range(4):
            w = orthogonal_features(m, 16, torch.Generator().manual_seed(seed))
            approx = favor(q, k, v, w, causal, chunk=16)
            err += ((approx - exact).norm() / exact.norm()).item() / 4
        errors.append(err)
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < errors[0] / 4, errors


def test_favor_causal_chunking_is_exact():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 2, 40, 8, generator=g) * 0.5 for _ in range(3))
    w = orthogonal_features(32, 8, g)
    whole = favor(q, k, v, w, causal=True, chunk=40)
    assert torch.allclose(favor(q, k, v, w, causal=True, chunk=7), whole, atol=1e-5)
    # the quadratic form of the same kernel, masked: the definition of causal linear attention
    phi = lambda x, is_q: torch.exp(x @ w.t() - x.pow(2).sum(-1, keepdim=True) / 2)  # noqa: E731
    a = torch.tril(phi(q, True) @ phi(k, False).transpose(-1, -2))
    assert torch.allclose(whole, (a @ v) / a.sum(-1, keepdim=True), atol=1e-5)


def test_orthogonal_features_are_orthogonal_within_a_block():
    w = orthogonal_features(8, 8, torch.Generator().manual_seed(0))
    directions = w / w.norm(dim=1, keepdim=True)
    assert torch.allclose(directions @ directions.t(), torch.eye(8), atol=1e-5)


@pytest.mark.skipif("switch" not in ARCHS, reason="switch not in params.yaml architectures")
def test_switch_routes_every_token_to_exactly_one_expert():
    model = build("switch")
    model.eval()
    batch = make_batch("encdec")
    layers = [m for m in model.modules() if isinstance(m, SwitchFFN)]
    assert layers, "no sparse layer in the test shape"
    inputs = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out: inputs.__setitem__(mod, (inp[0], out))) for m in layers]
    with torch.no_grad():
        out = model(**batch)
    for h in hooks:
        h.remove()
    for layer, (x, y) in inputs.items():
        flat, expert = x.reshape(-1, x.shape[-1]), layer.last_expert
        assert (expert.shape == (flat.shape[0],)
                and int(torch.bincount(expert, minlength=layer.n_experts).sum()) == flat.shape[0])
        probs = torch.softmax(layer.router(flat), dim=-1)
        for i in range(flat.shape[0]):  # each token: its top expert's output, scaled by its probability
            e = int(probs[i].argmax())
            assert e == int(expert[i])
            assert torch.allclose(y.reshape(-1, y.shape[-1])[i], probs[i, e] * layer.experts[e](flat[i:i + 1])[0],
                                  atol=1e-6)
    # the load-balancing loss (Fedus et al. Eq. 4) is reported and included in the loss
    assert out.aux_loss is not None and out.aux_loss > 0
    ce = F.cross_entropy(out.logits.reshape(-1, VOCAB), batch["labels"].reshape(-1))
    assert torch.allclose(out.loss, ce + out.aux_loss, atol=1e-6)
    coef = model.config.block["aux_loss_coef"]
    expected = 0.0
    for layer, (x, _) in inputs.items():
        x = x.detach()
        flat = x.reshape(-1, x.shape[-1])
        with torch.no_grad():
            probs = torch.softmax(layer.router(flat), dim=-1)
        frac = torch.bincount(probs.argmax(-1), minlength=layer.n_experts).float() / flat.shape[0]
        expected += coef * layer.n_experts * float((frac * probs.mean(0)).sum())
    assert math.isclose(float(out.aux_loss), expected, rel_tol=1e-5)


def test_rel_shift_aligns_distances():
    """After the shift, entry (i, j) holds the score against distance i + m - j (Dai et al. App. B)."""
    q_len, m_len = 5, 3
    k_len = q_len + m_len
    # scores[i, c] computed against distance k_len - 1 - c; encode (i, distance) in the value
    raw = torch.tensor([[100.0 * i + (k_len - 1 - c) for c in range(k_len)] for i in range(q_len)])[None, None]
    shifted = rel_shift(raw)[0, 0]
    for i in range(q_len):
        for j in range(i + m_len + 1):
            assert shifted[i, j] == 100 * i + (i + m_len - j)


@pytest.mark.parametrize("n_layers,blocks,starts",
                         [(1, 3, []), (2, 3, [1]), (4, 3, [2, 3]), (12, 3, [4, 8]), (6, 2, [3])])
def test_funnel_block_starts(n_layers, blocks, starts):
    assert block_starts(n_layers, blocks) == starts


@pytest.mark.skipif("funnel" not in ARCHS, reason="funnel not in params.yaml architectures")
def test_funnel_compresses_the_encoder_output():
    model = build("funnel", {"n_layers": 3, "d_model": 32, "d_ff": 64, "n_heads": 2, "d_kv": 16, "tokens": 1})
    out = model(**make_batch("encdec"))
    assert out.encoder_last_hidden_state.shape[1] == math.ceil(SEQ / 4)


def test_unknown_block_name_says_what_is_known():
    with pytest.raises(ValueError, match="known: .*attention"):
        encdec.lookup("mixer", "attentoin")


def test_native_module_must_exist():
    spec = {"impl": "native", "module": "no_such_block", "objective": "span"}
    with pytest.raises(ModuleNotFoundError):
        build_model(rc_for("x", spec=spec), VOCAB, SPECIAL)


@pytest.mark.parametrize("n,expected",
                         [(6, (3, 4)), (12, (6, 8)), (24, (12, 16)), (4, (2, 3)), (2, (1, 1)), (1, (1, 1))])
def test_evolved_cell_counts_follow_tensor2tensor(n, expected):
    """tensor2tensor turns the 6-layer base into 3 encoder + 4 decoder evolved cells; the model
    built for a size has those many layers, and `same` keeps the vanilla depth."""
    from archscale.models import evolved

    assert evolved.cell_counts(n, "t2t") == expected
    assert evolved.cell_counts(n, "same") == (n, n)
    shape = {"n_layers": n, "d_model": 32, "d_ff": 64, "n_heads": 2, "d_kv": 16}
    special = {"pad": 0, "eos": 1}
    c = evolved.make_config(shape, 100, 16, special, 0.0, {})
    assert (c.num_layers, c.num_decoder_layers) == expected
    with pytest.raises(ValueError, match="layer_rule"):
        evolved.make_config(shape, 100, 16, special, 0.0, {"layer_rule": "half"})


def test_performer_and_its_matched_baseline_share_absolute_positions():
    """performer's positions are stated (sinusoidal, the only kind FAVOR+ takes) and
    transformer_abs uses the same ones with softmax attention: no relative bias in either, while
    the vanilla transformer keeps its buckets."""
    from archscale import config as cfg
    from archscale.models import performer
    from archscale.models.registry import make_config

    params = cfg.load(Path(__file__).resolve().parents[1] / "params.yaml")
    special = {"pad": 0, "eos": 1, "unk": 2, "mask": 3, "sentinels": [], "n_special": 4}
    pos = {a: make_config(cfg.resolve_run(params, f"{a}-pico"), 100, special).positions
           for a in ("performer", "transformer_abs", "transformer")}
    assert pos == {"performer": "sinusoidal", "transformer_abs": "sinusoidal", "transformer": "relative"}
    shape = {"n_layers": 1, "d_model": 32, "d_ff": 64, "n_heads": 2, "d_kv": 16}
    with pytest.raises(ValueError, match="options.positions"):
        performer.make_config(shape, 100, 16, special, 0.0, {"positions": "relative"})
