"""Parameter parity: native models against the transformers class where one exists (same
count, and for T5 and Switch the same outputs from the same weights), and every other Tay
architecture against `transformer` with its difference written out: only the named bias differs.
Shared layers count once for parameters and every application for FLOPs; MoE counts one expert."""

from __future__ import annotations

import re

import pytest
import torch
from test_models_common import ARCHS, SPECIAL, TEST_SHAPE, VOCAB, build, logits, make_batch, rc_for
from transformers import AutoModelForSeq2SeqLM, T5Config, T5ForConditionalGeneration

from archscale.models.flops import measured_flops
from archscale.models.registry import build_model, count_params

torch.set_num_threads(1)
D, FF, H, DKV, L = (TEST_SHAPE[k] for k in ("d_model", "d_ff", "n_heads", "d_kv", "n_layers"))
INNER, BUCKETS = H * DKV, 32


def needs(*archs):
    missing = [a for a in archs if a not in ARCHS]
    return pytest.mark.skipif(bool(missing), reason=f"{missing} not in params.yaml architectures")


def params(arch: str, **shape) -> int:
    return count_params(build(arch, {**TEST_SHAPE, **shape}))["params"]


# HF T5 / SwitchTransformers parameter names -> the native encdec names
RENAME = [
    (r"^shared\.weight$", "embed.weight"),
    (r"^(\w+)\.block\.0\.layer\.0\.SelfAttention\.relative_attention_bias\.", r"\1.relative_bias.weight."),
    (r"^(\w+)\.block\.(\d+)\.layer\.0\.SelfAttention\.", r"\1.layers.\2.mixer."),
    (r"^(\w+)\.block\.(\d+)\.layer\.0\.layer_norm\.", r"\1.layers.\2.mixer_norm."),
    (r"^decoder\.block\.(\d+)\.layer\.1\.EncDecAttention\.", r"decoder.layers.\1.cross."),
    (r"^decoder\.block\.(\d+)\.layer\.1\.layer_norm\.", r"decoder.layers.\1.cross_norm."),
    (r"^(encoder\.block\.\d+\.layer\.1|decoder\.block\.\d+\.layer\.2)\.", r"\1.FF."),
    (r"^(\w+)\.block\.(\d+)\.layer\.\d+\.FF\.layer_norm\.", r"\1.layers.\2.ffn_norm."),
    (r"^(\w+)\.block\.(\d+)\.layer\.\d+\.FF\.(?:DenseReluDense|mlp)\.router\.classifier\.",
     r"\1.layers.\2.ffn.router."),
    (r"^(\w+)\.block\.(\d+)\.layer\.\d+\.FF\.(?:DenseReluDense|mlp)\.experts\.expert_(\d+)\.",
     r"\1.layers.\2.ffn.experts.\3."),
    (r"^(\w+)\.block\.(\d+)\.layer\.\d+\.FF\.(?:DenseReluDense|mlp)\.", r"\1.layers.\2.ffn."),
    (r"^(\w+)\.final_layer_norm\.", r"\1.final_norm."),
]


def copy_from_hf(native, hf) -> None:
    state = {}
    for name, tensor in hf.state_dict().items():
        if name.startswith("lm_head") or name.endswith("embed_tokens.weight"):
            continue  # tied to shared.weight
        for pattern, repl in RENAME:
            name = re.sub(pattern, repl, name)
        state[name] = tensor
    missing, unexpected = native.load_state_dict(state, strict=False)
    assert not missing and not unexpected, (missing, unexpected)


