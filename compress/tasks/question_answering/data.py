"""Extractive-QA examples from SQuAD JSON, or from JSONL/CSV/TSV rows (or a `datasets` name) with
question / context / answers columns.

Answers are checked against their context here, once, so that metrics and training labels can trust them:
an answer whose text is not in the context is dropped, and an example left without answers is *skipped*
and reported with its reason instead of stopping the run (real SQuAD-style exports contain a few such rows).
An answer whose `answer_start` is off but whose text is in the context is moved to the nearest occurrence
and reported as *moved*. Empty questions or contexts are a broken file, not a bad row: CompressError.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_compress.compress.data import pick_column, read_rows
from edge_compress.compress.errors import CompressError

QUESTION_COLUMNS = ("question", "query", "q")
CONTEXT_COLUMNS = ("context", "passage", "paragraph", "document")
ANSWERS_COLUMNS = ("answers", "answer", "answer_text")
ANSWER_START_COLUMNS = ("answer_start", "start")
ID_COLUMNS = ("id", "qid", "question_id")
IMPOSSIBLE_COLUMNS = ("is_impossible",)


@dataclass
class Answer:
    text: str
    start: int  # character offset of `text` in the context


@dataclass
class QAExample:
    id: str
    question: str
    context: str
    answers: list[Answer] | None  # None: the data has no answers (agreement-only); [] with is_impossible
    is_impossible: bool = False


@dataclass
class Problem:
    id: str
    reason: str


@dataclass
class QAData:
    examples: list[QAExample]
    source: str
    skipped: list[Problem] = field(default_factory=list)   # dropped: no usable answer left
    moved: list[Problem] = field(default_factory=list)     # kept: an answer_start was corrected

    @property
    def labelled(self) -> bool:
        """True when every example carries answers (or is marked impossible), so EM/F1 can be computed."""
        return all(e.answers is not None for e in self.examples)

    @property
    def references(self) -> dict[str, list[str]]:
        return {e.id: [a.text for a in e.answers or []] for e in self.examples}


def load_qa_data(source: str, *, question_column: str | None = None, context_column: str | None = None,
                 answers_column: str | None = None, answer_start_column: str | None = None,
                 id_column: str | None = None) -> QAData:
    """Examples of a SQuAD JSON file (v1.1 or v2.0) or of rows; see the module docstring for what is checked."""
    path = Path(source).expanduser()
    document = _read_json(path) if path.suffix.lower() == ".json" and path.is_file() else None
    if _is_squad(document):
        articles = document if isinstance(document, list) else document["data"]
        return _check(_flatten(articles, path), str(path))
    if isinstance(document, list) and document and all(isinstance(r, dict) for r in document):
        rows, where = document, str(path)  # a JSON array of rows
    elif isinstance(document, dict):
        raise CompressError(f"{path} is JSON but not in SQuAD format (no top-level 'data' list)",
                            "use SQuAD's layout {data: [{paragraphs: [{context, qas: [...]}]}]}, or JSONL rows with "
                            "question, context and answers fields")
    else:
        rows, where = read_rows(source)
    raw = _from_rows(rows, where, question_column, context_column, answers_column, answer_start_column, id_column)
    return _check(raw, where)


# --------------------------------------------------------------------------- reading
def _read_json(path: Path) -> Any:
    """The file as one JSON document; None when it is not one (e.g. JSONL named .json)."""
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError:
        return None


def _is_squad(document: Any) -> bool:
    """SQuAD's {data: [articles]}, or a bare list of articles as some exports write it."""
    if isinstance(document, dict):
        return isinstance(document.get("data"), list)
    return isinstance(document, list) and bool(document) and isinstance(document[0], dict) and "paragraphs" in document[0]


def _flatten(articles: list, path: Path) -> list[dict]:
    flat = []
    for a, article in enumerate(articles):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            context = paragraph.get("context")
            for q, qa in enumerate(paragraph.get("qas", [])):
                flat.append({"id": str(qa.get("id", f"{a}-{p}-{q}")), "question": qa.get("question"), "context": context,
                             "answers": [(x.get("text"), x.get("answer_start")) for x in qa.get("answers", [])],
                             "is_impossible": bool(qa.get("is_impossible", False))})
    if not flat:
        raise CompressError(f"{path} holds no questions", "each paragraph needs a 'qas' list with at least one question")
    return flat


def _from_rows(rows: list[dict], where: str, question_column: str | None, context_column: str | None,
               answers_column: str | None, answer_start_column: str | None, id_column: str | None) -> list[dict]:
    """Flat examples from rows. No answers column at all means unlabelled data (agreement-only); a plain-text
    answer cell takes its start from the answer-start column, if any."""
    columns = list(rows[0])
    question_col = pick_column(columns, question_column, QUESTION_COLUMNS, "question", where)
    context_col = pick_column(columns, context_column, CONTEXT_COLUMNS, "context", where)
    answers_col = _optional_column(columns, answers_column, ANSWERS_COLUMNS, "answers", where)
    start_col = _optional_column(columns, answer_start_column, ANSWER_START_COLUMNS, "answer-start", where)
    id_col = _optional_column(columns, id_column, ID_COLUMNS, "id", where)
    impossible_col = _optional_column(columns, None, IMPOSSIBLE_COLUMNS, "is-impossible", where)
    flat = []
    for number, row in enumerate(rows, start=1):
        start = row.get(start_col) if start_col else None
        answers = None if answers_col is None else _parse_answers(row.get(answers_col), start, where, number)
        flat.append({"id": str(row.get(id_col)) if id_col and row.get(id_col) not in (None, "") else str(number),
                     "question": row.get(question_col), "context": row.get(context_col), "answers": answers,
                     "is_impossible": _truthy(row.get(impossible_col)) if impossible_col else False,
                     "row": number})
    return flat


