"""Reading run tables and writing fit files, with errors that name the file, line and column.

The analysis works on lists of ``dict[str, str]`` rows (what ``csv.DictReader`` gives), so a
summary.csv, a curve.csv and a published table all go through the same code. Empty cells mean
"not measured" (e.g. downstream scores before fine-tuning) and are kept as ``None``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from archscale.io import atomic_path

Row = dict[str, str]


class TableError(ValueError):
    """A CSV that cannot be used as asked; the message names file, line and column."""


def read_csv(path: str | Path) -> list[Row]:
    """All rows of a CSV with a header; each row remembers its source line as ``__line__``."""
    path = Path(path)
    if not path.is_file():
        raise TableError(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            raise TableError(f"{path}: empty file (no header line)")
        rows = []
        for i, row in enumerate(reader, start=2):
            row = {k: (v or "").strip() for k, v in row.items() if k is not None}
            row["__line__"] = f"{path}:{i}"
            rows.append(row)
    return rows


def require_columns(rows: list[Row], columns: Iterable[str], source: str) -> None:
    """Raise naming the first missing column (a typo in a --column option shows up here)."""
    if not rows:
        raise TableError(f"{source}: no rows")
    have = set(rows[0])
    missing = [c for c in columns if c not in have]
    if missing:
        known = ", ".join(sorted(k for k in have if k != "__line__"))
        raise TableError(f"{source}: missing column(s) {missing}; columns are: {known}")


def tasks_of(rows: list[Row], prefix: str = "score_") -> list[str]:
    """Task names present as <prefix><Task> columns (score_: pretrained, scratch_: random init), in
    the file's order."""
    return [c[len(prefix):] for c in (rows[0] if rows else {}) if c.startswith(prefix)]


def number(row: Row, column: str) -> float | None:
    """The cell as a float; None when empty or absent; an error naming the line when not numeric."""
    cell = row.get(column, "")
    if cell is None or cell == "" or cell.lower() in {"nan", "none", "null"}:
        return None
    try:
        value = float(cell)
    except ValueError:
        raise TableError(f"{row.get('__line__', '?')}: column {column!r} is not a number: {cell!r}") from None
    return value if math.isfinite(value) else None


def groups(rows: list[Row], column: str | None) -> dict[str, list[Row]]:
    """Rows by the value of ``column`` (one group named 'all' when column is None), sorted by name."""
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(row.get(column, "") if column else "all", []).append(row)
    return dict(sorted(out.items()))


def public(row: Row) -> dict[str, str]:
    """The row without bookkeeping keys, for the 'rows fitted on' part of a fit file."""
    return {k: v for k, v in row.items() if not k.startswith("__")}


def _clean(obj: Any) -> Any:
    """JSON has no NaN/inf: write them as null so every reader can parse the file."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item"):  # numpy scalars
        return _clean(obj.item())
    return obj


def dumps(obj: Any) -> str:
    """Stable JSON text (sorted keys, fixed indent) so the same fit gives the same bytes."""
    return json.dumps(_clean(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write through a temp file in the same folder, then rename: readers never see half a file."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def read_json(path: str | Path) -> dict[str, Any]:
    """A fit file; a clear error when it is missing or not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TableError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise TableError(f"{path}: not valid JSON ({exc})") from None
