"""tokenize: prepared documents -> flat uint16/uint32 token shards (train.bin, val.bin, meta.json),
and the memmap reader that training and evaluation draw their windows from.

Documents are encoded in batches by the Rust tokenizer (all cores, no offsets), each followed by </s>, and
streamed to disk; the reader never copies a shard: a batch is one fancy-indexed gather of its
windows from the memmap.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from archscale.io import atomic_path, get_logger, read_json, sha256_file, write_json


def _chunks(text: str, size: int = 1 << 15) -> list[str]:
    """Cut a document at line breaks into pieces of about `size` characters (keeps batches even)."""
    out, start = [], 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            nl = text.rfind("\n", start, end)
            end = nl + 1 if nl > start else end
        out.append(text[start:end])
        start = end
    return out


def encode_split(tokenizer, jsonl: Path, out_bin: Path, dtype, eos: int, batch_chars: int = 1 << 22) -> int:
    """Encode one split to `out_bin`; returns the number of tokens written."""
    from tqdm import tqdm

    total_bytes = jsonl.stat().st_size
    n_tokens = 0
    with atomic_path(out_bin) as tmp, open(tmp, "wb") as out, open(jsonl) as fh, \
            tqdm(total=total_bytes, unit="B", unit_scale=True, desc=f"tokenize {jsonl.name}", mininterval=2) as bar:
        pieces, ends, size = [], [], 0

        eos_bytes = np.asarray([eos], dtype=dtype).tobytes()

        def flush():
            # encode_batch_fast: the same ids without character offsets (which shards never use),
            # about 1.4x the tokens/s of encode_batch; each piece's ids go to the file as they are
            # converted, with no concatenated copy of the batch.
            nonlocal n_tokens
            for enc, is_end in zip(tokenizer.encode_batch_fast(pieces, add_special_tokens=False), ends):
                ids = np.asarray(enc.ids, dtype=dtype)
                out.write(memoryview(ids))
                n_tokens += len(ids)
                if is_end:
                    out.write(eos_bytes)
                    n_tokens += 1
            pieces.clear()
            ends.clear()

        for line in fh:
            bar.update(len(line.encode()))
            doc = _chunks(json.loads(line)["text"])
            pieces.extend(doc)
            ends.extend([False] * (len(doc) - 1) + [True])
            size += sum(map(len, doc))
            if size >= batch_chars:
                flush()
                size = 0
        if pieces:
            flush()
    return n_tokens


def tokenize(prepared_dir: str | Path, tokenizer_dir: str | Path, out_dir: str | Path, log=None) -> dict:
    from tokenizers import Tokenizer

    prepared_dir, tokenizer_dir, out_dir = Path(prepared_dir), Path(tokenizer_dir), Path(out_dir)
    tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    vocab = tok.get_vocab_size()
    dtype = np.uint16 if vocab <= np.iinfo(np.uint16).max + 1 else np.uint32
    eos = tok.token_to_id("</s>")
    meta = {"vocab_size": vocab, "dtype": np.dtype(dtype).name, "eos_id": eos,
            "tokenizer_sha256": sha256_file(tokenizer_dir / "tokenizer.json"), "splits": {}}
    for split in ("train", "val"):
        t0 = time.perf_counter()
        n = encode_split(tok, prepared_dir / f"{split}.jsonl", out_dir / f"{split}.bin", dtype, eos)
        dt = time.perf_counter() - t0
        meta["splits"][split] = {"tokens": n}  # timings only in the log: meta.json must reproduce byte for byte
        if log:
            log.info("%s: %d tokens in %.1f s = %.0f tokens/s", split, n, dt, n / dt)
    write_json(out_dir / "meta.json", meta)
    return meta


class TokenShard:
    """A read-only memmap view of one split; `windows` gathers (batch, length) slices."""

    def __init__(self, shard_dir: str | Path, split: str):
        shard_dir = Path(shard_dir)
        meta = read_json(shard_dir / "meta.json")
        self.vocab_size, self.eos_id = meta["vocab_size"], meta["eos_id"]
        self.tokens = np.memmap(shard_dir / f"{split}.bin", dtype=np.dtype(meta["dtype"]), mode="r")

    def __len__(self) -> int:
        return len(self.tokens)

    def windows(self, starts: np.ndarray, length: int) -> np.ndarray:
        idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(length, dtype=np.int64)
        return self.tokens[idx]

    def random_starts(self, rng: np.random.Generator, n: int, length: int) -> np.ndarray:
        if len(self) <= length:
            raise ValueError(f"shard has {len(self)} tokens, fewer than one window of {length}")
        return rng.integers(0, len(self) - length, n)

    def eval_starts(self, length: int, max_tokens: int) -> np.ndarray:
        """Consecutive non-overlapping windows from the start: the same held-out tokens for every run."""
        n = max(min(max_tokens // length, len(self) // length), 1)
        return np.arange(n, dtype=np.int64) * length


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="archscale tokenize", description=__doc__.split("\n\n")[0])
    ap.add_argument("--prepared", default="data/prepared")
    ap.add_argument("--tokenizer", default="data/tokenizer")
    ap.add_argument("--out", default="data/shards")
    ap.add_argument("--log", default=None)
    args = ap.parse_args(argv)
    tokenize(args.prepared, args.tokenizer, args.out, log=get_logger("tokenize", args.log))
    return 0