def _optional_column(columns: list[str], wanted: str | None, candidates: tuple[str, ...], kind: str, where: str) -> str | None:
    if wanted is not None:
        return pick_column(columns, wanted, candidates, kind, where)
    lowered = {c.lower(): c for c in columns}
    return next((lowered[c] for c in candidates if c in lowered), None)


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("1", "true", "yes")


def _parse_answers(value: Any, start: Any, where: str, number: int) -> list[tuple[Any, Any]]:
    """(text, start) pairs from HF's {text: [...], answer_start: [...]}, a list of {text, answer_start},
    plain strings (starting at `start`, if given), or any of these as a JSON string (CSV cells)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return [(value, start)]
        if isinstance(value, (str, int, float)):
            return [(str(value), start)]
    if isinstance(value, dict):
        texts, starts = value.get("text"), value.get("answer_start")
        if isinstance(texts, list):
            starts = starts if isinstance(starts, list) else [None] * len(texts)
            if len(starts) != len(texts):
                raise CompressError(f"{where}, row {number}: {len(texts)} answer texts but {len(starts)} answer_start values",
                                    "give one answer_start per answer text")
            return list(zip(texts, starts))
        return [(texts, starts)]
    if isinstance(value, list):
        return [(a.get("text"), a.get("answer_start")) if isinstance(a, dict) else (a, None) for a in value]
    raise CompressError(f"{where}, row {number}: cannot read answers from a {type(value).__name__}",
                        "give answers as {\"text\": [...], \"answer_start\": [...]} or a list of {text, answer_start}")


# --------------------------------------------------------------------------- checking
def _check(raw: list[dict], where: str) -> QAData:
    def place(r: dict) -> str:
        return f"row {r['row']}" if "row" in r else f"id {r['id']}"

    for kind in ("question", "context"):
        empty = [place(r) for r in raw if not str(r[kind] or "").strip()]
        if empty:
            shown = ", ".join(empty[:8]) + (f" and {len(empty) - 8} more" if len(empty) > 8 else "")
            raise CompressError(f"{len(empty)} {kind}s in {where} are empty ({shown})",
                                f"fill in the {kind} or remove those examples")
    ids = [r["id"] for r in raw]
    if len(set(ids)) != len(ids):
        duplicates = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise CompressError(f"{where} repeats example ids ({', '.join(duplicates)})",
                            "give every question a unique id (predictions are matched to answers by id)")
    data = QAData([], where)
    for r in raw:
        context, answers = str(r["context"]), r["answers"]
        if answers is None:
            data.examples.append(QAExample(r["id"], str(r["question"]), context, None))
            continue
        if r["is_impossible"]:
            data.examples.append(QAExample(r["id"], str(r["question"]), context, [], True))
            continue
        kept, reasons = [], []
        for text, start in answers:
            answer, note = _locate(context, text, start)
            if answer is None:
                reasons.append(note)
                continue
            kept.append(answer)
            if note:
                data.moved.append(Problem(r["id"], note))
        if not answers:
            reasons.append("no answers given (mark unanswerable questions with is_impossible: true)")
        if kept:
            data.examples.append(QAExample(r["id"], str(r["question"]), context, kept))
        else:
            data.skipped.append(Problem(r["id"], "; ".join(reasons)))
    if not data.examples:
        first = data.skipped[0]
        raise CompressError(f"no usable examples in {where}: all {len(data.skipped)} were skipped (e.g. {first.id}: {first.reason})",
                            "check that answers are copied exactly from their context, with answer_start as a character offset")
    return data


def _locate(context: str, text: Any, start: Any) -> tuple[Answer | None, str]:
    """The answer as a checked span, plus a note when it was moved or why it was dropped."""
    if text is None or not str(text).strip():
        return None, "empty answer text"
    text = str(text)
    try:
        start = int(start) if start not in (None, "") else None
    except (TypeError, ValueError):
        start = None
    if start is not None and context[start:start + len(text)] == text:
        return Answer(text, start), ""
    found = [i for i in range(len(context)) if context.startswith(text, i)]
    if not found:
        shown = text if len(text) <= 60 else text[:57] + "..."
        return None, f"answer {shown!r} is not in the context"
    if start is None:
        return Answer(text, found[0]), ""
    nearest = min(found, key=lambda i: abs(i - start))
    return Answer(text, nearest), f"answer_start of {text!r} moved from {start} to {nearest}"
