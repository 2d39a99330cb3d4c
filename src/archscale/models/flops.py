"""FLOPs per token: measured with torch's FlopCounterMode, and the analytic count beside it.

Both count every matrix product of one forward pass (multiply-add = 2 FLOPs), including the
vocabulary projection, normalised per model-input token (the encoder input for span corruption).
Attention score/value products are counted in full (n_ctx x n_ctx), as the counter sees them.
Shared layers count every application; mixture-of-experts counts only the active experts.
A native module may define `analytic_flops(rc, kind, vocab, n_in, n_tgt)` to override the formula.
"""

from __future__ import annotations

import importlib

# bf16 dense peak FLOP/s of common accelerators, for MFU (vendor datasheets).
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}


def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _grouped_mm_flops(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """torch._grouped_mm as HF's mixture-of-experts layers call it: the (tokens x top_k, k) rows, each
    multiplied by its expert's (k, n) matrix (b stacks the experts)."""
    return 2 * a_shape[0] * a_shape[-1] * b_shape[-1]


def measured_flops(model, batch: dict) -> int:
    """FLOPs of one forward pass over `batch` (dict of tensors). torch's counter knows the CUDA
    fused attention kernels but not the CPU one, which HF models (SDPA) call on CPU: it is added
    with torch's own SDPA formula, so attention is counted the same way on every device; nor the
    grouped matrix product of HF's experts (transformers 5's default), added likewise."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    custom = {}
    cpu_sdpa = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if cpu_sdpa is not None:
        custom[cpu_sdpa] = _cpu_sdpa_flops
    grouped = getattr(torch.ops.aten, "_grouped_mm", None)
    if grouped is not None:
        custom[grouped] = _grouped_mm_flops
    counter = FlopCounterMode(display=False, custom_mapping=custom)
    with torch.no_grad(), counter:
        model(**batch)
    return int(counter.get_total_flops())


def _layer_flops(d: int, d_attn: int, d_ff: int, n_ctx: int, glu: bool = False) -> int:
    """Forward FLOPs per token of one self-attention + FFN layer."""
    proj = 2 * 4 * d * d_attn                 # q, k, v, o projections
    scores = 2 * 2 * n_ctx * d_attn           # QK^T and AV
    ffn = 2 * (3 if glu else 2) * d * d_ff
    return proj + scores + ffn


def _encdec_flops(shape: dict, vocab: int, n_in: int, n_tgt: int, glu: bool, router: int = 0,
                  sparse_step: int = 0) -> float:
    """HF T5 (and SwitchTransformers: `router` experts on every `sparse_step`-th layer, HF's rule
    i % step == 1 or step == 1), per encoder input token."""
    d, d_ff, layers = shape["d_model"], shape["d_ff"], shape["n_layers"]
    d_attn = shape["n_heads"] * shape["d_kv"]
    n_sparse = sum(1 for i in range(layers) if sparse_step and (i % sparse_step == 1 or sparse_step == 1))
    enc = layers * _layer_flops(d, d_attn, d_ff, n_in, glu) * n_in + n_sparse * 2 * d * router * n_in
    dec_self = layers * _layer_flops(d, d_attn, d_ff, n_tgt, glu) * n_tgt + n_sparse * 2 * d * router * n_tgt
    cross = layers * (2 * 2 * d * d_attn * n_tgt + 2 * 2 * d * d_attn * n_in + 2 * 2 * n_tgt * n_in * d_attn)
    head = 2 * d * vocab * n_tgt
    return (enc + dec_self + cross + head) / n_in


def _reformer_flops(shape: dict, vocab: int, n: int, options: dict) -> float:
    """HF Reformer (registry._reformer), per token: LSH layers share the query/key projection, hash
    with n_buckets/2 random rotations, and every query attends to its chunk and the previous one
    (lsh/local_num_chunks_before = 1); the reversible stack ends in a 2d -> vocab head."""
    from archscale.models.registry import _reformer

    c = {**_reformer(shape, vocab, n, {"pad": 0, "eos": 1}, 0.0), **options}
    d, inner, chunk = c["hidden_size"], c["num_attention_heads"] * c["attention_head_size"], c["lsh_attn_chunk_length"]
    total = 0
    for kind in c["attn_layers"]:
        keys = 2 * chunk if n > chunk else n
        rounds = c["num_hashes"] if kind == "lsh" else 1
        proj = (3 if kind == "lsh" else 4) * 2 * d * inner
        hashing = 2 * inner * (c["num_buckets"] // 2) * rounds if kind == "lsh" else 0
        total += proj + hashing + rounds * 2 * 2 * keys * inner + 2 * 2 * d * c["feed_forward_size"]
    return total + 2 * 2 * d * vocab


def _attention_flops(d: int, q: int, kv: int, n: int, d_out: int | None = None) -> int:
    """Per token: q and o projections of width q, k and v of width kv (all read d), attention over
    n positions; o writes d_out (default d)."""
    return 2 * (d * q + q * (d_out or d) + 2 * d * kv) + 2 * 2 * n * q


def _llama_like_flops(rc: dict, vocab: int, n: int) -> float:
    """Llama and OLMoE, per token, from the config the run builds (options included): q, k, v, o
    projections (key/value heads may be fewer), attention over n positions, a SwiGLU FFN (OLMoE:
    the router and top_k experts of its width), the untied head. RoPE and the norms are not matmuls."""
    from archscale.models.registry import make_config

    c = make_config(rc, vocab, {"pad": 0, "eos": 1})
    d, heads = c.hidden_size, c.num_attention_heads
    head_dim = getattr(c, "head_dim", None) or d // heads
    q, kv = heads * head_dim, c.num_key_value_heads * head_dim
    attn = _attention_flops(d, q, kv, n)
    experts = getattr(c, "num_experts_per_tok", None)
    ffn = 2 * 3 * d * c.intermediate_size * (experts or 1) + (2 * d * c.num_experts if experts else 0)
    return c.num_hidden_layers * (attn + ffn) + 2 * d * vocab


def _ssd_block_flops(d: int, inner: int, heads: int, p: int, state: int, groups: int, k: int, q: int,
                     n: int) -> float:
    """One Mamba-2 block per token, as transformers' PyTorch path computes it: the input projection
    (x and gate of width `inner`, B and C of groups x state, one dt per head), the depthwise causal
    conv over x, B, C (its n + K - 1 output positions), the chunked SSD scan, and the output
    projection. The scan, per chunk of Q positions (n padded up to C = ceil(n / Q) chunks), per head
    of P channels and state N: C.B^T scores (2 Q^2 N) and their product with x (2 Q^2 P) inside the
    chunk, the chunk's end state (2 Q P N) and its read-out by C (2 Q P N); across chunks, every
    chunk's start state from all earlier ones (2 (C+1)^2 P N per sequence). The gated RMSNorm, dt's
    softplus and the decays are not matmuls."""
    import math

    bc, chunks = 2 * groups * state, math.ceil(n / q)
    proj = 2 * d * (2 * inner + bc + heads) + 2 * inner * d
    conv = 2 * (inner + bc) * k * (n + k - 1) / n
    scan = (chunks * heads * (2 * q * q * state + 2 * q * q * p + 4 * q * p * state)
            + 2 * (chunks + 1) ** 2 * heads * p * state) / n
    return proj + conv + scan


def _mamba2_flops(rc: dict, vocab: int, n: int) -> float:
    """Mamba-2 per token, from the config the run builds: its blocks (_ssd_block_flops), the head."""
    from archscale.models.registry import make_config

    c = make_config(rc, vocab, {"pad": 0, "eos": 1})
    d = c.hidden_size
    block = _ssd_block_flops(d, int(c.expand * d), c.num_heads, c.head_dim, c.state_size, c.n_groups,
                             c.conv_kernel, c.chunk_size, n)
    return c.num_hidden_layers * block + 2 * d * vocab


def _zamba2_flops(rc: dict, vocab: int, n: int) -> float:
    """Zamba2 per token, from the config the run builds: every Mamba2 block (_ssd_block_flops), and
    on each "hybrid" layer one application of the shared block: attention reading [hidden, input
    embedding] (2d) with q, k, v of heads x 2d / n_heads (k, v: key/value heads) and o back to d
    (_attention_flops), plus low-rank q, k, v adapters when use_shared_attention_adapter; the GeGLU
    MLP (gate and up d -> 2 d_ff, down d_ff -> d) with its LoRA adapter (d -> rank -> 2 d_ff); the
    d x d linear into the Mamba2 block. The head. Rotary positions and the norms are not matmuls."""
    from archscale.models.registry import make_config

    c = make_config(rc, vocab, {"pad": 0, "eos": 1})
    d, ff, r, wide = c.hidden_size, c.intermediate_size, c.adapter_rank, c.attention_hidden_size
    inner = int(c.mamba_expand * d)
    block = _ssd_block_flops(d, inner, c.n_mamba_heads, c.mamba_headdim, c.mamba_d_state, c.mamba_ngroups,
                             c.mamba_d_conv, c.chunk_size, n)
    q, kv = c.num_attention_heads * c.attention_head_dim, c.num_key_value_heads * c.attention_head_dim
    attn = _attention_flops(wide, q, kv, n, d_out=d)
    attn += 3 * 2 * 2 * wide * r if c.use_shared_attention_adapter else 0
    shared = attn + 2 * 3 * d * ff + 2 * r * (d + 2 * ff) + 2 * d * d
    return c.num_hidden_layers * block + len(c.hybrid_layer_ids) * shared + 2 * d * vocab


def _jamba_flops(rc: dict, vocab: int, n: int) -> float:
    """Jamba per token, layer by layer from the config the run builds. Attention layers: q, k, v, o
    (heads split d_model) and attention over n positions. Mamba (v1) layers, as transformers'
    PyTorch path runs them: the input projection (x and gate, 2 x d_inner), the depthwise causal
    conv over x (n + K - 1 outputs), x -> (dt rank + B + C), dt rank -> d_inner, the sequential scan's
    read-out (state . C: 2 d_inner N) and the output projection. Every layer then a SwiGLU FFN, or
    the router and top_k of its experts; the head."""
    from archscale.models.registry import make_config

    c = make_config(rc, vocab, {"pad": 0, "eos": 1})
    d, ff = c.hidden_size, c.intermediate_size
    inner, state, k, rank = c.mamba_expand * d, c.mamba_d_state, c.mamba_d_conv, c.mamba_dt_rank
    q, kv = d, c.num_key_value_heads * (d // c.num_attention_heads)  # heads split d_model
    total = 0.0
    for kind, experts in zip(c.layers_block_type, c.layers_num_experts):
        if kind == "attention":
            total += _attention_flops(d, q, kv, n)
        else:
            total += (2 * d * 2 * inner + 2 * inner * k * (n + k - 1) / n + 2 * inner * (rank + 2 * state)
                      + 2 * rank * inner + 2 * inner * state + 2 * inner * d)
        moe = experts > 1
        total += 2 * 3 * d * ff * (c.num_experts_per_tok if moe else 1) + (2 * d * experts if moe else 0)
    return total + 2 * d * vocab


def analytic_flops_per_token(rc: dict, kind: str, vocab: int, n_in: int, n_tgt: int) -> float:
    arch, shape = rc["architecture"], rc["shape"]
    if arch["impl"] == "native":
        module = importlib.import_module(f"archscale.models.{arch['module']}")
        if hasattr(module, "analytic_flops"):
            return module.analytic_flops(rc, kind, vocab, n_in, n_tgt)
    options, model_type = arch.get("options", {}), arch.get("model_type", "")
    d, d_ff, layers = shape["d_model"], shape["d_ff"], shape["n_layers"]
    if model_type == "reformer":
        return _reformer_flops(shape, vocab, n_in, options)
    if model_type in ("llama", "olmoe"):
        return _llama_like_flops(rc, vocab, n_in)
    if model_type == "mamba2":
        return _mamba2_flops(rc, vocab, n_in)
    if model_type == "jamba":
        return _jamba_flops(rc, vocab, n_in)
    if model_type == "zamba2":
        return _zamba2_flops(rc, vocab, n_in)
    if model_type == "switch_transformers":
        return _encdec_flops(shape, vocab, n_in, n_tgt, False, int(shape.get("n_experts", 8)),
                             layers // max(layers // 2, 1))
    if kind == "encdec":
        return _encdec_flops(shape, vocab, n_in, n_tgt, "gated" in str(options.get("feed_forward_proj", "")))
    d_attn = d  # GPT-2 / BERT heads split d_model
    body = layers * _layer_flops(d, d_attn, d_ff, n_in)
    from archscale.models.registry import sentence_task

    if sentence_task(rc) != "none":  # NSP/SOP: a d x d pooler and a d x 2 classifier on each [CLS]
        body += (2 * d * d + 2 * d * 2) / n_in
    if model_type == "albert":
        # factorised embedding: E -> d on the input, d -> E transform then E -> vocab in the MLM head
        from archscale.models.registry import embed_width

        e = embed_width(shape)
        return body + 2 * e * d + 2 * d * e + 2 * e * vocab
    transform = 2 * d * d if model_type in ("bert", "roberta") else 0  # BERT/RoBERTa LM heads: a d x d transform
    return body + transform + 2 * d * vocab


def mfu(flops_per_s: float, device_name: str, precision: str) -> float | None:
    """Model FLOPs utilisation against the device's bf16 dense peak; None on CPU or unknown devices."""
    if precision not in {"bf16", "fp16"}:
        return None
    for key, peak in PEAK_BF16.items():
        if key in device_name:
            return flops_per_s / peak
    return None
