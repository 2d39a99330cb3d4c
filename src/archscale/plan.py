"""`archscale plan`: what a params file will cost before anything is submitted.

Per run and in total: parameters, training tokens and FLOPs, epochs over the tokenized corpus,
checkpoint disk, and GPU-hours at a stated MFU on a named GPU. Models are built on the `meta`
device (shapes only, no memory, no init), so the paper preset's runs plan in seconds (23 s for 136 runs on 2 cores).

- FLOPs: 3 x the analytic forward FLOPs per input token (`models/flops.py`, the formula every run
  checks against its measured FLOPs) x tokens; tokens = steps x batch x seq_len, as pretraining.
- Epochs: raw tokens drawn (span corruption draws more than it feeds) over the train split's tokens,
  from `<shards>/meta.json` (`data/epochs.py`), or over `--train-tokens N` to ask about a corpus
  not tokenized here; "n/a" until the corpus is tokenized.
- Checkpoint disk: `keep_checkpoints` DeepSpeed checkpoints of 14 bytes per parameter under bf16
  (bf16 weights 2 + fp32 master copy 4 + two fp32 Adam moments 8; 12 under fp32), plus the exported
  fp32 model (4 bytes per parameter).
- GPU-hours: training FLOPs / (the GPU's bf16 dense peak x MFU). The default MFU is archscale's
  measured one for gpt2 at base size on an H200 (0.18 at 32 x 1024 tokens, benchmarks/RESULTS.md,
  2026-11-29); pass --mfu for another assumption. Evaluation and fine-tuning are not counted.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from archscale import config as cfg
from archscale.io import read_json

DEFAULT_MFU = 0.18  # measured, see the module docstring
BYTES_PER_PARAM = {"bf16": 14, "fp32": 12}
EXPORT_BYTES_PER_PARAM = 4
COLUMNS = ["run", "params", "tokens", "train_flops", "epochs", "ckpt_disk_gb", "gpu_hours"]


def synthetic_special(n_sentinels: int) -> dict:
    """The special ids a trained tokenizer would give (its specials come first, in special_tokens order)."""
    from archscale.data.tokenizer import special_ids, special_tokens

    class Vocab:
        def get_vocab(self):
            return {tok: i for i, tok in enumerate(special_tokens(n_sentinels))}

    return special_ids(Vocab())


def count_run_params(rc: dict, vocab: int) -> dict[str, int]:
    """Parameter counts of the run's model, built on the meta device (no memory, no init)."""
    import torch

    from archscale.models.registry import build_model, count_params

    with torch.device("meta"):
        model = build_model(rc, vocab, synthetic_special(rc["tokenizer"]["n_sentinels"]))
    return count_params(model)


def plan_run(rc: dict, train_tokens: int | None, precision: str, peak: float, mfu: float) -> dict:
    from archscale.data.epochs import run_epochs
    from archscale.data.objectives import raw_length_for, span_lengths
    from archscale.models.flops import analytic_flops_per_token
    from archscale.models.registry import model_kind

    tr, vocab, kind = rc["train"], rc["tokenizer"]["vocab_size"], model_kind(rc["objective"])
    seq_len, batch = tr["seq_len"], tr["batch_size"]
    span = rc["objectives"]["span"]
    raw_len = raw_length_for(kind, seq_len, span)
    n_tgt = span_lengths(raw_len, span["noise_density"], span["mean_span_length"])[3] if kind == "encdec" else seq_len
    steps = max(math.ceil(rc["shape"]["tokens"] / (batch * seq_len)), 1)
    tokens = steps * batch * seq_len
    counts = count_run_params(rc, vocab)
    flops = 3 * analytic_flops_per_token(rc, kind, vocab, seq_len, n_tgt) * tokens
    disk = counts["params"] * (BYTES_PER_PARAM[precision] * tr["keep_checkpoints"] + EXPORT_BYTES_PER_PARAM)
    return {"run": rc["run"], "params": counts["params"], "tokens": tokens, "train_flops": flops,
            "epochs": run_epochs(rc, train_tokens) if train_tokens else None,
            "ckpt_disk_gb": disk / 1e9, "gpu_hours": flops / (peak * mfu) / 3600}


