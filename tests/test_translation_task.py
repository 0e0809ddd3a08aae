"""`--task translation` end to end on tiny seq2seq models the tests build and train for seconds.

A Marian (and a T5 / BART for the other families) with a byte-level BPE tokenizer built with the
`tokenizers` library on calib_data/translation, trained on its shortest pairs until greedy outputs depend
on the source (not one repeated token): export parity, greedy vs `model.generate`, beam search, the int8
variants, the report, the CLI and the bad inputs of issue 14.
"""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from compress.errors import CompressError

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "calib_data" / "translation"
TRAIN_SECONDS = 12.0


def read_pairs(name: str) -> list[dict[str, str]]:
    with (PAIRS / name).open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def build_tokenizer(pairs: list[dict[str, str]]):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.normalizer = normalizers.NFKC()
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "</s>", "<unk>"])
    backend.train_from_iterator([p["source"] for p in pairs] + [p["target"] for p in pairs], trainer)
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def build_model(family: str, vocab: int):
    from transformers import (BartConfig, BartForConditionalGeneration, MarianConfig, MarianMTModel, T5Config,
                              T5ForConditionalGeneration)

    common = {"vocab_size": vocab, "pad_token_id": 0, "eos_token_id": 1}
    if family == "marian":
        config = MarianConfig(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                              decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
                              decoder_start_token_id=0, forced_eos_token_id=1, **common)
        return MarianMTModel(config)
    if family == "bart":
        config = BartConfig(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                            encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128, bos_token_id=1,
                            decoder_start_token_id=1, forced_eos_token_id=1, **common)
        return BartForConditionalGeneration(config)
    config = T5Config(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4, decoder_start_token_id=0,
                      **common)
    return T5ForConditionalGeneration(config)


def train(model, tokenizer, pairs: list[dict[str, str]], seconds: float) -> None:
    """AdamW on the shortest pairs, pre-tokenized, until `seconds` pass: enough for source-dependent greedy outputs."""
    short = sorted(pairs, key=lambda p: len(p["source"]))[:48]
    batches = []
    for start in range(0, len(short), 16):
        chunk = short[start:start + 16]
        batch = tokenizer([p["source"] for p in chunk], padding=True, return_tensors="pt")
        labels = tokenizer([p["target"] for p in chunk], padding=True, return_tensors="pt").input_ids
        labels[labels == tokenizer.pad_token_id] = -100
        batches.append((batch, labels))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    deadline, step = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        batch, labels = batches[step % len(batches)]
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        step += 1
    model.eval()
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def pairs() -> list[dict[str, str]]:
    return read_pairs("train.tsv")


@pytest.fixture(scope="session")
def tokenizer(pairs):
    return build_tokenizer(pairs)


def _trained(family: str, tokenizer, pairs, folder: Path, seconds: float):
    torch.manual_seed(0)
    model = build_model(family, len(tokenizer))
    train(model, tokenizer, pairs, seconds)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model


@pytest.fixture(scope="session")
def marian(tmp_path_factory, tokenizer, pairs):
    folder = tmp_path_factory.mktemp("marian")
    return _trained("marian", tokenizer, pairs, folder, TRAIN_SECONDS), folder
