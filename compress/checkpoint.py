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
from edge_compress.compress.console import warn
from edge_compress.compress.errors import CompressError
from edge_compress.compress.tasks import Task
from huggingface_hub.errors import StrictDataclassFieldValidationError
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
# transformers 5 builds an empty tokenizer (special tokens only) for a folder with none of these, instead of failing
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model",
                   "sentencepiece.bpe.model")


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


def looks_like_path(source: str) -> bool:
    """True when `source` cannot be a hub id, so it must be a local folder: it starts with `.`, `/` or `~`, has a
    backslash or more than one `/`, its first component is an existing folder (`runs/bert` with `runs/` here), or
    the hub would reject it as a repo id.  Such a string that does not exist is a mistyped path, not a download."""
    if source.startswith((".", "/", "~")) or "\\" in source or source.count("/") > 1:
        return True
    if "/" in source and Path(source.split("/")[0]).is_dir():
        return True
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(source)
    except HFValidationError:
        return True
    return False


def _missing_folder(path: Path) -> CompressError:
    import difflib

    parent = path.parent if path.parent.is_dir() else None
    near = difflib.get_close_matches(path.name, [p.name for p in parent.iterdir() if p.is_dir()], n=1) if parent else []
    hint = f"did you mean {parent / near[0]}? " if near else ""
    return CompressError(f"checkpoint folder not found: {path}",
                         f"{hint}pass the folder that holds config.json and the weights (a hub id looks like org/name)")


