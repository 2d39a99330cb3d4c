"""Fine-tuning wrappers for the three model kinds, and the token batches they read.

- encoder: mean of the last hidden states over the real tokens (the MLM pretraining has no
  [CLS] token to pool), concatenated with the mean state of each marked span (WiC, WSC), into a
  linear head;
- decoder: the last hidden state of the final token (the closing </s>, which has seen the whole
  input), plus the span states, into a linear head; COPA and ReCoRD score every option with
  the same final-token head (one logit each, softmax across options), not by LM likelihood;
- encoder-decoder: the pretrained LM itself, trained on target words (cross-entropy) and
  evaluated by greedy decoding.
Inputs are `text_a </s> text_b </s>` with no extra special tokens, because pretraining used none;
when too long the longer text is cut first. `FineTuneModel.forward` returns the loss so the
DeepSpeed engine can drive it exactly as it drives pretraining.
"""

from __future__ import annotations

import torch
from torch import nn

from archscale.eval.formats import Choices, Seq2Seq, TextPair

IGNORE = -100


def position_limit(config) -> int | None:
    """Longest input the model's position table allows (None for relative positions, as T5)."""
    for name in ("n_positions", "max_position_embeddings"):
        if isinstance(getattr(config, name, None), int):
            return getattr(config, name)
    return None


def set_dropout(model: nn.Module, p: float) -> None:
    """Fine-tuning dropout (T5 uses 0.1) on every dropout of a model pretrained without it: the
    `nn.Dropout` modules, and the rates modules keep as plain floats for `F.dropout` (attention
    probabilities in the native blocks and in HF Reformer, the convolution-kernel dropout of
    lconv/dconv: attributes named `dropout` or `*_dropout`)."""
    for mod in model.modules():
        if isinstance(mod, nn.Dropout):
            mod.p = p
        for name, value in vars(mod).items():
            if name.endswith("dropout") and isinstance(value, float):
                setattr(mod, name, p)


