"""SuperGLUE tasks in their official jsonl format: specs, validating readers, the hub fallback.

The files are read exactly as the official per-task zips distribute them
(`<root>/<Task>/{train,val,test}.jsonl`, diagnostics as `<root>/AX-b/AX-b.jsonl`), so a folder
copied from the zips, the sample in tests/data/superglue or one written by `fetch_from_hub` reads the same.
Every malformed line is an error naming `file:line`, because a silently skipped record changes a
score without anyone noticing. How records become model inputs lives in `archscale.eval.formats`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

TASKS = ("BoolQ", "CB", "COPA", "MultiRC", "ReCoRD", "RTE", "WiC", "WSC")
DIAGNOSTICS = ("AX-b", "AX-g")
SPLITS = ("train", "val", "test")
DIAGNOSTIC_SPLIT = "diagnostic"  # the one (labelled) split of AX-b / AX-g


@dataclass(frozen=True)
class TaskSpec:
    """What a task's records look like and how they are labelled."""

    name: str                   # official folder name
    hf_config: str              # config name of the `super_glue` dataset on the hub
    fields: tuple[str, ...]     # required top-level fields (besides idx and label)
    labels: tuple[Any, ...]     # allowed `label` values, in the hub's class order; () = per answer
    label_words: tuple[str, ...]  # text-to-text targets, aligned with `labels`
    metrics: tuple[str, ...]    # official metrics (archscale.eval.metrics)
    eval_with: str | None = None  # diagnostics: the task whose fine-tuned model scores them


_NLI2 = ("entailment", "not_entailment")
_BOOL = (False, True)
SPECS: dict[str, TaskSpec] = {s.name: s for s in (
    TaskSpec("BoolQ", "boolq", ("question", "passage"), _BOOL, ("False", "True"), ("accuracy",)),
    TaskSpec("CB", "cb", ("premise", "hypothesis"), ("entailment", "contradiction", "neutral"),
             ("entailment", "contradiction", "neutral"), ("accuracy", "macro_f1")),
    TaskSpec("COPA", "copa", ("premise", "choice1", "choice2", "question"), (0, 1),
             ("choice1", "choice2"), ("accuracy",)),
    TaskSpec("MultiRC", "multirc", ("passage",), (0, 1), ("False", "True"), ("f1a", "em")),
    TaskSpec("ReCoRD", "record", ("passage", "qas"), (), (), ("f1", "em")),
    TaskSpec("RTE", "rte", ("premise", "hypothesis"), _NLI2, _NLI2, ("accuracy",)),
    TaskSpec("WiC", "wic", ("word", "sentence1", "sentence2", "start1", "end1", "start2", "end2"),
             _BOOL, ("False", "True"), ("accuracy",)),
    TaskSpec("WSC", "wsc", ("text", "target"), _BOOL, ("False", "True"), ("accuracy",)),
    TaskSpec("AX-b", "axb", ("sentence1", "sentence2"), _NLI2, _NLI2, ("mcc",), eval_with="RTE"),
    TaskSpec("AX-g", "axg", ("premise", "hypothesis"), _NLI2, _NLI2, ("accuracy", "gender_parity"),
             eval_with="RTE"),
)}


class SuperGlueDataError(ValueError):
    """A malformed SuperGLUE file; the message starts with `file:line`."""


class SuperGlueMissing(FileNotFoundError):
    """Task files absent and not fetchable; the message names the folder to fill."""


def spec(task: str) -> TaskSpec:
    if task not in SPECS:
        raise KeyError(f"unknown SuperGLUE task {task!r} (known: {', '.join(SPECS)})")
    return SPECS[task]


def split_path(root: str | Path, task: str, split: str) -> Path:
    """Official location of one split: `<Task>/<split>.jsonl`, or `AX-x/AX-x.jsonl`."""
    if task in DIAGNOSTICS:
        return Path(root) / task / f"{task}.jsonl"
    if split not in SPLITS:
        raise KeyError(f"unknown split {split!r} of {task} (known: {', '.join(SPLITS)})")
    return Path(root) / task / f"{split}.jsonl"


def label_index(task: str, label: Any) -> int:
    """Class index of an official label value (type-strict: `1` is not `True`)."""
    for i, allowed in enumerate(spec(task).labels):
        if type(label) is type(allowed) and label == allowed:
            return i
    raise ValueError(f"label {label!r} not in {list(spec(task).labels)}")