def _check_remote_code(path: Path, trust_remote_code: bool) -> None:
    """Refuse a checkpoint whose architecture exists only as code shipped with it, before transformers prompts."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    config = json.loads((path / "config.json").read_text())
    if trust_remote_code or not config.get("auto_map") or config.get("model_type") in CONFIG_MAPPING_NAMES:
        return
    modules = sorted({str(ref).split(".")[0] + ".py" for ref in config["auto_map"].values() if isinstance(ref, str)})
    raise CompressError(f"{path} is a '{config.get('model_type')}' model whose code ships with the checkpoint "
                        f"({', '.join(modules) or 'auto_map in config.json'}); compress does not run such code unless asked",
                        "read that code; if you trust it, pass --trust-remote-code (compress run) or trust_remote_code=True (Python API)")


def load_config(source: str, trust_remote_code: bool = False) -> PretrainedConfig:
    path = Path(source).expanduser()
    if not path.exists() and looks_like_path(source):
        raise _missing_folder(path)
    if path.exists():
        _check_folder(path)
        _check_remote_code(path, trust_remote_code)
    try:
        return AutoConfig.from_pretrained(str(path) if path.exists() else source, trust_remote_code=trust_remote_code)
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise CompressError(f"{source} needs code shipped with the checkpoint, which compress does not run unless asked",
                                "if you trust its author, pass --trust-remote-code (compress run)") from err
        raise CompressError(f"unknown model architecture in {source}: {err}".splitlines()[0],
                            "use a model type transformers knows (bert, distilbert, roberta, gpt2, ...) or upgrade transformers") from err
    except StrictDataclassFieldValidationError as err:  # transformers 5 configs check each field's type
        raise CompressError(f"{source}: config.json is invalid: {' '.join(str(err).split())}",
                            "give that field a value of the type named (or remove it to take the architecture's default) "
                            "and save the checkpoint again") from err
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
        if path.is_dir() and not any((path / name).exists() for name in TOKENIZER_FILES):
            raise FileNotFoundError(f"none of {', '.join(TOKENIZER_FILES)}")
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
        if _pickle_only(path):
            raise CompressError(f"{source} holds its weights only as a pickle (pytorch_model.bin) that cannot be read safely: "
                                "it contains Python objects, not just tensors, and unpickling those can run any code",
                                "convert it where you trust the file: AutoModelForSequenceClassification.from_pretrained(folder, "
                                "weights_only=False).save_pretrained(folder) writes model.safetensors (or torch.save the "
                                "state_dict only)") from err
        raise CompressError(f"could not load the weights of {source}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
                            "the weights file may be truncated or corrupt: copy it again from the original checkpoint") from err
    if info.get("missing_keys"):
        warn(f"{source}: {len(info['missing_keys'])} weights were not in the checkpoint and are random "
             f"(first: {info['missing_keys'][0]}); is this really a fine-tuned {task.name} model?")
    model.eval()
    _check_finite(model, source)
    _check_vocabulary(model, tokenizer, source)
    _match_tokenizer_inputs(model, tokenizer)
    task.prepare(model, tokenizer)
    return Checkpoint(model, tokenizer, where, weights_size(path) if path.exists() else _param_bytes(model))


def _pickle_only(path: Path) -> bool:
    return path.is_dir() and not any(path.glob("*.safetensors")) and any(path.glob("*.bin"))


def _check_vocabulary(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, source: str) -> None:
    """Token ids past the embedding table index out of range in the baseline (an IndexError deep in torch).
    The base vocabulary and the pad id are checked; added special tokens beyond it (some chat tokenizers carry
    tokens the model never sees) only warn."""
    embedding = model.get_input_embeddings()
    rows = getattr(embedding, "num_embeddings", None)
    if rows is None:
        return
    base = tokenizer.vocab_size
    if base > rows or (tokenizer.pad_token_id is not None and tokenizer.pad_token_id >= rows):
        raise CompressError(f"the tokenizer of {source} has {base} tokens (pad id {tokenizer.pad_token_id}) but the model's "
                            f"embedding has only {rows} rows, so token ids {rows} and up would index past it",
                            "save the tokenizer the model was trained with into the checkpoint (tokenizer.save_pretrained), "
                            "or call model.resize_token_embeddings(len(tokenizer)) and fine-tune again")
    if len(tokenizer) > rows:
        warn(f"the tokenizer of {source} has {len(tokenizer) - rows} added tokens past the model's {rows} embedding rows; "
             "texts containing them would fail")


def check_max_length(config: PretrainedConfig, max_length: int, explicit: bool) -> int:
    """`validate.max_length` against the model's position table (checked before any slow step: past it the
    position embedding lookup fails).  The default is lowered to the limit with a note; a value the user set is an error."""
    limit = position_limit(config)
    if limit is None or max_length <= limit:
        return max_length
    if explicit:
        raise CompressError(f"validate.max_length is {max_length} but the model has only {limit} positions",
                            f"set validate.max_length to at most {limit} in the recipe")
    from edge_compress.compress.console import info

    info(f"the model has {limit} positions: texts are truncated to {limit} tokens (validate.max_length)")
    return limit


# Architectures whose position ids start after the padding index (RoBERTa's scheme), so padding_idx + 1 rows are unusable.
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert", "longformer", "data2vec-text", "xmod", "roberta-prelayernorm",
                     "ibert", "mpnet", "xlm-roberta-xl", "bart", "mbart"}


def position_limit(config: PretrainedConfig) -> int | None:
    """Longest sequence the model's learned position table covers, or None (rotary/relative positions: no table)."""
    if getattr(config, "position_embedding_type", "absolute") not in ("absolute", None):
        return None
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if not positions or getattr(config, "rope_theta", None) is not None or getattr(config, "rope_scaling", None):
        return None
    if config.model_type in _OFFSET_POSITIONS:
        positions -= (config.pad_token_id if config.pad_token_id is not None else 1) + 1
    return positions


def _match_tokenizer_inputs(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Drop tokenizer outputs the model does not take (e.g. token_type_ids for DistilBERT), so every
    consumer -- PyTorch, the exported graph, calibration -- sees the same inputs."""
    accepted = inspect.signature(model.forward).parameters
    tokenizer.model_input_names = [name for name in tokenizer.model_input_names if name in accepted]


def _load_pruned(where: str) -> PreTrainedModel:
    """Per-layer FFN widths cannot be expressed by transformers' configs; compress.prune restores them."""
    from edge_compress.compress.prune import load_pruned

    return load_pruned(where)


def _param_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.state_dict().values())


def _check_finite(model: torch.nn.Module, source: str) -> None:
    bad = [name for name, p in model.state_dict().items() if p.is_floating_point() and not torch.isfinite(p).all()]
    if bad:
        raise CompressError(f"{source} has NaN or infinite weights in {len(bad)} tensors (first: {bad[0]})",
                            "the checkpoint is broken: re-export it from training (check for a diverged run)")
