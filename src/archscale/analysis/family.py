"""Objective families: upstream losses are compared only within one.

Span corruption (T5, encoder-decoder), causal LM and masked LM losses are per-target-token losses
of different tasks (eval/upstream.py: the span loss predicts the ~15% of tokens in corrupted
spans given the rest, the masked loss 15% single tokens, the causal loss every next token), so a
lower span loss than causal loss says nothing about which architecture is better. A *family* is
what a loss was measured under, (objective, tokenizer); one build trains every run with one
tokenizer, so in practice it is the `objective` column, and ``FAMILY_COLUMNS`` is the one place a
tokenizer column would join it.

Every frontier, ranking (best/worst), reference line and prose sentence that compares upstream
losses works within one family. Across families only measures that mean the same for every run
are compared: downstream (SuperGLUE) scores, and bits per byte (tokenizer-free) for causal models.

Each family has a stated reference architecture (Tay et al. 2022 judge every variant against the
vanilla encoder-decoder Transformer; Oyedele 2021 put her causal models in context with GPT-2, and
BERT is the masked-LM baseline of RoBERTa and ALBERT), falling back to the first architecture
present (alphabetically) when the named one is not in the table.
"""

from __future__ import annotations

from archscale.analysis.table import Row

# The columns whose values make a family (a `tokenizer` column would be added here).
FAMILY_COLUMNS: tuple[str, ...] = ("objective",)
# The name of the one family of a table without those columns (e.g. a published table).
NO_FAMILY = "all"
# Families in the paper's order: the objectives of params.yaml (workflow/schemas: span, clm, mlm).
KNOWN = ("span", "clm", "mlm")
REFERENCES = {"span": "transformer", "clm": "gpt2", "mlm": "bert_mlm"}
LABELS = {"span": "span corruption", "clm": "causal LM", "mlm": "masked LM", NO_FAMILY: "all runs"}
# Compute axis of L(C) per family: Tay et al. (2022) plot measured training FLOPs; Oyedele (2021),
# after Kaplan et al. (2020, Sec. 2.1), uses C = 6 N B S (N non-embedding parameters, B S tokens).
COMPUTE = {"span": "flops", "clm": "6nd", "mlm": "6nd"}


def family_of(row: Row) -> str:
    """The family of one run: its FAMILY_COLUMNS values joined by '+', or NO_FAMILY when empty."""
    parts = [str(row.get(c) or "").strip() for c in FAMILY_COLUMNS]
    return "+".join(p for p in parts if p) or NO_FAMILY


def single_family(law: str, name: str, members: list[Row]) -> str:
    """The one family of a fitted group's runs; ValueError when they span two (a frontier, law or
    profile over both would mix losses of different tasks)."""
    fams = sorted({family_of(r) for r in members})
    if len(fams) > 1:
        raise ValueError(f"{law} group {name!r} has runs of {len(fams)} objective families {fams}: their losses are "
                         "losses of different tasks; group by architecture (--group arch)")
    return fams[0]


def objective_of(family: str) -> str:
    """The objective part of a family name ('clm' of 'clm+bpe')."""
    return family.split("+", 1)[0]


def order(families) -> list[str]:
    """Families in the paper's order (span, clm, mlm), others after them alphabetically."""
    known = {f: i for i, f in enumerate(KNOWN)}
    return sorted(set(families), key=lambda f: (known.get(objective_of(f), len(KNOWN)), f))


def split(rows: list[Row]) -> dict[str, list[Row]]:
    """Rows by family, in family order."""
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(family_of(row), []).append(row)
    return {f: out[f] for f in order(out)}


def arch_families(rows: list[Row], arch_col: str = "arch") -> dict[str, str]:
    """Architecture -> its family; an error naming the architecture when it has runs in two
    families (its runs must then get distinct ids, as bert_mlm and bert_clm do)."""
    out: dict[str, str] = {}
    for row in rows:
        arch, fam = row.get(arch_col, ""), family_of(row)
        if out.setdefault(arch, fam) != fam:
            raise ValueError(f"{row.get('__line__', '?')}: architecture {arch!r} has runs in two objective families "
                             f"({out[arch]!r} and {fam!r}); give each its own architecture id")
    return out


def reference(family: str, archs) -> str | None:
    """The family's reference architecture among ``archs``: the named one, else the first."""
    archs = sorted(set(archs))
    named = REFERENCES.get(objective_of(family))
    return named if named in archs else (archs[0] if archs else None)


def references(rows: list[Row], arch_col: str = "arch") -> dict[str, str]:
    """Family -> reference architecture, for the families present in ``rows``."""
    fams = arch_families(rows, arch_col)
    return {f: reference(f, [a for a, g in fams.items() if g == f]) for f in order(fams.values())}


def compute_axis(family: str) -> str:
    """The L(C) compute axis of a family: '6nd' (Oyedele) or 'flops' (Tay et al., and unknown ones)."""
    return COMPUTE.get(objective_of(family), "flops")


def label(family: str) -> str:
    """Words for a family in figure titles and prose ('causal LM'; 'causal LM, bpe' with a tokenizer)."""
    obj, _, rest = family.partition("+")
    return LABELS.get(obj, obj) + (f", {rest.replace('+', ', ')}" if rest else "")


def suffix(family: str) -> str:
    """The family as the tail of a LaTeX macro name: letters only, 'clm' -> 'Clm'."""
    from archscale.analysis.texfmt import macro_name

    return macro_name("x", family)[1:]