@needs("transformer", "glu")
@pytest.mark.parametrize("arch,ff", [("transformer", "relu"), ("glu", "gated-gelu")])
def test_native_t5_equals_hf_t5(arch, ff):
    """Same parameter count, and the same logits and loss from the same weights."""
    torch.manual_seed(0)
    hf = T5ForConditionalGeneration(T5Config(vocab_size=VOCAB, d_model=D, d_kv=DKV, d_ff=FF, num_layers=L,
                                             num_heads=H, feed_forward_proj=ff, dropout_rate=0.0,
                                             decoder_start_token_id=0))
    native = build(arch)
    assert count_params(native) == count_params(hf)
    copy_from_hf(native, hf)
    batch = make_batch("encdec")
    assert torch.allclose(logits(native, batch), logits(hf, batch), atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(native(**batch).loss, hf(**batch).loss, atol=1e-6)


@needs("switch")
def test_native_switch_equals_hf_switch_transformers():
    """Same count as transformers' SwitchTransformers with sparse layers at the same positions and
    the same experts, and the same logits from the same weights (no token is over capacity)."""
    spec = {"impl": "hf", "model_type": "switch_transformers", "objective": "span"}
    n_experts = build("switch").config.block["n_experts"]
    rc = rc_for("switch_hf", {**TEST_SHAPE, "n_experts": n_experts}, spec=spec)
    hf = build_model(rc, VOCAB, SPECIAL)
    native = build("switch")
    assert count_params(native) == count_params(hf)
    copy_from_hf(native, hf)
    batch = make_batch("encdec")
    assert torch.allclose(logits(native, batch), logits(hf, batch), atol=1e-5)


@needs("transformer", "universal")
def test_universal_counts_shared_layer_once_and_every_application_in_flops():
    assert params("universal") == params("transformer", n_layers=1)
    batch = make_batch("encdec")
    assert measured_flops(build("universal"), batch) == measured_flops(build("transformer"), batch)


@needs("universal", "albert")
def test_albert_is_universal_with_a_factorised_embedding():
    e = build("albert").config.block["d_embed"]
    assert e < D
    assert params("albert") == params("universal") - VOCAB * D + VOCAB * e + e * D


@needs("transformer", "switch")
def test_switch_flops_count_one_expert():
    """Experts multiply parameters, not FLOPs: only the router adds compute per token."""
    model = build("switch")
    sparse = sum(1 for m in model.modules() if type(m).__name__ == "SwitchFFN")
    n_experts = model.config.block["n_experts"]
    assert params("switch") == params("transformer") + sparse * ((n_experts - 1) * 2 * D * FF + D * n_experts)
    batch = make_batch("encdec")
    tokens = batch["input_ids"].numel() * sparse // 2 + batch["labels"].numel() * sparse // 2
    router = 2 * D * n_experts * tokens
    assert measured_flops(model, batch) == measured_flops(build("transformer"), batch) + router


@needs("transformer", "performer")
def test_performer_is_transformer_without_relative_bias():
    """FAVOR+ reuses the projections; its random features are a buffer; positions are fixed sinusoids."""
    assert params("performer") == params("transformer") - 2 * BUCKETS * H


@needs("transformer", "funnel")
def test_funnel_pooling_adds_no_parameters_and_saves_flops():
    assert params("funnel") == params("transformer")
    batch = make_batch("encdec")
    assert measured_flops(build("funnel"), batch) < measured_flops(build("transformer"), batch)


@needs("transformer", "mos")
def test_mos_adds_priors_and_contexts():
    k = build("mos").config.block["n_softmaxes"]
    assert params("mos") == params("transformer") + k * D + k * D * D


@needs("transformer", "lconv", "dconv")
def test_convolutions_replace_self_attention():
    """Per layer: attention (4 d x inner) -> GLU (2d x d) + output (d x d) + kernels; no bias table."""
    model = build("lconv")
    ks = [layer.mixer.kernel for stack in (model.encoder, model.decoder) for layer in stack.layers]
    heads = model.config.block["conv_heads"]
    swap = 2 * L * (3 * D * D - 4 * D * INNER) - 2 * BUCKETS * H
    assert params("lconv") == params("transformer") + swap + heads * sum(ks)
    assert params("dconv") == params("transformer") + swap + D * heads * sum(ks)


@needs("transformer", "mixer")
def test_token_mixer_replaces_self_attention():
    n = build("mixer").config.max_seq_len
    assert params("mixer") == params("transformer") + 2 * L * (2 * n * n - 4 * D * INNER) - 2 * BUCKETS * H


@needs("transformer", "evolved")
def test_evolved_cells_written_out():
    """So et al. 2019 cells (evolved.py): encoder GLU 2d^2, dense d->4d, conv3 d->d/2, separable conv9
    4d->d/2, 2 extra norms; decoder attention twice more, separable convs 11 (d->2d), 7 (d->d/2),
    7 (2d->d), a norm over 2d and one over d_ff; the decoder bias table has max(16, heads) columns."""
    enc = 2 * D * D + 4 * D * D + 3 * D * D // 2 + (9 * 4 * D + 4 * D * D // 2) + 4 * D + 2 * D
    dec = (2 * 4 * D * INNER + (11 * D + 2 * D * D) + (7 * D + D * D // 2) + (7 * 2 * D + 2 * D * D)
           + 2 * D + FF + 2 * D)
    # tensor2tensor's cell counts (evolved.cell_counts): fewer evolved cells than vanilla layers, so the
    # vanilla layers it has no cell for come off: encoder 4 projections + FFN + 2 norms, decoder 8 + FFN + 3
    from archscale.models.evolved import cell_counts

    n_enc, n_dec = cell_counts(L, "t2t")
    vanilla_enc, vanilla_dec = 4 * D * INNER + 2 * D * FF + 2 * D, 8 * D * INNER + 2 * D * FF + 3 * D
    expected = (params("transformer") - (L - n_enc) * vanilla_enc - (L - n_dec) * vanilla_dec
                + n_enc * enc + n_dec * dec + BUCKETS * (16 - H))
    assert params("evolved") == expected


@needs("transfo_xl")
def test_transfo_xl_parameters_written_out():
    """Transformer-XL is not in transformers 5.x, so its count is checked against Dai et al.'s
    layer: qkv, position and output projections, u and v per layer, two LayerNorms, FFN with
    biases; tied embedding plus an output bias."""
    layer = 3 * D * INNER + D * INNER + INNER * D + 2 * INNER + 2 * 2 * D + (D * FF + FF + FF * D + D)
    assert params("transfo_xl") == VOCAB * D + VOCAB + L * layer


@needs("bert_mlm", "bert_clm")
def test_bert_clm_is_the_bert_mlm_network():
    a, b = build("bert_mlm"), build("bert_clm")
    assert count_params(a) == count_params(b)
    assert not a.config.is_decoder and b.config.is_decoder


def test_native_models_load_through_auto_classes(tmp_path):
    """A saved native encoder-decoder is an ordinary AutoModelForSeq2SeqLM checkpoint."""
    arch = next(a for a in ("transformer", "glu") if a in ARCHS)
    model = build(arch)
    model.save_pretrained(str(tmp_path))
    again = AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path))
    batch = make_batch("encdec")
    assert torch.equal(logits(model, batch), logits(again, batch))


