"""A corpus cut into shards (scatter/gather jobs) gives the one-shard path's documents, tokens and
batches; a hub dataset streams one document per record; data.max_epochs stops before pretraining."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import yaml
from conftest import REPO

from archscale import config as cfg
from archscale.data.corpus import CorpusError, _wikitext_articles, iter_documents, prepare_corpus, shard_ranges

SMOKE = REPO / "presets" / "smoke.yaml"


def _paragraph_jsonl(books: list, dest) -> None:
    """A plain .jsonl of the books' paragraphs, one record each: a file the shards cut at line starts."""
    with open(dest, "w") as fh:
        for book in books:
            for para in gzip.decompress(book.read_bytes()).decode().replace("\r\n", "\n").split("\n\n"):
                if para.strip():
                    fh.write(json.dumps({"text": para + "\n"}) + "\n")


def _lines(folder, split: str, n_shards: int) -> list[str]:
    return [line for k in range(n_shards) for line in (folder / f"{split}-{k:05d}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def one_and_three(sample_data, tmp_path_factory):
    """The six sample books plus a paragraph .jsonl (the largest file, named last), prepared and
    tokenized as 1 shard and as 3 shards with one tokenizer."""
    from archscale.data.shards import tokenize
    from archscale.data.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("shards")
    corpus = root / "corpus"
    corpus.mkdir()
    books = sorted((sample_data / "corpus").glob("*.txt.gz"))
    for book in books:
        (corpus / book.name).symlink_to(book)
    _paragraph_jsonl(books[:3], corpus / "zz_paragraphs.jsonl")
    for n in (1, 3):
        prepare_corpus(corpus, root / f"prepared{n}", val_fraction=0.2, seed=7, shards=n)
    train_tokenizer(root / "prepared1", root / "tok", kind="bpe", vocab_size=400, min_frequency=2, n_sentinels=4)
    for n in (1, 3):
        tokenize(root / f"prepared{n}", root / "tok", root / f"shards{n}")
    return root


def test_three_shards_hold_the_one_shard_documents_in_order(one_and_three):
    root = one_and_three
    manifests = [json.loads((root / "prepared3" / f"manifest-{k:05d}.json").read_text()) for k in range(3)]
    cut = [k for k, m in enumerate(manifests) if any(f["name"] == "zz_paragraphs.jsonl" for f in m["files"])]
    assert len(cut) >= 2, "the paragraph file should be cut between shards"
    for split in ("train", "val"):
        one, three = _lines(root / "prepared1", split, 1), _lines(root / "prepared3", split, 3)
        assert three == one and len(one) > 5, split


def test_three_shards_give_the_one_shard_tokens_and_batches(one_and_three):
    from transformers import PreTrainedTokenizerFast

    from archscale.data.objectives import raw_length_for
    from archscale.data.shards import TokenShard
    from archscale.data.tokenizer import special_ids
    from archscale.models.registry import model_kind
    from archscale.train.pretrain import global_batch, stream_batch

    root = one_and_three
    meta3 = json.loads((root / "shards3" / "meta.json").read_text())
    assert sum(f["tokens"] > 0 for f in meta3["splits"]["train"]["files"]) >= 2
    for split in ("train", "val"):
        a, b = TokenShard(root / "shards1", split), TokenShard(root / "shards3", split)
        assert len(b.parts) >= 2 or split == "val"
        assert len(a) == len(b) and np.array_equal(a.take(np.arange(len(a))), b.take(np.arange(len(b)))), split
    one, three = TokenShard(root / "shards1", "train"), TokenShard(root / "shards3", "train")
    straddle = three.offsets[1:-1] - 3  # windows across each file boundary
    assert np.array_equal(one.windows(straddle, 8), three.windows(straddle, 8))
    params = cfg.load(SMOKE)
    special = special_ids(PreTrainedTokenizerFast.from_pretrained(str(root / "tok")))
    for run in ("gpt2-pico", "transformer-pico", "bert_mlm-pico"):
        rc = cfg.resolve_run(params, run)
        kind = model_kind(rc["objective"])
        raw_len = raw_length_for(kind, rc["train"]["seq_len"], rc["objectives"]["span"])
        for step in (0, 1, 57):
            for make in (global_batch, stream_batch) if kind == "decoder" else (global_batch,):
                x, y = make(one, step, kind, rc, raw_len, special), make(three, step, kind, rc, raw_len, special)
                assert x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x), (run, step, make)


def test_byte_ranges_give_every_line_to_exactly_one_shard(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "c.jsonl"
    records = [{"text": "x" * int(n)} for n in rng.integers(1, 300, 200)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    for n in (1, 2, 3, 7, 50):
        got = [doc for part in shard_ranges([path], n) for p, lo, hi in part
               for doc in iter_documents(p, "text", lo, hi)]
        assert got == [r["text"] for r in records], n


def test_an_error_in_a_later_shard_names_its_line(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    lines = [json.dumps({"text": f"document {i}"}) for i in range(300)]
    lines[250] = '{"body": "no text field"}'
    (corpus / "c.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusError, match=r"c\.jsonl:251: no string field 'text'"):
        prepare_corpus(corpus, tmp_path / "out", val_fraction=0.5, seed=0, shards=4)


def test_a_hub_dataset_streams_one_document_per_record(tmp_path, monkeypatch):
    """Through `datasets` streaming (the builder that reads the hub's C4 files, here on local files):
    one document per record, the same documents as the corpus-folder path, cut by file."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    files = tmp_path / "files"
    files.mkdir()
    for f in range(2):
        (files / f"part{f}.jsonl").write_text("".join(json.dumps({"text": f"page {f}.{i}\n= not a heading =\n"}) + "\n"
                                                      for i in range(40)))
    data_files = sorted(str(p) for p in files.iterdir())
    hf = {"path": "json", "data_files": data_files, "split": "train", "documents": "records"}
    m = prepare_corpus(tmp_path / "empty", tmp_path / "hub", val_fraction=0.25, seed=3, hf=hf, shards=2)
    assert m["train"]["documents"] + m["val"]["documents"] == 80
    prepare_corpus(files, tmp_path / "local", val_fraction=0.25, seed=3)
    for split in ("train", "val"):
        hub = [json.loads(line)["text"] for line in _lines(tmp_path / "hub", split, 2)]
        local = [json.loads(line)["text"] for line in _lines(tmp_path / "local", split, 1)]
        assert hub == local, split
    with pytest.raises(CorpusError, match=r"data.shards = 3.* 2 file\(s\)"):
        prepare_corpus(tmp_path / "empty", tmp_path / "hub3", val_fraction=0.25, seed=3, hf=hf, shards=3)


def test_wikitext_records_regroup_into_articles():
    lines = [" = A = \n", " text a \n", " = = Section = = \n", " more a \n", " = B = \n", " text b \n"]
    assert list(_wikitext_articles(lines)) == ["".join(lines[:4]), "".join(lines[4:])]


def _tight(params_path, dest, max_epochs: float):
    params = yaml.safe_load(params_path.read_text())
    params["data"]["max_epochs"] = max_epochs
    dest.write_text(yaml.safe_dump(params))
    return dest


def test_max_epochs_stops_the_index_the_dag_and_pretrain_before_compute(tiny_lm_data, sample_data, tmp_path):
    """The fixture's 0.24M train tokens: pico runs read ~0.03 epochs of them. A cap of 0.001
    leaves no meta.json, stops `snakemake -n` before any job, and `archscale pretrain` exits 2."""
    from workspace import make_workspace, sh

    root, _ = tiny_lm_data
    ws = make_workspace(tmp_path / "ws", preset="presets/smoke.yaml", corpus=sample_data / "corpus")
    shards = ws / "data" / "shards"
    shutil.copytree(root / "shards", shards)
    tight = _tight(ws / "params.yaml", ws / "tight.yaml", 0.001)
    meta = shards / "meta.json"
    meta.unlink()
    proc = sh(ws, "archscale", "index_shards", "--params", "tight.yaml", "--out", "data/shards", ok=False)
    assert proc.returncode == 1 and not meta.exists()
    assert "data.max_epochs is 0.001" in proc.stderr and "gpt2-pico (" in proc.stderr
    sh(ws, "archscale", "index_shards", "--params", "params.yaml", "--out", "data/shards")
    assert meta.is_file()
    proc = sh(ws, "snakemake", "-n", "--cores", "1", "--configfile", "tight.yaml", ok=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "data.max_epochs is 0.001" in out
    assert "9 run(s) would read" in out and "Job stats" not in out
    out = sh(ws, "snakemake", "-n", "--cores", "1").stderr
    assert re.search(r"9 run\(s\) read 0\.0\d+ to 0\.0\d+ epochs", out) and "data.max_epochs is 1" in out
    proc = sh(ws, "archscale", "pretrain", "--params", str(tight), "--run", "gpt2-pico", "--shards", "data/shards",
              "--tokenizer", str(root / "tok"), "--out", "run", ok=False)
    assert proc.returncode == 2 and "more often: gpt2-pico (0.0" in proc.stderr and not (ws / "run").exists()


def test_plan_states_epochs_for_a_corpus_size_given():
    proc = subprocess.run(["archscale", "plan", "--configfile", str(SMOKE), "--train-tokens", "4.096e5",
                           "--shards", "/nonexistent"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("gpt2-pico "))
    # smoke gpt2-pico: 7,680 tokens at batch 8 x seq 32 = 30 steps x 256 = 7,680 tokens drawn (clm: raw = seq)
    assert "409,600 train tokens (--train-tokens)" in proc.stdout
    assert float(row.split()[4]) == pytest.approx(7680 / 409600, rel=1e-2)


def test_meta_json_carries_each_token_file_s_sha256(tiny_lm_data, tmp_path):
    """meta.json lists every token file with the sha256 of its bytes (hashed as tokenize writes it), so
    it changes whenever a shard does and the per-run jobs can depend on it alone; a part file from an
    older tokenize (no sha256) stops index_shards, naming the file and the job to rerun."""
    import hashlib
    import json
    import shutil

    from archscale.data.shards import ShardError, index_shards

    shards = tiny_lm_data[0] / "shards"
    meta = json.loads((shards / "meta.json").read_text())
    for split in ("train", "val"):
        for f in meta["splits"][split]["files"]:
            assert f["sha256"] == hashlib.sha256((shards / f["name"]).read_bytes()).hexdigest(), f["name"]
    old = tmp_path / "shards"
    shutil.copytree(shards, old)
    part = json.loads((old / "part-00000.json").read_text())
    del part["splits"]["val"]["sha256"]
    (old / "part-00000.json").write_text(json.dumps(part))
    with pytest.raises(ShardError, match=r"part-00000.json: no sha256 .* rerun its tokenize job"):
        index_shards(old, 1)
