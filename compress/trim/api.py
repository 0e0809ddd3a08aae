"""`trim`: restrict a model and its tokenizer to the vocabulary a corpus needs (plus a safety set).

    from edge_compress.compress.trim import TrimConfig, trim
    result = trim(model, tokenizer, corpus_texts, TrimConfig(keep_top_n=2000))  # model shrinks in place
    model.save_pretrained(folder); result.tokenizer.save_pretrained(folder)
    result.kept_fraction, result.fallback_rate(eval_texts)

Word embeddings are about half of a small encoder's parameters (52 % of MiniLM-L6) and a task corpus uses a
fraction of a 30k-250k vocabulary; nothing else in the tool shrinks them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

from edge_compress.compress.trim.config import TrimConfig
from edge_compress.compress.trim.errors import TrimError
from edge_compress.compress.trim.hf_tokenizer import tokenizer_json, trim_tokenizer
from edge_compress.compress.trim.result import TrimResult
from edge_compress.compress.trim.select import choose_ids, corpus_ids
from edge_compress.compress.trim.weights import config_ids, slice_vocabulary
from tokenizers import Tokenizer
from transformers import PreTrainedModel, PreTrainedTokenizerBase


def _backend(data: dict) -> Tokenizer:
    """A private `tokenizers.Tokenizer` without padding or truncation, for counting and comparing."""
    backend = Tokenizer.from_str(json.dumps(data))
    backend.no_padding()
    backend.no_truncation()
    return backend


def _params(model: PreTrainedModel) -> int:
    return sum(p.numel() for p in model.parameters())


def trim(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str],
         config: TrimConfig | None = None) -> TrimResult:
    """Trim ``model`` in place to the ids ``texts`` use plus the safety set; the trimmed tokenizer is ``result.tokenizer``.

    ``tokenizer`` is not changed.  Nothing is changed when a check fails (a tokenizer or weight layout the
    trimmer does not know raises `TrimError` first)."""
    config = config or TrimConfig()
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise TrimError("vocabulary trimming got no corpus texts", "give the run training or calibration texts (trim.corpus)")
    data = tokenizer_json(tokenizer)
    rows = model.get_input_embeddings().num_embeddings
    used = corpus_ids(data, texts)
    kept = choose_ids(data, used, config.keep_top_n, config_ids(model))
    if kept[-1] >= rows:
        raise TrimError(f"the tokenizer has token id {kept[-1]} but the model's embedding only {rows} rows",
                        "save the tokenizer the model was trained with, or resize the model's embeddings first")
    params_before = _params(model)
    trimmed_tokenizer = trim_tokenizer(tokenizer, kept)
    slice_vocabulary(model, kept)
    result = TrimResult(kind=data["model"]["type"], kept_ids=kept, vocab_before=rows, corpus_texts=len(texts),
                        corpus_ids=len(used), keep_top_n=config.keep_top_n, params_before=params_before,
                        params_after=_params(model), original=_backend(data),
                        trimmed=_backend(tokenizer_json(trimmed_tokenizer)), tokenizer=trimmed_tokenizer)
    return replace(result, corpus_fallback_rate=result.fallback_rate(texts))
