"""Question + context -> fixed-length model windows, keeping what post-processing needs to map back.

A context longer than `max_length` is not truncated: the tokenizer cuts it into overlapping windows
(`return_overflowing_tokens`, `stride=doc_stride`), each repeating the question, so an answer near a
window edge appears whole in the next one. Every window keeps its example index and the character
offsets of its context tokens (other tokens get None), as in transformers' run_qa.py example.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from edge_compress.compress.errors import CompressError
from edge_compress.compress.tasks.question_answering.data import QAExample
from edge_compress.compress.tasks.question_answering.spec import DOC_STRIDE, MAX_LENGTH
from transformers import PreTrainedTokenizerBase


@dataclass
class QAFeatures:
    inputs: dict[str, np.ndarray]              # model inputs, int64 [windows, max_length]
    example_index: np.ndarray                  # window -> index into the examples list
    offsets: list[list[tuple[int, int] | None]]  # per window and token: (start, end) chars of context tokens
    cls_index: np.ndarray                      # position of the [CLS]-like token scored as "no answer"
    start_positions: np.ndarray | None = None  # training labels (cls_index when the answer is outside the window)
    end_positions: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.example_index)

    def window(self, i: int, trim: bool = True) -> dict[str, np.ndarray]:
        """One window as a batch of one; `trim` drops its padding (latency at real lengths)."""
        length = int(self.inputs["attention_mask"][i].sum()) if trim else self.inputs["input_ids"].shape[1]
        if trim and self.inputs["attention_mask"][i, 0] == 0:  # left padding: keep the tail
            return {k: v[i:i + 1, -length:] for k, v in self.inputs.items()}
        return {k: v[i:i + 1, :length] for k, v in self.inputs.items()}


def prepare_features(tokenizer: PreTrainedTokenizerBase, examples: Sequence[QAExample], max_length: int = MAX_LENGTH,
                     doc_stride: int = DOC_STRIDE, with_labels: bool = False) -> QAFeatures:
    """Tokenize every example into windows; `with_labels` adds start/end token labels for training."""
    if not tokenizer.is_fast:
        raise CompressError(f"{type(tokenizer).__name__} is a slow (Python) tokenizer, which cannot return character offsets",
                            "save the checkpoint with its fast tokenizer (tokenizer.json), e.g. "
                            "AutoTokenizer.from_pretrained(..., use_fast=True).save_pretrained(...)")
    if doc_stride >= max_length:
        raise CompressError(f"doc_stride ({doc_stride}) must be smaller than max_length ({max_length})",
                            "use the usual 128 / 384, or lower the stride")
    limit = tokenizer.model_max_length
    if limit and limit < 1_000_000 and max_length > limit:
        raise CompressError(f"max_length {max_length} is longer than the model accepts ({limit} tokens)",
                            f"pass a max_length of at most {limit}")
    pad_on_right = tokenizer.padding_side == "right"
    questions = [e.question.lstrip() for e in examples]  # leading spaces only waste window room
    contexts = [e.context for e in examples]
    _check_question_room(tokenizer, examples, questions, max_length, doc_stride)
    encoded = tokenizer(questions if pad_on_right else contexts, contexts if pad_on_right else questions,
                        truncation="only_second" if pad_on_right else "only_first", max_length=max_length,
                        stride=doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True,
                        padding="max_length")
    context_id = 1 if pad_on_right else 0
    offsets, cls_index = [], []
    for i, window_offsets in enumerate(encoded["offset_mapping"]):
        sequence_ids = encoded.sequence_ids(i)
        offsets.append([tuple(o) if sequence_ids[k] == context_id else None for k, o in enumerate(window_offsets)])
        ids = encoded["input_ids"][i]
        cls_index.append(ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else 0)
    names = [n for n in tokenizer.model_input_names if n in encoded]
    features = QAFeatures({n: np.asarray(encoded[n], dtype=np.int64) for n in names},
                          np.asarray(encoded["overflow_to_sample_mapping"], dtype=np.int64), offsets,
                          np.asarray(cls_index, dtype=np.int64))
    if with_labels:
        features.start_positions, features.end_positions = _labels(features, examples)
    return features


def _check_question_room(tokenizer: PreTrainedTokenizerBase, examples: Sequence[QAExample], questions: list[str],
                         max_length: int, doc_stride: int) -> None:
    """The tokenizer needs more than `doc_stride` context tokens per window; say which questions leave too few."""
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    lengths = [len(ids) for ids in tokenizer(questions, add_special_tokens=False)["input_ids"]]
    too_long = [(e.id, n) for e, n in zip(examples, lengths) if max_length - n - specials <= doc_stride]
    if too_long:
        shown = ", ".join(f"{i} ({n} tokens)" for i, n in too_long[:5])
        raise CompressError(f"{len(too_long)} questions are too long for windows of {max_length} tokens with a stride of "
                            f"{doc_stride}: {shown}",
                            "shorten those questions, or raise max_length / lower doc_stride")


def _labels(features: QAFeatures, examples: Sequence[QAExample]) -> tuple[np.ndarray, np.ndarray]:
    """First answer's start/end token in each window; windows that do not contain it whole point at cls_index."""
    labels = []
    for w, example_index in enumerate(features.example_index):
        example, cls, offsets = examples[example_index], int(features.cls_index[w]), features.offsets[w]
        tokens = [k for k, o in enumerate(offsets) if o is not None]
        if not example.answers:
            labels.append((cls, cls))
            continue
        first = example.answers[0].start
        last = first + len(example.answers[0].text)
        if offsets[tokens[0]][0] > first or offsets[tokens[-1]][1] < last:
            labels.append((cls, cls))
            continue
        labels.append((next(k for k in tokens if offsets[k][1] > first),
                       next(k for k in reversed(tokens) if offsets[k][0] < last)))
    starts, ends = zip(*labels)
    return np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)
