"""Load a fine-tuned checkpoint safely, or say exactly what is wrong with it.

Safe by default: safetensors are preferred, `.bin` files are only read through
transformers' `weights_only` loader, and `trust_remote_code` is off unless the
user asks for it.
"""
from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from compress.console import warn
from compress.errors import CompressError
from compress.tasks import Task

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


@dataclass
class Checkpoint:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    source: str
    weights_bytes: int


def _check_folder(path: Path) -> None:
    if not path.exists():
        raise CompressError(f"checkpoint folder not found: {path}", "pass the folder that holds config.json and the weights")
    if not path.is_dir():
        raise CompressError(f"{path} is a file, expected a checkpoint folder", "pass the folder that holds config.json and the weights")
    config = path / "config.json"
    if not config.exists():
        raise CompressError(f"{path} has no config.json, so it is not a Hugging Face checkpoint",
                            "save the model with model.save_pretrained(folder)")
    try:
        json.loads(config.read_text())
    except json.JSONDecodeError as err:
        raise CompressError(f"{config} is not valid JSON ({err.msg}, line {err.lineno})", "restore config.json from the original checkpoint") from err
    if not any((path / name).exists() for name in WEIGHT_FILES):
        raise CompressError(f"{path} has no weights ({' or '.join(WEIGHT_FILES[::2])})", "save the model with model.save_pretrained(folder)")


def weights_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.suffix in (".safetensors", ".bin") and f.is_file())


def load_config(source: str, trust_remote_code: bool = False) -> PretrainedConfig:
    path = Path(source).expanduser()
    if path.exists() or source.startswith((".", "/", "~")):
        _check_folder(path)
    try:
        return AutoConfig.from_pretrained(str(path) if path.exists() else source, trust_remote_code=trust_remote_code)
    except ValueError as err:
        raise CompressError(f"unknown model architecture in {source}: {err}".splitlines()[0],
                            "use a model type transformers knows (bert, distilbert, roberta, gpt2, ...) or upgrade transformers") from err
    except OSError as err:
        raise CompressError(f"'{source}' is not a local folder and could not be fetched from the hub: {err}".splitlines()[0],
                            "pass a local checkpoint folder, or check the model id and your network") from err


def load_checkpoint(source: str, task: Task, trust_remote_code: bool = False) -> Checkpoint:
    """Config, tokenizer and fp32 weights, each failure turned into a fix the user can apply."""
    config = load_config(source, trust_remote_code)
    path = Path(source).expanduser()
    where = str(path) if path.exists() else source
    task.check_architecture(config, source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=trust_remote_code)
    except Exception as err:
        raise CompressError(f"no usable tokenizer in {source} ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})",
                            "save the tokenizer next to the model: tokenizer.save_pretrained(folder)") from err
    try:
        if (getattr(config, "edge_compress", None) or {}).get("ffn_sizes"):
            model, info = _load_pruned(where), {}
        else:
            model, info = task.auto_model.from_pretrained(where, trust_remote_code=trust_remote_code, dtype=torch.float32,
                                                          output_loading_info=True)
    except CompressError:
        raise
    except Exception as err:
        raise CompressError(f"could not load the weights of {source}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
                            "the weights file may be truncated or corrupt: copy it again from the original checkpoint") from err
    if info.get("missing_keys"):
        warn(f"{source}: {len(info['missing_keys'])} weights were not in the checkpoint and are random "
             f"(first: {info['missing_keys'][0]}); is this really a fine-tuned {task.name} model?")
    model.eval()
    _check_finite(model, source)
    _match_tokenizer_inputs(model, tokenizer)
    task.prepare(model, tokenizer)
    return Checkpoint(model, tokenizer, where, weights_size(path) if path.exists() else _param_bytes(model))


def _match_tokenizer_inputs(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Drop tokenizer outputs the model does not take (e.g. token_type_ids for DistilBERT), so every
    consumer -- PyTorch, the exported graph, calibration -- sees the same inputs."""
    accepted = inspect.signature(model.forward).parameters
    tokenizer.model_input_names = [name for name in tokenizer.model_input_names if name in accepted]


def _load_pruned(where: str) -> PreTrainedModel:
    """Per-layer FFN widths cannot be expressed by transformers' configs; compress.prune restores them."""
    from compress.prune import load_pruned

    return load_pruned(where)


def _param_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.state_dict().values())


def _check_finite(model: torch.nn.Module, source: str) -> None:
    bad = [name for name, p in model.state_dict().items() if p.is_floating_point() and not torch.isfinite(p).all()]
    if bad:
        raise CompressError(f"{source} has NaN or infinite weights in {len(bad)} tensors (first: {bad[0]})",
                            "the checkpoint is broken: re-export it from training (check for a diverged run)")
