"""Rebuild this folder's sample data from the full files (see PROVENANCE.md in this folder).

    python tests/data/make_sample.py FULL_DATA_DIR

FULL_DATA_DIR holds corpus/gutenberg/<id>.txt (the Project Gutenberg files) and
superglue/<Task>/*.jsonl (the official SuperGLUE files). Books are copied whole and gzipped
(mtime 0, so the bytes never change); SuperGLUE files keep their first records, unchanged."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# the six shortest books of the corpus: enough text for the smoke preset's max_docs: 6
BOOKS = ["11", "35", "120", "215", "219", "36"]
# (task, split, records kept): the smoke preset's tasks (CB, COPA, RTE; RTE's job also scores the
# diagnostics AX-b/AX-g) with whole val splits where they are small
SUPERGLUE = [("CB", "train", 250), ("CB", "val", 56), ("CB", "test", 50),
             ("COPA", "train", 400), ("COPA", "val", 100), ("COPA", "test", 50),
             ("RTE", "train", 300), ("RTE", "val", 100), ("RTE", "test", 50),
             ("AX-b", "AX-b", 200), ("AX-g", "AX-g", 356)]


def main(full: Path) -> None:
    corpus = HERE / "corpus"
    corpus.mkdir(exist_ok=True)
    for book in BOOKS:
        data = (full / "corpus" / "gutenberg" / f"{book}.txt").read_bytes()
        (corpus / f"{book}.txt.gz").write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    for task, split, keep in SUPERGLUE:
        lines = (full / "superglue" / task / f"{split}.jsonl").read_bytes().splitlines(keepends=True)[:keep]
        out = HERE / "superglue" / task / f"{split}.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"".join(lines).rstrip(b"\n") + b"\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