@needs("bert_mlm", "roberta")
def test_roberta_non_embedding_equals_bert():
    """Same encoder and MLM head; they differ only in embeddings (RoBERTa: one token type, offset
    positions), which the non-embedding count leaves out."""
    assert (count_params(build("roberta"))["non_embedding_params"]
            == count_params(build("bert_mlm"))["non_embedding_params"])


@needs("gpt2")
def test_gpt2_non_embedding_written_out():
    """Kaplan et al.'s N: per layer qkv + output projection + MLP with biases, two LayerNorms; final LayerNorm."""
    layer = (D * 3 * D + 3 * D) + (D * D + D) + (D * FF + FF) + (FF * D + D) + 2 * 2 * D
    assert count_params(build("gpt2"))["non_embedding_params"] == L * layer + 2 * D


@needs("llama")
def test_llama_non_embedding_written_out():
    """Llama's N: per layer q, k, v, o without biases (heads of d_kv), a SwiGLU FFN (gate, up, down),
    two RMSNorms; the final RMSNorm. Dense: no active count."""
    layer = 4 * D * H * DKV + 3 * D * FF + 2 * D
    counts = count_params(build("llama"))
    assert counts == {"params": counts["params"], "non_embedding_params": L * layer + D}


@needs("olmoe")
def test_olmoe_counts_every_expert_and_the_active_top_k():
    """OLMoE's N: per layer q, k, v, o (heads split d_model), QK-norms over d_model, two RMSNorms, the
    router (d x 16) and 16 SwiGLU experts of width d_ff / 4; the final RMSNorm. A token runs 4 of the
    16 experts: active N leaves out 12 of them, and the active FFN equals a dense one of width d_ff."""
    width = FF // 4
    experts = 16 * 3 * D * width
    layer = 4 * D * D + 2 * D + 2 * D + D * 16 + experts
    counts = count_params(build("olmoe"))
    assert counts["non_embedding_params"] == L * layer + D
    assert counts["non_embedding_params"] - counts["active_non_embedding_params"] == L * experts * 12 // 16
    assert counts["params"] - counts["active_params"] == L * experts * 12 // 16
    assert 4 * 3 * D * width == 3 * D * FF


