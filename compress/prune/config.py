"""`PruneConfig`: what to prune and how; validated on construction so mistakes surface early.

Targets (any combination, at least one):

* ``head_fraction`` / ``ffn_fraction``: fraction of all attention heads / FFN neurons to *remove*,
  ranked globally, so layers end up with different sizes. ``0.0`` removes none of that kind.
* ``flops_budget`` / ``params_budget``: fraction of the whole model's FLOPs / parameters to *keep*
  (see `compress.prune.costs` for the formula). The search keeps the most important heads and
  neurons that fit.

With several targets, all hold: fractions cap how many heads/neurons survive, budgets cap cost.

For grouped-query decoders (Llama, Mistral, Qwen, Gemma) a "head" is a KV group: one KV head and the
query heads that read it.

The recipe's `prune:` section embeds this class (`compress.recipe.PruneSpec` adds only the stage's batch size),
so every default here is the one `compress run`, `compress prune` and the library use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from edge_compress.compress.prune.errors import PruneError


@dataclass(frozen=True)
class PruneConfig:
    """Settings of one `prune` call.

    ``prune_layers`` lets the search drop whole layers (attention + FFN); otherwise every layer keeps
    at least one head and one neuron, because a zero-width attention or FFN cannot be expressed by
    the transformers modules (nor exported to ONNX). ``mask_rearrange`` and ``mask_tuning`` are the
    retraining-free refinements of Kwon et al. 2022; ``seq_len`` is the sequence length the FLOPs
    estimate assumes. ``uniform_heads`` keeps the same number of heads in every layer (``head_fraction``
    then removes at least that fraction); ``None`` means on for causal LMs, whose KV cache must have
    one shape across layers for the ONNX exporter and onnxruntime-genai, which size it from the config,
    and off otherwise.
    """

    head_fraction: float | None = None
    ffn_fraction: float | None = None
    flops_budget: float | None = None
    params_budget: float | None = None
    prune_layers: bool = False
    uniform_heads: bool | None = None
    method: Literal["fisher"] = "fisher"
    mask_rearrange: bool = True
    mask_tuning: bool = True
    num_calib_batches: int = 16  # batches of calibration texts scored for importance (Kwon et al. use 2048 texts)
    seq_len: int = 128

    def __post_init__(self) -> None:
        targets = (self.head_fraction, self.ffn_fraction, self.flops_budget, self.params_budget)
        if all(t is None for t in targets):
            raise PruneError(
                "PruneConfig has no target: set head_fraction, ffn_fraction (fractions to remove) "
                "and/or flops_budget, params_budget (fractions to keep)."
            )
        for name in ("head_fraction", "ffn_fraction"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise PruneError(
                    f"{name}={value} must be in [0, 1): it is the fraction to remove, and removing "
                    "all of them would delete the model's attention/FFN. Use e.g. 0.5."
                )
        for name in ("flops_budget", "params_budget"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value <= 1.0:
                raise PruneError(
                    f"{name}={value} must be in (0, 1]: it is the fraction of the model to keep "
                    "(a budget of 0 would prune everything). Use e.g. 0.6."
                )
        if self.method != "fisher":
            raise PruneError(f"method={self.method!r} is not supported; use method='fisher'.")
        if self.num_calib_batches < 1:
            raise PruneError(f"num_calib_batches={self.num_calib_batches} must be at least 1.")
        if self.seq_len < 1:
            raise PruneError(f"seq_len={self.seq_len} must be at least 1.")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, for reports and caching keys."""
        return asdict(self)
