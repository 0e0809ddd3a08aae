"""causal-lm: KV-cache export, int8/int4 variants, LM metrics, generation, and every user error.

A tiny GPT-2 (2 layers, n_embd 32, word-level tokenizer from the project's LM text)
is trained for a few seconds so greedy generation and perplexity mean something.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from calib_data import LM_TEXT_EVAL, LM_TEXT_TRAIN


def _tokenizer(text: str) -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = re.findall(r"\w+|[^\w\s]", text.lower())
    common = [w for w, _ in sorted(((w, words.count(w)) for w in set(words)), key=lambda x: -x[1])][:400]
    vocab = {w: i for i, w in enumerate(["<|endoftext|>", "<unk>", *common])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.normalizer = __import__("tokenizers").normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>", unk_token="<unk>",
                                   model_input_names=["input_ids", "attention_mask"])


def make_tiny_lm(folder: Path, seconds: float = 4.0, with_pad: bool = True) -> Path:
    """Train a 2-layer GPT-2 on calib_data/lm_text/train.txt for a few seconds; save model + tokenizer."""
    import time

    torch.manual_seed(0)
    text = LM_TEXT_TRAIN.read_text()
    tokenizer = _tokenizer(text)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=4, n_positions=128,
                        bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config)
    ids = torch.tensor(tokenizer(text.replace("\n", " <|endoftext|> "))["input_ids"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    start, generator = time.perf_counter(), torch.Generator().manual_seed(0)
    while time.perf_counter() - start < seconds:
        offsets = torch.randint(0, len(ids) - 65, (16,), generator=generator)
        batch = torch.stack([ids[o:o + 64] for o in offsets])
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
