"""Causality: for every decoder (and every encoder-decoder's decoder), changing the tokens after
position t leaves the logits at positions <= t unchanged. Covers causal convolutions, the causal
token mixer, FAVOR+ prefix sums, Switch routing, Transformer-XL's memory and Reformer."""

from __future__ import annotations

import pytest
import torch
from test_models_common import ARCHS, SEQ, SPECIAL, TGT, VOCAB, build, kind_of, logits, make_batch

torch.set_num_threads(1)

DECODERS = sorted(a for a in ARCHS if kind_of(a) == "decoder")
ENCDECS = sorted(a for a in ARCHS if kind_of(a) == "encdec")


def _spec(arch: str) -> dict:
    """Reformer's LSH attention is not strictly causal (see the test below), so the general test
    runs Reformer with local attention in every layer; everything else (reversible layers, axial
    positions, chunked FFN, LM head) is the same network."""
    spec = ARCHS[arch]
    if spec.get("model_type") == "reformer":
        spec = {**spec, "options": {**spec.get("options", {}), "attn_layers": ["local", "local"]}}
    return spec


def _change_after(ids: torch.Tensor, t: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    out = ids.clone()
    out[:, t:] = torch.randint(SPECIAL["n_special"], VOCAB, out[:, t:].shape, generator=g)
    return out


def max_leak(model, kind: str, cuts, seed: int = 0) -> float:
    batch = make_batch(kind, seed=seed)
    base = logits(model, batch)
    worst = 0.0
    for t in cuts:
        if kind == "encdec":  # logits[i] reads decoder inputs 0..i = (start, labels[0..i-1])
            other = logits(model, {**batch, "labels": _change_after(batch["labels"], t, seed + t)})
            worst = max(worst, (base[:, : t + 1] - other[:, : t + 1]).abs().max().item())
        else:
            changed = _change_after(batch["input_ids"], t, seed + t)
            other = logits(model, {"input_ids": changed, "labels": changed})
            worst = max(worst, (base[:, :t] - other[:, :t]).abs().max().item())
    return worst


@pytest.mark.parametrize("arch", DECODERS)
def test_decoder_is_causal(arch):
    model = build(arch, spec=_spec(arch))
    assert max_leak(model, "decoder", [1, 7, SEQ // 2, SEQ // 2 + 1, SEQ - 1]) <= 1e-6


@pytest.mark.parametrize("arch", ENCDECS)
def test_encoder_decoder_decoder_is_causal(arch):
    model = build(arch)
    assert max_leak(model, "encdec", [0, 3, TGT // 2, TGT - 1]) <= 1e-6


def test_the_check_detects_a_bidirectional_model():
    """Negative control: the same BERT network without the causal mask (bert_mlm) leaks."""
    spec = {"impl": "hf", "model_type": "bert", "objective": "mlm"}
    model = build("bert_mlm", spec=spec)
    assert max_leak(model, "decoder", [SEQ // 2]) > 1e-3


def test_reformer_lsh_reads_the_future_only_through_chunk_boundaries():
    """A property of Reformer itself (Kitaev et al. 2020, Sec. 2), measured on the transformers
    implementation: LSH sorts the tokens by bucket and attends within chunks of the sorted order.
    The causal mask hides later tokens' content, but a later token's bucket shifts the chunk
    boundaries and so which earlier keys a query sees. With one chunk per window the layer is
    strictly causal; with several chunks and hash rounds earlier logits move a little when later
    tokens change. Keep this in mind when reading Reformer's L(C) (Oyedele 2021)."""
    base = {**ARCHS.get("reformer", {"impl": "hf", "model_type": "reformer", "objective": "clm"})}
    lsh = {"attn_layers": ["lsh", "lsh"], "num_hashes": 2, "hash_seed": 0}
    one_chunk = {**base, "options": {**lsh, "lsh_attn_chunk_length": SEQ, "num_buckets": 4}}
    assert max_leak(build("reformer", spec=one_chunk), "decoder", [5, 16, 27]) <= 1e-6
    chunks = {**base, "options": {**lsh, "lsh_attn_chunk_length": 4, "num_buckets": 8}}
    leak = max(max_leak(build("reformer", spec=chunks), "decoder", [5, 16, 27], seed=s) for s in range(3))
    assert leak > 1e-5


def test_transfo_xl_reads_memory_without_gradient():
    """The second segment's logits depend on the first segment (through the memory), but no
    gradient flows from them into the first segment's states (stop-gradient, Dai et al. Sec. 3.2).
    Two segments per window (seg_len = SEQ / 2; the default is one segment per window, whose memory
    comes from the previous step: tests/test_transfo_xl_recurrence.py)."""
    if "transfo_xl" not in ARCHS:
        pytest.skip("transfo_xl not in params.yaml architectures")
    spec = ARCHS["transfo_xl"]
    model = build("transfo_xl", spec={**spec, "options": {**spec.get("options", {}), "seg_len": SEQ // 2}})
    seg = model.config.seg_len
    assert seg < SEQ, "the test shape must split a window into segments"
    batch = make_batch("decoder")
    changed = batch["input_ids"].clone()
    changed[:, : seg // 2] = SPECIAL["n_special"]
    assert (logits(model, batch)[:, seg:] - logits(model, {"input_ids": changed})[:, seg:]).abs().max() > 1e-4
    captured = []
    handle = model.embed.register_forward_hook(lambda mod, inp, out: captured.append(out))
    model.train()
    out = model(input_ids=batch["input_ids"])
    handle.remove()
    second = out.logits[:, seg:].logsumexp(-1).sum()
    grad = torch.autograd.grad(second, captured[0], allow_unused=True)[0]
    assert grad is None or grad.abs().max() == 0
