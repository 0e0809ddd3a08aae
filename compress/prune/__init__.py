"""Structured pruning that physically shrinks transformers: attention heads, FFN neurons, layers.

Encoders and GPT-2 (classifiers or LMs) and grouped-query decoder LMs (Llama, Mistral, Qwen2/3, Gemma 1/2/3,
Gemma 3's text decoder), where a head unit is a KV head with its query heads and gated-MLP neurons go with
their gate, up and down weights. Causal LMs are scored by next-token loss on plain calibration text.

    from compress.prune import PruneConfig, prune, load_pruned
    result = prune(model, PruneConfig(flops_budget=0.6), calib_batches)  # model shrinks in place
    model.save_pretrained(folder)          # safetensors; shapes recorded in config.json
    model = load_pruned(folder)

Retraining-free method of Kwon et al. 2022: Fisher importance of head/neuron masks, mask search
under FLOPs/parameter limits, mask rearrangement, least-squares mask tuning folded into the weights.
`apply_plan` removes an explicit `PrunePlan` instead. Recover accuracy with `compress.distill`.
"""

from compress.prune.api import apply_plan, check_prunable, prune
from compress.prune.config import PruneConfig
from compress.prune.errors import PruneError
from compress.prune.loading import load_pruned
from compress.prune.plan import PrunePlan
from compress.prune.result import PruneResult
from compress.prune.specs import SPECS, ArchSpec

__all__ = [
    "SPECS",
    "ArchSpec",
    "PruneConfig",
    "PruneError",
    "PrunePlan",
    "PruneResult",
    "apply_plan",
    "check_prunable",
    "load_pruned",
    "prune",
]
