"""funnel: the Funnel-Transformer encoder (Dai et al. 2020) on the T5 code path.

The encoder's layers are split into `funnel_blocks` blocks; entering every block after the first,
the sequence is mean-pooled with stride 2 and the block's first layer attends from the pooled
queries to the unpooled keys and values ("pool-query-only", their Sec. 2.2). Relative position
buckets use the positions of the pooled tokens (the first token each one covers). The decoder
cross-attends to the compressed sequence, as the paper's encoder-decoder variant (Sec. 2.3)
without re-upsampling, so the decoder's cross-attention FLOPs shrink too.

Shape overrides: `funnel_blocks` (default 3, their B6-6-6 / B8-8-8 / B10-10-10 shapes); a stack
with fewer layers than blocks uses one layer per block. Layers are split as evenly as possible,
the earlier blocks taking the remainder.
"""

from __future__ import annotations

import math

import torch.nn.functional as F

from archscale.models import encdec


def block_starts(n_layers: int, n_blocks: int) -> list[int]:
    """Indices of the first layer of blocks 2..B."""
    blocks = min(n_blocks, n_layers)
    sizes = [n_layers // blocks + (1 if b < n_layers % blocks else 0) for b in range(blocks)]
    return [sum(sizes[:b]) for b in range(1, blocks)]


def pool(x, mask):
    """Mean over windows of 2 (a last odd token stays on its own)."""
    y = F.avg_pool1d(x.transpose(1, 2), 2, 2, ceil_mode=True).transpose(1, 2)
    m = None if mask is None else F.max_pool1d(mask[:, None].float(), 2, 2, ceil_mode=True)[:, 0].bool()
    return y, m


def _stack_flops(c, n):
    layer_flops = encdec.lookup("layer", c.layer)[1]
    starts, total = set(block_starts(c.num_layers, c.block["funnel_blocks"])), 0
    for i in range(c.num_layers):
        if i in starts:
            total += layer_flops(c, i, math.ceil(n / 2), n, False)
            n = math.ceil(n / 2)
        else:
            total += layer_flops(c, i, n, n, False)
    return total, n


@encdec.register("stack", "funnel", _stack_flops)
class FunnelEncoder(encdec.Stack):
    def __init__(self, config, is_decoder: bool):
        super().__init__(config, is_decoder)
        self.starts = set(block_starts(config.num_layers, config.block["funnel_blocks"]))

    def forward(self, h, ctx, hidden):
        h = self.dropout(h)
        for i in range(self.n_apply):
            if hidden is not None:
                hidden.append(h)
            if i in self.starts:  # pooled queries attend to the full-length keys and values
                kv, kv_mask, kv_pos = h, ctx.key_mask, ctx.q_pos
                h, pooled_mask = pool(h, kv_mask)
                ctx.q_pos, ctx.k_pos = kv_pos[::2], kv_pos
                h = self.run_layer(i, h, ctx, kv=kv)
                ctx.k_pos, ctx.key_mask = ctx.q_pos, pooled_mask
            else:
                h = self.run_layer(i, h, ctx)
        h = self.dropout(self.final_norm(h))
        if hidden is not None:
            hidden.append(h)
        return h, ctx.key_mask


def make_config(shape, vocab_size, seq_len, special, dropout, options):
    encdec.check_options("funnel", options, set())
    block = {"funnel_blocks": int(shape.get("funnel_blocks", 3))}
    return encdec.make_config("funnel", shape, vocab_size, seq_len, special, dropout, stack="funnel", block=block)


def analytic_flops(rc, kind, vocab, n_in, n_tgt):
    return encdec.flops_from_rc(make_config, rc, vocab, n_in, n_tgt)
