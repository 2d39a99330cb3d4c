"""prepare_corpus: raw .txt / .jsonl files -> a document-level train/val split.

Reads every .txt (one document per file) and .jsonl (one document per line, `text_field`) in
the corpus folder, gzip-compressed or not (.txt.gz, .jsonl.gz), in sorted name order; strips Project Gutenberg headers and footers, a UTF-8
BOM and CRLF line endings; rejects binary or non-UTF-8 input naming the file (and byte offset)
and a .jsonl line without the text field naming file and line. When the folder is empty it fills
it from the Hugging Face hub (datasets.load_dataset) if reachable, else stops with a message
that says where to put the files.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import re
import socket
from pathlib import Path

import numpy as np

from archscale.io import atomic_path, get_logger, sha256_file, write_json

SUFFIXES = (".txt", ".jsonl")  # each also read gzip-compressed (.txt.gz, .jsonl.gz)
_PG_START = re.compile(r"^\*{3}\s*START OF (THIS|THE) PROJECT GUTENBERG EBOOK[^\n]*\n", re.M | re.I)
_PG_END = re.compile(r"^\*{3}\s*END OF (THIS|THE) PROJECT GUTENBERG EBOOK", re.M | re.I)
_PG_END_OLD = re.compile(r"^End of (the )?Project Gutenberg'?s? ", re.M | re.I)


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


def read_documents(path: Path, text_field: str) -> list[str]:
    """The documents of one corpus file."""
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise CorpusError(f"{path}: not a valid gzip file ({exc})") from exc
    text = decode(raw, str(path))
    if kind(path) == ".txt":
        doc = strip_gutenberg(text)
        return [doc] if doc.strip() else []
    docs = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
            raise CorpusError(f"{path}:{lineno}: no string field {text_field!r}")
        if record[text_field].strip():
            docs.append(record[text_field])
    return docs


def corpus_files(corpus_dir: Path) -> list[Path]:
    if not corpus_dir.is_dir():
        return []
    return sorted(p for p in corpus_dir.iterdir() if p.is_file() and kind(p))


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the Hugging Face hub answers (and HF_HUB_OFFLINE is not set)."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in {"0", ""}:
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def missing_data_message(corpus_dir: Path) -> str:
    return (f"no corpus files (.txt or .jsonl, optionally .gz) in {corpus_dir}/ and the Hugging Face hub is not reachable.\n"
            f"Put UTF-8 .txt files (one document each) or .jsonl files (one {{\"text\": ...}} per line) in "
            f"{corpus_dir}/, or run once with network access to download WikiText-103.")


def fetch_corpus(corpus_dir: Path, hf: dict, text_field: str) -> Path:
    """Download the configured HF corpus into `corpus_dir` as one .jsonl (articles as documents)."""
    import datasets

    ds = datasets.load_dataset(hf["path"], hf.get("name"), split=hf.get("split", "train"))
    out = corpus_dir / f"{hf['path'].replace('/', '_')}-{hf.get('name') or 'default'}.jsonl"
    heading = re.compile(r"^ = [^=].* = $")
    with atomic_path(out) as tmp, open(tmp, "w") as fh:
        doc: list[str] = []
        for line in ds["text"]:
            if heading.match(line.rstrip("\n")) and doc:
                fh.write(json.dumps({text_field: "".join(doc)}) + "\n")
                doc = []
            doc.append(line)
        if doc:
            fh.write(json.dumps({text_field: "".join(doc)}) + "\n")
    return out


def ensure_corpus(corpus_dir: Path, hf: dict | None, text_field: str) -> list[Path]:
    files = corpus_files(corpus_dir)
    if files:
        return files
    if hf and hub_reachable():
        corpus_dir.mkdir(parents=True, exist_ok=True)
        fetch_corpus(corpus_dir, hf, text_field)
        return corpus_files(corpus_dir)
    raise CorpusError(missing_data_message(corpus_dir))


def split_documents(n_docs: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Document indices of (train, val): a seeded permutation, at least one document each."""
    if n_docs < 2:
        raise CorpusError(f"need at least 2 documents for a document-level train/val split, found {n_docs}")
    order = np.random.default_rng(seed).permutation(n_docs)
    n_val = min(max(math.ceil(n_docs * val_fraction), 1), n_docs - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def prepare_corpus(corpus_dir: str | Path, out_dir: str | Path, *, val_fraction: float, seed: int,
                   text_field: str = "text", max_docs: int | None = None, hf: dict | None = None,
                   log=None) -> dict:
    """Write out_dir/{train,val}.jsonl and manifest.json; returns the manifest."""
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    files = ensure_corpus(corpus_dir, hf, text_field)
    docs, sources = [], []
    for path in files:
        for doc in read_documents(path, text_field):
            docs.append(doc)
            sources.append(path.name)
    if not docs:
        raise CorpusError(f"{corpus_dir}: the files hold no text")
    if max_docs:
        docs, sources = docs[:max_docs], sources[:max_docs]
    train_idx, val_idx = split_documents(len(docs), val_fraction, seed)
    manifest = {"corpus_dir": str(corpus_dir), "seed": seed, "val_fraction": val_fraction, "max_docs": max_docs,
                "files": {p.name: sha256_file(p) for p in files}}
    for split, idx in (("train", train_idx), ("val", val_idx)):
        with atomic_path(out_dir / f"{split}.jsonl") as tmp, open(tmp, "w") as fh:
            for i in idx:
                fh.write(json.dumps({"text": docs[i], "source": sources[i]}) + "\n")
        manifest[split] = {"documents": int(len(idx)), "chars": int(sum(len(docs[i]) for i in idx)),
                           "sources": sorted({sources[i] for i in idx})}
    write_json(out_dir / "manifest.json", manifest)
    if log:
        log.info("prepared %d train / %d val documents (%d / %d chars) from %d files", len(train_idx),
                 len(val_idx), manifest["train"]["chars"], manifest["val"]["chars"], len(files))
    return manifest


def main(argv: list[str] | None = None) -> int:
    from archscale import config as cfg

    ap = argparse.ArgumentParser(prog="archscale prepare_corpus", description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml", help="params file (data.*, seed)")
    ap.add_argument("--out", default="data/prepared", help="output folder (train.jsonl, val.jsonl, manifest.json)")
    ap.add_argument("--log", default=None, help="log file")
    args = ap.parse_args(argv)
    params = cfg.load(args.params)
    d = params["data"]
    log = get_logger("prepare_corpus", args.log)
    try:
        prepare_corpus(d["corpus_dir"], args.out, val_fraction=d["val_fraction"], seed=params["seed"],
                       text_field=d["text_field"], max_docs=d.get("max_docs"), hf=d.get("hf_corpus"), log=log)
    except CorpusError as exc:
        log.error("%s", exc)
        return 1
    return 0
