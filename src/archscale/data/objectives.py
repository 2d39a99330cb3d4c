"""Pretraining objectives as pure numpy functions: raw token windows -> model inputs and labels.

- clm:  next-token prediction on every position (the model shifts labels internally).
- mlm:  BERT masking (mask_prob of tokens; of those 80% <mask>, 10% random, 10% kept); labels
        only on the chosen positions (-100 elsewhere). Per architecture (`mlm_settings`): masks drawn
        afresh every batch (dynamic, RoBERTa) or fixed per example and copy (static, BERT), and an
        optional sentence-pair task, NSP (BERT) or SOP (ALBERT), on [CLS] A [SEP] B [SEP] inputs.
- span: T5 span corruption (Raffel et al. 2020, Sec. 3.1.4): noise_density of the tokens in
        spans of mean length mean_span_length, each span replaced in the input by one sentinel,
        the target lists sentinel + span tokens, both end with </s>.
Every batch is a pure function of its (seed, stream, index), so data order is reproducible and
resumable from a step number alone.
"""

from __future__ import annotations

import numpy as np

IGNORE = -100
STATIC_STREAM = 3  # rng stream of static-masking examples (0 train, 1 eval, 2 FLOPs probe)
# Per-architecture MLM settings (params.yaml architectures.<name>.mlm) when a key is absent: RoBERTa's
# dynamic masking and no sentence task, which is what every mlm run did before the keys existed.
MLM_DEFAULTS = {"masking": "dynamic", "sentence_task": "none"}
STATIC_COPIES = 10  # copies of each example under static masking: BERT's dupe_factor (create_pretraining_data.py)
# The label keyword of each sentence task in transformers' *ForPreTraining forward (0 = IsNext / in order).
SENTENCE_LABEL = {"nsp": "next_sentence_label", "sop": "sentence_order_label"}
PAIR_SPECIALS = 3  # [CLS] A [SEP] B [SEP]: a pair example holds seq_len - 3 text tokens


def rng_for(seed: int, stream: int, index: int) -> np.random.Generator:
    """Independent generator per (seed, stream, index); streams: 0 train, 1 eval, 2+ free."""
    return np.random.Generator(np.random.PCG64([seed, stream, index]))


def mlm_settings(mlm: dict) -> dict:
    """An mlm config with the per-architecture keys filled in (MLM_DEFAULTS; copies only when static)."""
    out = {**MLM_DEFAULTS, **mlm}
    if out["masking"] == "static":
        out.setdefault("copies", STATIC_COPIES)
    return out


def example_rng(seed: int, example: int, copy: int) -> np.random.Generator:
    """The generator of one static-masking training instance: example `example` (the aligned window
    at example x raw_len), copy `copy` of its dupe_factor copies. Everything drawn from it (mask,
    sentence pair, negative B) is fixed for the instance, as in BERT's pre-made data."""
    return np.random.Generator(np.random.PCG64([seed, STATIC_STREAM, int(example), int(copy)]))


def span_lengths(raw_len: int, noise_density: float, mean_span: float) -> tuple[int, int, int, int]:
    """(num_noise, num_spans, input_len, target_len) for a raw window of `raw_len` tokens."""
    num_noise = min(max(int(round(raw_len * noise_density)), 1), raw_len - 1)
    num_spans = max(int(round(num_noise / mean_span)), 1)
    num_nonnoise = raw_len - num_noise
    return num_noise, num_spans, num_nonnoise + num_spans + 1, num_noise + num_spans + 1


def raw_length_for(kind: str, seq_len: int, span_cfg: dict) -> int:
    """Raw tokens per example so that the model input is exactly `seq_len` long (kind: encdec,
    decoder or encoder; only span corruption shortens its input)."""
    if kind != "encdec":
        return seq_len
    raw = seq_len
    while span_lengths(raw + 1, span_cfg["noise_density"], span_cfg["mean_span_length"])[2] <= seq_len:
        raw += 1
    return raw


