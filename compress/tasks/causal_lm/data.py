"""Eval and calibration text for language models: a .txt file (paragraphs or lines) or JSONL/CSV rows."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_compress.compress.data import TEXT_COLUMNS, pick_column, read_rows
from edge_compress.compress.errors import CompressError


@dataclass
class LMText:
    texts: list[str]
    source: str


def load_lm_text(source: str, text_column: str | None = None) -> LMText:
    """Paragraphs of a .txt file (blank-line separated, lines wrapped inside), else its lines; rows' text field otherwise."""
    path = Path(source).expanduser()
    if path.suffix.lower() == ".txt":
        if not path.is_file():
            raise CompressError(f"text file not found: {source}", "check the path (relative paths are from the current folder)")
        raw = path.read_text(encoding="utf-8-sig")
        blocks = [b.strip() for b in raw.split("\n\n") if b.strip()]
        lines = [line.strip() for line in raw.splitlines() if line.strip()]
        # Paragraph files: many blank-line separated blocks of wrapped lines.  A file of one text per line
        # that holds a few stray blank lines stays one text per line.
        multiline = len(blocks) > 1 and len(blocks) * 20 >= len(lines) and sorted(b.count("\n") for b in blocks)[len(blocks) // 2] > 0
        texts = [" ".join(b.split()) for b in blocks] if multiline else lines
    else:
        rows, source = read_rows(source)
        column = pick_column(list(rows[0]), text_column, TEXT_COLUMNS, "text", source)
        texts = [str(r.get(column) or "").strip() for r in rows]
        texts = [t for t in texts if t]
    if not texts:
        raise CompressError(f"{source} holds no text", "give a .txt file with paragraphs or lines of text, or JSONL rows with a 'text' field")
    return LMText(texts, str(path) if path.exists() else source)
