"""prepare_corpus: raw .txt / .jsonl files (or a Hugging Face dataset, streamed) -> a document-level
train/val split, written as `data.shards` shard files that separate jobs prepare in parallel.

Local input: every .txt (one document per file) and .jsonl (one document per line, `text_field`)
in the corpus folder, gzip-compressed or not (.txt.gz, .jsonl.gz), in sorted name order; Project
Gutenberg headers and footers, a UTF-8 BOM and CRLF line endings are stripped; binary or non-UTF-8
input is rejected naming the file (and byte offset), a .jsonl line without the text field naming
file and line. Hub input (`data.hf_corpus`, used when the folder is empty): the dataset streamed
with `datasets`, one document per record (WikiText, which stores one line per record, is regrouped
into its articles by `documents: wikitext_articles`).

Sharding (scatter): the local corpus is read as one byte stream, the files in name order, cut into
`shards` equal byte ranges; a plain .jsonl is cut at line starts, a .txt or gzip file goes whole
to the shard where it starts. A hub dataset is cut by its own files (`IterableDataset.shard`,
contiguous). Either way shard 0, 1, ... in order hold the documents in corpus order, so the
concatenated shards are the one-shard corpus. Each job streams one document at a time: its memory
does not grow with the corpus.

Split: a document goes to val when a seeded hash of its text falls below `val_fraction`
(`is_val`). The split needs no document count or index, so it is the same for any shard count,
and duplicate documents land on the same side. `index_corpus` (the gather) checks that both sides
got documents.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import hashlib
import itertools
import json
import os
import re
import socket
from pathlib import Path
from typing import Iterable, Iterator

from archscale.io import atomic_path, get_logger, read_json, sha256_file, write_json

SUFFIXES = (".txt", ".jsonl")  # each also read gzip-compressed (.txt.gz, .jsonl.gz)
_PG_START = re.compile(r"^\*{3}\s*START OF (THIS|THE) PROJECT GUTENBERG EBOOK[^\n]*\n", re.M | re.I)
_PG_END = re.compile(r"^\*{3}\s*END OF (THIS|THE) PROJECT GUTENBERG EBOOK", re.M | re.I)
_PG_END_OLD = re.compile(r"^End of (the )?Project Gutenberg'?s? ", re.M | re.I)
WIKITEXT_HEADING = re.compile(r"^ = [^=].* = $")
PACKAGED_BUILDERS = {"json", "csv", "parquet", "text", "arrow"}  # `datasets` builders that read local data_files


class CorpusError(ValueError):
    """Unusable corpus input; the message names the file (and line) to fix."""


def strip_gutenberg(text: str) -> str:
    """Drop the Project Gutenberg licence header and footer when present."""
    start = _PG_START.search(text)
    if start:
        text = text[start.end():]
    ends = [m.start() for m in (_PG_END.search(text), _PG_END_OLD.search(text)) if m]
    if ends:
        text = text[:min(ends)]
    return text.strip() + "\n"


def decode(raw: bytes, source: str) -> str:
    if b"\x00" in raw[:8192]:
        raise CorpusError(f"{source}: looks binary (NUL bytes); only UTF-8 text is accepted")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{source}: not valid UTF-8 at byte {exc.start}; re-encode the file as UTF-8") from exc
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def kind(path: Path) -> str | None:
    """".txt" or ".jsonl" for a corpus file (a trailing .gz ignored), None for anything else."""
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    suffix = Path(name).suffix
    return suffix if suffix in SUFFIXES else None


def _read_whole(path: Path) -> str:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise CorpusError(f"{path}: not a valid gzip file ({exc})") from exc
    return decode(raw, str(path))


def _count_newlines(fh, n_bytes: int, block: int = 1 << 24) -> int:
    count = 0
    while n_bytes > 0:
        data = fh.read(min(block, n_bytes))
        if not data:
            break
        count, n_bytes = count + data.count(b"\n"), n_bytes - len(data)
    return count


def _jsonl_documents(path: Path, text_field: str, lo: int, hi: int | None) -> Iterator[str]:
    """The documents of the lines of a .jsonl that start in bytes [lo, hi) (a gzip file: all of them)."""
    try:
        with (gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")) as fh:
            lineno = 0
            if lo > 0:  # skip to the first line that starts at or after lo, counting lines for messages
                lineno = _count_newlines(fh, lo - 1)
                lineno += bool(fh.readline())
            while hi is None or fh.tell() < hi:
                raw = fh.readline()
                if not raw:
                    break
                lineno += 1
                line = decode(raw, f"{path}:{lineno}")
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CorpusError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
                if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
                    raise CorpusError(f"{path}:{lineno}: no string field {text_field!r}")
                if record[text_field].strip():
                    yield record[text_field]
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise CorpusError(f"{path}: not a valid gzip file ({exc})") from exc


def iter_documents(path: Path, text_field: str, lo: int = 0, hi: int | None = None) -> Iterator[str]:
    """The documents of one corpus file, one at a time; of a plain .jsonl only the lines starting in
    bytes [lo, hi) (a .txt or gzip file is never cut: it is one range)."""
    if kind(path) == ".txt":
        doc = strip_gutenberg(_read_whole(path))
        if doc.strip():
            yield doc
    else:
        yield from _jsonl_documents(path, text_field, lo, hi)


def read_documents(path: Path, text_field: str) -> list[str]:
    """All documents of one corpus file."""
    return list(iter_documents(path, text_field))


def corpus_files(corpus_dir: Path) -> list[Path]:
    if not corpus_dir.is_dir():
        return []
    return sorted(p for p in corpus_dir.iterdir() if p.is_file() and kind(p))


def shard_ranges(files: list[Path], n_shards: int) -> list[list[tuple[Path, int, int | None]]]:
    """Per shard, its (file, lo, hi) byte ranges: the files in order as one byte stream cut into
    n_shards equal parts. A plain .jsonl is cut (lines go to the part where they start); a .txt or a
    gzip file goes whole (hi None) to the part where it starts. Only file sizes are read."""
    sizes = [p.stat().st_size for p in files]
    total = sum(sizes)
    bounds = [k * total // n_shards for k in range(n_shards + 1)]
    plan: list[list[tuple[Path, int, int | None]]] = [[] for _ in range(n_shards)]
    start = 0
    for path, size in zip(files, sizes):
        if kind(path) == ".jsonl" and not path.name.endswith(".gz"):
            for k in range(n_shards):
                lo, hi = max(bounds[k] - start, 0), min(bounds[k + 1] - start, size)
                if lo < hi:
                    plan[k].append((path, lo, hi))
        else:
            plan[min(bisect.bisect_right(bounds, start) - 1, n_shards - 1)].append((path, 0, None))
        start += size
    return plan


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the Hugging Face hub answers (and HF_HUB_OFFLINE is not set)."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in {"0", ""}:
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def hub_usable(hf: dict | None) -> bool:
    """A `data.hf_corpus` that can be read now: local files through a packaged builder, or a reachable hub."""
    if not hf:
        return False
    return bool(hf.get("data_files")) and hf["path"] in PACKAGED_BUILDERS or hub_reachable()


def missing_data_message(corpus_dir: Path) -> str:
    return (f"no corpus files (.txt or .jsonl, optionally .gz) in {corpus_dir}/ "
            "and the Hugging Face hub is not reachable.\n"
            f"Put UTF-8 .txt files (one document each) or .jsonl files (one {{\"text\": ...}} per line) in "
            f"{corpus_dir}/, or run once with network access to stream data.hf_corpus.")


def _wikitext_articles(lines: Iterable[str]) -> Iterator[str]:
    """WikiText stores one line per record; an article starts at a ` = Title = ` heading line."""
    doc: list[str] = []
    for line in lines:
        if WIKITEXT_HEADING.match(line.rstrip("\n")) and doc:
            yield "".join(doc)
            doc = []
        doc.append(line)
    if doc:
        yield "".join(doc)


def hub_documents(hf: dict, text_field: str, shard: int, n_shards: int) -> Iterator[str]:
    """The documents of one shard of a Hugging Face dataset, streamed (nothing is downloaded whole)."""
    import datasets

    ds = datasets.load_dataset(hf["path"], hf.get("name"), split=hf.get("split", "train"), streaming=True,
                               data_files=hf.get("data_files"))
    if n_shards > ds.num_shards:
        raise CorpusError(f"data.shards = {n_shards}, but data.hf_corpus {hf['path']} streams from {ds.num_shards} "
                          f"file(s), the most it can be cut into: set data.shards <= {ds.num_shards}")
    texts = (record[text_field] for record in ds.shard(n_shards, shard, contiguous=True))
    if hf.get("documents", "records") == "wikitext_articles":
        texts = _wikitext_articles(texts)
    return (t for t in texts if isinstance(t, str) and t.strip())


def is_val(text: str, seed: int, val_fraction: float) -> bool:
    """The split of one document: val when a seeded 64-bit hash of its text falls below val_fraction."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8, salt=seed.to_bytes(16, "little", signed=True))
    return int.from_bytes(digest.digest(), "little") < val_fraction * 2 ** 64


