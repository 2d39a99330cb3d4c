"""Epochs: how many times each run reads the train split, and the `data.max_epochs` check.

A run trains ceil(shape.tokens / (batch_size x seq_len)) steps and draws batch_size x raw_len train
tokens a step (raw_len > seq_len under span corruption, whose input drops the noise spans:
objectives.raw_length_for). Its epochs are those draws over the train split's tokens. Windows are
drawn at random, so this is how often a token is read on average, not a count of full passes.

The check runs where the train token count is first known, before any pretraining: in the
`index_shards` job (the gather that writes meta.json), in the Snakefile when meta.json exists
(so an edited grid stops before its jobs), and in `pretrain` itself.
"""

from __future__ import annotations

import math

from archscale import config as cfg

MAX_LISTED = 10  # runs named in an error message


class EpochsError(ValueError):
    """A run would read the train split more often than data.max_epochs allows."""


def run_epochs(rc: dict, train_tokens: int) -> float:
    """Epochs of a resolved run config over `train_tokens` train tokens."""
    from archscale.data.objectives import raw_length_for
    from archscale.models.registry import model_kind

    tr = rc["train"]
    raw_len = raw_length_for(model_kind(rc["objective"]), tr["seq_len"], rc["objectives"]["span"])
    steps = max(math.ceil(rc["shape"]["tokens"] / (tr["batch_size"] * tr["seq_len"])), 1)
    return steps * tr["batch_size"] * raw_len / train_tokens


def epochs_table(params: dict, train_tokens: int, runs: list[str] | None = None) -> dict[str, float]:
    """run id -> epochs, for `runs` (default: every run of the grid, scans included)."""
    return {run: run_epochs(cfg.resolve_run(params, run), train_tokens) for run in runs or cfg.runs(params)}


def check_max_epochs(params: dict, train_tokens: int, source: str = "params", runs: list[str] | None = None) -> str:
    """One line stating the epochs the runs (default: all) will see; raises EpochsError naming the
    runs over data.max_epochs."""
    table, cap = epochs_table(params, train_tokens, runs), params["data"]["max_epochs"]
    over = sorted(((e, run) for run, e in table.items() if e > cap), reverse=True)
    if over:
        listed = ", ".join(f"{run} ({e:.3g})" for e, run in over[:MAX_LISTED])
        more = f" and {len(over) - MAX_LISTED} more" if len(over) > MAX_LISTED else ""
        raise EpochsError(f"{source}: data.max_epochs is {cap:g}, but {len(over)} run(s) would read the "
                          f"{train_tokens:,} train tokens more often: {listed}{more}. Add data (a larger corpus), "
                          "lower sizes.<size>.tokens, or raise data.max_epochs.")
    most = max(table, key=table.get)
    return (f"{len(table)} run(s) read {min(table.values()):.3g} to {table[most]:.3g} epochs (most: {most}) of the "
            f"{train_tokens:,} train tokens; data.max_epochs is {cap:g}")
