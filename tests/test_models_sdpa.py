"""The native attention (layers.Attention, T5-style: q k^T + bias, no 1/sqrt(d_kv)) runs through
torch's fused scaled_dot_product_attention, so a GPU gets a fused kernel, and it still computes
the plain softmax attention it replaced: values and gradients to 1e-5 in fp32."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from test_models_common import build, make_batch

from archscale.models.layers import Attention, causal_mask

torch.set_num_threads(1)
CONFIG = SimpleNamespace(num_heads=3, d_kv=8, d_model=20, dropout_rate=0.0)
B, N_Q, N_K = 2, 7, 9


def reference(attn: Attention, x, kv, bias, causal: bool, key_mask):
    """The textbook computation: softmax(q k^T + bias) with blocked keys at -inf, then the values."""
    q, k, v = attn.split(attn.q(x)), attn.split(attn.k(kv)), attn.split(attn.v(kv))
    scores = q @ k.transpose(-1, -2) + (0 if bias is None else bias)
    if causal:
        scores = scores.masked_fill(causal_mask(q.shape[2], k.shape[2], x.device), float("-inf"))
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    out = torch.softmax(scores, dim=-1) @ v
    return attn.o(out.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1))


def test_transformer_forward_calls_sdpa_once_per_attention(monkeypatch):
    """Every attention of the native encoder-decoder (encoder self, decoder self, cross) goes through
    F.scaled_dot_product_attention (the hand-written q k^T / softmax did not)."""
    calls = []
    real = F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append(kwargs.get("scale"))
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    model = build("transformer")
    model(**make_batch("encdec")).loss.backward()
    n_attention = sum(isinstance(m, Attention) for m in model.modules())
    assert n_attention == 3 * model.config.num_layers
    assert calls == [1.0] * n_attention  # T5: no 1/sqrt(d_kv) on the logits


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("causal", [True, False], ids=["causal", "bidirectional"])
def test_sdpa_attention_equals_the_reference(with_bias, causal):
    """Self-attention (n_q = n_k) with a key-padding mask, and cross-attention (n_q != n_k), in
    fp32: outputs and the gradients of inputs, projections and the position bias agree to 1e-5."""
    torch.manual_seed(0)
    attn = Attention(CONFIG)
    n_k = N_Q if causal else N_K  # causal is self-attention only
    x = torch.randn(B, N_Q, CONFIG.d_model, requires_grad=True)
    kv = x if causal else torch.randn(B, n_k, CONFIG.d_model, requires_grad=True)
    key_mask = torch.ones(B, n_k, dtype=torch.bool)
    key_mask[1, -3:] = False  # the second row's last keys are padding
    bias = torch.randn(1, CONFIG.num_heads, N_Q, n_k, requires_grad=True) if with_bias else None
    kw = dict(bias=bias, causal=causal, key_mask=key_mask)
    got = attn(x, kv=None if causal else kv, **kw)
    want = reference(attn, x, kv, **kw)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    inputs = [x, *attn.parameters()] + ([bias] if with_bias else []) + ([] if causal else [kv])
    g = torch.randn_like(got)
    for a, b in zip(torch.autograd.grad(got, inputs, g), torch.autograd.grad(want, inputs, g)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_fully_masked_row_is_finite():
    """A row whose keys are all padding averages the values, as the hand-written version did
    (its logits were all NEG_INF), instead of the NaN a -inf mask would give."""
    torch.manual_seed(0)
    attn = Attention(CONFIG)
    x = torch.randn(B, N_Q, CONFIG.d_model)
    key_mask = torch.ones(B, N_Q, dtype=torch.bool)
    key_mask[0] = False
    bias = torch.randn(1, CONFIG.num_heads, N_Q, N_Q)
    out = attn(x, bias=bias, key_mask=key_mask)
    assert torch.isfinite(out).all()
    mean_v = attn.v(x[:1]).mean(dim=1, keepdim=True).expand(1, N_Q, -1)
    torch.testing.assert_close(out[:1], attn.o(mean_v), atol=1e-5, rtol=1e-5)