def shard_name(split: str, shard: int, suffix: str) -> str:
    return f"{split}-{shard:05d}{suffix}"


def prepare_shard(corpus_dir: str | Path, out_dir: str | Path, shard: int, n_shards: int, *, val_fraction: float,
                  seed: int, text_field: str = "text", max_docs: int | None = None, hf: dict | None = None,
                  log=None) -> dict:
    """Write out_dir/{train,val}-<shard>.jsonl and manifest-<shard>.json; returns the manifest."""
    from tqdm import tqdm

    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    if not 0 <= shard < n_shards:
        raise CorpusError(f"shard {shard} of data.shards = {n_shards}: shards are numbered 0..{n_shards - 1}")
    files = corpus_files(corpus_dir)
    manifest: dict = {"shard": shard, "shards": n_shards, "seed": seed, "val_fraction": val_fraction,
                      "max_docs": max_docs}
    if files:
        ranges = shard_ranges(files, n_shards)[shard]
        docs = ((p.name, d) for p, lo, hi in ranges for d in iter_documents(p, text_field, lo, hi))
        manifest["corpus_dir"] = str(corpus_dir)
        manifest["files"] = [{"name": p.name, "bytes": [lo, p.stat().st_size if hi is None else hi],
                              **({"sha256": sha256_file(p)} if hi is None or (lo, hi) == (0, p.stat().st_size) else {})}
                             for p, lo, hi in ranges]
    elif hub_usable(hf):
        docs = ((hf["path"], d) for d in hub_documents(hf, text_field, shard, n_shards))
        manifest["hf_corpus"] = hf
    else:
        raise CorpusError(missing_data_message(corpus_dir))
    if max_docs:
        docs = itertools.islice(docs, max_docs)
    counts = {split: {"documents": 0, "chars": 0, "sources": set()} for split in ("train", "val")}
    paths = {split: out_dir / shard_name(split, shard, ".jsonl") for split in counts}
    with atomic_path(paths["train"]) as t_train, atomic_path(paths["val"]) as t_val, \
            open(t_train, "w") as f_train, open(t_val, "w") as f_val:
        for source, doc in tqdm(docs, unit=" docs", desc=f"prepare shard {shard}/{n_shards}", mininterval=2):
            split = "val" if is_val(doc, seed, val_fraction) else "train"
            (f_val if split == "val" else f_train).write(json.dumps({"text": doc, "source": source}) + "\n")
            c = counts[split]
            c["documents"], c["chars"] = c["documents"] + 1, c["chars"] + len(doc)
            c["sources"].add(source)
    for split, c in counts.items():
        manifest[split] = {**c, "sources": sorted(c["sources"])}
    write_json(out_dir / shard_name("manifest", shard, ".json"), manifest)
    if log:
        log.info("shard %d/%d: %d train / %d val documents (%d / %d chars)", shard, n_shards,
                 counts["train"]["documents"], counts["val"]["documents"], counts["train"]["chars"],
                 counts["val"]["chars"])
    return manifest


