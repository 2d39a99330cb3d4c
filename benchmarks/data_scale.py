"""Data at scale: peak memory of `prepare_corpus` and `tokenize` at 1x and 4x the default corpus
(it must stay flat: each job streams one document, one batch at a time), and tokens/s of the
tokenize stage as 1 job or as 2 parallel shard jobs.

    python benchmarks/data_scale.py [--corpus DIR] [--baseline-src DIR] [--quick]

1x is the default corpus (36 Gutenberg books, --corpus or $ARCHSCALE_SHARED_DATA/corpus/gutenberg);
4x links every book four times under new names. Every stage is the real CLI in its own process,
and its peak RSS is that process's own (os.wait4). The tokenizer (params.yaml's) is trained once,
on 1x. With --baseline-src (a checkout's src/, e.g. of the commit before sharding) the old
prepare_corpus and tokenize run on the same corpora through that checkout's params.yaml, for the
before/after memory. --quick: 1x and 2x of the first three books, no RESULTS.md update.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, md_table, report  # noqa: E402


def run(cmd: list[str], env: dict, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_all(procs: list[subprocess.Popen]) -> tuple[float, float]:
    """Wait for the processes; (largest peak RSS in MB, wall seconds since the first started)."""
    t0, peak = time.perf_counter(), 0.0
    for proc in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            sys.exit(f"{' '.join(proc.args)} failed:\n{proc.stderr.read()[-3000:]}")
        peak = max(peak, usage.ru_maxrss / 1024)  # KiB on Linux
    return peak, time.perf_counter() - t0


def corpus_copies(src: Path, dest: Path, times: int, max_files: int | None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    books = sorted(p for p in src.iterdir() if p.is_file())[:max_files]
    for k in range(times):
        for book in books:
            (dest / f"copy{k}-{book.name}").symlink_to(book.resolve())
    return dest


def params_file(base: Path, dest: Path, corpus: Path, shards: int | None) -> Path:
    params = yaml.safe_load(base.read_text())
    params["data"]["corpus_dir"] = str(corpus)
    if shards is not None:
        params["data"]["shards"] = shards
    dest.write_text(yaml.safe_dump(params))
    return dest


def env_for(src: Path, threads: int) -> dict:
    return {**os.environ, "PYTHONPATH": str(src), "RAYON_NUM_THREADS": str(threads), "OMP_NUM_THREADS": "1"}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "archscale.cli", *args]


def tokens_in(shards: Path) -> int:
    import json

    meta = json.loads((shards / "meta.json").read_text())
    return meta["splits"]["train"]["tokens"] + meta["splits"]["val"]["tokens"]


def measure_current(work: Path, corpus: Path, scale: int, tok: Path, jobs: int, threads: int) -> dict:
    """prepare + tokenize as `jobs` parallel shard jobs (each `threads` Rayon threads), then the gathers."""
    out = work / f"x{scale}-j{jobs}-t{threads}"
    params = params_file(REPO / "params.yaml", work / f"params-x{scale}-j{jobs}.yaml", corpus, jobs)
    env = env_for(REPO / "src", threads)
    common = ["--params", str(params)]
    prep_rss, prep_s = wait_all([run(cli("prepare_corpus", *common, "--shard", str(k), "--out", str(out / "prepared")),
                                     env, work) for k in range(jobs)])
    wait_all([run(cli("index_corpus", *common, "--out", str(out / "prepared")), env, work)])
    tok_rss, tok_s = wait_all([run(cli("tokenize", "--prepared", str(out / "prepared"), "--tokenizer", str(tok),
                                       "--out", str(out / "shards"), "--shard", str(k)), env, work)
                               for k in range(jobs)])
    wait_all([run(cli("index_shards", *common, "--out", str(out / "shards")), env, work)])
    n = tokens_in(out / "shards")
    return {"code": "current", "corpus": f"{scale}x", "jobs": jobs, "threads": threads, "prepare_mb": prep_rss,
            "prepare_s": prep_s, "tokenize_mb": tok_rss, "tokenize_s": tok_s, "tokens": n, "tok_s": n / tok_s}


def measure_baseline(work: Path, corpus: Path, scale: int, src: Path, tok: Path) -> dict:
    out = work / f"base-x{scale}"
    params = params_file(src.parent / "params.yaml", work / f"params-base-x{scale}.yaml", corpus, None)
    env = env_for(src, 2)
    prep_rss, prep_s = wait_all([run(cli("prepare_corpus", "--params", str(params), "--out", str(out / "prepared")),
                                     env, work)])
    tok_rss, tok_s = wait_all([run(cli("tokenize", "--prepared", str(out / "prepared"), "--tokenizer", str(tok),
                                       "--out", str(out / "shards")), env, work)])
    n = tokens_in(out / "shards")
    return {"code": "before sharding", "corpus": f"{scale}x", "jobs": 1, "threads": 2, "prepare_mb": prep_rss,
            "prepare_s": prep_s, "tokenize_mb": tok_rss, "tokenize_s": tok_s, "tokens": n, "tok_s": n / tok_s}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    shared = Path(os.environ.get("ARCHSCALE_SHARED_DATA", REPO.parent / "shared" / "data"))
    ap.add_argument("--corpus", type=Path, default=shared / "corpus" / "gutenberg", help="the 1x corpus folder")
    ap.add_argument("--baseline-src", type=Path, default=None, help="src/ of a checkout before sharding")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if not args.corpus.is_dir():
        sys.exit(f"no corpus folder at {args.corpus} (pass --corpus)")
    scales = (1, 2) if args.quick else (1, 4)
    rows = []
    with tempfile.TemporaryDirectory(prefix="archscale-data-scale-") as tmp:
        work = Path(tmp)
        first = 3 if args.quick else None
        corpora = {s: corpus_copies(args.corpus, work / f"corpus-x{s}", s, first) for s in scales}
        n_files = len(list(corpora[1].iterdir()))
        params = params_file(REPO / "params.yaml", work / "params-tok.yaml", corpora[1], 1)
        env = env_for(REPO / "src", 2)
        wait_all([run(cli("prepare_corpus", "--params", str(params), "--out", str(work / "tok-prepared")), env, work)])
        tok = work / "tokenizer"
        wait_all([run(cli("train_tokenizer", "--params", str(params), "--prepared", str(work / "tok-prepared"),
                          "--out", str(tok)), env, work)])
        for scale in scales:
            if args.baseline_src:
                rows.append(measure_baseline(work, corpora[scale], scale, args.baseline_src.resolve(), tok))
                print(rows[-1], file=sys.stderr, flush=True)
            for jobs, threads in ((1, 2), (1, 1), (2, 1)):
                if scale != scales[-1] and (jobs, threads) != (1, 2):
                    continue  # parallel shard jobs only at the largest corpus
                rows.append(measure_current(work, corpora[scale], scale, tok, jobs, threads))
                print(rows[-1], file=sys.stderr, flush=True)
    keys = ["code", "corpus", "jobs", "threads", "prepare_mb", "prepare_s", "tokenize_mb", "tokenize_s", "tokens",
            "tok_s"]
    body = ("Peak RSS (MB) of each stage's process (the largest of parallel jobs), wall seconds, and tokenize "
            f"tokens/s (train + val tokens / tokenize wall). 1x = {args.corpus.name} ({n_files} "
            "files); Nx links each file N times. `threads` = RAYON_NUM_THREADS per tokenize job. Target: memory flat "
            "from 1x to 4x.\n\n")
    body += md_table(keys, [[r[k] for k in keys] for r in rows])
    report("data_scale", "Data at scale (prepare + tokenize memory, shard jobs)", body, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
