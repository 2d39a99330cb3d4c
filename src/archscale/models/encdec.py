"""One encoder-decoder code path for the whole Tay et al. (2022) set.

`EncDecForConditionalGeneration` is T5 v1.0 (layers.py) with seven plug points, each filled by
name from a registry that the block modules extend at import time:

- `mixer`  the self-attention sublayer (attention, performer, lconv, dconv, mixer)
- `cross`  the encoder-decoder attention sublayer (attention, performer)
- `ffn`    the feed-forward sublayer (relu, gated-gelu, switch)
- `layer`  the whole layer, for blocks that rewire the sublayers (t5, evolved)
- `stack`  the encoder stack (default, funnel); `head` the output layer (tied, mos);
  `embed`  the input embedding (plain, factorised)
plus `share_layers` (one layer applied num_layers times: universal, albert). Every registry
entry carries its analytic FLOP count beside the module, so `analytic_flops` adds up exactly the
matrix products that the model runs; shared layers count every application.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForSeq2SeqLM, GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput

from archscale.models.layers import (
    Attention,
    DenseReluDense,
    GatedGelu,
    RelativeBias,
    RMSNorm,
    attention_flops,
    init_module,
    sinusoid,
)

REGISTRY: dict[str, dict[str, tuple[Callable, Callable]]] = {
    k: {} for k in ("mixer", "cross", "ffn", "layer", "stack", "head", "embed")}


def register(kind: str, name: str, flops: Callable):
    """Decorator: make the class (or factory) the `kind` named `name`. Constructors take
    mixer/ffn/layer: (config, is_decoder, index); stack: (config, is_decoder); cross/head/embed: (config).
    `flops` gives its forward matmul FLOPs: mixer/cross/ffn/layer (config, index, n_q, n_k, is_decoder)
    for one sequence; stack (config, n) -> (FLOPs, output length); head (config) per token; embed
    (config) -> (input, output logits) per token."""
    def wrap(factory):
        REGISTRY[kind][name] = (factory, flops)
        return factory
    return wrap


def lookup(kind: str, name: str):
    if name not in REGISTRY[kind]:
        known = ", ".join(sorted(REGISTRY[kind]))
        raise ValueError(f"unknown {kind} {name!r} (known: {known}); native blocks register themselves when "
                         "archscale.models.registry.register_native() imports them")
    return REGISTRY[kind][name]


class EncDecConfig(PretrainedConfig):
    model_type = "archscale_encdec"
    attribute_map = {"hidden_size": "d_model", "num_attention_heads": "num_heads", "num_hidden_layers": "num_layers"}

    def __init__(self, vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=None,
                 num_heads=8, relative_attention_num_buckets=32, relative_attention_max_distance=128,
                 dropout_rate=0.0, layer_norm_epsilon=1e-6, initializer_factor=1.0, arch="transformer",
                 mixer="attention", cross="attention", ffn="relu", layer="t5", stack="default", head="tied",
                 embed="plain", positions="relative", share_layers=False, timestep_signal=False, max_seq_len=512,
                 block=None, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, is_encoder_decoder=True,
                 **kwargs):
        self.vocab_size, self.d_model, self.d_kv, self.d_ff = vocab_size, d_model, d_kv, d_ff
        self.num_layers, self.num_heads = num_layers, num_heads
        self.num_decoder_layers = num_layers if num_decoder_layers is None else num_decoder_layers
        self.relative_attention_num_buckets = relative_attention_num_buckets
        self.relative_attention_max_distance = relative_attention_max_distance
        self.dropout_rate, self.layer_norm_epsilon, self.initializer_factor = (
            dropout_rate, layer_norm_epsilon, initializer_factor)
        self.arch, self.mixer, self.cross, self.ffn, self.layer = arch, mixer, cross, ffn, layer
        self.stack, self.head, self.embed, self.positions = stack, head, embed, positions
        self.share_layers, self.timestep_signal, self.max_seq_len = share_layers, timestep_signal, max_seq_len
        self.block = dict(block or {})
        kwargs.setdefault("use_cache", False)
        super().__init__(pad_token_id=pad_token_id, eos_token_id=eos_token_id,
                         decoder_start_token_id=decoder_start_token_id, is_encoder_decoder=is_encoder_decoder, **kwargs)


@dataclass
class Context:
    """What a sublayer may need besides its input: positions, masks, encoder output, aux losses."""
    is_decoder: bool
    q_pos: torch.Tensor
    k_pos: torch.Tensor
    key_mask: torch.Tensor | None = None
    memory: torch.Tensor | None = None
    memory_mask: torch.Tensor | None = None
    bias_fn: Callable | None = None
    aux: list | None = None

    def bias(self):
        return None if self.bias_fn is None else self.bias_fn(self.q_pos, self.k_pos)


def _attention_mixer_flops(c, i, n_q, n_k, dec):
    return attention_flops(c.d_model, c.num_heads * c.d_kv, n_q, n_k)


@register("mixer", "attention", _attention_mixer_flops)
class SelfAttention(Attention):
    def __init__(self, config, is_decoder: bool = False, index: int = 0):
        super().__init__(config)

    def forward(self, x, ctx: Context, kv=None):
        return super().forward(x, kv=kv, bias=ctx.bias(), causal=ctx.is_decoder, key_mask=ctx.key_mask)


@register("cross", "attention", _attention_mixer_flops)
class CrossAttention(Attention):
    def forward(self, x, ctx: Context):
        return super().forward(x, kv=ctx.memory, key_mask=ctx.memory_mask)


register("ffn", "relu", lambda c, i, n, _k, dec: 2 * 2 * c.d_model * c.d_ff * n)(
    lambda config, is_decoder, index: DenseReluDense(config))
register("ffn", "gated-gelu", lambda c, i, n, _k, dec: 3 * 2 * c.d_model * c.d_ff * n)(
    lambda config, is_decoder, index: GatedGelu(config))


def _t5_layer_flops(c, i, n_q, n_k, dec):
    """n_k: the encoder output length for decoder layers (cross-attention keys)."""
    self_n_k = n_q if dec else n_k
    f = lookup("mixer", c.mixer)[1](c, i, n_q, self_n_k, dec) + lookup("ffn", c.ffn)[1](c, i, n_q, n_q, dec)
    return f + (lookup("cross", c.cross)[1](c, i, n_q, n_k, dec) if dec else 0)


@register("layer", "t5", _t5_layer_flops)
class T5Layer(nn.Module):
    """Pre-norm residual sublayers: mixer, cross-attention (decoder), feed-forward."""

    def __init__(self, config, is_decoder: bool, index: int):
        super().__init__()
        eps = config.layer_norm_epsilon
        self.mixer_norm, self.ffn_norm = RMSNorm(config.d_model, eps), RMSNorm(config.d_model, eps)
        self.mixer = lookup("mixer", config.mixer)[0](config, is_decoder, index)
        if is_decoder:
            self.cross_norm = RMSNorm(config.d_model, eps)
            self.cross = lookup("cross", config.cross)[0](config)
        self.ffn = lookup("ffn", config.ffn)[0](config, is_decoder, index)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.is_decoder = is_decoder

    def forward(self, h, ctx: Context, kv=None):
        """`kv`: the unpooled input when the queries were pooled (Funnel); keys/values come from it."""
        h = h + self.dropout(self.mixer(self.mixer_norm(h), ctx, kv=None if kv is None else self.mixer_norm(kv)))
        if self.is_decoder:
            h = h + self.dropout(self.cross(self.cross_norm(h), ctx))
        return h + self.dropout(self.ffn(self.ffn_norm(h), ctx))


def stack_flops(c, n_q, n_k, dec):
    layer_flops = lookup("layer", c.layer)[1]
    n_layers = c.num_decoder_layers if dec else c.num_layers
    return sum(layer_flops(c, 0 if c.share_layers else i, n_q, n_k, dec) for i in range(n_layers))


@register("stack", "default", lambda c, n: (stack_flops(c, n, n, False), n))
class Stack(nn.Module):
    """A T5 stack: layers (or one shared layer applied n times), final norm, one relative-bias table."""
    main_input_name = "input_ids"  # generate() asks model.encoder for it

    def __init__(self, config, is_decoder: bool):
        super().__init__()
        self.is_decoder = is_decoder
        self.n_apply = config.num_decoder_layers if is_decoder else config.num_layers
        build = lookup("layer", config.layer)[0]
        if config.share_layers:  # Dehghani et al. 2019; Lan et al. 2020: parameters once, applied n times
            self.layers = nn.ModuleList([build(config, is_decoder, 0)])
        else:
            self.layers = nn.ModuleList([build(config, is_decoder, i) for i in range(self.n_apply)])
        if config.positions == "relative":
            heads = config.block.get("decoder_bias_heads", config.num_heads) if is_decoder else config.num_heads
            self.relative_bias = RelativeBias(config, heads, not is_decoder)
        self.final_norm = RMSNorm(config.d_model, config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.timestep = config.timestep_signal
        self.d_model = config.d_model

    def layer(self, i: int):
        return self.layers[0] if len(self.layers) == 1 else self.layers[i]

    def context(self, h, mask, memory=None, memory_mask=None, aux=None) -> Context:
        pos = torch.arange(h.shape[1], device=h.device)
        bias_fn = getattr(self, "relative_bias", None)
        return Context(self.is_decoder, pos, pos, mask, memory, memory_mask, bias_fn, aux)

    def run_layer(self, i, h, ctx, kv=None):
        if self.timestep:  # Universal Transformer: a timestep coordinate signal before every step (Eq. 2)
            h = h + sinusoid(torch.tensor([i], device=h.device), self.d_model).to(h.dtype)
        return self.layer(i)(h, ctx, kv=kv)

    def forward(self, h, ctx: Context, hidden: list | None):
        h = self.dropout(h)
        for i in range(self.n_apply):
            if hidden is not None:
                hidden.append(h)
            h = self.run_layer(i, h, ctx)
        h = self.dropout(self.final_norm(h))
        if hidden is not None:
            hidden.append(h)
        return h, ctx.key_mask


def embed_flops(config) -> tuple[int, int]:
    """(input lookup, output logits) matmul FLOPs per token of the config's embedding."""
    return lookup("embed", config.embed)[1](config)


