"""Structured pruning that physically shrinks transformers: attention heads, FFN neurons, layers.

Encoders and GPT-2 (classifiers or LMs) and grouped-query decoder LMs (Llama, Mistral, Qwen2/3, Gemma 1/2/3,
Gemma 3's text decoder), where a head unit is a KV head with its query heads and gated-MLP neurons go with
their gate, up and down weights. Causal LMs are scored by next-token loss on plain calibration text.

    from edge_compress.compress.prune import PruneConfig, prune, load_pruned
    result = prune(model, PruneConfig(flops_budget=0.6), calib_batches)  # model shrinks in place
    model.save_pretrained(folder)          # safetensors; shapes recorded in config.json
    model = load_pruned(folder)

Retraining-free method of Kwon et al. 2022: Fisher importance of head/neuron masks, mask search
under FLOPs/parameter limits, mask rearrangement, least-squares mask tuning folded into the weights.
`apply_plan` removes an explicit `PrunePlan` instead. Recover accuracy with `compress.distill`.
"""

from importlib import import_module
from typing import Any

# Public name -> submodule, imported on first use: `compress.prune.config` (which the recipe embeds) is then
# importable without torch, so `compress --help` stays fast.
_EXPORTS = {"apply_plan": "api", "check_prunable": "api", "prune": "api", "PruneConfig": "config", "PruneError": "errors",
            "load_pruned": "loading", "PrunePlan": "plan", "PruneResult": "result", "SPECS": "specs", "ArchSpec": "specs"}
__all__ = ["SPECS", "ArchSpec", "PruneConfig", "PruneError", "PrunePlan", "PruneResult", "apply_plan", "check_prunable",
           "load_pruned", "prune"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'edge_compress.compress.prune' has no attribute {name!r}")
    return getattr(import_module(f"edge_compress.compress.prune.{_EXPORTS[name]}"), name)
