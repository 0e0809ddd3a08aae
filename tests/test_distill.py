"""Distillation of a pruned tiny BERT from its unpruned original."""

from __future__ import annotations

import copy

import pytest
import torch
from edge_compress.compress.distill import DistillConfig, DistillError, default_layer_map, distill, distill_loss
from edge_compress.compress.prune import PrunePlan, apply_plan
from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matrices: one thread is fastest


@pytest.fixture()
def tokenizer(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(95)]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab))
    return BertTokenizer(vocab=str(tmp_path / "vocab.txt"))


def teacher_model():
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=100, hidden_size=32, num_attention_heads=4, intermediate_size=64,
                     num_hidden_layers=2, max_position_embeddings=64, num_labels=3, initializer_range=0.3,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # confident, deterministic
    return BertForSequenceClassification(cfg).eval()


def dataset(tokenizer, n=8):
    g = torch.Generator().manual_seed(0)
    rows = []
    for i in range(n):
        words = " ".join(f"w{int(x)}" for x in torch.randint(0, 95, (int(torch.randint(3, 10, (1,), generator=g)),), generator=g))
        rows.append({**tokenizer(words), "labels": i % 3, "text": words})
    return rows


def mean_kl(student, teacher, rows, tokenizer, config):
    batch = tokenizer.pad([{k: r[k] for k in ("input_ids", "attention_mask", "token_type_ids")} for r in rows],
                          return_tensors="pt")
    with torch.no_grad():
        student_out, teacher_out = (m(**batch, output_hidden_states=True) for m in (student, teacher))
        return float(distill_loss(student_out, teacher_out, config, batch["attention_mask"]))


def test_distill_reduces_kl_of_a_pruned_student(tokenizer):
    teacher = teacher_model()
    student = copy.deepcopy(teacher)
    apply_plan(student, PrunePlan(heads={0: [0, 1], 1: [2]}, neurons={0: list(range(40)), 1: list(range(30))}))
    rows = dataset(tokenizer)
    config = DistillConfig(max_steps=3, batch_size=8, learning_rate=1e-3, lr_scheduler_type="constant")
    before = mean_kl(student, teacher, rows, tokenizer, config)
    returned = distill(student, teacher, rows, config, tokenizer)
    assert returned is student
    assert mean_kl(student, teacher, rows, tokenizer, config) < before


def test_hidden_state_loss_with_a_dropped_layer_writes_nothing(tokenizer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    teacher = teacher_model()
    student = copy.deepcopy(teacher)
    apply_plan(student, PrunePlan(layers=[0]))
    config = DistillConfig(max_steps=3, batch_size=8, learning_rate=1e-3, hidden_weight=1.0, layer_map=(0, 2))
    rows = dataset(tokenizer)
    before = mean_kl(student, teacher, rows, tokenizer, config)
    distill(student, teacher, rows, config, tokenizer)
    assert mean_kl(student, teacher, rows, tokenizer, config) < before
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.txt"]  # no checkpoints or logs


def test_default_layer_map_spreads_evenly():
    assert default_layer_map(3, 3) == [0, 1, 2]
    assert default_layer_map(2, 3) == [0, 2]
    assert default_layer_map(3, 5) == [0, 2, 4]


@pytest.mark.parametrize(
    "kwargs",
    [{"temperature": 0}, {"kl_weight": 0.0}, {"hidden_weight": -1.0}, {"batch_size": 0}, {"epochs": 0}],
)
def test_bad_config_is_rejected(kwargs):
    with pytest.raises(DistillError):
        DistillConfig(**kwargs)


def test_bad_layer_map_is_rejected(tokenizer):
    teacher = teacher_model()
    config = DistillConfig(max_steps=1, batch_size=4, hidden_weight=1.0, layer_map=(0, 9, 9))
    with pytest.raises(DistillError, match="layer_map"):
        distill(copy.deepcopy(teacher), teacher, dataset(tokenizer), config, tokenizer)


def test_untokenized_dataset_is_rejected(tokenizer):
    teacher = teacher_model()
    with pytest.raises(DistillError, match="tokenized"):
        distill(copy.deepcopy(teacher), teacher, [{"text": "w1 w2"}], DistillConfig(max_steps=1), tokenizer)
