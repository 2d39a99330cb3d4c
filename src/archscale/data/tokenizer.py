"""train_tokenizer: a BPE or Unigram tokenizer (HF `tokenizers`) trained on the train split.

Special tokens come first, at fixed ids: <pad>=0, </s>=1, <unk>=2, <mask>=3, then the span
corruption sentinels <extra_id_0..N-1>, then <cls> and <sep> for the sentence-pair inputs of BERT
and ALBERT ([CLS] A [SEP] B [SEP], Devlin et al. 2019, Sec. 3.1; after the sentinels so that no
earlier id moves). The result is saved with PreTrainedTokenizerFast, so
`PreTrainedTokenizerFast.from_pretrained(dir)` (and AutoTokenizer) load it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from archscale.io import get_logger, read_json, write_json

PAD, EOS, UNK, MASK = "<pad>", "</s>", "<unk>", "<mask>"
CLS, SEP = "<cls>", "<sep>"


def sentinel(i: int) -> str:
    return f"<extra_id_{i}>"


def special_tokens(n_sentinels: int) -> list[str]:
    return [PAD, EOS, UNK, MASK] + [sentinel(i) for i in range(n_sentinels)] + [CLS, SEP]


def iter_texts(jsonls: list[Path], max_chars: int | None = None, chunk_chars: int = 1 << 16) -> Iterator[str]:
    """The documents of the train shards in order, cut into chunks so the trainer never holds a whole
    book as one sequence; stops after `max_chars` characters (None: all)."""
    left = max_chars if max_chars is not None else float("inf")
    for jsonl in jsonls:
        with open(jsonl) as fh:
            for line in fh:
                text = json.loads(line)["text"]
                for i in range(0, len(text), chunk_chars):
                    if left <= 0:
                        return
                    chunk = text[i:i + min(chunk_chars, left)]
                    left -= len(chunk)
                    yield chunk


def build_tokenizer(kind: str, vocab_size: int, min_frequency: int, n_sentinels: int, texts):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    specials = special_tokens(n_sentinels)
    if kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=True)
    elif kind == "unigram":
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token=UNK,
                                          show_progress=True)
    else:
        raise ValueError(f"tokenizer.kind must be 'bpe' or 'unigram', got {kind!r}")
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def special_ids(tokenizer) -> dict:
    """Ids the objectives need, read back from a loaded tokenizer. cls/sep are None for a tokenizer
    trained before they existed. n_special: the specials occupy ids 0..n_special-1, so MLM's random
    replacements draw from n_special up."""
    vocab = tokenizer.get_vocab()
    sentinels = []
    while sentinel(len(sentinels)) in vocab:
        sentinels.append(vocab[sentinel(len(sentinels))])
    ids = {"pad": vocab[PAD], "eos": vocab[EOS], "unk": vocab[UNK], "mask": vocab[MASK], "cls": vocab.get(CLS),
           "sep": vocab.get(SEP), "sentinels": sentinels}
    ids["n_special"] = 1 + max([v for v in ids.values() if isinstance(v, int)] + sentinels)
    return ids


def train_tokenizer(prepared_dir: str | Path, out_dir: str | Path, *, kind: str, vocab_size: int,
                    min_frequency: int, n_sentinels: int, max_train_chars: int | None = None, log=None) -> Path:
    """Train on the prepared train shards (manifest.json lists them) and save; the folder appears
    complete or not at all."""
    from transformers import PreTrainedTokenizerFast

    out_dir, prepared_dir = Path(out_dir), Path(prepared_dir)
    train_files = [prepared_dir / name for name in read_json(prepared_dir / "manifest.json")["train"]["files"]]
    tok = build_tokenizer(kind, vocab_size, min_frequency, n_sentinels, iter_texts(train_files, max_train_chars))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK,
                                   mask_token=MASK, cls_token=CLS, sep_token=SEP,
                                   additional_special_tokens=special_tokens(n_sentinels)[4:-2])
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        fast.save_pretrained(str(tmp))
        write_json(tmp / "archscale_tokenizer.json", {"kind": kind, "vocab_size": vocab_size,
                                                     "actual_vocab_size": len(fast), "min_frequency": min_frequency,
                                                     "n_sentinels": n_sentinels, "max_train_chars": max_train_chars,
                                                     "train": [str(f) for f in train_files]})
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if log:
        log.info("trained %s tokenizer: %d tokens -> %s", kind, len(fast), out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    from archscale import config as cfg

    ap = argparse.ArgumentParser(prog="archscale train_tokenizer", description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml", help="params file (tokenizer.*)")
    ap.add_argument("--prepared", default="data/prepared", help="prepared corpus (manifest.json and its train shards)")
    ap.add_argument("--out", default="data/tokenizer", help="output folder")
    ap.add_argument("--log", default=None)
    args = ap.parse_args(argv)
    t = cfg.load(args.params)["tokenizer"]
    train_tokenizer(args.prepared, args.out, kind=t["kind"], vocab_size=t["vocab_size"],
                    min_frequency=t["min_frequency"], n_sentinels=t["n_sentinels"],
                    max_train_chars=t.get("max_train_chars"), log=get_logger("train_tokenizer", args.log))
    return 0
