"""Every architecture: builds at every smoke size, runs forward and backward with a finite loss,
memorises a fixed batch, saves and loads to identical outputs, and its analytic FLOPs equal
the measured ones."""

from __future__ import annotations

import pytest
import torch
from test_models_common import (
    ARCHS,
    BATCH,
    SEQ,
    SMOKE_SIZES,
    SPECIAL,
    TEST_SHAPE,
    TGT,
    VOCAB,
    build,
    kind_of,
    logits,
    make_batch,
    rc_for,
)

from archscale.models.flops import analytic_flops_per_token, measured_flops
from archscale.models.registry import build_model, count_params, load_pretrained
from archscale.models.transfo_xl import empty_memory, is_recurrent

torch.set_num_threads(1)

# Parameters the reference implementation itself never uses in forward (so they get no gradient):
# transformers 5.x ReformerOnlyLMHead keeps a `bias` beside its bias-free decoder.
UNUSED = {"reformer": {"lm_head.bias"}}


@pytest.mark.parametrize("size", sorted(SMOKE_SIZES))
@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_forward_backward_finite(arch, size):
    shape = SMOKE_SIZES[size]
    model = build(arch, shape)
    model.train()
    batch = make_batch(kind_of(arch))
    out = model(**batch)
    assert torch.isfinite(out.loss), f"{arch}-{size}: loss {out.loss}"
    assert out.logits.shape[-1] == VOCAB
    out.loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if p.requires_grad and n not in UNUSED.get(arch, ())]
    assert all(g is not None and torch.isfinite(g).all() for g in grads), f"{arch}-{size}: missing or bad gradients"
    assert sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_memorises_a_fixed_batch(arch):
    """Adam on one batch: the loss must fall 20-fold within 100 steps (about 1 s per model)."""
    torch.manual_seed(0)
    model = build(arch)
    model.train()
    batch = make_batch(kind_of(arch))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(100):
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < first / 20, f"{arch}: loss {first:.3f} -> {loss.item():.4f}"


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_save_load_round_trip(arch, tmp_path):
    model = build(arch)
    batch = make_batch(kind_of(arch), seed=1)
    before = logits(model, batch)
    model.save_pretrained(str(tmp_path), safe_serialization=True)
    loaded = load_pretrained(tmp_path, ARCHS[arch]["objective"])
    assert type(loaded) is type(model)
    assert torch.equal(before, logits(loaded, batch))
    assert count_params(loaded) == count_params(model)


# Every analytic formula counts the same matrix products as FlopCounterMode, so the two agree to
# the FLOP. An architecture whose formula is only an approximation gets its relative tolerance here,
# with the reason (none today); every other one must match exactly (float rounding only).
APPROX_REL: dict[str, tuple[float, str]] = {}
# The test shape, where d_model = n_heads x d_kv = input length = 32, and a second one in which no two
# of d_model (48), n_heads x d_kv (36), d_ff (80), the input length (40), the target length (12) and
# the layer count (3) coincide, so a formula that mixes two of them up shows there (swapping n_ctx
# for d_model in the attention scores passes the test shape alone). A dropped or extra term is off
# by at least one FLOP per token in both.
FLOPS_SHAPES = {"test": (TEST_SHAPE, SEQ),
                "distinct": ({"n_layers": 3, "d_model": 48, "d_ff": 80, "n_heads": 3, "d_kv": 12, "tokens": 1}, 40)}


@pytest.mark.parametrize("shape", sorted(FLOPS_SHAPES))
@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_analytic_flops_match_measured(arch, shape):
    """FlopCounterMode on a real batch vs the architecture's formula: equal up to float rounding
    (one FLOP per token is a relative error of ~1e-5, the tolerance is 1e-12)."""
    dims, seq = FLOPS_SHAPES[shape]
    rc = rc_for(arch, dims, seq_len=seq)
    model = build_model(rc, VOCAB, SPECIAL)
    kind = kind_of(arch)
    batch = make_batch(kind, seq=seq)
    if is_recurrent(model.config):  # as pretrain's probe: a full memory, whose keys the formula counts
        batch["mems"] = empty_memory(model.config, BATCH)
    measured = measured_flops(model, batch)
    analytic = analytic_flops_per_token(rc, kind, VOCAB, seq, TGT if kind == "encdec" else seq) * BATCH * seq
    rel, why = APPROX_REL.get(arch, (1e-12, "exact"))
    assert measured == pytest.approx(analytic, rel=rel, abs=0), (
        f"{arch} ({shape} shape, {why}): measured {measured / (BATCH * seq)!r} FLOPs/token, "
        f"analytic {analytic / (BATCH * seq)!r}")


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_hidden_states_for_fine_tuning(arch):
    """Fine-tuning reads hidden states; encoder-decoder models also expose get_encoder()."""
    model = build(arch)
    kind = kind_of(arch)
    batch = make_batch(kind)
    model.eval()
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
        enc = model.get_encoder()(input_ids=batch["input_ids"]) if kind == "encdec" else None
    if kind == "encdec":
        assert torch.allclose(enc.last_hidden_state, out.encoder_last_hidden_state, atol=1e-6)
        assert out.decoder_hidden_states[-1].shape[:2] == batch["labels"].shape
    else:
        assert out.hidden_states[-1].shape[:2] == batch["input_ids"].shape


@pytest.mark.parametrize("arch", sorted(a for a in ARCHS if kind_of(a) == "encdec"))
def test_generate_and_padding_mask(arch):
    """generate() runs (no cache: the decoder reruns over the prefix), and right padding behind an
    attention_mask changes no target's score (fine-tuning pads its inputs)."""
    model = build(arch)
    model.eval()
    batch = make_batch("encdec")
    out = model.generate(input_ids=batch["input_ids"][:2], max_new_tokens=4, do_sample=False)
    assert out.shape[0] == 2 and 2 <= out.shape[1] <= 5
    real = SEQ - 4
    ids = batch["input_ids"][:, :real]
    pad = torch.cat([ids, torch.full((BATCH, 4), SPECIAL["pad"])], dim=1)
    mask = (torch.arange(SEQ) < real).long().expand(BATCH, SEQ)
    with torch.no_grad():
        plain = model(input_ids=ids, labels=batch["labels"]).logits
        padded = model(input_ids=pad, attention_mask=mask, labels=batch["labels"]).logits
    assert torch.allclose(plain, padded, atol=1e-5), (
        f"{arch}: padding changed the scores by {(plain - padded).abs().max()}")
