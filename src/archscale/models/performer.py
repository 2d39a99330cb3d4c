"""performer: the transformer with FAVOR+ attention (Choromanski et al. 2021) in every attention
sublayer (encoder and decoder self-attention, cross-attention).

FAVOR+ estimates the softmax kernel exp(q.k) by positive orthogonal random features,
phi(x) = exp(W x - |x|^2 / 2) / sqrt(m) (their Lemma 1, Sec. 2.3-2.4), and computes attention in
linear time: out_i = phi(q_i) S / phi(q_i) z with S = sum_j phi(k_j) v_j^T, z = sum_j phi(k_j).
It approximates *this* code path's attention, T5's exp(q.k) (T5 has no 1/sqrt(d_kv); it is folded
into the query initialisation), so `performer` differs from `transformer` only by the kernel.

- Causal (decoder self-attention): the prefix sums S_i, z_i are computed chunk by chunk (exact:
  within a chunk the masked quadratic form, across chunks the carried state), so memory stays
  O(n m d) and position i never sees j > i.
- Numerics: the query features subtract their own row maximum (a per-query constant, which
  cancels in the ratio); keys need none, since w.k - |k|^2/2 <= |w|^2/2 bounds the exponent.
- The random features are drawn once from the model seed and stored as a buffer (saved with the
  model, so a reload computes the same function); no redrawing during training.
- Positions (option `positions`, only `sinusoidal`): the relative position bias cannot enter a
  linear-attention kernel, so positions are the fixed sinusoids of Vaswani et al. 2017 (Sec. 3.5)
  added to the embeddings. `transformer` with `positions: sinusoidal` (`transformer_abs` in the
  paper preset) is the same network with softmax attention: the matched baseline that separates
  the kernel's effect from the positions' one.

Shape overrides: `n_features` m (default 256, the value used throughout Choromanski et al.,
Sec. 4). Options: `chunk` (causal chunk length, default 64).
"""

from __future__ import annotations

import math

import torch

from archscale.models import encdec
from archscale.models.layers import Attention, init_module

DEFAULTS = {"chunk": 64}


