"""From a run's resolved config to a model: one registry for every architecture.

Two routes, chosen by `architectures.<name>.impl` in params.yaml:
- `hf`: the transformers class of `model_type`. Known types translate the shape table with
  `HF_SHAPES`; any other type AutoConfig knows goes through the common attribute names
  (hidden_size, num_hidden_layers, ...), so it can join the grid from params.yaml alone.
- `native`: `archscale.models.<module>`, which defines `make_config(shape, vocab_size, seq_len,
  special, dropout, options)` and registers its classes with the transformers Auto* factories,
  so every model saves and loads with save_pretrained / from_pretrained.
The objective picks the model kind: span -> encoder-decoder, clm -> decoder, mlm -> encoder. An
mlm run with a sentence task (objectives.mlm.sentence_task nsp/sop: BERT, ALBERT) trains the
type's *ForPreTraining class (MLM + NSP/SOP heads); its export still loads as a masked LM.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

KIND_OF_OBJECTIVE = {"span": "encdec", "clm": "decoder", "mlm": "encoder"}
AUTO_CLASS_OF_KIND = {"encdec": "AutoModelForSeq2SeqLM", "decoder": "AutoModelForCausalLM",
                      "encoder": "AutoModelForMaskedLM"}


def _t5(shape, vocab, seq_len, special, dropout):
    return dict(vocab_size=vocab, d_model=shape["d_model"], d_kv=shape["d_kv"], d_ff=shape["d_ff"],
                num_layers=shape["n_layers"], num_decoder_layers=shape["n_layers"], num_heads=shape["n_heads"],
                dropout_rate=dropout, pad_token_id=special["pad"], eos_token_id=special["eos"],
                decoder_start_token_id=special["pad"], tie_word_embeddings=True)


def _gpt2(shape, vocab, seq_len, special, dropout):
    # GPT-2 ties head size to d_model / n_heads; the shape's d_kv is not used.
    return dict(vocab_size=vocab, n_positions=seq_len, n_embd=shape["d_model"], n_layer=shape["n_layers"],
                n_head=shape["n_heads"], n_inner=shape["d_ff"], resid_pdrop=dropout, embd_pdrop=dropout,
                attn_pdrop=dropout, bos_token_id=special["eos"], eos_token_id=special["eos"],
                pad_token_id=special["pad"])


def _bert_like(shape, vocab, seq_len, special, dropout):
    return dict(vocab_size=vocab, hidden_size=shape["d_model"], num_hidden_layers=shape["n_layers"],
                num_attention_heads=shape["n_heads"], intermediate_size=shape["d_ff"],
                max_position_embeddings=seq_len + 2, hidden_dropout_prob=dropout,
                attention_probs_dropout_prob=dropout, pad_token_id=special["pad"],
                bos_token_id=special["eos"], eos_token_id=special["eos"])


def _generic(shape, vocab, seq_len, special, dropout):
    # Any other AutoConfig type: the common attribute names (most configs map them onto their own
    # through attribute_map), plus the BART family's per-stack names; encoder-decoder types start
    # decoding from pad, as T5. Names a config does not use are stored on it and ignored.
    n, heads = shape["n_layers"], shape["n_heads"]
    return {**_bert_like(shape, vocab, seq_len, special, dropout), "decoder_start_token_id": special["pad"],
            "d_model": shape["d_model"], "encoder_layers": n, "decoder_layers": n, "encoder_attention_heads": heads,
            "decoder_attention_heads": heads, "encoder_ffn_dim": shape["d_ff"], "decoder_ffn_dim": shape["d_ff"]}


def embed_width(shape: dict) -> int:
    """ALBERT's factorised embedding width E: `shape.d_embed`, else min(128, d_model // 2) (Lan et
    al. 2020 use E = 128 at every width; halving keeps it a factorisation at CPU widths)."""
    return int(shape.get("d_embed", min(128, shape["d_model"] // 2)))


def _albert(shape, vocab, seq_len, special, dropout):
    # classifier_dropout_prob drives the SOP head's dropout (AlbertConfig default 0.1): the run's rate, as the rest
    return {**_bert_like(shape, vocab, seq_len, special, dropout), "embedding_size": embed_width(shape),
            "classifier_dropout_prob": dropout}


def reformer_chunk(seq_len: int) -> int:
    """HF's default chunk (64), but at least two chunks per window so LSH/local attention is local."""
    return min(64, max(seq_len // 2, 1))


def _axial_shape(seq_len: int) -> list[int]:
    """Two factors of seq_len, as close to its square root as possible (axial positions need
    prod(axial_pos_shape) == sequence length in training)."""
    a = max(f for f in range(1, int(seq_len ** 0.5) + 1) if seq_len % f == 0)
    return [a, seq_len // a]


def _reformer(shape, vocab, seq_len, special, dropout):
    # Kitaev et al. 2020 as HF configures it: alternating local / LSH attention layers, one hash,
    # reversible residual layers (always, in HF), axial position embeddings, buckets so that a chunk
    # holds about one bucket (HF's own rule: 2 * seq_len / chunk, rounded down to a power of two).
    chunk, d, n = reformer_chunk(seq_len), shape["d_model"], shape["n_layers"]
    buckets = 2 ** max((2 * (seq_len // chunk)).bit_length() - 1, 1)
    return dict(vocab_size=vocab, hidden_size=d, num_attention_heads=shape["n_heads"],
                attention_head_size=shape["d_kv"], feed_forward_size=shape["d_ff"],
                attn_layers=(["local", "lsh"] * n)[:n], axial_pos_shape=_axial_shape(seq_len),
                axial_pos_embds_dim=[d // 2, d - d // 2], max_position_embeddings=seq_len,
                lsh_attn_chunk_length=chunk, local_attn_chunk_length=chunk, num_buckets=buckets, num_hashes=1,
                hidden_dropout_prob=dropout, lsh_attention_probs_dropout_prob=dropout,
                local_attention_probs_dropout_prob=dropout, pad_token_id=special["pad"], eos_token_id=special["eos"])


def _switch_hf(shape, vocab, seq_len, special, dropout):
    # HF SwitchTransformers (for grids that want the transformers class; the Tay `switch` is native).
    # Capacity = sequence length, so no token is dropped; sparse every other layer (Fedus et al. 2022).
    # transformers adds the router losses only when called with output_router_logits=True, which
    # the training loop does not pass: this path trains without load balancing; `switch` has it.
    n = shape["n_layers"]
    return {**_t5(shape, vocab, seq_len, special, dropout), "num_experts": int(shape.get("n_experts", 8)),
            "num_sparse_encoder_layers": max(n // 2, 1), "num_sparse_decoder_layers": max(n // 2, 1),
            "expert_capacity": seq_len, "router_aux_loss_coef": 0.01}


def _llama(shape, vocab, seq_len, special, dropout):
    # Llama (Touvron et al. 2023) as HF configures it: pre-RMSNorm, SwiGLU FFN of width d_ff, rotary
    # positions, no biases, an untied head; heads of the shape's d_kv, a key/value head per query head.
    return dict(vocab_size=vocab, hidden_size=shape["d_model"], intermediate_size=shape["d_ff"],
                num_hidden_layers=shape["n_layers"], num_attention_heads=shape["n_heads"],
                num_key_value_heads=shape["n_heads"], head_dim=shape["d_kv"], max_position_embeddings=seq_len,
                attention_dropout=dropout, tie_word_embeddings=False, bos_token_id=special["eos"],
                eos_token_id=special["eos"], pad_token_id=special["pad"])


# Fine-grained mixture of experts (OLMoE, Muennighoff et al. 2024: 64 experts, 8 per token): every
# FFN is MOE_EXPERTS experts of width d_ff / MOE_TOP_K and each token uses MOE_TOP_K of them, so a
# token's FFN costs the dense d_ff's FLOPs while the layer holds MOE_EXPERTS / MOE_TOP_K times its
# parameters. 16 and 4 keep the experts at least 8 wide at the CPU sizes; options override both.
MOE_EXPERTS, MOE_TOP_K = 16, 4


def _olmoe(shape, vocab, seq_len, special, dropout):
    # OLMoE as HF configures it: Llama's blocks with QK-norm (heads split d_model), a softmax router
    # whose top-k weights are not renormalised, and its load-balancing loss (0.01) added to the
    # training loss (output_router_logits; evaluation scores the logits, without it).
    return dict(vocab_size=vocab, hidden_size=shape["d_model"], intermediate_size=max(shape["d_ff"] // MOE_TOP_K, 1),
                num_hidden_layers=shape["n_layers"], num_attention_heads=shape["n_heads"],
                num_key_value_heads=shape["n_heads"], num_experts=MOE_EXPERTS, num_experts_per_tok=MOE_TOP_K,
                output_router_logits=True, router_aux_loss_coef=0.01, max_position_embeddings=seq_len,
                attention_dropout=dropout, tie_word_embeddings=False, bos_token_id=special["eos"],
                eos_token_id=special["eos"], pad_token_id=special["pad"])


def _mamba2(shape, vocab, seq_len, special, dropout):
    # Mamba-2 (Dao & Gu 2024) as HF configures it: SSD mixer blocks only (no attention, no FFN; no
    # dropout), expand 2, one B/C group, heads of the shape's d_kv, state size 64 (their runs use 64
    # to 256), causal conv width 4. Two blocks per Transformer layer: a block holds ~6 d^2
    # parameters, a Transformer layer 12 d^2 (Gu & Dao 2023 match sizes the same way). The scan
    # works in chunks of min(256, seq_len) positions (HF's default 256; a shorter one would pad).
    d = shape["d_model"]
    return dict(vocab_size=vocab, hidden_size=d, num_hidden_layers=2 * shape["n_layers"], expand=2, n_groups=1,
                head_dim=shape["d_kv"], num_heads=2 * d // shape["d_kv"], state_size=64, conv_kernel=4,
                chunk_size=min(256, seq_len), bos_token_id=special["eos"], eos_token_id=special["eos"],
                pad_token_id=special["pad"])


def _jamba(shape, vocab, seq_len, special, dropout):
    # Jamba (Lieber et al. 2024) as HF configures it: Mamba (v1: state 16, conv 4, expand 2) and
    # attention layers 7:1 (attention at position 4 of every 8; below 8 layers the period is the
    # depth, so even 2 layers mix both), no positional encoding, SwiGLU FFNs of width d_ff, and a
    # mixture of 16 of them, top-2, in every other layer (the one layer of a 1-layer model), with its
    # load-balancing loss (0.001).
    n, period = shape["n_layers"], min(8, shape["n_layers"])
    return dict(vocab_size=vocab, hidden_size=shape["d_model"], intermediate_size=shape["d_ff"], num_hidden_layers=n,
                num_attention_heads=shape["n_heads"], num_key_value_heads=shape["n_heads"],
                attn_layer_period=period, attn_layer_offset=period // 2, expert_layer_period=2,
                expert_layer_offset=min(1, n - 1),
                num_experts=16, num_experts_per_tok=2, output_router_logits=True, router_aux_loss_coef=0.001,
                mamba_d_state=16, mamba_d_conv=4, mamba_expand=2, max_position_embeddings=seq_len,
                attention_dropout=dropout, tie_word_embeddings=False, bos_token_id=special["eos"],
                eos_token_id=special["eos"], pad_token_id=special["pad"])


def zamba2_layout(n_blocks: int) -> list[str]:
    """Zamba2's layer types over n_blocks Mamba2 blocks: "hybrid" (the shared attention + MLP block,
    then the Mamba2 block) at position 2 of every 4, "linear_attention" (a Mamba2 block alone)
    elsewhere; below 4 blocks the period is the depth, so even 2 blocks hold one shared block."""
    period = min(4, n_blocks)
    return ["hybrid" if i % period == period // 2 else "linear_attention" for i in range(n_blocks)]


def _zamba2(shape, vocab, seq_len, special, dropout):
    # Zamba2 (Glorioso et al. 2024) as HF configures it: a backbone of Mamba2 blocks as `_mamba2`
    # (two per Transformer layer, expand 2, one B/C group, heads of d_kv, state 64, conv 4, chunks
    # of min(256, seq_len): HF pads the sequence up to a whole chunk) and one shared transformer
    # block applied before every 4th of them (zamba2_layout; Zamba2-2.7B: every 6th). The shared
    # block reads [hidden, input embedding] (2d wide: HF forces attention width 2d, heads of
    # 2d / n_heads), attends with rotary positions, runs a GeGLU MLP of width d_ff with a LoRA
    # adapter per application, and a d x d linear (one per application) maps it into the Mamba2
    # block's input. One shared block (Zamba2 has two, ABAB; here there are at most two
    # applications up to mini). Adapter rank d / 20, the ratio of Zamba2-2.7B (128 at d = 2560;
    # HF's default 128 would outgrow the MLP at CPU widths). Tied embeddings, as Zamba2: in HF the
    # same flag ties the shared block's copies, untied every application gets its own block.
    # Dropout: only attention probabilities have one (the Mamba2 blocks, as `_mamba2`, none).
    d, n_blocks = shape["d_model"], 2 * shape["n_layers"]
    return dict(vocab_size=vocab, hidden_size=d, num_hidden_layers=n_blocks, layers_block_type=zamba2_layout(n_blocks),
                mamba_d_state=64, n_mamba_heads=2 * d // shape["d_kv"], mamba_expand=2, mamba_ngroups=1,
                mamba_d_conv=4, chunk_size=min(256, seq_len), num_attention_heads=shape["n_heads"],
                intermediate_size=shape["d_ff"], num_mem_blocks=1, use_shared_attention_adapter=False,
                adapter_rank=max(d // 20, 1), use_mem_rope=True, max_position_embeddings=seq_len,
                attention_dropout=dropout, use_cache=False, tie_word_embeddings=True,
                bos_token_id=special["eos"], eos_token_id=special["eos"], pad_token_id=special["pad"])


# model_type -> shape translator. Add an entry when a type names its sizes differently.
HF_SHAPES: dict[str, Callable[..., dict]] = {"t5": _t5, "gpt2": _gpt2, "bert": _bert_like, "roberta": _bert_like,
                                             "albert": _albert, "reformer": _reformer,
                                             "switch_transformers": _switch_hf, "llama": _llama, "olmoe": _olmoe,
                                             "mamba2": _mamba2, "jamba": _jamba, "zamba2": _zamba2}


def model_kind(objective: str) -> str:
    return KIND_OF_OBJECTIVE[objective]


def make_config(rc: dict, vocab_size: int, special: dict[str, int]):
    """The transformers config of a resolved run config (see archscale.config.resolve_run)."""
    arch = rc["architecture"]
    shape, seq_len = rc["shape"], rc["train"]["seq_len"]
    dropout, options = rc["train"]["dropout"], dict(arch.get("options", {}))
    if arch["impl"] == "native":
        module = importlib.import_module(f"archscale.models.{arch['module']}")
        return module.make_config(shape, vocab_size, seq_len, special, dropout, options)
    from transformers import AutoConfig

    translate = HF_SHAPES.get(arch["model_type"], _generic)
    fields = translate(shape, vocab_size, seq_len, special, dropout)
    if model_kind(rc["objective"]) == "decoder":
        fields["is_decoder"] = True  # BERT-like encoders become causal (bert_clm); causal models ignore it
    return AutoConfig.for_model(arch["model_type"], **{**fields, **options})


def _auto_class(kind: str):
    import transformers

    return getattr(transformers, AUTO_CLASS_OF_KIND[kind])


def sentence_task(rc: dict) -> str:
    """The run's sentence task (none, nsp, sop) from its resolved objectives.mlm; none when absent."""
    if model_kind(rc["objective"]) != "encoder":
        return "none"
    return rc.get("objectives", {}).get("mlm", {}).get("sentence_task", "none")


def build_model(rc: dict, vocab_size: int, special: dict[str, int]):
    """A freshly initialised model for a run, seeded by the run's seed: the kind's Auto class, or
    AutoModelForPreTraining when the run has a sentence task, which must then take that task's
    label (BertForPreTraining: next_sentence_label; AlbertForPreTraining: sentence_order_label)."""
    import inspect

    import torch
    import transformers

    from archscale.data.objectives import SENTENCE_LABEL

    config = make_config(rc, vocab_size, special)
    torch.manual_seed(rc["seed"])
    task = sentence_task(rc)
    if task == "none":
        return _auto_class(model_kind(rc["objective"])).from_config(config)
    model = transformers.AutoModelForPreTraining.from_config(config)
    if SENTENCE_LABEL[task] not in inspect.signature(model.forward).parameters:
        raise ValueError(f"architectures.{rc.get('arch', '?')}.mlm.sentence_task: {task!r} needs a pretraining "
                         f"class that takes {SENTENCE_LABEL[task]}; {type(model).__name__} does not")
    return model


def register_native() -> None:
    """Import every native module so its classes are known to the Auto* factories."""
    pkg = Path(__file__).parent
    for path in sorted(pkg.glob("*.py")):
        if path.stem not in {"__init__", "registry", "flops"} and not path.stem.startswith("_"):
            importlib.import_module(f"archscale.models.{path.stem}")


def load_pretrained(model_dir: str | Path, objective: str, pretraining_heads: bool = False):
    """Load an exported model (save_pretrained folder) for its objective's kind. An encoder trained
    with a sentence task (saved as *ForPreTraining) loads as the masked LM (its pooler and NSP/SOP
    head left out, as fine-tuning wants), or whole with `pretraining_heads` (upstream eval scores
    the sentence task too)."""
    import transformers

    register_native()
    cls = _auto_class(model_kind(objective))
    if pretraining_heads and model_kind(objective) == "encoder":
        from archscale.io import read_json

        saved = read_json(Path(model_dir) / "config.json").get("architectures") or []
        if any(name.endswith("ForPreTraining") for name in saved):
            cls = transformers.AutoModelForPreTraining
    return cls.from_pretrained(str(model_dir))


def _is_embedding_name(name: str) -> bool:
    return any("embed" in part or part in ("wpe", "wte") for part in name.split("."))


def count_params(model) -> dict[str, int]:
    """Total and non-embedding parameters (Kaplan et al. 2020: token/position embeddings and the
    vocabulary projection excluded). Shared tensors count once. An HF mixture of experts also gets
    the active ones (`active_params`, `active_non_embedding_params`): its experts' parameters count
    top_k / n_experts, what one token runs through.

    Embedding parameters: those of nn.Embedding modules and of the output embedding, and every
    parameter under a module whose name says embedding (HF "embeddings.*" with its LayerNorm,
    Reformer's axial positions, ALBERT's E -> d projection, the native `embed.*` including the
    factorised projection), and vocabulary-sized biases (output biases, e.g. Reformer's)."""
    import torch

    embedding_ids = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if out is not None:
        embedding_ids |= {id(p) for p in out.parameters()}
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    embedding_ids |= {id(p) for n, p in model.named_parameters()
                      if _is_embedding_name(n) or (p.dim() == 1 and p.numel() == vocab)}
    seen: dict[int, Any] = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in seen.values())
    embed = sum(p.numel() for i, p in seen.items() if i in embedding_ids)
    counts = {"params": total, "non_embedding_params": total - embed}
    config = getattr(model, "config", None)
    if getattr(config, "num_experts_per_tok", None):  # an HF mixture of experts: what one token uses too
        experts = {id(p): p for n, p in model.named_parameters() if ".experts." in f".{n}"}
        idle = sum(p.numel() for p in experts.values()) * (1 - config.num_experts_per_tok / config.num_experts)
        counts.update(active_params=round(total - idle), active_non_embedding_params=round(total - embed - idle))
    return counts
