"""`load_pruned`: reload a saved pruned model whose shapes transformers' config cannot express.

Builds the model from its config (``num_hidden_layers`` shapes the layers), cuts the FFNs to
``config.edge_compress["ffn_sizes"]`` and the attention to ``config.edge_compress["heads"]`` heads
(classic attention) or ``["kv_heads"]`` KV heads (grouped-query decoders) per layer, then loads the
safetensors weights. transformers' configs hold one head count and one FFN width for all layers
(no per-layer form exists for these classes, and transformers 5 no longer reads ``pruned_heads``),
so this is the only way back for non-uniform layers and for any head-pruned classic attention.
Folders without recorded sizes load through plain ``from_pretrained``.
"""

from __future__ import annotations

import json
from pathlib import Path

import transformers
from edge_compress.compress.prune.errors import PruneError
from edge_compress.compress.prune.physical import restore_sizes
from edge_compress.compress.prune.specs import spec_for
from safetensors.torch import load_file
from transformers import AutoConfig, PreTrainedModel


def load_pruned(folder: str | Path, model_class: type[PreTrainedModel] | None = None) -> PreTrainedModel:
    """Load `folder` (written by ``save_pretrained``) as the class in its config, or `model_class`."""
    folder = Path(folder)
    config = AutoConfig.from_pretrained(folder)
    cls = model_class or _class_from_config(config)
    recorded = getattr(config, "edge_compress", None) or {}
    sizes = recorded.get("ffn_sizes")
    if sizes is None:
        return cls.from_pretrained(folder)
    model = cls(config)
    restore_sizes(model, spec_for(model), sizes, recorded.get("heads", recorded.get("kv_heads")))
    state = _renamed(_read_safetensors(folder), model)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    if unexpected or set(missing) - tied:
        raise PruneError(
            f"{folder} does not match its recorded shapes (missing {sorted(set(missing) - tied)}, "
            f"unexpected {sorted(unexpected)}); it was not saved from a model pruned by compress.prune."
        )
    model.tie_weights()
    return model.eval()


def _class_from_config(config) -> type[PreTrainedModel]:
    names = getattr(config, "architectures", None) or []
    if not names or not hasattr(transformers, names[0]):
        raise PruneError(f"config.json names no known model class ({names}); pass model_class=...")
    return getattr(transformers, names[0])


def _renamed(state: dict, model: PreTrainedModel) -> dict:
    """Checkpoint keys in the model's own naming.

    ``save_pretrained`` writes some classes under other names than their modules have (Gemma 3 multimodal:
    ``model.language_model.*`` is saved as ``language_model.model.*``) through transformers' reverse conversion, and
    that class's registered forward renamings do not map all of them back (transformers 5.24). So each of the model's
    own keys is passed through the same reverse conversion save_pretrained applies, which names it as saved, and the
    checkpoint is read through that inverse; keys it does not name (checkpoints saved with legacy names by other
    versions) get the forward renamings `from_pretrained` applies (transformers.core_model_loading).
    """
    from transformers.conversion_mapping import extract_weight_conversions_for_model
    from transformers.core_model_loading import WeightRenaming, apply_renamings, revert_weight_conversion

    as_saved = {}
    for key, tensor in model.state_dict().items():
        saved = list(revert_weight_conversion(model, {key: tensor}))
        if len(saved) == 1 and saved[0] != key:
            as_saved[saved[0]] = key
    renamings = [t for t in extract_weight_conversions_for_model(model) or [] if isinstance(t, WeightRenaming)]
    return {as_saved[key] if key in as_saved else apply_renamings(key, renamings) if renamings else key: value
            for key, value in state.items()}


def _read_safetensors(folder: Path) -> dict:
    index = folder / "model.safetensors.index.json"
    if index.exists():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return {k: v for shard in shards for k, v in load_file(folder / shard).items()}
    single = folder / "model.safetensors"
    if not single.exists():
        raise PruneError(f"No safetensors weights in {folder}; save with model.save_pretrained(folder).")
    return load_file(single)
