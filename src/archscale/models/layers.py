"""Building blocks shared by the native encoder-decoder models (the T5 code path of the Tay et al. set).

Everything here follows HF/Mesh-TF T5 v1.0 exactly (Raffel et al. 2020): RMS layer norm without
bias or mean subtraction, no biases in any projection, attention logits without the 1/sqrt(d_kv)
factor (it is folded into the query initialisation), relative position buckets added to the
self-attention logits. The native `transformer` built from these reproduces HF T5's outputs from
the same weights (tests/test_models_parity.py), so every other Tay architecture differs from it
only by the block it swaps in.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# Replaces the bias of blocked keys (SDPA adds it to q.k). Finite, unlike -inf: a fully masked row
# (all keys padding) then gets finite weights, not NaN, on every SDPA backend; with |q.k| < 32 the
# fp32 sums all round to -1e9 (a multiple of the fp32 spacing, 64, there), so the row is uniform, as
# it was when the hand-written attention overwrote the logits with NEG_INF.
NEG_INF = -1e9


class RMSNorm(nn.Module):
    """T5LayerNorm: scale only, variance in fp32 (Zhang & Sennrich 2019)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        var = x.float().pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps)).to(self.weight.dtype)


def relative_bucket(rel: torch.Tensor, bidirectional: bool, num_buckets: int, max_distance: int) -> torch.Tensor:
    """T5's bucketing of key_pos - query_pos: exact for small distances, logarithmic up to max_distance."""
    buckets = torch.zeros_like(rel)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (rel > 0).long() * num_buckets
        rel = rel.abs()
    else:
        rel = -torch.clamp(rel, max=0)
    max_exact = num_buckets // 2
    large = max_exact + (torch.log(rel.float().clamp(min=1) / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).long()
    large = torch.clamp(large, max=num_buckets - 1)
    return buckets + torch.where(rel < max_exact, rel, large)


class RelativeBias(nn.Module):
    """One bias table per stack (T5 keeps it in the first layer and reuses it in every layer)."""

    def __init__(self, config, n_heads: int, bidirectional: bool):
        super().__init__()
        self.num_buckets = config.relative_attention_num_buckets
        self.max_distance = config.relative_attention_max_distance
        self.bidirectional = bidirectional
        self.weight = nn.Embedding(self.num_buckets, n_heads)

    def forward(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        rel = k_pos[None, :] - q_pos[:, None]
        bucket = relative_bucket(rel, self.bidirectional, self.num_buckets, self.max_distance)
        return self.weight(bucket).permute(2, 0, 1).unsqueeze(0)  # (1, heads, q, k)


def sinusoid(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Fixed sine/cosine signal (Vaswani et al. 2017, Sec. 3.5), shape (len(positions), dim)."""
    inv = 1.0 / (10000 ** (torch.arange(0, dim, 2, device=positions.device).float() / dim))
    angle = positions.float()[:, None] * inv[None, :]
    return torch.cat([angle.sin(), angle.cos()], dim=-1)[:, :dim]


def causal_mask(n_q: int, n_k: int, device, offset: int = 0) -> torch.Tensor:
    """True where query i may not see key j (j > i + offset)."""
    q = torch.arange(n_q, device=device)[:, None] + offset
    return torch.arange(n_k, device=device)[None, :] > q


class Attention(nn.Module):
    """T5 multi-head attention (self or cross); the scores are (q k^T + bias), no 1/sqrt(d_kv)."""

    def __init__(self, config, n_heads: int | None = None, d_kv: int | None = None):
        super().__init__()
        self.n_heads = n_heads or config.num_heads
        self.d_kv = d_kv or config.d_kv
        inner = self.n_heads * self.d_kv
        self.q = nn.Linear(config.d_model, inner, bias=False)
        self.k = nn.Linear(config.d_model, inner, bias=False)
        self.v = nn.Linear(config.d_model, inner, bias=False)
        self.o = nn.Linear(inner, config.d_model, bias=False)
        self.dropout = config.dropout_rate

    def split(self, x):
        return x.view(x.shape[0], x.shape[1], self.n_heads, self.d_kv).transpose(1, 2)

    def forward(self, x, kv=None, bias=None, causal: bool = False, key_mask=None):
        kv = x if kv is None else kv
        q, k, v = self.split(self.q(x)), self.split(self.k(kv)), self.split(self.v(kv))
        blocked = None
        if causal:
            blocked = causal_mask(q.shape[2], k.shape[2], x.device)
        if key_mask is not None:
            pad = ~key_mask[:, None, None, :]
            blocked = pad if blocked is None else blocked | pad
        bias = None if bias is None else bias[:, : self.n_heads]
        out = sdpa(q, k, v, bias, blocked, self.dropout if self.training else 0.0, scale=1.0)
        return self.o(out.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1))


def sdpa(q, k, v, bias=None, blocked=None, dropout: float = 0.0, scale: float | None = None):
    """softmax(scale q k^T + bias) v over (B, heads, n, d_kv), keys where `blocked` is True left out,
    by F.scaled_dot_product_attention, so a GPU runs a fused kernel (memory-efficient: flash takes no
    bias). Bias and masks fold into one additive float mask (NEG_INF where blocked) rather than a
    boolean one, whose fully masked rows give zeros or NaN depending on the backend. The softmax
    stays in fp32 for bf16 inputs, as the hand-written version did: the fused and CPU-flash kernels
    accumulate in fp32 and the math fallback upcasts (torch's default math-SDP precision)."""
    if blocked is not None:
        bias = torch.where(blocked, NEG_INF, 0.0 if bias is None else bias)
    mask = None if bias is None else bias.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, scale=scale)


def attention_flops(d: int, inner: int, n_q: int, n_k: int) -> int:
    """Matmul FLOPs of one Attention call over a whole sequence: projections, scores, weighted sum."""
    return 2 * d * inner * (2 * n_q + 2 * n_k) + 2 * 2 * n_q * n_k * inner


class DenseReluDense(nn.Module):
    """T5 v1.0 feed-forward: wo(relu(wi x))."""

    def __init__(self, config, d_ff: int | None = None):
        super().__init__()
        d_ff = d_ff or config.d_ff
        self.wi = nn.Linear(config.d_model, d_ff, bias=False)
        self.wo = nn.Linear(d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, x, ctx=None):
        return self.wo(self.dropout(F.relu(self.wi(x))))


class GatedGelu(nn.Module):
    """T5 v1.1 gated feed-forward (Shazeer 2020, GEGLU): wo(gelu(wi_0 x) * wi_1 x), tanh-approximate GELU."""

    def __init__(self, config):
        super().__init__()
        self.wi_0 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wi_1 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, x, ctx=None):
        return self.wo(self.dropout(F.gelu(self.wi_0(x), approximate="tanh") * self.wi_1(x)))


def zero_padding(x, mask):
    """Zero the padded positions (mask False) before a convolution or token-mixing layer."""
    return x if mask is None else x * mask[..., None].to(x.dtype)


class SeparableConv1d(nn.Module):
    """Depthwise conv (kernel k, one filter per channel) then a pointwise projection, as Keras'
    SeparableConv1D used by the Evolved Transformer; `causal` pads on the left only."""

    def __init__(self, d_in: int, d_out: int, kernel: int, causal: bool):
        super().__init__()
        self.kernel, self.causal = kernel, causal
        self.depthwise = nn.Conv1d(d_in, d_in, kernel, groups=d_in, bias=False)
        self.pointwise = nn.Linear(d_in, d_out, bias=False)

    def forward(self, x):  # (B, n, d_in) -> (B, n, d_out)
        pad = (self.kernel - 1, 0) if self.causal else ((self.kernel - 1) // 2, self.kernel // 2)
        y = self.depthwise(F.pad(x.transpose(1, 2), pad)).transpose(1, 2)
        return self.pointwise(y)


def separable_flops(d_in: int, d_out: int, kernel: int, n: int) -> int:
    return 2 * n * d_in * kernel + 2 * n * d_in * d_out


def init_module(module: nn.Module, config, init) -> None:
    """T5 initialisation (HF T5PreTrainedModel._init_weights), extended with the fan-in rule
    std = factor / sqrt(fan_in) (the one T5 uses for wi/wo) for every other projection and conv."""
    f = config.initializer_factor
    if isinstance(module, RMSNorm):
        init.constant_(module.weight, f)
    elif isinstance(module, Attention):
        init.normal_(module.q.weight, mean=0.0, std=f * (config.d_model * module.d_kv) ** -0.5)
        init.normal_(module.k.weight, mean=0.0, std=f * config.d_model ** -0.5)
        init.normal_(module.v.weight, mean=0.0, std=f * config.d_model ** -0.5)
        init.normal_(module.o.weight, mean=0.0, std=f * (module.n_heads * module.d_kv) ** -0.5)
    elif isinstance(module, RelativeBias):
        init.normal_(module.weight.weight, mean=0.0, std=f * config.d_model ** -0.5)
    elif isinstance(module, nn.Linear) and not getattr(module, "_archscale_init", False):
        init.normal_(module.weight, mean=0.0, std=f * module.in_features ** -0.5)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, nn.Conv1d):
        fan_in = module.in_channels // module.groups * module.kernel_size[0]
        init.normal_(module.weight, mean=0.0, std=f * fan_in ** -0.5)
        if module.bias is not None:
            init.zeros_(module.bias)