# ---------------------------------------------------------------- validation
def _need(rec: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in rec:
        raise SuperGlueDataError(f"{where}: missing field {key!r}")
    value, kinds = rec[key], kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise SuperGlueDataError(f"{where}: field {key!r} is {type(value).__name__}, expected {names}")
    return value


def _check_label(task: str, rec: dict, labelled: bool, where: str, key: str = "label") -> None:
    if key not in rec:
        if labelled:
            raise SuperGlueDataError(f"{where}: missing field {key!r} (train/val/diagnostic splits are labelled)")
        return
    allowed = spec(task).labels
    if not any(type(rec[key]) is type(a) and rec[key] == a for a in allowed):
        raise SuperGlueDataError(f"{where}: bad {key} value {rec[key]!r} (allowed: {list(allowed)})")


def _check_span(text: str, start: Any, end: Any, where: str, name: str) -> None:
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
        raise SuperGlueDataError(f"{where}: span {name} [{start!r}, {end!r}) outside its sentence of {len(text)} chars")


def _validate_multirc(rec: dict, labelled: bool, where: str) -> None:
    passage = _need(rec, "passage", dict, where)
    _need(passage, "text", str, f"{where}: passage")
    for qi, q in enumerate(_need(passage, "questions", list, f"{where}: passage")):
        qwhere = f"{where}: passage.questions[{qi}]"
        _need(q, "question", str, qwhere)
        _need(q, "idx", int, qwhere)
        answers = _need(q, "answers", list, qwhere)
        if not answers:
            raise SuperGlueDataError(f"{qwhere}: no answers")
        for ai, a in enumerate(answers):
            awhere = f"{qwhere}.answers[{ai}]"
            _need(a, "text", str, awhere)
            _need(a, "idx", int, awhere)
            _check_label("MultiRC", a, labelled, awhere)


def _validate_record(rec: dict, labelled: bool, where: str) -> None:
    passage = _need(rec, "passage", dict, where)
    text = _need(passage, "text", str, f"{where}: passage")
    entities = _need(passage, "entities", list, f"{where}: passage")
    if not entities:
        raise SuperGlueDataError(f"{where}: passage has no entities (ReCoRD candidates)")
    for ei, e in enumerate(entities):
        # ReCoRD entity offsets are inclusive: text[start:end + 1]
        _check_span(text, e.get("start"), (e.get("end") + 1) if isinstance(e.get("end"), int) else None,
                    where, f"passage.entities[{ei}]")
    for qi, qa in enumerate(_need(rec, "qas", list, where)):
        qwhere = f"{where}: qas[{qi}]"
        if "@placeholder" not in _need(qa, "query", str, qwhere):
            raise SuperGlueDataError(f"{qwhere}: query has no @placeholder")
        _need(qa, "idx", int, qwhere)
        if "answers" not in qa:
            if labelled:
                raise SuperGlueDataError(f"{qwhere}: missing field 'answers' (train/val splits are labelled)")
            continue
        answers = _need(qa, "answers", list, qwhere)
        if labelled and not answers:
            raise SuperGlueDataError(f"{qwhere}: empty 'answers'")
        for ai, a in enumerate(answers):
            _need(a, "text", str, f"{qwhere}.answers[{ai}]")


def validate_record(task: str, rec: Any, labelled: bool, where: str) -> dict:
    """Check one parsed line against the official schema of `task`; returns it unchanged."""
    if not isinstance(rec, dict):
        raise SuperGlueDataError(f"{where}: expected a JSON object, got {type(rec).__name__}")
    _need(rec, "idx", (int, str), where)
    if task == "MultiRC":
        _validate_multirc(rec, labelled, where)
        return rec
    if task == "ReCoRD":
        _validate_record(rec, labelled, where)
        return rec
    s = spec(task)
    for key in s.fields:
        kind: Any = {"target": dict}.get(key, int if key[:-1] in ("start", "end") else str)
        _need(rec, key, kind, where)
    if task == "COPA" and rec["question"] not in ("cause", "effect"):
        raise SuperGlueDataError(f"{where}: bad question {rec['question']!r} (allowed: 'cause', 'effect')")
    if task == "WiC":
        for k in "12":
            _check_span(rec[f"sentence{k}"], rec[f"start{k}"], rec[f"end{k}"], where, f"start{k}/end{k}")
    if task == "WSC":
        n_words = len(rec["text"].split(" "))
        for k in "12":
            idx = _need(rec["target"], f"span{k}_index", int, f"{where}: target")
            _need(rec["target"], f"span{k}_text", str, f"{where}: target")
            if not 0 <= idx < n_words:
                raise SuperGlueDataError(f"{where}: target.span{k}_index {idx} outside the text's {n_words} words")
    _check_label(task, rec, labelled, where)
    return rec


def read_split(root: str | Path, task: str, split: str) -> list[dict]:
    """Every record of one split, validated; blank lines are skipped (test files lack a final newline)."""
    path = split_path(root, task, split)
    if not path.is_file():
        raise SuperGlueMissing(f"{path}: not found (official SuperGLUE layout: <root>/<Task>/{{train,val,test}}.jsonl)")
    labelled = split != "test"
    records = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SuperGlueDataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            records.append(validate_record(task, rec, labelled, where))
    if not records:
        raise SuperGlueDataError(f"{path}: no records")
    return records


def axg_pairs(records: list[dict], where: str = "AX-g") -> list[tuple[int, int]]:
    """AX-g's gender pairs: consecutive records (2k, 2k+1) that differ only in the pronoun, so they
    share the hypothesis (the pairing the SuperGLUE/jiant GenderParity metric uses)."""
    if len(records) % 2:
        raise SuperGlueDataError(f"{where}: {len(records)} records, expected pairs")
    pairs = []
    for i in range(0, len(records), 2):
        if records[i]["hypothesis"] != records[i + 1]["hypothesis"]:
            raise SuperGlueDataError(f"{where}: records {i} and {i + 1} do not share a hypothesis (not a gender pair)")
        pairs.append((i, i + 1))
    return pairs


# ------------------------------------------------------------- availability
def availability(root: str | Path, task: str) -> str | None:
    """None when the task can be fine-tuned and scored; otherwise the reason it cannot."""
    if task in DIAGNOSTICS:
        path = split_path(root, task, DIAGNOSTIC_SPLIT)
        return None if path.is_file() else f"{path} not found"
    missing = [split_path(root, task, s) for s in ("train", "val") if not split_path(root, task, s).is_file()]
    if missing:
        return "split file missing: " + ", ".join(str(p) for p in missing)
    return None


def _write_jsonl(path: Path, records: Iterable[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def hub_unreachable() -> str | None:
    """Why the Hugging Face hub cannot be used now (offline flag, no route), or None.

    A 3-second probe first: offline, `datasets` retries for ~25 s before giving up."""
    if (os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "")
            or os.environ.get("HF_DATASETS_OFFLINE", "0") not in ("0", "")):
        return "HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set"
    url = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=3).close()
    except OSError as exc:
        return f"cannot reach {url.hostname}: {exc}"
    return None


def fetch_from_hub(root: str | Path, task: str, load_dataset: Callable | None = None) -> list[Path]:
    """Write the hub's `super_glue/<config>` into the official layout under `root`; returns the files."""
    from archscale.eval.superglue_hub import official_records

    if load_dataset is None:
        reason = hub_unreachable()
        if reason:
            raise ConnectionError(reason)
        from datasets import load_dataset
    ds = load_dataset("super_glue", spec(task).hf_config)
    written = []
    for hf_split, rows in ds.items():
        split = DIAGNOSTIC_SPLIT if task in DIAGNOSTICS else {"validation": "val"}.get(hf_split, hf_split)
        path = split_path(root, task, split)
        _write_jsonl(path, official_records(task, list(rows), labelled=split != "test"))
        written.append(path)
    return written


def ensure_task(root: str | Path, task: str, use_hub: bool = True, load_dataset: Callable | None = None) -> Path:
    """The task's folder, filled from the hub when it holds no jsonl; else an error naming it."""
    folder = Path(root) / spec(task).name
    if folder.is_dir() and any(folder.glob("*.jsonl")):
        return folder
    reason = "hub disabled"
    if use_hub:
        try:
            fetch_from_hub(root, task, load_dataset)
            return folder
        except Exception as exc:  # offline, hub error, dataset renamed: all end in the same advice
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    files = f"{task}.jsonl" if task in DIAGNOSTICS else "train.jsonl, val.jsonl, test.jsonl"
    raise SuperGlueMissing(
        f"SuperGLUE {task}: no jsonl files in {folder} and the Hugging Face hub could not fill it ({reason}). "
        f"Put the official files ({files}, from the SuperGLUE {task} zip) in {folder}/")


def manifest(root: str | Path, tasks: Iterable[str], use_hub: bool = True) -> dict:
    """Per task: available or the reason not, and the sha256 of every split file present. Filling
    the folders once here (not in each of the run x task fine-tuning jobs) keeps parallel jobs from
    all downloading the same task, and the hashes let Snakemake/DVC see a changed file."""
    from archscale.io import sha256_file

    out = {}
    for task in tasks:
        try:
            ensure_task(root, task, use_hub=use_hub)
            reason = availability(root, task)
        except SuperGlueMissing as exc:
            reason = str(exc)
        folder = Path(root) / task
        files = {p.name: sha256_file(p) for p in sorted(folder.glob("*.jsonl"))} if folder.is_dir() else {}
        out[task] = {"available": reason is None, "reason": reason, "files": files}
    return out


def main(argv: list[str] | None = None) -> int:
    from archscale.io import write_json

    ap = argparse.ArgumentParser(prog="archscale superglue_data",
                                 description="Fill data/raw/superglue from the hub where empty; write a manifest.")
    ap.add_argument("--root", default="data/raw/superglue")
    ap.add_argument("--tasks", nargs="+", default=list(TASKS + DIAGNOSTICS), choices=list(SPECS))
    ap.add_argument("--no-hub", action="store_true", help="never download; report missing folders")
    ap.add_argument("--out", required=True, help="manifest JSON to write")
    args = ap.parse_args(argv)
    result = manifest(args.root, args.tasks, use_hub=not args.no_hub)
    for task, entry in result.items():
        print(f"{task}: {'ok' if entry['available'] else 'unavailable: ' + entry['reason']}")
    write_json(args.out, {"root": str(args.root), "tasks": result})
    return 0
