"""Load labelled text from CSV, TSV, JSONL or a `datasets` name.

Hand-written CSV/TSV reading (not pandas) because TSV files in the wild come in
two dialects -- raw (quotes are literal text) and CSV-style quoted -- and pandas
guesses wrong on the first: a review starting with `"` swallows the next rows.
"""
from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from edge_compress.compress.console import warn
from edge_compress.compress.errors import CompressError

TEXT_COLUMNS = ("text", "sentence", "content", "review", "utterance", "query", "question", "document")
LABEL_COLUMNS = ("label", "labels", "intent", "category", "class", "target")
SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".jsonl": None, ".json": None}


@dataclass
class TextData:
    texts: list[str]
    labels: list[int] | None
    source: str
    text_column: str
    label_column: str | None


def read_rows(source: str) -> tuple[list[dict], str]:
    """Rows as dicts from a local file or `datasets` name ("name", "name:config", "name:config:split")."""
    path = Path(source).expanduser()
    if path.exists():
        if path.is_dir():
            raise CompressError(f"{source} is a folder, expected a data file", "pass a .csv, .tsv or .jsonl file")
        suffix = path.suffix.lower()
        if suffix not in SUFFIXES:
            raise CompressError(f"unsupported data file type '{suffix}' ({source})", "use .csv, .tsv or .jsonl")
        rows = _read_jsonl(path) if SUFFIXES[suffix] is None else _read_delimited(path, SUFFIXES[suffix])
        return rows, str(path)
    if path.suffix.lower() in SUFFIXES or "/" in source and not _looks_like_hub_name(source) or "\\" in source:
        raise CompressError(f"data file not found: {source}", "check the path (relative paths are from the current folder)")
    return _read_hub_dataset(source), source


def _looks_like_hub_name(source: str) -> bool:
    """`name` or `org/name`; `runs/x` where `runs/` is a local folder is a mistyped path, not a dataset."""
    if "/" in source and Path(source.split("/")[0]).is_dir():
        return False
    return source.count("/") <= 1 and not source.startswith((".", "/", "~"))


def _read_delimited(path: Path, delimiter: str) -> list[dict]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        text = handle.read()
    if not text.strip():
        raise CompressError(f"{path} is empty", "give a file with a header row and at least one data row")
    if delimiter == "\t":
        return _read_tsv(text, path)
    csv.field_size_limit(sys.maxsize)
    try:
        rows = _read_csv(text, delimiter, path)
    except csv.Error as err:
        raise CompressError(f"cannot parse {path} as CSV: {err}", "check quoting; a TSV file should end in .tsv") from err
    return _drop_blank(rows, path)


def _read_csv(text: str, delimiter: str, path: Path) -> list[dict]:
    """CSV rows, refusing the two ways a quote goes wrong silently: a stray `"` opening a field swallows the next
    lines into one text (30 rows become 4), and rows whose field count differs from the header's."""
    lines = text.splitlines(keepends=True)
    reader = csv.reader(lines, delimiter=delimiter)
    header = next(reader, None) or []
    rows, start = [], reader.line_num + 1
    for fields in reader:
        end = reader.line_num
        if not fields:  # a blank line, skipped as csv.DictReader does (a row of empty fields is data)
            start = end + 1
            continue
        swallowed = next((f for f in fields if _swallowed_rows(f, delimiter, len(header), unterminated=end == len(lines))), None)
        if swallowed is not None:
            raise CompressError(f"{path}:{start}: a quoted field runs over lines {start}-{end} and holds what look like "
                                "further rows: a stray `\"` opens a field that only a later quote closes",
                                f"remove the stray quote on line {start}, or double quotes inside quoted text (\"\"); "
                                "for texts that really span lines use JSONL")
        if len(fields) != len(header):
            raise CompressError(f"{path}:{start}: expected {len(header)} comma-separated fields ({', '.join(header)}), "
                                f"found {len(fields)}", "quote texts that contain the delimiter: \"a, b\" (and double quotes inside: \"\")")
        rows.append(dict(zip(header, fields)))
        start = end + 1
    return rows


def _swallowed_rows(field: str, delimiter: str, columns: int, unterminated: bool) -> bool:
    """Whether a multi-line field is rows a stray quote swallowed rather than one text that spans lines.

    An inner line that splits into the header's field count looks like a row, but a real multi-line review with
    a comma in its second line does too (Rotten Tomatoes has them, written by Python's own csv module). So: two or
    more such lines, or one in a field that runs to the end of the file (a quote nothing closed)."""
    if columns < 2:
        return False
    inner = field.splitlines()[1:]
    row_like = sum(len(line.split(delimiter)) == columns for line in inner)
    return row_like >= 2 or (row_like == 1 and unterminated)


