"""Source sentences, with reference translations when the data has them, from TSV/CSV/JSONL or a `datasets` name.

References are optional on purpose: without them (no target column, or any row missing its target) the
data is flagged `agreement_only`, and a compressed model can still be compared with its float original
(exact match, BLEU and chrF of the variant's outputs against the float model's) instead of being refused.
BLEU over only the rows that happen to have references would silently score a different set, so a partly
filled target column is agreement-only too, with the reason said.
"""
from __future__ import annotations

from dataclasses import dataclass

from edge_compress.compress.data import pick_column, read_rows
from edge_compress.compress.errors import CompressError

SOURCE_COLUMNS = ("source", "src", "en", "input", "text", "sentence")
TARGET_COLUMNS = ("target", "tgt", "reference", "references", "translation", "de", "output")


@dataclass
class TranslationData:
    sources: list[str]
    references: list[str] | None  # None: agreement-only
    source: str
    source_column: str
    target_column: str | None
    agreement_only_reason: str | None = None

    @property
    def agreement_only(self) -> bool:
        return self.references is None


def load_translation_data(source: str, source_column: str | None = None, target_column: str | None = None) -> TranslationData:
    """Sources and references; for `datasets`' {"translation": {lang: text}} rows the columns are language codes."""
    rows, where = read_rows(source)
    if isinstance(rows[0].get("translation"), dict):  # datasets' WMT/OPUS layout: {"translation": {"en": ..., "de": ...}}
        rows = [r["translation"] for r in rows]
    columns = list(rows[0])
    src_col = pick_column(columns, source_column, SOURCE_COLUMNS, "source", where)
    tgt_col = pick_column(columns, target_column, TARGET_COLUMNS, "target", where) if target_column else \
        next((c for c in columns if c.lower() in TARGET_COLUMNS and c != src_col), None)
    sources = [str(r.get(src_col) or "").strip() for r in rows]
    empty = [number for number, text in enumerate(sources, start=1) if not text]
    if empty:
        shown = ", ".join(map(str, empty[:10])) + (f" and {len(empty) - 10} more" if len(empty) > 10 else "")
        raise CompressError(f"{len(empty)} rows of {where} have an empty '{src_col}' (data rows {shown})",
                            f"fill in the source sentence or remove those rows (or pass --source-column if '{src_col}' "
                            "is the wrong column)")
    if tgt_col is None:
        return TranslationData(sources, None, where, src_col, None,
                               f"{where} has no reference column (looked for {', '.join(TARGET_COLUMNS)})")
    targets = [str(r.get(tgt_col) or "").strip() for r in rows]
    missing = sum(not t for t in targets)
    if missing:
        return TranslationData(sources, None, where, src_col, tgt_col,
                               f"{missing} of {len(rows)} rows of {where} have no reference in '{tgt_col}'; BLEU/chrF "
                               "need a reference for every sentence")
    return TranslationData(sources, targets, where, src_col, tgt_col)
