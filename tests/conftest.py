"""Tiny random checkpoints and data files, built in seconds, shared by the tests."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertTokenizer,
    GPT2Config,
    GPT2ForSequenceClassification,
    PreTrainedTokenizerFast,
)

WORDS = ["the", "a", "my", "order", "is", "late", "where", "refund", "please", "cancel", "it", "was", "great", "terrible", "movie", "film", "good", "bad", "not", "very", "love", "hate", "this", "package", "arrived", "never", "money", "back", "account", "login", "password", "help", "me", "now", "today"]
WORDS = tuple(dict.fromkeys(WORDS))
LABELS = ["negative", "neutral", "positive"]


def _bert_tokenizer(folder: Path) -> BertTokenizer:
    """A word-piece tokenizer over WORDS (transformers 5's BertTokenizer is the fast one and takes `vocab=`)."""
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz")]))
    return BertTokenizer(vocab=str(vocab))


def _gpt2_tokenizer() -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(dict.fromkeys(["<|endoftext|>", *WORDS, *"abcdefghijklmnopqrstuvwxyz"]))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    # GPT-2 takes no token_type_ids (feeding them would add an embedding the ONNX graph lacks).
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>", unk_token="<|endoftext|>",
                                   model_input_names=["input_ids", "attention_mask"])


def labels_config() -> dict:
    return {"num_labels": len(LABELS), "id2label": dict(enumerate(LABELS)), "label2id": {l: i for i, l in enumerate(LABELS)}}


def make_bert(folder: Path, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = _bert_tokenizer(folder)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128, **labels_config())
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_encoder(folder: Path, model_type: str, seed: int = 0) -> Path:
    """A tiny DistilBERT or RoBERTa classifier (reusing the BERT word-piece tokenizer; only the graph matters here)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = _bert_tokenizer(folder)
    sizes = {"distilbert": {"dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 64},
             "roberta": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
                             "pad_token_id": 0, "type_vocab_size": 1}}[model_type]
    config = AutoConfig.for_model(model_type, vocab_size=len(tokenizer), max_position_embeddings=130, **sizes, **labels_config())
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_gpt2(folder: Path, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = _gpt2_tokenizer()
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=4, n_positions=128,
                        pad_token_id=tokenizer.eos_token_id, **labels_config())
    GPT2ForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_gemma3(folder: Path, seed: int = 0) -> Path:
    """A tiny Gemma 3 text classifier: a decoder whose embedding subclass scales its output, sliding-window layers."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = _gpt2_tokenizer()
    tokenizer.pad_token = tokenizer.eos_token
    config = AutoConfig.for_model("gemma3_text", vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=1, head_dim=8, max_position_embeddings=128,
                                  sliding_window=16, pad_token_id=tokenizer.pad_token_id, **labels_config())
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_texts(n: int, seed: int = 0) -> list[tuple[str, str]]:
    import random

    rng = random.Random(seed)
    return [(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 20))), LABELS[i % len(LABELS)]) for i in range(n)]


def write_csv(path: Path, rows: list[tuple[str, str]], header=("text", "label")) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def one_torch_thread():
    """Tiny matrices run fastest on one thread; set per test (not at import) and restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return make_bert(tmp_path_factory.mktemp("ckpt") / "bert")


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> Path:
    return make_gpt2(tmp_path_factory.mktemp("ckpt") / "gpt2")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    write_csv(folder / "eval.csv", make_texts(60, seed=1))
    write_csv(folder / "train.csv", make_texts(80, seed=2))
    return folder


FAST_RECIPE = """
validate:
  latency_samples: 8
  warmup: 1
  batch_size: 8
quantize:
  static:
    num_samples: 16
"""


@pytest.fixture(scope="session")
def fast_recipe(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "fast.yaml"
    path.write_text(FAST_RECIPE)
    return path


@pytest.fixture(scope="session")
def bert_report_keys() -> set[str]:
    """The fields every report entry has, whatever the task."""
    return {"name", "path", "format", "precision", "provider", "metrics", "metrics_batch", "latency_ms", "latency_ms_batch",
            "peak_memory_mb", "size_bytes", "params", "graph", "settings", "targets", "error"}


@pytest.fixture(scope="session", autouse=True)
def report_contract():
    """Every pipeline run any test makes (CLI or Python, fixture or test) has its report.json checked by tests/contract.py.

    Wraps `compress.run.pipeline.run`, which the CLI imports at call time; a run that raises has no report to check.
    Session-scoped and autouse, so module-scoped run fixtures are covered too."""
    from contract import check_report_folder
    from edge_compress.compress.run import pipeline

    original = pipeline.run
    checked: list[Path] = []

    def checked_run(options, recipe):
        report = original(options, recipe)
        check_report_folder(options.out)
        checked.append(Path(options.out))
        return report

    pipeline.run = checked_run
    yield checked
    pipeline.run = original
