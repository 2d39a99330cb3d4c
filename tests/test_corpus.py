"""prepare_corpus: boilerplate stripping, the split, and errors that name file and line."""

from __future__ import annotations

import json

import pytest

from archscale.data.corpus import CorpusError, corpus_files, is_val, prepare_corpus, read_documents, strip_gutenberg

PG = ("The Project Gutenberg EBook of X\r\n\r\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\r\n"
      "Call me Ishmael.\r\n*** END OF THIS PROJECT GUTENBERG EBOOK X ***\r\nlicence text\r\n")


def test_strip_gutenberg_keeps_only_the_book():
    assert strip_gutenberg(PG.replace("\r\n", "\n")) == "Call me Ishmael.\n"


def _corpus(tmp_path, files: dict[str, bytes]):
    d = tmp_path / "corpus"
    d.mkdir()
    for name, data in files.items():
        (d / name).write_bytes(data)
    return d


def test_prepare_splits_documents_and_normalises(tmp_path):
    d = _corpus(tmp_path, {f"b{i}.txt": ("\ufeff" + PG.replace("Ishmael", f"Ishmael {i}")).encode() for i in range(5)} |
                {"c.jsonl": b'{"text": "one"}\n{"text": "two"}\n'})
    m = prepare_corpus(d, tmp_path / "out", val_fraction=0.3, seed=1)
    assert m["train"]["documents"] + m["val"]["documents"] == 7
    text = (tmp_path / "out" / "train-00000.jsonl").read_text()
    assert "\\r" not in text and "START OF" not in text and "\\ufeff" not in text
    prepare_corpus(d, tmp_path / "out2", val_fraction=0.3, seed=1)
    for name in ("train-00000.jsonl", "val-00000.jsonl", "manifest-00000.json", "manifest.json"):
        assert (tmp_path / "out2" / name).read_bytes() == (tmp_path / "out" / name).read_bytes(), name


def test_split_is_a_seeded_hash_of_the_text():
    docs = [f"document number {i}\n" for i in range(2000)]
    a = {d for d in docs if is_val(d, seed=1, val_fraction=0.2)}
    b = {d for d in docs if is_val(d, seed=2, val_fraction=0.2)}
    assert a != b
    for val in (a, b):  # binomial(2000, 0.2): mean 400, sd 17.9; +-4 sd
        assert 328 < len(val) < 472
    assert a == {d for d in reversed(docs) if is_val(d, seed=1, val_fraction=0.2)}  # order plays no part


@pytest.mark.parametrize("files, expected", [
    ({"a.txt": b"fine", "bad.txt": "caf\u00e9".encode("latin-1")}, "bad.txt: not valid UTF-8 at byte 3"),
    ({"a.txt": b"fine", "img.txt": b"\x89PNG\x00\x00\x01"}, "img.txt: looks binary"),
    ({"a.txt": b"fine", "d.jsonl": b'{"text": "ok"}\n{"body": "no text"}\n'}, "d.jsonl:2: no string field 'text'"),
    ({"a.txt": b"fine", "d.jsonl": b'{"text": "ok"}\n{oops\n'}, "d.jsonl:2: not valid JSON"),
    ({"only.txt": b"one document"}, "no document went to"),
])
def test_bad_input_names_file_and_line(tmp_path, files, expected):
    d = _corpus(tmp_path, files)
    with pytest.raises(CorpusError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        prepare_corpus(d, tmp_path / "out", val_fraction=0.5, seed=0)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_empty_folder_offline_says_where_to_put_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    d = _corpus(tmp_path, {})
    with pytest.raises(CorpusError) as err:
        prepare_corpus(d, tmp_path / "out", val_fraction=0.5, seed=0, hf={"path": "wikitext"})
    assert str(d) in str(err.value) and ".jsonl" in str(err.value)


def test_gzipped_files_read_as_their_plain_text_and_a_corrupt_one_is_named(tmp_path):
    import gzip

    plain, packed = tmp_path / "plain", tmp_path / "packed"
    plain.mkdir()
    packed.mkdir()
    book = ("*** START OF THIS PROJECT GUTENBERG EBOOK X ***\nCall me Ishmael.\n"
            "*** END OF THIS PROJECT GUTENBERG EBOOK X ***\n")
    lines = '{"text": "one"}\n{"text": "two"}\n'
    (plain / "a.txt").write_text(book)
    (plain / "b.jsonl").write_text(lines)
    (packed / "a.txt.gz").write_bytes(gzip.compress(book.encode()))
    (packed / "b.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    (packed / "notes.md.gz").write_bytes(gzip.compress(b"not a corpus file"))
    assert [p.name for p in corpus_files(packed)] == ["a.txt.gz", "b.jsonl.gz"]
    for f_plain, f_packed in zip(corpus_files(plain), corpus_files(packed)):
        assert read_documents(f_packed, "text") == read_documents(f_plain, "text")
    assert read_documents(packed / "a.txt.gz", "text") == ["Call me Ishmael.\n"]
    (packed / "c.txt.gz").write_bytes(b"\x1f\x8b\x08 truncated")
    with pytest.raises(CorpusError, match=r"c\.txt\.gz: not a valid gzip file"):
        read_documents(packed / "c.txt.gz", "text")


def test_real_gutenberg_books_lose_their_licence(sample_data, tmp_path):
    books = sorted((sample_data / "corpus").glob("*.txt.gz"))[:3]
    d = tmp_path / "c"
    d.mkdir()
    for b in books:
        (d / b.name).symlink_to(b)
    prepare_corpus(d, tmp_path / "out", val_fraction=0.34, seed=0)
    for split in ("train", "val"):
        for line in (tmp_path / "out" / f"{split}-00000.jsonl").read_text().splitlines():
            text = json.loads(line)["text"]
            assert "*** START OF" not in text and "END OF THE PROJECT GUTENBERG" not in text.upper()


def test_tokenizing_again_gives_the_same_shard_bytes(tiny_lm_data, tmp_path):
    """Shards and meta.json are a pure function of corpus and tokenizer (no timings in meta.json),
    so a rerun of tokenize never makes Snakemake or DVC retrain anything."""
    from archscale.data.shards import tokenize

    root, _ = tiny_lm_data
    tokenize(root / "prepared", root / "tok", tmp_path / "again")
    for name in ("meta.json", "train-00000.bin", "val-00000.bin", "part-00000.json"):
        assert (tmp_path / "again" / name).read_bytes() == (root / "shards" / name).read_bytes(), name