def _segment(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Split n items into k non-empty segments at random; returns the k lengths."""
    cuts = np.sort(rng.choice(n - 1, k - 1, replace=False) + 1) if k > 1 else np.empty(0, dtype=np.int64)
    return np.diff(np.concatenate([[0], cuts, [n]]))


def span_corrupt(window: np.ndarray, rng: np.random.Generator, cfg: dict, sentinels: np.ndarray, eos: int):
    """One window -> (inputs, targets) of fixed lengths (T5 random_spans_noise_mask)."""
    n = len(window)
    num_noise, num_spans, in_len, tgt_len = span_lengths(n, cfg["noise_density"], cfg["mean_span_length"])
    if num_spans > len(sentinels):
        raise ValueError(f"{num_spans} noise spans need more sentinels than the tokenizer has ({len(sentinels)})")
    noise = _segment(rng, num_noise, num_spans)
    keep = _segment(rng, n - num_noise, num_spans)
    inputs, targets, pos = [], [], 0
    for i in range(num_spans):
        inputs.append(window[pos:pos + keep[i]])
        pos += keep[i]
        inputs.append(sentinels[i:i + 1])
        targets.append(sentinels[i:i + 1])
        targets.append(window[pos:pos + noise[i]])
        pos += noise[i]
    inputs.append([eos])
    targets.append([eos])
    inp, tgt = np.concatenate(inputs), np.concatenate(targets)
    assert len(inp) == in_len and len(tgt) == tgt_len
    return inp, tgt


def mlm_mask(window: np.ndarray, rng: np.random.Generator, cfg: dict, mask_id: int, vocab_size: int,
             n_special: int):
    """BERT masking of one window -> (inputs, labels)."""
    n = len(window)
    n_mask = max(int(round(n * cfg["mask_prob"])), 1)
    chosen = rng.choice(n, n_mask, replace=False)
    labels = np.full(n, IGNORE, dtype=np.int64)
    labels[chosen] = window[chosen]
    inputs = window.astype(np.int64).copy()
    u = rng.random(n_mask)
    to_mask = chosen[u < cfg["replace_mask"]]
    to_rand = chosen[(u >= cfg["replace_mask"]) & (u < cfg["replace_mask"] + cfg["replace_random"])]
    inputs[to_mask] = mask_id
    inputs[to_rand] = rng.integers(n_special, vocab_size, len(to_rand))
    return inputs, labels


def other_start(rng: np.random.Generator, start: int, n_tokens: int, length: int) -> int:
    """A window start in [0, n_tokens - length] whose window shares no token with the one at `start`:
    where an NSP negative's B comes from (Devlin et al. 2019, Sec. 3.1: "a random sentence from the
    corpus"; create_pretraining_data.py takes it from another document)."""
    last = n_tokens - length
    lo, hi = max(start - length + 1, 0), min(start + length - 1, last)
    blocked = hi - lo + 1
    free = last + 1 - blocked
    if free < 1:
        raise ValueError(f"{n_tokens} tokens hold no window of {length} apart from the one at {start}: "
                         "too few for next-sentence negatives")
    u = int(rng.integers(0, free))
    return u if u < lo else u + blocked


def sentence_pair(window: np.ndarray, rng: np.random.Generator, task: str, special: dict,
                  other: np.ndarray | None = None, label: int | None = None):
    """One window -> (tokens, segment ids, label) of a [CLS] A [SEP] B [SEP] example, len(window) long.

    The text is the window's first len - 3 tokens, cut in two at a uniform point (A and B at least one
    token each). nsp (Devlin et al. 2019, Sec. 3.1 Task #2): label 0 keeps B, the true continuation;
    label 1 replaces it by as many tokens from `other` (a window from elsewhere). sop (Lan et al. 2020,
    Sec. 4.1): label 1 swaps A and B. The label is drawn fair unless given. Segment ids: 0 for [CLS]
    A [SEP], 1 for B [SEP]. Left out from BERT's data maker: sentence boundaries (the cut is at a
    token, the shards keep none), the 10% shorter sequences (short_seq_prob) and NSP's check that B
    comes from another document."""
    n = len(window) - PAIR_SPECIALS
    if n < 2:
        raise ValueError(f"a sentence pair needs seq_len >= {PAIR_SPECIALS + 2}, got {len(window)}")
    if label is None:
        label = int(rng.random() < 0.5)
    cut = int(rng.integers(1, n))
    a, b = window[:cut], window[cut:n]
    if task == "nsp" and label:
        b = other[:n - cut]
    elif task == "sop" and label:
        a, b = b, a
    elif task not in SENTENCE_LABEL:
        raise ValueError(f"unknown sentence task {task!r} (known: {', '.join(SENTENCE_LABEL)})")
    cls, sep = [special["cls"]], [special["sep"]]
    tokens = np.concatenate([cls, a, sep, b, sep]).astype(np.int64)
    segments = np.concatenate([np.zeros(len(a) + 2, np.int64), np.ones(len(b) + 1, np.int64)])
    return tokens, segments, label


def pair_batch(windows: np.ndarray, rngs: list, cfg: dict, special: dict, vocab_size: int,
               others: np.ndarray | None = None, pair_labels=None) -> dict[str, np.ndarray]:
    """Sentence-pair MLM batch (BERT, ALBERT): per row `sentence_pair`, then BERT masking of its text
    tokens only ([CLS]/[SEP] are never chosen, as create_masked_lm_predictions skips them)."""
    if special.get("cls") is None or special.get("sep") is None:
        raise ValueError("a sentence task needs <cls> and <sep> in the tokenizer; this one has none "
                         "(retrain it: archscale train_tokenizer)")
    task = cfg["sentence_task"]
    others = np.roll(windows, 1, axis=0) if others is None else others  # a FLOPs probe needs no real negatives
    cols = {"input_ids": [], "token_type_ids": [], "labels": [], SENTENCE_LABEL[task]: []}
    for i, (window, rng) in enumerate(zip(windows, rngs)):
        given = None if pair_labels is None else int(pair_labels[i])
        tokens, segments, label = sentence_pair(window.astype(np.int64), rng, task, special, others[i], given)
        text = np.ones(len(tokens), dtype=bool)
        text[[0, int((segments == 0).sum()) - 1, len(tokens) - 1]] = False
        inputs, labels = tokens.copy(), np.full(len(tokens), IGNORE, dtype=np.int64)
        inputs[text], labels[text] = mlm_mask(tokens[text], rng, cfg, special["mask"], vocab_size,
                                              special["n_special"])
        for key, value in zip(cols, (inputs, segments, labels, label)):
            cols[key].append(value)
    return {k: np.stack(v) if k != SENTENCE_LABEL[task] else np.asarray(v, dtype=np.int64) for k, v in cols.items()}


def in_order_pairs(objectives: dict, n: int) -> dict:
    """make_batch keywords for evaluation: every pair IsNext / in order, so a pair-format model's MLM
    loss is taken over true running text (none for a model without a sentence task)."""
    if mlm_settings(objectives["mlm"])["sentence_task"] == "none":
        return {}
    return {"pair_labels": np.zeros(n, dtype=np.int64)}


def mlm_examples(shard, rng: np.random.Generator, n: int, raw_len: int, seed: int, mlm: dict):
    """(windows, rng or per-row rngs, NSP windows from elsewhere or None) of one training batch.

    dynamic (RoBERTa, Liu et al. 2019, Sec. 4.1): windows at random starts, all masks from the
    step's `rng`: a window is masked anew every time it is drawn. static (BERT, Devlin et al. 2019,
    App. A.1: create_pretraining_data.py masks each example `dupe_factor` ways once, before
    training): example j is the window at j x raw_len, and each row draws (j, copy) from the step's
    rng, copy in [0, copies); the row's mask, sentence pair and negative come from example_rng(seed,
    j, copy), so an instance is the same text, masked the same way, every time it is drawn."""
    cfg = mlm_settings(mlm)
    if cfg["masking"] == "static":
        n_examples = len(shard) // raw_len
        if n_examples < 1:
            raise ValueError(f"shard has {len(shard)} tokens, fewer than one window of {raw_len}")
        examples, copies = rng.integers(0, n_examples, n), rng.integers(0, cfg["copies"], n)
        starts = examples * raw_len
        rngs = [example_rng(seed, j, c) for j, c in zip(examples, copies)]
    else:
        starts = shard.random_starts(rng, n, raw_len)
        rngs = rng
    others = None
    if cfg["sentence_task"] == "nsp":
        row_rngs = rngs if isinstance(rngs, list) else [rng] * n
        others = shard.windows([other_start(r, int(s), len(shard), raw_len) for r, s in zip(row_rngs, starts)],
                               raw_len)
    return shard.windows(starts, raw_len), rngs, others


def make_batch(windows: np.ndarray, kind: str, rng, objectives: dict, special: dict, vocab_size: int, *,
               others: np.ndarray | None = None, pair_labels=None) -> dict[str, np.ndarray]:
    """A (batch, raw_len) array of windows -> {'input_ids', 'labels'} int64 arrays for the kind; an
    mlm run with a sentence task also gets 'token_type_ids' and its SENTENCE_LABEL key.

    rng: one generator for the batch, or a list of one per row (static masking). others: per row a
    window from elsewhere, the source of NSP negatives (default: the rows rotated by one). pair_labels:
    sentence labels to use instead of drawing them (evaluation)."""
    rngs = list(rng) if isinstance(rng, (list, tuple)) else [rng] * len(windows)
    if kind == "decoder":
        ids = windows.astype(np.int64)
        return {"input_ids": ids, "labels": ids}
    if kind == "encoder":
        cfg = mlm_settings(objectives["mlm"])
        if cfg["sentence_task"] != "none":
            return pair_batch(windows, rngs, cfg, special, vocab_size, others, pair_labels)
        pairs = [mlm_mask(w, r, cfg, special["mask"], vocab_size, special["n_special"]) for w, r in zip(windows, rngs)]
    elif kind == "encdec":
        sentinels = np.asarray(special["sentinels"], dtype=np.int64)
        pairs = [span_corrupt(w.astype(np.int64), r, objectives["span"], sentinels, special["eos"])
                 for w, r in zip(windows, rngs)]
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    return {"input_ids": np.stack([p[0] for p in pairs]), "labels": np.stack([p[1] for p in pairs])}


def count_target_tokens(labels: np.ndarray, kind: str) -> int:
    """Tokens the loss is taken over (clm predicts positions 1..n-1 of each row)."""
    if kind == "decoder":
        return int(labels.shape[0] * (labels.shape[1] - 1))
    return int((labels != IGNORE).sum())