@needs("mamba2")
def test_mamba2_is_two_ssd_blocks_per_layer_written_out():
    """Mamba-2's N: 2 blocks per Transformer layer, each an input projection (x, gate: 2 x 2d; B, C:
    2 x 64 states; a dt per head of d_kv channels), a width-4 depthwise conv with bias over x, B, C,
    per-head dt bias, A and D, the gated norm over 2d, the output projection 2d -> d and the block's
    RMSNorm; the final RMSNorm. About 6 d^2 per block, as a Transformer layer's 12 d^2 over two."""
    inner, heads, bc = 2 * D, 2 * D // DKV, 2 * 64
    block = D * (2 * inner + bc + heads) + (inner + bc) * 5 + 3 * heads + inner + inner * D + D
    assert count_params(build("mamba2"))["non_embedding_params"] == 2 * L * block + D


@needs("jamba")
def test_jamba_mixes_mamba_attention_and_experts_and_counts_the_active_ones():
    """Jamba at a depth under 8: attention at position depth // 2, Mamba elsewhere; experts (16,
    top-2) on odd layers. Active N leaves out 14 of the 16 SwiGLU experts on each such layer."""
    from archscale.models.registry import make_config

    rc = rc_for("jamba", {**TEST_SHAPE, "n_layers": 4})
    c = make_config(rc, VOCAB, SPECIAL)
    assert c.layers_block_type == ["mamba", "mamba", "attention", "mamba"]
    assert c.layers_num_experts == [1, 16, 1, 16]
    counts = count_params(build_model(rc, VOCAB, SPECIAL))
    assert counts["params"] - counts["active_params"] == 2 * 16 * 3 * D * FF * 14 // 16


@needs("zamba2")
def test_zamba2_is_mamba2_blocks_plus_one_shared_block_written_out():
    """Zamba2's N at 4 layers: 8 Mamba2 blocks as mamba2's, shared attention + MLP blocks before
    blocks 2 and 6 (every 4th, at position 2), and the shared block's weights counted once: an
    RMSNorm over [hidden, embedding] (2d), q, k, v of 2d -> 2d (heads of 2d / n_heads), o 2d -> d,
    the pre-MLP RMSNorm, a GeGLU MLP (gate and up d -> 2 d_ff, down d_ff -> d). Per application:
    the MLP's LoRA adapter (d -> rank -> 2 d_ff, rank d / 20) and the d x d linear into its Mamba2
    block. The final RMSNorm; the head tied to the embedding. Layouts (m: a Mamba2 block, H: the
    shared block, then a Mamba2 block): below 4 blocks the period is the depth."""
    from archscale.models.registry import make_config

    def layout(n_layers):
        config = make_config(rc_for("zamba2", {**TEST_SHAPE, "n_layers": n_layers}), VOCAB, SPECIAL)
        return "".join("H" if t == "hybrid" else "m" for t in config.layers_block_type)

    assert (layout(1), layout(2), layout(3), layout(4)) == ("mH", "mmHm", "mmHmmm", "mmHmmmHm")
    rc = rc_for("zamba2", {**TEST_SHAPE, "n_layers": 4})
    inner, heads, bc, rank = 2 * D, 2 * D // DKV, 2 * 64, max(D // 20, 1)
    block = D * (2 * inner + bc + heads) + (inner + bc) * 5 + 3 * heads + inner + inner * D + D
    shared = 2 * D + 3 * (2 * D) * (2 * D) + 2 * D * D + D + D * 2 * FF + FF * D
    application = rank * (D + 2 * FF) + D * D
    model = build_model(rc, VOCAB, SPECIAL)
    counts = count_params(model)
    assert counts == {"params": counts["params"], "non_embedding_params": 8 * block + shared + 2 * application + D}
    assert counts["params"] == counts["non_embedding_params"] + VOCAB * D
    first, second = (model.model.layers[i].shared_transformer for i in (2, 6))
    assert first.self_attn.q_proj.weight is second.self_attn.q_proj.weight