def plan_isoflop(rc: dict, train_tokens: int | None, precision: str, peak: float, mfu: float,
                 max_epochs: float) -> dict:
    """One row for an IsoFLOP size (train/isoflop.py): its stable run plus every cool-down branch.
    Disk: the stable run's checkpoints and one per budget where a branch starts; nothing exported.
    Refuses, as the run itself would, a largest budget reading more than `max_epochs` of the corpus."""
    from archscale.train.isoflop import make_plan

    row = plan_run(rc, train_tokens, precision, peak, mfu)  # per-token FLOPs and parameters of the shape
    tr = rc["train"]
    tps = tr["batch_size"] * tr["seq_len"]
    per_step = row["train_flops"] / row["tokens"] * tps
    stable = make_plan({**rc["isoflop"], "branch": "stable"}, tr["min_lr_ratio"], tr["warmup_frac"], per_step, tps,
                       train_tokens or 1 << 62, max_epochs, Path("."), f"{rc['run']}: isoflop.budgets")
    steps = stable.total_steps + sum(t - stable.branch_step[c] for c, t in stable.steps.items())
    ckpts = tr["keep_checkpoints"] + len(stable.steps)
    return {**row, "run": rc["run"].replace("@stable", "@isoflop"), "tokens": steps * tps,
            "train_flops": steps * per_step,
            "epochs": max(stable.steps.values()) * tps / train_tokens if train_tokens else None,
            "ckpt_disk_gb": row["params"] * BYTES_PER_PARAM[precision] * ckpts / 1e9,
            "gpu_hours": steps * per_step / (peak * mfu) / 3600}


def plan(params: dict, train_tokens: int | None, gpu: str, mfu: float) -> list[dict]:
    from archscale.models.flops import PEAK_BF16

    if gpu not in PEAK_BF16:
        raise ValueError(f"--gpu {gpu!r}: no bf16 peak known; one of {', '.join(PEAK_BF16)}")
    if not 0 < mfu <= 1:
        raise ValueError(f"--mfu {mfu}: a fraction in (0, 1]")
    from archscale.train.isoflop import resolve

    rows = [plan_run(cfg.resolve_run(params, run), train_tokens, "bf16", PEAK_BF16[gpu], mfu)
            for run in cfg.runs(params)]
    return rows + [plan_isoflop(resolve(params, cfg.resolve_run(params, base), "stable"), train_tokens, "bf16",
                                PEAK_BF16[gpu], mfu, params["data"]["max_epochs"]) for base in cfg.isoflop_runs(params)]


def total(rows: list[dict]) -> dict:
    epochs = [r["epochs"] for r in rows]
    return {"run": f"total ({len(rows)} runs)", "params": sum(r["params"] for r in rows),
            "tokens": sum(r["tokens"] for r in rows), "train_flops": sum(r["train_flops"] for r in rows),
            "epochs": max(epochs) if rows and None not in epochs else None,
            "ckpt_disk_gb": sum(r["ckpt_disk_gb"] for r in rows), "gpu_hours": sum(r["gpu_hours"] for r in rows)}


def _fmt(key: str, value) -> str:
    if value is None:
        return "n/a"
    if key == "run":
        return str(value)
    if key in ("params", "tokens"):
        return f"{value:,}" if value < 1e9 else f"{value / 1e9:.2f}B"
    if key in ("train_flops", "epochs"):
        return f"{value:.3g}"
    return f"{value:,.1f}"


def render(rows: list[dict], header: str) -> str:
    cells = [COLUMNS] + [[_fmt(k, r[k]) for k in COLUMNS] for r in [*rows, total(rows)]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = [header] + ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
                        for row in cells]
    lines.insert(len(lines) - 1, "-" * len(lines[1]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="archscale plan", description=__doc__.split("\n\n")[0])
    ap.add_argument("--configfile", "--params", dest="params", default="params.yaml", help="params file or preset")
    ap.add_argument("--shards", default="data/shards", help="tokenized corpus (meta.json) for the epochs column")
    ap.add_argument("--train-tokens", type=float, default=None,
                    help="train tokens of a corpus for the epochs column instead of <shards>/meta.json's, e.g. 1.56e11")
    ap.add_argument("--gpu", default="H100", help="GPU whose bf16 dense peak prices the runs (default H100)")
    ap.add_argument("--mfu", type=float, default=DEFAULT_MFU, help=f"assumed MFU (default {DEFAULT_MFU}, measured)")
    args = ap.parse_args(argv)
    try:
        params = cfg.load(args.params)
        meta = Path(args.shards) / "meta.json"
        train_tokens = read_json(meta)["splits"]["train"]["tokens"] if meta.is_file() else None
        if args.train_tokens is not None:
            if args.train_tokens < 1:
                raise ValueError(f"--train-tokens {args.train_tokens:g}: a positive token count")
            train_tokens, meta = int(args.train_tokens), "--train-tokens"
        rows = plan(params, train_tokens, args.gpu, args.mfu)
    except (cfg.ConfigError, ValueError) as exc:
        print(f"archscale plan: {exc}", file=sys.stderr)
        return 2
    from archscale.models.flops import PEAK_BF16

    corpus = f"{train_tokens:,} train tokens ({meta})" if train_tokens else f"epochs n/a: no {meta} yet"
    print(render(rows, f"{args.params}: {args.gpu} bf16 peak {PEAK_BF16[args.gpu] / 1e12:.0f} TFLOP/s at MFU "
                       f"{args.mfu}; {corpus}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