def index_corpus(out_dir: str | Path, n_shards: int, log=None) -> dict:
    """The gather: every shard's manifest -> manifest.json with the totals; stops when a split is empty."""
    out_dir = Path(out_dir)
    parts = [read_json(out_dir / shard_name("manifest", k, ".json")) for k in range(n_shards)]
    manifest = {"shards": n_shards, "seed": parts[0]["seed"], "val_fraction": parts[0]["val_fraction"],
                "parts": [shard_name("manifest", k, ".json") for k in range(n_shards)]}
    for split in ("train", "val"):
        manifest[split] = {"documents": sum(p[split]["documents"] for p in parts),
                           "chars": sum(p[split]["chars"] for p in parts),
                           "files": [shard_name(split, k, ".jsonl") for k in range(n_shards)]}
    n_docs = manifest["train"]["documents"] + manifest["val"]["documents"]
    for split in ("train", "val"):
        if not manifest[split]["documents"]:
            raise CorpusError(f"{out_dir}: no document went to {split} ({n_docs} document(s) in all, data.val_fraction "
                              f"= {manifest['val_fraction']}, seed = {manifest['seed']}): add documents or change "
                              "data.val_fraction (each document goes to val with that probability)")
    write_json(out_dir / "manifest.json", manifest)
    if log:
        log.info("corpus: %d train / %d val documents (%d / %d chars) in %d shard(s)", manifest["train"]["documents"],
                 manifest["val"]["documents"], manifest["train"]["chars"], manifest["val"]["chars"], n_shards)
    return manifest


