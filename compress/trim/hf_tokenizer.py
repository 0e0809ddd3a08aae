"""A transformers tokenizer restricted to the kept ids: saved, its ``tokenizer.json`` rewritten, loaded back.

Going through the saved folder (not the live object) keeps the tokenizer's own class, special-token names and
settings, and never calls the caller's tokenizer (encoding with padding/truncation arguments would change
what it saves).  Vocabulary files other than ``tokenizer.json`` (vocab.txt, vocab.json + merges.txt,
SentencePiece models) would describe the untrimmed vocabulary, so they are removed and the trimmed folder
loads from ``tokenizer.json`` alone.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge_compress.compress.trim.errors import TrimError
from edge_compress.compress.trim.tokenizer_json import rewrite_tokenizer_json
from transformers import AutoTokenizer, PreTrainedTokenizerBase

STALE_VOCAB_FILES = ("vocab.txt", "vocab.json", "merges.txt", "tokenizer.model", "spiece.model", "sentencepiece.model",
                     "sentencepiece.bpe.model")


def tokenizer_json(tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
    """The ``tokenizer.json`` of a fast tokenizer, as data (a copy: the tokenizer is not touched)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise TrimError(f"vocabulary trimming needs a tokenizer backed by the `tokenizers` library; {type(tokenizer).__name__} is not",
                        "save the checkpoint with a fast tokenizer (tokenizer.json), or remove trim: from the recipe")
    return json.loads(backend.to_str())


def rewrite_folder(folder: Path, kept: Sequence[int]) -> None:
    """Trim the tokenizer files saved in ``folder`` in place (tokenizer.json, tokenizer_config.json's id keys)."""
    data = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    (folder / "tokenizer.json").write_text(json.dumps(rewrite_tokenizer_json(data, kept), ensure_ascii=False), encoding="utf-8")
    config_file = folder / "tokenizer_config.json"
    if config_file.exists():
        config = json.loads(config_file.read_text(encoding="utf-8"))
        if isinstance(config.get("added_tokens_decoder"), dict):
            new_id = {old: new for new, old in enumerate(sorted(kept))}
            config["added_tokens_decoder"] = {str(new_id[int(k)]): v for k, v in config["added_tokens_decoder"].items()
                                              if int(k) in new_id}
        config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
    for name in STALE_VOCAB_FILES:
        (folder / name).unlink(missing_ok=True)


def trim_tokenizer(tokenizer: PreTrainedTokenizerBase, kept: Sequence[int]) -> PreTrainedTokenizerBase:
    """A new tokenizer of the same class over the kept ids; ``tokenizer`` itself is unchanged."""
    tokenizer_json(tokenizer)  # refuses a tokenizer without tokenizer.json before anything is written
    with tempfile.TemporaryDirectory(prefix="trim-tokenizer-") as tmp:
        tokenizer.save_pretrained(tmp)
        rewrite_folder(Path(tmp), kept)
        trimmed = AutoTokenizer.from_pretrained(tmp)
    trimmed.name_or_path = tokenizer.name_or_path  # not the temporary folder, which is gone
    return trimmed
