"""Vocabulary trimming: keep the token ids a corpus uses plus a safety set; rewrite tokenizer.json; slice embeddings.

    from edge_compress.compress.trim import TrimConfig, trim
    result = trim(model, tokenizer, corpus_texts, TrimConfig(keep_top_n=2000))  # model shrinks in place
    model.save_pretrained(folder); result.tokenizer.save_pretrained(folder)

`select` decides what to keep, `kinds` holds the per-tokenizer-model knowledge (WordPiece, BPE, Unigram),
`tokenizer_json` rewrites the tokenizer, `hf_tokenizer` round-trips it through transformers, `weights` slices
the embedding and head, `result` reports the kept fraction and the fallback rate on other text.
"""

from importlib import import_module
from typing import Any

# Public name -> submodule, imported on first use: `compress.trim.config` (which the recipe embeds) is then
# importable without torch or transformers, so `compress --help` stays fast.
_EXPORTS = {"trim": "api", "TrimConfig": "config", "TrimError": "errors", "TrimResult": "result", "KINDS": "kinds"}
__all__ = ["KINDS", "TrimConfig", "TrimError", "TrimResult", "trim"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'edge_compress.compress.trim' has no attribute {name!r}")
    return getattr(import_module(f"edge_compress.compress.trim.{_EXPORTS[name]}"), name)