@register("embed", "plain", lambda c: (0, 2 * c.d_model * c.vocab_size))
class PlainEmbedding(nn.Module):
    """T5's shared token embedding; the tied head multiplies by its transpose."""

    def __init__(self, config):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(config.vocab_size, config.d_model))

    def forward(self, ids):
        return F.embedding(ids, self.weight)

    def logits(self, h):
        return h @ self.weight.t()


@register("head", "tied", lambda c: embed_flops(c)[1])
class TiedHead(nn.Module):
    """T5 v1.0 tied output: (h / sqrt(d_model)) E^T."""

    def __init__(self, config):
        super().__init__()
        self.scale = config.d_model ** -0.5

    def forward(self, h, embed):
        return embed.logits(h * self.scale)


@dataclass
class ArchscaleSeq2SeqLMOutput(Seq2SeqLMOutput):
    """Seq2SeqLMOutput plus the auxiliary loss already included in `loss` (Switch load balancing)."""
    aux_loss: torch.FloatTensor | None = None


class _EncoderView:
    """What `get_encoder()` returns: the encoder half as a callable, without registering a second
    module that would duplicate the shared embedding in the state dict."""
    main_input_name = "input_ids"

    def __init__(self, model):
        self.model = model

    def __call__(self, input_ids=None, attention_mask=None, output_hidden_states=None, return_dict=True, **kwargs):
        return self.model.encode(input_ids, attention_mask, bool(output_hidden_states))

    forward = __call__