def orthogonal_features(m: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """(m, d) rows: blocks of orthogonal directions, each row rescaled to a chi(d)-distributed norm,
    so rows are marginally N(0, I) but exactly orthogonal within a block (their Sec. 2.4)."""
    blocks, left = [], m
    while left > 0:
        q, _ = torch.linalg.qr(torch.randn(d, d, generator=generator))
        blocks.append(q.t()[: min(d, left)])
        left -= d
    w = torch.cat(blocks)
    norms = torch.randn(m, d, generator=generator).norm(dim=1, keepdim=True)
    return w * norms


def feature_map(x: torch.Tensor, w: torch.Tensor, is_query: bool) -> torch.Tensor:
    """Positive random features of the softmax kernel: exp(W x - |x|^2/2) / sqrt(m)."""
    proj = torch.matmul(x, w.t())
    logits = proj - x.pow(2).sum(-1, keepdim=True) / 2
    if is_query:
        logits = logits - logits.amax(dim=-1, keepdim=True).detach()
    return torch.exp(logits) / math.sqrt(w.shape[0])


def favor(q, k, v, w, causal: bool, chunk: int, key_mask=None):
    """FAVOR+ attention of (B, h, n, d) tensors."""
    qf, kf = feature_map(q, w, True), feature_map(k, w, False)
    if key_mask is not None:
        kf = kf * key_mask[:, None, :, None].to(kf.dtype)
    if not causal:
        state = torch.matmul(kf.transpose(-1, -2), v)          # (B, h, m, d)
        z = kf.sum(dim=2)                                        # (B, h, m)
        num = torch.matmul(qf, state)
        den = torch.matmul(qf, z.unsqueeze(-1))
        return num / den.clamp(min=1e-12)
    n = q.shape[2]
    state = q.new_zeros(q.shape[0], q.shape[1], w.shape[0], v.shape[-1])
    z = q.new_zeros(q.shape[0], q.shape[1], w.shape[0], 1)
    outs = []
    for s in range(0, n, chunk):
        qc, kc, vc = qf[:, :, s:s + chunk], kf[:, :, s:s + chunk], v[:, :, s:s + chunk]
        local = torch.tril(torch.matmul(qc, kc.transpose(-1, -2)))   # within the chunk: j <= i
        num = torch.matmul(qc, state) + torch.matmul(local, vc)
        den = torch.matmul(qc, z) + local.sum(-1, keepdim=True)
        outs.append(num / den.clamp(min=1e-12))
        state = state + torch.matmul(kc.transpose(-1, -2), vc)
        z = z + kc.sum(dim=2).unsqueeze(-1)
    return torch.cat(outs, dim=2)


class FavorAttention(Attention):
    """T5 attention projections with the FAVOR+ kernel in place of the softmax."""

    def __init__(self, config, causal: bool, cross: bool):
        super().__init__(config)
        self.causal, self.cross = causal, cross
        self.chunk = config.block["chunk"]
        self.register_buffer("features", torch.zeros(config.block["n_features"], self.d_kv), persistent=True)

    def archscale_init(self, config, init):
        init_module(self, config, init)  # the T5 projection initialisation
        gen = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, ()).item()))  # from the model seed
        init.copy_(self.features, orthogonal_features(self.features.shape[0], self.d_kv, gen).to(self.features))

    def forward(self, x, ctx, kv=None):
        if self.cross:
            src, mask = ctx.memory, ctx.memory_mask
        else:
            src, mask = (x if kv is None else kv), ctx.key_mask
        q, k, v = self.split(self.q(x)), self.split(self.k(src)), self.split(self.v(src))
        out = favor(q, k, v, self.features, self.causal, self.chunk, mask)
        return self.o(out.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1))


def _flops(c, index, n_q, n_k, is_decoder, causal):
    inner, m, h = c.num_heads * c.d_kv, c.block["n_features"], c.num_heads
    proj = 2 * c.d_model * inner * (2 * n_q + 2 * n_k)
    features = 2 * m * inner * (n_q + n_k)
    if not causal:
        return proj + features + 2 * n_k * m * inner + 2 * n_q * m * inner + 2 * n_q * m * h
    chunk, total = c.block["chunk"], 0
    for s in range(0, n_q, chunk):
        n = min(chunk, n_q - s)
        total += 2 * n * m * (inner + h) + 2 * n * n * m * h + 2 * n * n * inner + 2 * n * m * inner
    return proj + features + total


@encdec.register("mixer", "performer", lambda c, i, n_q, n_k, dec: _flops(c, i, n_q, n_k, dec, dec))
def self_favor(config, is_decoder, index):
    return FavorAttention(config, causal=is_decoder, cross=False)


@encdec.register("cross", "performer", lambda c, i, n_q, n_k, dec: _flops(c, i, n_q, n_k, dec, False))
def cross_favor(config):
    return FavorAttention(config, causal=False, cross=True)


def make_config(shape, vocab_size, seq_len, special, dropout, options):
    block = {**DEFAULTS, **encdec.check_options("performer", options, set(DEFAULTS) | {"positions"})}
    positions = block.pop("positions", "sinusoidal")
    if positions != "sinusoidal":
        raise ValueError(f"architectures.<performer>.options.positions: {positions!r}; FAVOR+ takes only 'sinusoidal' "
                         "(a relative bias cannot enter its linear-time kernel)")
    block["n_features"] = int(shape.get("n_features", 256))
    return encdec.make_config("performer", shape, vocab_size, seq_len, special, dropout, mixer="performer",
                              cross="performer", positions=positions, block=block)


def analytic_flops(rc, kind, vocab, n_in, n_tgt):
    return encdec.flops_from_rc(make_config, rc, vocab, n_in, n_tgt)
