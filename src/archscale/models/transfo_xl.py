"""transfo_xl: Transformer-XL (Dai et al. 2019), native because transformers 5.x removed it.

- Segment-level recurrence (Sec. 3.2): every layer also attends to the cached inputs of that layer
  over the previous `mem_len` tokens, with the gradient stopped through the cache. Training and
  evaluation run it over contiguous token streams, as Dai et al. do: the corpus is cut into one
  stream per batch row (`train.pretrain.stream_batch`), each step feeds the next segment of every
  stream and the `mems` the model returns come back in with the next step (`is_recurrent` is the
  one predicate the training loop and `eval.upstream.evaluate` ask). By default a training window
  is one segment (seg_len = mem_len = train.seq_len, Dai et al.'s tgt_len = mem_len), so every
  token attends to its own segment plus the whole previous one; a seg_len below seq_len splits a
  window into segments that also recur within it.
- Relative positional attention (Sec. 3.3): score = (q + u) k^T + rel_shift((q + v) (R W_r)^T),
  with sinusoidal R over distances klen-1..0, u, v learned per layer (HF's untie_r default).
- Post-norm layers (the original; `pre_lnorm` option), ReLU FFN with biases, embedding scaled by
  sqrt(d_model), softmax over the full vocabulary tied to the embedding with an output bias (the
  paper's adaptive softmax is a large-vocabulary device; the 8k-32k vocabularies here need none).
The interface is HF's CausalLM: labels = input_ids, shifted inside; `mems` in, `out.mems` out.

Options: `seg_len`, `mem_len` (default train.seq_len each; mem_len 0 turns the recurrence off),
`pre_lnorm` (false), `clamp_len` (-1: no clamping of distances).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutput

from archscale.models.layers import causal_mask, sdpa, sinusoid


class TransfoXLConfig(PretrainedConfig):
    model_type = "archscale_transfo_xl"
    attribute_map = {"hidden_size": "d_model", "num_attention_heads": "n_head", "num_hidden_layers": "n_layer"}

    def __init__(self, vocab_size=32000, d_model=512, n_head=8, d_head=64, d_inner=2048, n_layer=6, seg_len=64,
                 mem_len=64, clamp_len=-1, pre_lnorm=False, dropout=0.0, layer_norm_epsilon=1e-5,
                 init_std=0.02, pad_token_id=0, eos_token_id=1, **kwargs):
        self.vocab_size, self.d_model, self.n_head, self.d_head = vocab_size, d_model, n_head, d_head
        self.d_inner, self.n_layer, self.seg_len, self.mem_len = d_inner, n_layer, seg_len, mem_len
        self.clamp_len, self.pre_lnorm, self.dropout = clamp_len, pre_lnorm, dropout
        self.layer_norm_epsilon, self.init_std = layer_norm_epsilon, init_std
        kwargs.setdefault("use_cache", False)
        super().__init__(pad_token_id=pad_token_id, eos_token_id=eos_token_id, **kwargs)


def rel_shift(x: torch.Tensor) -> torch.Tensor:
    """(B, H, q, k) scores against distances k-1..0 -> scores against key j (Dai et al. App. B)."""
    b, h, q, k = x.shape
    padded = torch.cat([x.new_zeros(b, h, q, 1), x], dim=-1).view(b, h, k + 1, q)
    return padded[:, :, 1:].reshape(b, h, q, k)


class RelPartialLearnableLayer(nn.Module):
    def __init__(self, c: TransfoXLConfig):
        super().__init__()
        inner = c.n_head * c.d_head
        self.n_head, self.d_head, self.pre_lnorm = c.n_head, c.d_head, c.pre_lnorm
        self.qkv = nn.Linear(c.d_model, 3 * inner, bias=False)
        self.r_net = nn.Linear(c.d_model, inner, bias=False)
        self.o = nn.Linear(inner, c.d_model, bias=False)
        self.r_w_bias = nn.Parameter(torch.zeros(c.n_head, c.d_head))
        self.r_r_bias = nn.Parameter(torch.zeros(c.n_head, c.d_head))
        self.attn_norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_epsilon)
        self.ff1, self.ff2 = nn.Linear(c.d_model, c.d_inner), nn.Linear(c.d_inner, c.d_model)
        self.ff_norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_epsilon)
        self.dropout = nn.Dropout(c.dropout)

    def attention(self, h, r, mem):
        b, q_len = h.shape[:2]
        cat = h if mem is None else torch.cat([mem, h], dim=1)
        k_len, m_len = cat.shape[1], cat.shape[1] - q_len
        x = self.attn_norm(cat) if self.pre_lnorm else cat
        q, k, v = self.qkv(x).view(b, k_len, 3, self.n_head, self.d_head).unbind(2)
        q = q[:, m_len:]
        r_k = self.r_net(r).view(k_len, self.n_head, self.d_head)
        scale = 1 / math.sqrt(self.d_head)
        bd = rel_shift(torch.einsum("bihd,jhd->bhij", q + self.r_r_bias, r_k))
        # the content term (q + u) k^T and the weighted sum run in SDPA, the position term as its bias
        out = sdpa((q + self.r_w_bias).transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), bd * scale,
                   causal_mask(q_len, k_len, h.device, offset=m_len), self.dropout.p if self.training else 0.0,
                   scale=scale)
        return self.o(out.transpose(1, 2).reshape(b, q_len, -1))

    def forward(self, h, r, mem):
        if self.pre_lnorm:
            h = h + self.dropout(self.attention(h, r, mem))
            return h + self.dropout(self.ff2(self.dropout(F.relu(self.ff1(self.ff_norm(h))))))
        h = self.attn_norm(h + self.dropout(self.attention(h, r, mem)))
        return self.ff_norm(h + self.dropout(self.ff2(self.dropout(F.relu(self.ff1(h))))))


@dataclass
class TransfoXLOutput(CausalLMOutput):
    """CausalLMOutput plus the per-layer memory after the last segment."""
    mems: list | None = None


class TransfoXLLMHeadModel(PreTrainedModel):
    config_class = TransfoXLConfig
    base_model_prefix = "transformer"
    main_input_name = "input_ids"

    def __init__(self, config: TransfoXLConfig):
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.layers = nn.ModuleList([RelPartialLearnableLayer(config) for _ in range(config.n_layer)])
        self.embed_out_bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.dropout = nn.Dropout(config.dropout)
        self.post_init()

    def _init_weights(self, module):
        from transformers import initialization as init

        std = self.config.init_std
        if isinstance(module, (nn.Linear, nn.Embedding)):
            init.normal_(module.weight, mean=0.0, std=std)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, RelPartialLearnableLayer):
            init.normal_(module.r_w_bias, mean=0.0, std=std)
            init.normal_(module.r_r_bias, mean=0.0, std=std)
        elif module is self:
            init.zeros_(module.embed_out_bias)

    def get_input_embeddings(self):
        return self.embed

    def _positions(self, k_len: int, device):
        pos = torch.arange(k_len - 1, -1, -1.0, device=device)
        if self.config.clamp_len > 0:
            pos = pos.clamp(max=self.config.clamp_len)
        return self.dropout(sinusoid(pos, self.config.d_model))

    def forward(self, input_ids=None, labels=None, mems=None, attention_mask=None, output_hidden_states=None,
                return_dict=None, **kwargs):
        """`attention_mask` is accepted and unused: right padding cannot reach earlier positions."""
        c = self.config
        mems = list(mems) if mems is not None else [None] * c.n_layer
        outs, hidden = [], [[] for _ in range(c.n_layer + 1)] if output_hidden_states else None
        for s in range(0, input_ids.shape[1], c.seg_len):
            h = self.dropout(self.embed(input_ids[:, s:s + c.seg_len]) * math.sqrt(c.d_model))
            m_len = 0 if mems[0] is None else mems[0].shape[1]
            r = self._positions(m_len + h.shape[1], h.device).to(h.dtype)
            inputs = []
            for i, layer in enumerate(self.layers):
                inputs.append(h)
                if hidden is not None:
                    hidden[i].append(h)
                h = layer(h, r, mems[i])
            h = self.dropout(h)
            if hidden is not None:
                hidden[-1].append(h)
            mems = [(x if m is None else torch.cat([m, x], dim=1))[:, -c.mem_len:].detach() if c.mem_len > 0 else None
                    for m, x in zip(mems, inputs)]
            outs.append(h)
        h = torch.cat(outs, dim=1)
        logits = F.linear(h, self.embed.weight, self.embed_out_bias)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1),
                                   ignore_index=-100)
        return TransfoXLOutput(loss=loss, logits=logits, mems=mems,
                               hidden_states=tuple(torch.cat(x, dim=1) for x in hidden) if hidden is not None else None)


AutoConfig.register(TransfoXLConfig.model_type, TransfoXLConfig)
AutoModelForCausalLM.register(TransfoXLConfig, TransfoXLLMHeadModel)

OPTIONS = {"seg_len", "mem_len", "pre_lnorm", "clamp_len"}


def make_config(shape, vocab_size, seq_len, special, dropout, options):
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise ValueError(f"architectures.<transfo_xl>.options: unknown key(s) {unknown}; accepts {sorted(OPTIONS)}")
    seg_len = int(options.get("seg_len", seq_len))
    if seg_len < 1 or int(options.get("mem_len", seg_len)) < 0:
        raise ValueError(f"architectures.<transfo_xl>.options: seg_len must be >= 1 and mem_len >= 0, got {options}")
    return TransfoXLConfig(vocab_size=vocab_size, d_model=shape["d_model"], n_head=shape["n_heads"],
                           d_head=shape["d_kv"], d_inner=shape["d_ff"], n_layer=shape["n_layers"], seg_len=seg_len,
                           mem_len=int(options.get("mem_len", seg_len)), clamp_len=int(options.get("clamp_len", -1)),
                           pre_lnorm=bool(options.get("pre_lnorm", False)), dropout=dropout,
                           pad_token_id=special["pad"], eos_token_id=special["eos"])


def is_recurrent(config) -> bool:
    """The one test for "carry memory across steps": a Transformer-XL config with mem_len > 0.
    Training (stream batches, mems per micro-batch) and evaluation (contiguous windows) ask it."""
    return isinstance(config, TransfoXLConfig) and config.mem_len > 0


def empty_memory(config, batch: int, dtype=None, device=None):
    """A full memory of zeros, (n_layer, batch, mem_len, d_model): the shape every step after the
    first sees. The FLOPs probe runs with it, so measured FLOPs count the mem_len memory keys."""
    import torch

    return torch.zeros(config.n_layer, batch, config.mem_len, config.d_model, dtype=dtype, device=device)


def analytic_flops(rc, kind, vocab, n_in, n_tgt):
    """Per token of a training step in steady state: every segment attends to mem_len memory keys
    (the previous step's segment, or the previous segments of this window) besides its own, and
    its q/k/v projection runs over the memory rows too (Dai et al.'s code projects cat(mem, h) and
    keeps the last q_len queries). The position projection r_net runs once per batch, not per
    sequence: it is shared by the train.micro_batch_size sequences of the batch the FLOPs are
    measured on. With mem_len 0 this is the memory-free count."""
    special = {"pad": 0, "eos": 1}
    c = make_config(rc["shape"], vocab, rc["train"]["seq_len"], special, 0.0,
                    dict(rc["architecture"].get("options", {})))
    d, inner, total = c.d_model, c.n_head * c.d_head, 0
    batch = rc["train"].get("micro_batch_size", 1)
    for s in range(0, n_in, c.seg_len):
        q = min(c.seg_len, n_in - s)
        k = q + c.mem_len
        per_layer = (2 * d * 3 * inner * k + 2 * d * inner * k / batch + 3 * 2 * q * k * inner + 2 * inner * d * q
                     + 2 * 2 * d * c.d_inner * q)
        total += c.n_layer * per_layer
    return total / n_in + 2 * d * vocab
