"""The QAT stage: fake-quantize a copy of the model, initialize its ranges by calibration, then
train it to match the float model (distillation through `transformers.Trainer`, so it runs under
accelerate/torchrun unchanged)."""
from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import torch
from edge_compress.compress.console import info
from edge_compress.compress.errors import CompressError
from edge_compress.compress.qat.config import QATConfig
from edge_compress.compress.qat.modules import (
    activation_quantizers,
    check_supported,
    insert_fake_quant,
)
from edge_compress.compress.run.resume import active_store, state_digest
from edge_compress.compress.seeding import seeded
from torch import nn


def quantization_aware_train(model: nn.Module, tokenizer, texts: list[str], labels: list[int] | None, config: QATConfig,
                             max_length: int = 128) -> tuple[nn.Module, dict[str, float]]:
    """A fake-quantized, trained copy of `model` (the float `model` is the teacher and is left as is),
    and how far training moved the activation scales from their calibrated start."""
    if not texts:
        raise CompressError("QAT needs training texts and got none", "pass --calib-data (or a train file beside the eval file)")
    try:
        check_supported(model)
    except ValueError as err:
        raise _unsupported(model, err) from err
    with seeded(config.seed):
        student = _fake_quantized(model, tokenizer, texts, config, max_length)
        store = active_store()
        if store is None:
            return _train(student, model, tokenizer, texts, labels, config, max_length)
        # a rerun after a kill reloads the trained model instead of training it again (compress.run.resume)
        inputs = [state_digest(model), texts, labels, dataclasses.asdict(config), max_length]
        return store.checkpoint("qat", inputs, lambda: _train(student, model, tokenizer, texts, labels, config, max_length),
                                _save, lambda folder: _load(student, folder))


def _save(result: tuple[nn.Module, dict[str, float]], folder: Path) -> None:
    from safetensors.torch import save_model

    trained, moved = result
    folder.mkdir(parents=True)
    save_model(trained, str(folder / "qat.safetensors"))  # handles tied weights, unlike save_file
    (folder / "scales.json").write_text(json.dumps(moved))


def _load(student: nn.Module, folder: Path) -> tuple[nn.Module, dict[str, float]]:
    """The trained weights and ranges into the freshly calibrated fake-quantized copy (the same modules)."""
    from safetensors.torch import load_model

    load_model(student, str(folder / "qat.safetensors"))
    return student.eval(), json.loads((folder / "scales.json").read_text())


def _fake_quantized(model: nn.Module, tokenizer, texts: list[str], config: QATConfig, max_length: int) -> nn.Module:
    """A copy of `model` with fake quantizers whose ranges are calibrated on the first texts."""
    student = copy.deepcopy(model).eval()
    for module in student.modules():  # the student learns to reproduce the teacher's deterministic outputs through
        if isinstance(module, nn.Dropout):  # int8; dropout noise on top only slows that down
            module.p = 0.0
    batches = [dict(tokenizer(texts[i:i + config.batch_size], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt")) for i in range(0, min(len(texts), config.calib_batches * config.batch_size), config.batch_size)]
    try:
        insert_fake_quant(student, batches, config.activation_type or "uint8", bool(config.reduce_range), config.percentile)
    except ValueError as err:
        raise _unsupported(model, err) from err
    return student


def _train(student: nn.Module, model: nn.Module, tokenizer, texts: list[str], labels: list[int] | None,
           config: QATConfig, max_length: int) -> tuple[nn.Module, dict[str, float]]:
    """Distil the float `model` into the fake-quantized `student`; returns it and how far its scales moved."""
    from edge_compress.compress.distill import DistillConfig, distill

    length = f"{config.max_steps} steps" if config.max_steps > 0 else f"{config.epochs:g} epochs"
    info(f"QAT: {len(activation_quantizers(student))} learned activation ranges, distilling for {length} on {len(texts)} texts")
    encoded = tokenizer(texts, truncation=True, max_length=max_length)
    rows = [{"input_ids": i, "attention_mask": m} for i, m in zip(encoded["input_ids"], encoded["attention_mask"])]
    if labels is not None:
        for row, label in zip(rows, labels):
            row["labels"] = label
    distill_config = DistillConfig(epochs=config.epochs, max_steps=config.max_steps, learning_rate=config.learning_rate,
                                   batch_size=config.batch_size, temperature=config.temperature,
                                   label_weight=config.label_weight if labels is not None else 0.0, seed=config.seed)
    initial = _scales(student)
    frozen = [p.requires_grad for p in model.parameters()]  # distill() freezes its teacher; give it back as it came
    student.requires_grad_(True).train()
    try:
        student = distill(student, model, rows, distill_config, tokenizer)
    finally:
        for param, flag in zip(model.parameters(), frozen):
            param.requires_grad_(flag)
    change = (_scales(student) - initial).abs() / initial
    return student, {"scales": len(initial), "mean_relative_change": float(change.mean()), "max_relative_change": float(change.max())}


def _unsupported(model: nn.Module, err: ValueError) -> CompressError:
    return CompressError(f"QAT cannot quantize this {type(model).__name__}: {err}",
                         "use a model built from nn.Linear layers (BERT, RoBERTa, DistilBERT, MiniLM, ...), or drop qat: "
                         "and use the static/dynamic int8 variants")


def _scales(model: nn.Module) -> torch.Tensor:
    return torch.tensor([q.onnx_params()[0] for q in activation_quantizers(model)])
