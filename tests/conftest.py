"""Shared fixtures: the sample data shipped in tests/data (any clone: the smoke pipeline and the
tiny-corpus runs) and the larger read-only data in ../shared/data (tests of the full files)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE_DATA = REPO / "tests" / "data"  # corpus/ and superglue/, 1.2 MB (tests/data/PROVENANCE.md)


@pytest.fixture(scope="session")
def sample_data() -> Path:
    """tests/data: six gzipped public-domain books and the smoke tasks' official SuperGLUE records."""
    return SAMPLE_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips (saying why) when it is not beside the checkout."""
    if not (SHARED_DATA / "corpus" / "gutenberg").is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA} (clone the repo beside shared/)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_lm_data(sample_data, tmp_path_factory):
    """Three real books (tests/data) -> split, a 512-token BPE tokenizer and token shards (built once per session),
    plus the smoke params with that vocabulary. Tests that run `archscale pretrain` start from it."""
    from archscale import config as cfg
    from archscale.data.corpus import prepare_corpus
    from archscale.data.shards import tokenize
    from archscale.data.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("tiny_lm")
    corpus = root / "corpus"
    corpus.mkdir()
    for name in ("11.txt.gz", "36.txt.gz", "120.txt.gz"):
        (corpus / name).symlink_to(sample_data / "corpus" / name)
    # seed 5: train = 120, val = 11 and 36, the split these tests were tuned on (the learning tests'
    # margins were measured with it); the split rule itself is a seeded hash (data/corpus.py)
    prepare_corpus(corpus, root / "prepared", val_fraction=0.34, seed=5)
    train_tokenizer(root / "prepared", root / "tok", kind="bpe", vocab_size=512, min_frequency=2,
                    n_sentinels=20)
    tokenize(root / "prepared", root / "tok", root / "shards")
    params = cfg.load(REPO / "presets" / "smoke.yaml")
    # the tests set batch and lr per run through train:, which an architecture's own train: would override
    for arch in params["architectures"].values():
        arch.pop("train", None)
    params["tokenizer"].update(vocab_size=512, n_sentinels=20)
    params["data"]["max_epochs"] = 1000  # one book of train tokens: the learning tests reread it on purpose
    return root, params


def run_root(tiny_lm_data, tmp_path_factory, name: str):
    """A fresh folder for one test module's runs, with the shared tokenizer and shards linked in."""
    import copy

    data_root, params = tiny_lm_data
    root = tmp_path_factory.mktemp(name)
    for sub in ("tok", "shards"):
        (root / sub).symlink_to(data_root / sub)
    return root, copy.deepcopy(params)


@pytest.fixture(scope="session")
def smoke_build(sample_data, tmp_path_factory) -> Path:
    """The whole smoke DAG built once by plain Snakemake inside a DVC workspace (no SCM), shared by
    test_pipeline_smoke.py (reads it) and test_dvc_rebuild.py (works on copies).

    ARCHSCALE_SMOKE_BUILD=<dir> builds in <dir> (wiped first) and keeps it, so CI can compare it with
    the Slurm smoke build (.ci/compare-builds.sh); with ARCHSCALE_SMOKE_REUSE=1 a finished build there
    (dvc.lock present) is reused as it is."""
    import os
    import shutil

    from workspace import new_clone, sh

    keep = os.environ.get("ARCHSCALE_SMOKE_BUILD")
    dest = Path(keep) if keep else tmp_path_factory.mktemp("dvc_smoke") / "ws"
    if keep and os.environ.get("ARCHSCALE_SMOKE_REUSE") == "1" and (dest / "dvc.lock").is_file():
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    ws = new_clone(dest, sample_data)
    sh(ws, "dvc", "init", "--no-scm", "-q")
    sh(ws, "snakemake", "--cores", "2", "--quiet", "rules", timeout=2400)
    return ws
