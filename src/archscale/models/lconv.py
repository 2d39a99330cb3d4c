"""lconv: lightweight convolutions (Wu et al. 2019) in place of self-attention on the T5 code path.

The mixer is their LightConv block (Fig. 2b): a GLU input projection d -> 2d -> d, a depthwise
convolution whose kernel is shared by the d/H channels of each of H heads and softmax-normalised
over its width (their Eq. 3), then an output projection. The decoder's convolution is causal
(left padding only); cross-attention stays attention, as in their encoder-decoder models. The
convolution is position-aware, so the stack has no position bias. No biases, as everywhere in T5.

Options: `kernel_sizes` per layer (default Wu et al. Sec. 6.1: 3, 7, 15, then 31; the last value
repeats for deeper stacks), `conv_heads` H (default 16, theirs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archscale.models import encdec
from archscale.models.layers import zero_padding

DEFAULTS = {"kernel_sizes": [3, 7, 15, 31, 31, 31, 31], "conv_heads": 16}


def kernel_size(config, index: int) -> int:
    sizes = config.block["kernel_sizes"]
    return int(sizes[min(index, len(sizes) - 1)])


def pad_for(kernel: int, causal: bool) -> tuple[int, int]:
    return (kernel - 1, 0) if causal else ((kernel - 1) // 2, kernel // 2)


class ConvMixer(nn.Module):
    """GLU in, a convolution over time (`convolve`, defined by subclasses), projection out."""

    def __init__(self, config, is_decoder: bool, index: int):
        super().__init__()
        d, heads = config.d_model, config.block["conv_heads"]
        if d % heads:
            raise ValueError(f"{config.arch}: d_model {d} is not a multiple of conv_heads {heads}")
        self.heads, self.kernel, self.causal = heads, kernel_size(config, index), is_decoder
        self.glu = nn.Linear(d, 2 * d, bias=False)
        self.out = nn.Linear(d, d, bias=False)
        self.weight_dropout = config.dropout_rate

    def forward(self, x, ctx, kv=None):
        h = F.glu(self.glu(x), dim=-1)
        return self.out(self.convolve(zero_padding(h, ctx.key_mask)))


class LightConv(ConvMixer):
    def __init__(self, config, is_decoder: bool, index: int):
        super().__init__(config, is_decoder, index)
        self.weight = nn.Parameter(torch.empty(self.heads, 1, self.kernel))

    def archscale_init(self, config, init):
        init.normal_(self.weight, mean=0.0, std=config.initializer_factor * self.kernel ** -0.5)

    def convolve(self, h):  # (B, n, d): depthwise conv, channel c uses head c // (d / H)
        w = F.dropout(torch.softmax(self.weight, dim=-1), self.weight_dropout, self.training)
        w = w.repeat_interleave(h.shape[-1] // self.heads, dim=0)
        y = F.conv1d(F.pad(h.transpose(1, 2), pad_for(self.kernel, self.causal)), w, groups=h.shape[-1])
        return y.transpose(1, 2)


def projection_flops(c, n: int) -> int:
    return 2 * c.d_model * 2 * c.d_model * n + 2 * c.d_model * c.d_model * n


encdec.register("mixer", "lconv",
                lambda c, i, n, _k, dec: projection_flops(c, n) + 2 * kernel_size(c, i) * c.d_model * n)(
    LightConv)


def make_config(shape, vocab_size, seq_len, special, dropout, options):
    block = {**DEFAULTS, **encdec.check_options("lconv", options, set(DEFAULTS))}
    return encdec.make_config("lconv", shape, vocab_size, seq_len, special, dropout, mixer="lconv",
                              positions="none", block=block)


def analytic_flops(rc, kind, vocab, n_in, n_tgt):
    return encdec.flops_from_rc(make_config, rc, vocab, n_in, n_tgt)
