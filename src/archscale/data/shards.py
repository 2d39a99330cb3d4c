"""tokenize: prepared document shards -> flat uint16/uint32 token files ({train,val}-<shard>.bin),
one job per shard; index_shards (the gather) writes meta.json, which lists them in order; and the
memmap reader that training and evaluation draw their windows from.

Documents are encoded in batches by the Rust tokenizer (all cores, no offsets), each followed by
</s>, and streamed to disk, so a job's memory does not grow with its shard. The reader sees a
split's files as one token array (their concatenation, in shard order) and never copies them: a
batch is a fancy-indexed gather of its windows from the memmaps, so the (seed, step) -> batch rule
is the same for one file or many, and a corpus cut into shards gives the one-shard tokens.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from archscale.data.corpus import shard_name
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


def encode_split(tokenizer, jsonl: Path, out_bin: Path, dtype, eos: int,
                 batch_chars: int = 1 << 22) -> tuple[int, str]:
    """Encode one split to `out_bin`; returns the number of tokens written and the sha256 of the file's
    bytes (hashed as they are written, so the shard is never read back)."""
    import hashlib

    from tqdm import tqdm

    total_bytes = jsonl.stat().st_size
    n_tokens = 0
    digest = hashlib.sha256()
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
                digest.update(memoryview(ids))
                n_tokens += len(ids)
                if is_end:
                    out.write(eos_bytes)
                    digest.update(eos_bytes)
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
    return n_tokens, digest.hexdigest()


def tokenize_shard(prepared_dir: str | Path, tokenizer_dir: str | Path, out_dir: str | Path, shard: int,
                   log=None) -> dict:
    """Encode {train,val}-<shard>.jsonl to {train,val}-<shard>.bin and part-<shard>.json (token counts
    and sha256 of each file)."""
    from tokenizers import Tokenizer

    prepared_dir, tokenizer_dir, out_dir = Path(prepared_dir), Path(tokenizer_dir), Path(out_dir)
    tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    vocab = tok.get_vocab_size()
    dtype = np.uint16 if vocab <= np.iinfo(np.uint16).max + 1 else np.uint32
    eos = tok.token_to_id("</s>")
    part = {"vocab_size": vocab, "dtype": np.dtype(dtype).name, "eos_id": eos,
            "tokenizer_sha256": sha256_file(tokenizer_dir / "tokenizer.json"), "splits": {}}
    for split in ("train", "val"):
        t0 = time.perf_counter()
        n, sha = encode_split(tok, prepared_dir / shard_name(split, shard, ".jsonl"),
                         out_dir / shard_name(split, shard, ".bin"), dtype, eos)
        dt = time.perf_counter() - t0
        # timings only in the log: the json must reproduce byte for byte
        part["splits"][split] = {"tokens": n, "sha256": sha}
        if log:
            log.info("shard %d %s: %d tokens in %.1f s = %.0f tokens/s", shard, split, n, dt, n / max(dt, 1e-9))
    write_json(out_dir / shard_name("part", shard, ".json"), part)
    return part


def index_shards(out_dir: str | Path, n_shards: int, log=None, check=None) -> dict:
    """The gather: part-<k>.json of every shard -> meta.json (vocabulary, dtype and each split's files
    in order with their token counts and sha256). Stops when the shards disagree or a split has no
    tokens, or when `check(meta)` raises (called before meta.json is written).

    With each file's sha256, meta.json changes whenever any shard's bytes do: a pretraining or eval
    job depends on meta.json alone (Snakemake and dvc.yaml), not on the 2 x data.shards files, which
    keeps a 10k-job DAG small (benchmarks/dag.py)."""
    out_dir = Path(out_dir)
    parts = [read_json(out_dir / shard_name("part", k, ".json")) for k in range(n_shards)]
    keys = ("vocab_size", "dtype", "eos_id", "tokenizer_sha256")
    for k, part in enumerate(parts):
        if any(part[key] != parts[0][key] for key in keys):
            differ = ", ".join(f"{key} {part[key]}" for key in keys if part[key] != parts[0][key])
            raise ShardError(f"{out_dir / shard_name('part', k, '.json')}: tokenized with another tokenizer than "
                             f"shard 0 ({differ}): rerun its tokenize job")
        if any("sha256" not in info for info in part["splits"].values()):
            raise ShardError(f"{out_dir / shard_name('part', k, '.json')}: no sha256 of its files (tokenized by an "
                             "older archscale): rerun its tokenize job (snakemake --forcerun tokenize)")
    meta = {key: parts[0][key] for key in keys} | {"shards": n_shards, "splits": {}}
    for split in ("train", "val"):
        files = [{"name": shard_name(split, k, ".bin"), "tokens": p["splits"][split]["tokens"],
                  "sha256": p["splits"][split]["sha256"]} for k, p in enumerate(parts)]
        meta["splits"][split] = {"tokens": sum(f["tokens"] for f in files), "files": files}
        if not meta["splits"][split]["tokens"]:
            raise ShardError(f"{out_dir}: the {split} split has no tokens in any of its {n_shards} shard(s)")
    if check:
        check(meta)
    write_json(out_dir / "meta.json", meta)
    if log:
        log.info("indexed %d shard(s): %d train / %d val tokens", n_shards, meta["splits"]["train"]["tokens"],
                 meta["splits"]["val"]["tokens"])
    return meta


def tokenize(prepared_dir: str | Path, tokenizer_dir: str | Path, out_dir: str | Path, log=None) -> dict:
    """Every shard of a prepared corpus (manifest.json says how many) in turn, then the index."""
    n_shards = read_json(Path(prepared_dir) / "manifest.json")["shards"]
    for k in range(n_shards):
        tokenize_shard(prepared_dir, tokenizer_dir, out_dir, k, log=log)
    return index_shards(out_dir, n_shards, log=log)


class ShardError(ValueError):
    """Token shards that cannot be used together; the message names the file."""


class TokenShard:
    """A read-only view of one split: its files (meta.json's list, in shard order; a hand-made folder
    without one: <split>.bin) as one token array. `take` gathers any global indices, `windows`
    (batch, length) slices, which may straddle two files."""

    def __init__(self, shard_dir: str | Path, split: str):
        shard_dir = Path(shard_dir)
        meta = read_json(shard_dir / "meta.json")
        self.vocab_size, self.eos_id = meta["vocab_size"], meta["eos_id"]
        self.dtype = np.dtype(meta["dtype"])
        files = meta.get("splits", {}).get(split, {}).get("files") or [{"name": f"{split}.bin"}]
        paths = [shard_dir / f["name"] for f in files]
        self.parts = [np.memmap(p, dtype=self.dtype, mode="r") for p in paths if p.stat().st_size]  # mmap: no empties
        self.offsets = np.cumsum([0] + [len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def take(self, idx) -> np.ndarray:
        """Tokens at global indices `idx` (any shape)."""
        idx = np.asarray(idx, dtype=np.int64)
        if len(self.parts) == 1:
            return self.parts[0][idx]
        part = np.searchsorted(self.offsets, idx, side="right") - 1
        out = np.empty(idx.shape, dtype=self.dtype)
        for k in np.unique(part):
            hit = part == k
            out[hit] = self.parts[k][idx[hit] - self.offsets[k]]
        return out

    def windows(self, starts: np.ndarray, length: int) -> np.ndarray:
        return self.take(np.asarray(starts, dtype=np.int64)[:, None] + np.arange(length, dtype=np.int64))

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
    ap.add_argument("--prepared", default="data/prepared", help="prepared corpus ({train,val}-<shard>.jsonl)")
    ap.add_argument("--tokenizer", default="data/tokenizer/hf")
    ap.add_argument("--out", default="data/shards")
    ap.add_argument("--shard", type=int, default=None,
                    help="tokenize only this shard; default: every shard, then the index")
    ap.add_argument("--log", default=None)
    args = ap.parse_args(argv)
    log = get_logger("tokenize", args.log)
    if args.shard is None:
        tokenize(args.prepared, args.tokenizer, args.out, log=log)
    else:
        tokenize_shard(args.prepared, args.tokenizer, args.out, args.shard, log=log)
    return 0


def main_index_shards(argv: list[str] | None = None) -> int:
    from archscale import config as cfg
    from archscale.data.epochs import EpochsError, check_max_epochs

    ap = argparse.ArgumentParser(prog="archscale index_shards",
                                 description="Gather the token shards into meta.json, after checking that every "
                                 "run of the grid stays within data.max_epochs of the train tokens.")
    ap.add_argument("--params", default="params.yaml", help="params file (data.shards; the grid, for the epochs check)")
    ap.add_argument("--out", default="data/shards", help="folder of the token shards")
    ap.add_argument("--log", default=None)
    args = ap.parse_args(argv)
    log = get_logger("index_shards", args.log)
    params = cfg.load(args.params)
    try:  # no meta.json unless every run of the grid stays within data.max_epochs: no pretraining starts
        index_shards(args.out, params["data"]["shards"], log=log,
                     check=lambda meta: log.info("%s", check_max_epochs(params, meta["splits"]["train"]["tokens"],
                                                                        args.params)))
    except (ShardError, EpochsError) as exc:
        log.error("%s", exc)
        return 1
    return 0
