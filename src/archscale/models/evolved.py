"""evolved: the Evolved Transformer (So et al. 2019) on the T5 code path, wired as in its
reference implementation (tensor2tensor evolved_transformer.py), with T5's RMS norm, relative
position bias and bias-free projections:

encoder layer: gated linear unit (d -> d, sigmoid gate) | conv branches: relu(dense d->4d) +
  relu(conv3 d->d/2), norm, separable conv9 4d->d/2 | self-attention | ReLU FFN (d_ff)
decoder layer: branched attention, self-attention with max(16, heads) heads + cross-attention |
  causal conv branches: relu(sep conv11 d->2d) + sep conv7 d->d/2, norm, sep conv7 2d->d |
  self-attention | cross-attention | swish FFN with a norm before its output projection

Depth: tensor2tensor's cell counts by default (n/2 encoder and 2n/3 decoder cells for a vanilla
depth of n: an evolved cell holds about two vanilla layers; `cell_counts`), option
`layer_rule: same` keeps n per stack.

Every branch is a pre-norm residual. Narrower outputs are zero-padded to the residual width, as
in the reference. The 16-head branch keeps the attention width (heads x d_kv), so its heads are
narrower; the decoder's relative-bias table has one column per wide head, and the vanilla
self-attention uses the first `n_heads` of them.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from archscale.models import encdec
from archscale.models.layers import Attention, RMSNorm, SeparableConv1d, attention_flops, separable_flops, zero_padding


def wide_heads(config) -> int:
    inner = config.num_heads * config.d_kv
    heads = max(16, config.num_heads)
    return heads if inner % heads == 0 else config.num_heads


def pad_to(x, width: int):
    return F.pad(x, (0, width - x.shape[-1]))


class EvolvedEncoderLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        d, eps = config.d_model, config.layer_norm_epsilon
        self.norms = nn.ModuleList([RMSNorm(d, eps) for _ in range(4)])
        self.glu_value, self.glu_gate = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)
        self.left = nn.Linear(d, 4 * d, bias=False)
        self.right = nn.Conv1d(d, d // 2, 3, padding=1, bias=False)
        self.mid_norm = RMSNorm(4 * d, eps)
        self.sep9 = SeparableConv1d(4 * d, d // 2, 9, causal=False)
        self.attn = Attention(config)
        self.wi, self.wo = nn.Linear(d, config.d_ff, bias=False), nn.Linear(config.d_ff, d, bias=False)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, h, ctx, kv=None):
        d = h.shape[-1]
        x = self.norms[0](h)
        h = h + self.dropout(self.glu_value(x) * self.glu_gate(x).sigmoid())
        x = zero_padding(self.norms[1](h), ctx.key_mask)
        left = F.relu(self.left(x))
        right = F.relu(self.right(x.transpose(1, 2)).transpose(1, 2))
        y = zero_padding(self.mid_norm(self.dropout(left) + pad_to(self.dropout(right), 4 * d)), ctx.key_mask)
        h = h + self.dropout(pad_to(self.sep9(y), d))
        h = h + self.dropout(self.attn(self.norms[2](h), bias=ctx.bias(), key_mask=ctx.key_mask))
        return h + self.dropout(self.wo(self.dropout(F.relu(self.wi(self.norms[3](h))))))


class EvolvedDecoderLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        d, eps = config.d_model, config.layer_norm_epsilon
        heads = wide_heads(config)
        self.norms = nn.ModuleList([RMSNorm(d, eps) for _ in range(5)])
        self.wide_attn = Attention(config, n_heads=heads, d_kv=config.num_heads * config.d_kv // heads)
        self.cross1 = Attention(config)
        self.sep11 = SeparableConv1d(d, 2 * d, 11, causal=True)
        self.sep7 = SeparableConv1d(d, d // 2, 7, causal=True)
        self.mid_norm = RMSNorm(2 * d, eps)
        self.sep7_out = SeparableConv1d(2 * d, d, 7, causal=True)
        self.attn, self.cross2 = Attention(config), Attention(config)
        self.wi, self.wo = nn.Linear(d, config.d_ff, bias=False), nn.Linear(config.d_ff, d, bias=False)
        self.ffn_norm = RMSNorm(config.d_ff, eps)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, h, ctx, kv=None):
        d, bias = h.shape[-1], ctx.bias()
        x = self.norms[0](h)
        left = self.wide_attn(x, bias=bias, causal=True)
        right = self.cross1(x, kv=ctx.memory, key_mask=ctx.memory_mask)
        h = h + self.dropout(left) + self.dropout(right)
        x = self.norms[1](h)
        y = self.dropout(F.relu(self.sep11(x))) + pad_to(self.dropout(self.sep7(x)), 2 * d)
        h = h + self.dropout(self.sep7_out(self.mid_norm(y)))
        h = h + self.dropout(self.attn(self.norms[2](h), bias=bias, causal=True))
        h = h + self.dropout(self.cross2(self.norms[3](h), kv=ctx.memory, key_mask=ctx.memory_mask))
        y = self.ffn_norm(self.dropout(F.silu(self.wi(self.norms[4](h)))))
        return h + self.dropout(self.wo(y))


def _flops(c, i, n, n_k, dec):
    d, inner = c.d_model, c.num_heads * c.d_kv
    ffn = 2 * 2 * d * c.d_ff * n
    if not dec:
        glu = 2 * 2 * d * d * n
        conv = 2 * d * 4 * d * n + 2 * n * (d // 2) * d * 3 + separable_flops(4 * d, d // 2, 9, n)
        return glu + conv + attention_flops(d, inner, n, n) + ffn
    conv = separable_flops(d, 2 * d, 11, n) + separable_flops(d, d // 2, 7, n) + separable_flops(2 * d, d, 7, n)
    return 2 * attention_flops(d, inner, n, n) + 2 * attention_flops(d, inner, n, n_k) + conv + ffn


@encdec.register("layer", "evolved", _flops)
def evolved_layer(config, is_decoder: bool, index: int):
    return EvolvedDecoderLayer(config) if is_decoder else EvolvedEncoderLayer(config)


LAYER_RULES = ("t2t", "same")


def cell_counts(n_layers: int, rule: str) -> tuple[int, int]:
    """(encoder, decoder) Evolved Transformer cells for a size whose vanilla stacks have `n_layers`.

    `t2t`: tensor2tensor's convention (evolved_transformer.py, add_evolved_transformer_hparams:
    "Evolved Transformer 'layers' are twice as deep as Transformer, so roughly halve the number that
    we use", 6 -> 3 encoder and 4 decoder cells, after So et al. 2019): n/2 encoder and 2n/3
    decoder cells, rounded, at least one. `same`: n cells per stack, as the vanilla shape."""
    if rule == "same":
        return n_layers, n_layers
    if rule != "t2t":
        raise ValueError(f"architectures.<evolved>.options.layer_rule: {rule!r} is not one of {list(LAYER_RULES)}")
    return max(round(n_layers / 2), 1), max(round(2 * n_layers / 3), 1)


def make_config(shape, vocab_size, seq_len, special, dropout, options):
    options = encdec.check_options("evolved", options, {"layer_rule"})
    enc, dec = cell_counts(shape["n_layers"], options.get("layer_rule", "t2t"))
    probe = encdec.make_config("evolved", shape, vocab_size, seq_len, special, dropout)
    return encdec.make_config("evolved", shape, vocab_size, seq_len, special, dropout, layer="evolved",
                              num_layers=enc, num_decoder_layers=dec, block={"decoder_bias_heads": wide_heads(probe)})


def analytic_flops(rc, kind, vocab, n_in, n_tgt):
    return encdec.flops_from_rc(make_config, rc, vocab, n_in, n_tgt)
