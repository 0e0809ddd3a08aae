"""Rewrite a ``tokenizer.json`` (the `tokenizers` library's serialisation) for a kept set of token ids.

Ids are renumbered contiguously in their old order (new id = rank of the old id among the kept ones), so the
model's vocabulary stays a prefix and added tokens past it stay past it.  Besides the model (`compress.trim.kinds`)
ids live in the added tokens, the post-processor and the padding settings; every one of them is remapped.
Hand-written because no maintained library trims a tokenizer: TextPruner, which trims vocabularies, is research
code, and neither `tokenizers` nor transformers can drop entries from a trained model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from edge_compress.compress.trim.errors import TrimError
from edge_compress.compress.trim.kinds import kind_of

Remap = Callable[[int], int]


def _pair(pair: list[Any], remap: Remap) -> list[Any]:
    token, old = pair
    return [token, remap(old)]


def _template(proc: dict[str, Any], remap: Remap) -> dict[str, Any]:
    tokens = {name: {**spec, "ids": [remap(i) for i in spec["ids"]]} for name, spec in proc.get("special_tokens", {}).items()}
    return {**proc, "special_tokens": tokens}


# Post-processor type -> how its ids are remapped (the types of tokenizers' processors module; ByteLevel holds no ids).
POST_PROCESSORS: dict[str, Callable[[dict[str, Any], Remap], dict[str, Any]]] = {
    "TemplateProcessing": _template,
    "BertProcessing": lambda p, r: {**p, "sep": _pair(p["sep"], r), "cls": _pair(p["cls"], r)},
    "RobertaProcessing": lambda p, r: {**p, "sep": _pair(p["sep"], r), "cls": _pair(p["cls"], r)},
    "ByteLevel": lambda p, r: p,
    "Sequence": lambda p, r: {**p, "processors": [_post_processor(q, r) for q in p["processors"]]},
}


def _post_processor(proc: dict[str, Any] | None, remap: Remap) -> dict[str, Any] | None:
    if proc is None:
        return None
    rewrite = POST_PROCESSORS.get(proc.get("type", ""))
    if rewrite is None:
        raise TrimError(f"vocabulary trimming does not know the '{proc.get('type')}' post-processor of this tokenizer",
                        "remove trim: from the recipe (or add the processor to compress.trim.tokenizer_json.POST_PROCESSORS)")
    return rewrite(proc, remap)


def _apply(data: dict[str, Any], remap: Remap) -> dict[str, Any]:
    """Every id outside the model, through ``remap``."""
    out = {**data, "added_tokens": [{**t, "id": remap(t["id"])} for t in data.get("added_tokens", [])],
           "post_processor": _post_processor(data.get("post_processor"), remap)}
    if data.get("padding"):
        out["padding"] = {**data["padding"], "pad_id": remap(data["padding"]["pad_id"])}
    return out


def referenced_ids(data: dict[str, Any]) -> set[int]:
    """Ids the tokenizer emits or pads with outside its model: added tokens, post-processor specials, pad id."""
    seen: set[int] = set()

    def record(i: int) -> int:
        seen.add(i)
        return i

    _apply(data, record)
    return seen


def rewrite_tokenizer_json(data: dict[str, Any], kept: Sequence[int]) -> dict[str, Any]:
    """``data`` restricted to ``kept`` (old ids), renumbered 0..len(kept)-1 in old order."""
    new_id = {old: new for new, old in enumerate(sorted(kept))}

    def remap(old: int) -> int:
        if old not in new_id:
            raise AssertionError(f"token id {old} is referenced by the tokenizer but was not kept")
        return new_id[old]

    out = _apply(data, remap)
    out["model"] = kind_of(data["model"]).rewrite(data["model"], new_id)
    return out