class EncDecForConditionalGeneration(PreTrainedModel, GenerationMixin):
    config_class = EncDecConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _supports_cache_class = False

    def __init__(self, config: EncDecConfig):
        super().__init__(config)
        self.embed = lookup("embed", config.embed)[0](config)
        self.encoder = lookup("stack", config.stack)[0](config, is_decoder=False)
        self.decoder = Stack(config, is_decoder=True)
        self.head = lookup("head", config.head)[0](config)
        self.post_init()

    def _init_weights(self, module):
        from transformers import initialization as init

        f = self.config.initializer_factor
        if isinstance(module, PlainEmbedding):
            init.normal_(module.weight, mean=0.0, std=f * 1.0)
        elif hasattr(module, "archscale_init"):
            module.archscale_init(self.config, init)
        else:
            init_module(module, self.config, init)

    def get_encoder(self):
        return _EncoderView(self)

    def get_input_embeddings(self):
        return self.embed

    def _positions(self, h):
        if self.config.positions != "sinusoidal":
            return h
        return h + sinusoid(torch.arange(h.shape[1], device=h.device), self.config.d_model).to(h.dtype)

    def encode(self, input_ids, attention_mask=None, output_hidden_states=False, aux=None):
        mask = attention_mask.bool() if attention_mask is not None else None
        h = self._positions(self.embed(input_ids))
        hidden = [] if output_hidden_states else None
        ctx = self.encoder.context(h, mask, aux=aux)
        h, out_mask = self.encoder(h, ctx, hidden)
        out = BaseModelOutput(last_hidden_state=h, hidden_states=tuple(hidden) if hidden is not None else None)
        out.memory_mask = out_mask  # the (pooled) key mask the decoder's cross-attention must use
        return out

    def _shift_right(self, labels):
        start = self.config.decoder_start_token_id
        shifted = labels.new_full(labels.shape, start)
        shifted[:, 1:] = labels[:, :-1]
        return shifted.masked_fill(shifted == -100, self.config.pad_token_id)

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                labels=None, encoder_outputs=None, output_hidden_states=None, return_dict=None, **kwargs):
        aux: list = []
        if encoder_outputs is None:
            encoder_outputs = self.encode(input_ids, attention_mask, bool(output_hidden_states), aux)
        elif isinstance(encoder_outputs, (tuple, list)):
            encoder_outputs = BaseModelOutput(last_hidden_state=encoder_outputs[0])
        memory = encoder_outputs.last_hidden_state
        memory_mask = getattr(encoder_outputs, "memory_mask", None)
        if memory_mask is None and attention_mask is not None and attention_mask.shape[1] == memory.shape[1]:
            memory_mask = attention_mask.bool()
        if decoder_input_ids is None:
            decoder_input_ids = self._shift_right(labels)
        h = self._positions(self.embed(decoder_input_ids))
        hidden = [] if output_hidden_states else None
        ctx = self.decoder.context(h, None, memory, memory_mask, aux)
        h, _ = self.decoder(h, ctx, hidden)
        logits = self.head(h, self.embed)
        loss = aux_loss = None
        if aux:
            aux_loss = torch.stack(aux).sum()
        if labels is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)
            if aux_loss is not None:
                loss = loss + aux_loss
        return ArchscaleSeq2SeqLMOutput(loss=loss, logits=logits, aux_loss=aux_loss,
                                        decoder_hidden_states=tuple(hidden) if hidden is not None else None,
                                        encoder_last_hidden_state=memory,
                                        encoder_hidden_states=encoder_outputs.hidden_states)

    def prepare_inputs_for_generation(self, input_ids, encoder_outputs=None, attention_mask=None, **kwargs):
        """No key/value cache: the decoder reruns over the whole prefix (every block supports that)."""
        return {"decoder_input_ids": input_ids, "encoder_outputs": encoder_outputs, "attention_mask": attention_mask}


