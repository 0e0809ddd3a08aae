"""Slice a model's vocabulary-sized weights to the kept token ids (new row order = new ids).

The input embedding is sliced in place (its module is kept, so scaled embeddings such as Gemma's keep their
scale), then the output head: a tied head is pointed at the sliced embedding again, an untied one is sliced
with its bias.  ``config.vocab_size`` and the special-token ids of the config and generation config are
renumbered, so ``save_pretrained`` + ``from_pretrained`` rebuild the same shapes and tying.  Any other weight
that is vocabulary-sized (`VOCAB_SIZED_EXTRAS`: a separate MLM bias, BART's ``final_logits_bias``) is
refused before anything changes, rather than left at the old size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from edge_compress.compress.trim.errors import TrimError
from torch import nn
from transformers import PreTrainedModel

# Config fields holding token ids (an int or a list of ints), renumbered with the vocabulary.
CONFIG_TOKEN_IDS = ("pad_token_id", "bos_token_id", "eos_token_id", "cls_token_id", "sep_token_id", "unk_token_id",
                    "mask_token_id", "decoder_start_token_id")
# Vocabulary-sized weights beside the embedding and the head's own weight/bias, in the architectures transformers ships
# (BART/Marian/Pegasus: a logits bias buffer; BERT-style MLM heads: a bias parameter next to the decoder).  Matched by
# name, because matching by shape flags any hidden or FFN size that happens to equal the vocabulary size.
VOCAB_SIZED_EXTRAS = ("final_logits_bias", "predictions.bias")


def _configs(model: PreTrainedModel) -> Iterator[Any]:
    """The model config, its text config when it is a separate object, and the generation config."""
    yield model.config
    text = model.config.get_text_config()
    if text is not model.config:
        yield text
    if getattr(model, "generation_config", None) is not None:
        yield model.generation_config


def config_ids(model: PreTrainedModel) -> set[int]:
    """Token ids the configs name that index the embedding (negative / missing ids are not ids)."""
    rows = model.get_input_embeddings().num_embeddings
    ids: set[int] = set()
    for config in _configs(model):
        for name in CONFIG_TOKEN_IDS:
            value = getattr(config, name, None)
            ids.update(i for i in (value if isinstance(value, list) else [value]) if isinstance(i, int) and 0 <= i < rows)
    return ids


def _check_sliceable(model: PreTrainedModel) -> None:
    embedding, head = model.get_input_embeddings(), model.get_output_embeddings()
    if not isinstance(embedding, nn.Embedding):
        raise TrimError(f"vocabulary trimming needs an nn.Embedding input embedding; {type(model).__name__} has "
                        f"{type(embedding).__name__}", "remove trim: from the recipe")
    if head is not None and not isinstance(head, nn.Linear):
        raise TrimError(f"vocabulary trimming needs an nn.Linear output head; {type(model).__name__} has {type(head).__name__}",
                        "remove trim: from the recipe")
    rows = embedding.num_embeddings
    if head is not None and head.out_features != rows:
        raise TrimError(f"{type(model).__name__}'s output head has {head.out_features} rows but its embedding {rows}",
                        "remove trim: from the recipe")
    extras = [name for name, _ in [*model.named_parameters(), *model.named_buffers()] if name.endswith(VOCAB_SIZED_EXTRAS)]
    if extras:
        raise TrimError(f"{type(model).__name__} has vocabulary-sized weights trimming does not slice: {', '.join(extras)}",
                        "remove trim: from the recipe (or teach compress.trim.weights that layout)")


def _renumber_config_ids(model: PreTrainedModel, new_id: dict[int, int]) -> None:
    for config in _configs(model):
        if hasattr(config, "vocab_size") and config is not getattr(model, "generation_config", None):
            config.vocab_size = len(new_id)
        for name in CONFIG_TOKEN_IDS:
            value = getattr(config, name, None)
            if isinstance(value, list):
                setattr(config, name, [new_id.get(i, i) if isinstance(i, int) else i for i in value])
            elif isinstance(value, int) and value in new_id:
                setattr(config, name, new_id[value])


def slice_vocabulary(model: PreTrainedModel, kept: Sequence[int]) -> None:
    """Keep only the rows of ``kept`` (old ids, any order; they end up sorted), in place."""
    _check_sliceable(model)
    old = sorted(kept)
    new_id = {o: n for n, o in enumerate(old)}
    index = torch.tensor(old, dtype=torch.long)
    embedding, head = model.get_input_embeddings(), model.get_output_embeddings()
    tied = head is not None and head.weight is embedding.weight
    with torch.no_grad():
        embedding.weight = nn.Parameter(embedding.weight[index].clone(), requires_grad=embedding.weight.requires_grad)
    embedding.num_embeddings = len(old)
    if embedding.padding_idx is not None:
        embedding.padding_idx = new_id.get(embedding.padding_idx)
    if head is not None:
        with torch.no_grad():
            head.weight = embedding.weight if tied else nn.Parameter(head.weight[index].clone())
            if head.bias is not None:
                head.bias = nn.Parameter(head.bias[index].clone())
        head.out_features = len(old)
    _renumber_config_ids(model, new_id)