def last_hidden(lm: nn.Module, input_ids, attention_mask):
    """(batch, tokens, hidden) final states, from the base model when the LM exposes it (no vocab
    projection computed), else from the LM's `hidden_states`."""
    base = getattr(lm, lm.base_model_prefix, None) if getattr(lm, "base_model_prefix", "") else None
    if isinstance(base, nn.Module) and base is not lm:
        out = base(input_ids=input_ids, attention_mask=attention_mask)
        return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    return lm(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states[-1]


class FineTuneModel(nn.Module):
    """A pretrained LM plus what one task needs; `forward(**batch)` is the training loss."""

    def __init__(self, lm: nn.Module, kind: str, n_out: int, n_spans: int, dropout: float):
        super().__init__()
        self.lm, self.kind = lm, kind
        set_dropout(lm, dropout)
        if kind != "encdec":
            width = lm.get_input_embeddings().embedding_dim
            self.dropout = nn.Dropout(dropout)
            self.head = nn.Linear(width * (1 + n_spans), n_out)

    def logits(self, input_ids, attention_mask, last_index, span_mask=None):
        h = last_hidden(self.lm, input_ids, attention_mask)
        if self.kind == "encoder":
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1)
        else:
            pooled = h[torch.arange(h.shape[0], device=h.device), last_index]
        parts = [pooled]
        if span_mask is not None:  # (batch, spans, tokens); a span lost to truncation uses the pool
            sm = span_mask.to(h.dtype)
            n = sm.sum(-1, keepdim=True)
            spans = torch.einsum("bst,bth->bsh", sm, h) / n.clamp(min=1)
            parts.append(torch.where(n > 0, spans, pooled.unsqueeze(1)).flatten(1))
        return self.head(self.dropout(torch.cat(parts, -1)))

    def forward(self, input_ids, attention_mask, labels=None, last_index=None, span_mask=None, slots=None,
                gold=None):
        if self.kind == "encdec":
            return self.lm(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        out = self.logits(input_ids, attention_mask, last_index, span_mask)
        if slots is None:
            return nn.functional.cross_entropy(out.float(), labels)
        scores = _choice_scores(out, slots)  # -log P(any gold option)
        return (scores.logsumexp(-1) - scores.masked_fill(~gold, float("-inf")).logsumexp(-1)).mean()

    @torch.no_grad()
    def predict(self, batch: dict, max_new_tokens: int = 8) -> list:
        """Class index per example, option index per Choices example, or generated ids (encdec)."""
        if self.kind == "encdec":
            ids = self.lm.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                   max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
            return ids.tolist()
        out = self.logits(batch["input_ids"], batch["attention_mask"], batch["last_index"], batch.get("span_mask"))
        if batch.get("slots") is None:
            return out.argmax(-1).tolist()
        return _choice_scores(out, batch["slots"]).argmax(-1).tolist()


def _choice_scores(out, slots):
    """(examples, max options) scores, -inf on padding slots; `out` holds one logit per option."""
    scores = out[:, 0][slots.clamp(min=0)]
    return scores.float().masked_fill(slots < 0, float("-inf"))


# ------------------------------------------------------------------ encoding
def _truncate(la: int, lb: int, room: int) -> tuple[int, int]:
    """Longest-first truncation of two lengths into `room` tokens."""
    if la + lb <= room:
        return la, lb
    short = min(la, lb, room // 2)
    return (room - short, short) if la >= lb else (short, room - short)


def train_items(units: list) -> list[tuple[int, int]]:
    """(unit, target) pairs trained on: one per gold answer of a text-to-text ReCoRD query (as T5),
    none for a multiple-choice query whose gold answer is not among the candidates."""
    items = []
    for i, u in enumerate(units):
        if isinstance(u, Choices) and not u.gold:
            continue
        n = len(u.targets) if isinstance(u, Seq2Seq) else 1
        items += [(i, t) for t in range(max(n, 1))]
    return items


class Encoder:
    """Token features of formatted examples for one tokenizer; every method is deterministic."""

    def __init__(self, tokenizer, eos: int, pad: int, max_len: int, max_target_len: int):
        self.tok, self.eos, self.pad = tokenizer, eos, pad
        self.max_len, self.max_target_len = max_len, max_target_len
        self._cache: dict[str, tuple[list[int], list[tuple[int, int]]]] = {}

    def prepare(self, units) -> None:
        """Tokenise every distinct text of `units` in one batched call; a MultiRC passage is shared
        by all its answer options, so it is tokenised once."""
        texts: list[str] = []
        for u in units:
            if isinstance(u, TextPair):
                texts += [u.text_a, u.text_b or ""]
            elif isinstance(u, Choices):
                texts += [t for option in u.options for t in option]
            else:
                texts += [u.source, *u.targets]
        self._tok(texts)

    def _tok(self, texts: list[str]):
        """(ids, char offsets) per text, from the Rust tokenizer directly (the transformers wrapper
        spends longer converting offsets than tokenising) and cached."""
        new = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if new:
            encs = self.tok.backend_tokenizer.encode_batch(new, add_special_tokens=False)
            self._cache.update((t, (e.ids, e.offsets)) for t, e in zip(new, encs))
        return [self._cache[t][0] for t in texts], [self._cache[t][1] for t in texts]

    def _pair(self, a: str, b: str | None, spans=()) -> dict:
        (ia, ib), (oa, ob) = self._tok([a, b or ""])
        if b is None:
            ib, ob = [], []
        la, lb = _truncate(len(ia), len(ib), self.max_len - (2 if b is not None else 1))
        ids = ia[:la] + [self.eos] + (ib[:lb] + [self.eos] if b is not None else [])
        positions = []
        for seg, s, e in spans:
            offs, n, shift = (oa, la, 0) if seg == 0 else (ob, lb, la + 1)
            positions.append([shift + i for i in range(n) if offs[i][0] < e and offs[i][1] > s])
        return {"ids": ids, "spans": positions}

    def feature(self, ex, target: int = 0) -> dict:
        """Token feature of one example; `target` picks which gold answer a ReCoRD text-to-text
        example trains on (see `train_items`)."""
        if isinstance(ex, TextPair):
            return {**self._pair(ex.text_a, ex.text_b, ex.spans), "label": ex.label}
        if isinstance(ex, Choices):
            return {"options": [self._pair(a, b)["ids"] for a, b in ex.options], "gold": list(ex.gold)}
        if isinstance(ex, Seq2Seq):
            texts = [ex.source] + ([ex.targets[target]] if ex.targets else [])
            ids = self._tok(texts)[0]
            tgt = ids[1][: self.max_target_len - 1] if ex.targets else []
            return {"src": ids[0][: self.max_len - 1] + [self.eos], "tgt": tgt + [self.eos]}
        raise TypeError(f"unknown example type {type(ex).__name__}")

    def _pad(self, seqs: list[list[int]], value: int) -> torch.Tensor:
        width = max(len(s) for s in seqs)
        return torch.tensor([s + [value] * (width - len(s)) for s in seqs], dtype=torch.long)

    def collate(self, feats: list[dict]) -> dict:
        """Right-padded tensors for a list of features of one kind."""
        if "src" in feats[0]:
            batch = self._seqs([f["src"] for f in feats])
            del batch["last_index"]
            return {**batch, "labels": self._pad([f["tgt"] for f in feats], IGNORE)}
        if "options" in feats[0]:
            seqs = [o for f in feats for o in f["options"]]
            width = max(len(f["options"]) for f in feats)
            slots, gold, k = [], [], 0
            for f in feats:
                n = len(f["options"])
                slots.append(list(range(k, k + n)) + [-1] * (width - n))
                gold.append([i in f["gold"] for i in range(width)])
                k += n
            batch = self._seqs(seqs)
            return {**batch, "slots": torch.tensor(slots), "gold": torch.tensor(gold)}
        batch = self._seqs([f["ids"] for f in feats])
        if feats[0]["label"] is not None:
            batch["labels"] = torch.tensor([f["label"] for f in feats])
        if feats[0]["spans"]:
            mask = torch.zeros(len(feats), len(feats[0]["spans"]), batch["input_ids"].shape[1], dtype=torch.bool)
            for b, f in enumerate(feats):
                for s, pos in enumerate(f["spans"]):
                    mask[b, s, pos] = True
            batch["span_mask"] = mask
        return batch

    def _seqs(self, seqs: list[list[int]]) -> dict:
        lengths = torch.tensor([len(s) for s in seqs])
        ids = self._pad(seqs, self.pad)
        mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
        return {"input_ids": ids, "attention_mask": mask, "last_index": lengths - 1}