AutoConfig.register(EncDecConfig.model_type, EncDecConfig)
AutoModelForSeq2SeqLM.register(EncDecConfig, EncDecForConditionalGeneration)


def analytic_flops(config: EncDecConfig, n_in: int, n_tgt: int) -> float:
    """Forward matmul FLOPs per encoder input token (the normalisation of flops.py)."""
    enc, n_mem = lookup("stack", config.stack)[1](config, n_in)
    dec = stack_flops(config, n_tgt, n_mem, True)
    embed = embed_flops(config)[0] * (n_in + n_tgt)
    head = lookup("head", config.head)[1](config) * n_tgt
    return (enc + dec + embed + head) / n_in


def make_config(arch: str, shape: dict, vocab_size: int, seq_len: int, special: dict, dropout: float,
                **fields) -> EncDecConfig:
    """The shape table row -> an EncDecConfig (n_layers per stack, as T5's num_layers; a block may
    pass its own num_layers / num_decoder_layers, as evolved does)."""
    layers = {"num_layers": shape["n_layers"], "num_decoder_layers": shape["n_layers"]}
    return EncDecConfig(vocab_size=vocab_size, d_model=shape["d_model"], d_kv=shape["d_kv"], d_ff=shape["d_ff"],
                        num_heads=shape["n_heads"], dropout_rate=dropout, max_seq_len=seq_len, arch=arch,
                        pad_token_id=special["pad"], eos_token_id=special["eos"],
                        decoder_start_token_id=special["pad"], **{**layers, **fields})


def check_options(arch: str, options: dict, allowed: set[str]) -> dict:
    """Options a block does not know are an error, named in params.yaml terms."""
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"architectures.<{arch}>.options: unknown key(s) {unknown}; "
                         f"{arch} accepts {sorted(allowed) or 'none'}")
    return options


def flops_from_rc(make_config_fn: Callable, rc: dict, vocab: int, n_in: int, n_tgt: int) -> float:
    """analytic_flops(rc, ...) of a block module, from its own make_config."""
    special = {"pad": 0, "eos": 1, "unk": 2, "mask": 3, "sentinels": [], "n_special": 4}
    config = make_config_fn(rc["shape"], vocab, rc["train"]["seq_len"], special, rc["train"].get("dropout", 0.0),
                            dict(rc["architecture"].get("options", {})))
    return analytic_flops(config, n_in, n_tgt)