def prepare_corpus(corpus_dir: str | Path, out_dir: str | Path, *, val_fraction: float, seed: int,
                   text_field: str = "text", max_docs: int | None = None, hf: dict | None = None, shards: int = 1,
                   log=None) -> dict:
    """Every shard in turn, then the gather (the DAG runs them as separate jobs); returns manifest.json."""
    for k in range(shards):
        prepare_shard(corpus_dir, out_dir, k, shards, val_fraction=val_fraction, seed=seed, text_field=text_field,
                      max_docs=max_docs, hf=hf, log=log)
    return index_corpus(out_dir, shards, log=log)


def main(argv: list[str] | None = None) -> int:
    from archscale import config as cfg

    ap = argparse.ArgumentParser(prog="archscale prepare_corpus", description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml", help="params file (data.*, seed)")
    ap.add_argument("--out", default="data/prepared", help="output folder ({train,val}-<shard>.jsonl, manifests)")
    ap.add_argument("--shard", type=int, default=None, help="prepare only this shard (0..data.shards-1); "
                    "default: every shard, then the index")
    ap.add_argument("--log", default=None, help="log file")
    args = ap.parse_args(argv)
    params = cfg.load(args.params)
    d = params["data"]
    log = get_logger("prepare_corpus", args.log)
    kw = dict(val_fraction=d["val_fraction"], seed=params["seed"], text_field=d["text_field"],
              max_docs=d.get("max_docs"), hf=d.get("hf_corpus"), log=log)
    try:
        if args.shard is None:
            prepare_corpus(d["corpus_dir"], args.out, shards=d["shards"], **kw)
        else:
            prepare_shard(d["corpus_dir"], args.out, args.shard, d["shards"], **kw)
    except CorpusError as exc:
        log.error("%s", exc)
        return 1
    return 0


def main_index_corpus(argv: list[str] | None = None) -> int:
    from archscale import config as cfg

    ap = argparse.ArgumentParser(prog="archscale index_corpus", description=index_corpus.__doc__)
    ap.add_argument("--params", default="params.yaml", help="params file (data.shards)")
    ap.add_argument("--out", default="data/prepared", help="folder of the prepared shards")
    ap.add_argument("--log", default=None, help="log file")
    args = ap.parse_args(argv)
    log = get_logger("index_corpus", args.log)
    try:
        index_corpus(args.out, cfg.load(args.params)["data"]["shards"], log=log)
    except CorpusError as exc:
        log.error("%s", exc)
        return 1
    return 0
