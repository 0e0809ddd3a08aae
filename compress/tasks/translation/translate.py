"""Translate with a compressed model: `compress generate OUT "source sentence"` on a translation run or variant folder.

Plain onnxruntime sessions (runner.OnnxSeq2Seq) and the evaluation's own decoding loop (generate.py), with
the decoding settings the variant folder's config and generation config say, so the command translates
exactly as the report scored.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from edge_compress.compress.errors import CompressError
from edge_compress.export.seq2seq import ENCODER_FILE


def is_translation(path: Path) -> bool:
    """A translation variant folder, or a `compress run` OUT folder of a translation run."""
    if (path / ENCODER_FILE).exists():
        return True
    report = path / "report.json"
    return report.exists() and json.loads(report.read_text()).get("task") == "translation"


def translate(path: Path | str, source: str, max_new_tokens: int = 128, threads: int | None = None,
              num_beams: int | None = None) -> str:
    """`source` translated by the variant; `num_beams` None decodes as the run scored (its translation.num_beams and
    length_penalty, from the manifest), 1 is greedy, more is beam search in the same ORT loop."""
    from edge_compress.compress.commands.generate import resolve_variant
    from edge_compress.compress.tasks.translation.generate import decoding_from_config, translate_ids
    from edge_compress.compress.tasks.translation.runner import OnnxSeq2Seq
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    folder = Path(path)
    if not (folder / ENCODER_FILE).exists():
        folder = resolve_variant(folder, "translation")
    if not source.strip():
        raise CompressError("the source sentence is empty", "give a sentence to translate")
    if max_new_tokens < 1 or (num_beams is not None and num_beams < 1) or (threads is not None and threads < 1):
        raise CompressError("--max-new-tokens, --beams and --threads must be at least 1", "pass positive numbers")
    run = _run_translation_settings(folder)
    config = AutoConfig.from_pretrained(folder)
    generation = GenerationConfig.from_pretrained(folder) if (folder / "generation_config.json").exists() else None
    decoding = decoding_from_config(config, generation, max_new_tokens, num_beams or run.get("num_beams") or 1,
                                    run.get("length_penalty"))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    source = (run.get("source_prefix") or "") + source
    limit = getattr(config, "max_position_embeddings", None)
    encoded = tokenizer([source], truncation=bool(limit), max_length=limit, return_tensors="np")
    runner = OnnxSeq2Seq(folder, threads or min(4, os.cpu_count() or 1))
    ids = translate_ids(runner, encoded["input_ids"].astype("int64"), encoded["attention_mask"].astype("int64"), decoding)
    return tokenizer.decode(ids[0], skip_special_tokens=True).strip()


def _run_translation_settings(folder: Path) -> dict:
    """The run's `translation:` settings (source_prefix: T5's task prefix; num_beams, length_penalty: how the report
    decoded), from the variant's manifest.json; {} without one."""
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return {}
    recipe = json.loads(manifest.read_text()).get("recipe") or {}
    return recipe.get("translation") or {}