def _read_tsv(text: str, path: Path) -> list[dict]:
    """Raw TSV; a field wrapped in quotes with doubled inner quotes is CSV-style and gets unquoted."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = [_unquote(h) for h in lines[0].split("\t")]
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(header):
            raise CompressError(f"{path}:{number}: expected {len(header)} tab-separated fields, found {len(fields)}",
                                "tabs inside a text field are not allowed in TSV; use CSV or JSONL for such text")
        rows.append(dict(zip(header, (_unquote(f) for f in fields))))
    return _drop_blank(rows, path)


def _unquote(field: str) -> str:
    if len(field) >= 2 and field[0] == field[-1] == '"' and '"' not in field[1:-1].replace('""', ""):
        return field[1:-1].replace('""', '"')
    return field


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise CompressError(f"{path}:{number}: not valid JSON ({err.msg})", "write one JSON object per line") from err
            if not isinstance(row, dict):
                raise CompressError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}", "write one JSON object per line")
            rows.append(row)
    return _drop_blank(rows, path)


def _drop_blank(rows: list[dict], path: Path) -> list[dict]:
    if not rows:
        raise CompressError(f"{path} has no data rows", "give a file with a header row and at least one data row")
    return rows


def _read_hub_dataset(source: str) -> list[dict]:
    name, config, split = (source.split(":") + [None, None])[:3]
    try:
        import datasets
    except ImportError as err:
        raise CompressError(f"'{source}' is not a local file, and the `datasets` package is not installed",
                            "give a local .csv/.tsv/.jsonl file, or pip install 'edge-compress[datasets]'") from err
    try:
        ds = datasets.load_dataset(name, config, split=split or "validation")
    except Exception as err:
        raise CompressError(f"could not load dataset '{source}': {type(err).__name__}: {err}",
                            "check the name (name[:config[:split]]) and that you are online, or give a local file") from err
    return [dict(row) for row in ds]


def pick_column(columns: list[str], wanted: str | None, candidates: tuple[str, ...], kind: str, source: str) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise CompressError(f"{source} has no column '{wanted}' (columns: {', '.join(columns)})",
                                f"pass --{kind}-column with one of those")
        return wanted
    lowered = {c.lower(): c for c in columns}
    for candidate in candidates:
        if candidate in lowered:
            return lowered[candidate]
    raise CompressError(f"cannot tell which column of {source} holds the {kind} (columns: {', '.join(columns)})",
                        f"pass --{kind}-column")


def map_labels(raw: list, label2id: dict[str, int], num_labels: int, source: str) -> list[int]:
    """Ints (or digit strings) are ids; other strings go through the model's label2id (case-insensitive)."""
    by_name = {str(k): v for k, v in label2id.items()}
    by_lower = {k.lower(): v for k, v in by_name.items()}
    ids, unknown = [], Counter()
    for value in raw:
        text = str(value).strip()
        if text in by_name:
            ids.append(by_name[text])
        elif text.lower() in by_lower:
            ids.append(by_lower[text.lower()])
        elif text.lstrip("-").isdigit() and 0 <= int(text) < num_labels:
            ids.append(int(text))
        else:
            unknown[text] += 1
    if unknown:
        shown = ", ".join(f"'{k}' ({n}x)" for k, n in unknown.most_common(8))
        raise CompressError(
            f"{sum(unknown.values())} labels in {source} are not labels of this model: {shown}; "
            f"the model knows {sorted(by_name)} (ids 0..{num_labels - 1})",
            "use the model's label names or ids, or fix id2label/label2id in the checkpoint's config.json")
    return ids


def load_text_data(source: str, label2id: dict[str, int] | None, num_labels: int | None,
                   text_column: str | None = None, label_column: str | None = None, require_labels: bool = True) -> TextData:
    rows, where = read_rows(source)
    columns = list(rows[0].keys())
    text_col = pick_column(columns, text_column, TEXT_COLUMNS, "text", where)
    texts, keep = [], []
    for i, row in enumerate(rows):
        text = row.get(text_col)
        if text is None or not str(text).strip():
            continue
        texts.append(str(text))
        keep.append(i)
    if not texts:
        raise CompressError(f"every row of {where} has an empty '{text_col}' column", "check --text-column")
    if len(keep) < len(rows):
        warn(f"skipped {len(rows) - len(keep)} rows of {where} with empty text")
    if not require_labels:
        return TextData(texts, None, where, text_col, None)
    label_col = pick_column(columns, label_column, LABEL_COLUMNS, "label", where)
    labels = map_labels([rows[i].get(label_col) for i in keep], label2id or {}, num_labels or 0, where)
    if len(set(labels)) == 1:
        warn(f"every example in {where} has the same label ({labels[0]}): accuracy alone cannot tell a broken model "
             "from a good one; agreement with the baseline is the better gate here")
    return TextData(texts, labels, where, text_col, label_col)


def load_training_texts(source: str, label2id: dict[str, int] | None, num_labels: int | None,
                        text_column: str | None = None, label_column: str | None = None) -> TextData:
    """Texts for calibration, pruning or training: labelled when the file has a label column the model knows
    (Fisher scores and label losses use them), else texts only."""
    try:
        return load_text_data(source, label2id, num_labels, text_column, label_column)
    except CompressError as err:
        data = load_text_data(source, None, None, text_column, None, require_labels=False)
        warn(f"{source}: using its texts without labels ({err.message}); label losses (qat.label_weight) are left out")
        return data


def sibling_train_file(eval_source: str) -> str | None:
    """`eval.csv` -> `train.csv` in the same folder, if it exists (calibration default)."""
    path = Path(eval_source)
    if not path.exists():
        return None
    for stem in ("train", path.stem.replace("eval", "train").replace("test", "train").replace("validation", "train")):
        candidate = path.with_name(stem + path.suffix)
        if candidate != path and candidate.exists():
            return str(candidate)
    return None
