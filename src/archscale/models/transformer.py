"""transformer: the vanilla encoder-decoder of Tay et al. (2022), T5 v1.0 (Raffel et al. 2020):
ReLU feed-forward, relative position buckets, tied and rescaled output embedding.

Native (encdec.py) rather than HF T5, so that every Tay architecture runs the same code and
differs only by its block; tests/test_models_parity.py shows it equals HF T5 parameter for
parameter and output for output.
"""

from __future__ import annotations

from archscale.models import encdec

POSITIONS = ("relative", "sinusoidal")


def make_config(shape, vocab_size, seq_len, special, dropout, options):
    """Option `positions`: `relative` (T5's bucketed bias, the default) or `sinusoidal` (absolute
    sinusoids added to the embeddings, Vaswani et al. 2017 Sec. 3.5: the positions `performer` must
    use, so this variant is its matched softmax baseline)."""
    options = encdec.check_options("transformer", options, {"positions"})
    positions = options.get("positions", "relative")
    if positions not in POSITIONS:
        raise ValueError(f"architectures.<transformer>.options.positions: {positions!r} "
                         f"is not one of {list(POSITIONS)}")
    return encdec.make_config("transformer", shape, vocab_size, seq_len, special, dropout, positions=positions)


def analytic_flops(rc, kind, vocab, n_in, n_tgt):
    return encdec.flops_from_rc(make_config, rc, vocab, n_in, n_tgt)
