"""Causal language modelling: perplexity (primary, lower is better), agreement with the float model, speed.

Metrics are computed in `compress.tasks.causal_lm.evaluate`, because they need the model itself
(sliding windows, generation, timing), not one array of logits per text.
"""
from __future__ import annotations

from typing import Any

from transformers import AutoModelForCausalLM, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from compress.errors import CompressError
from compress.tasks.base import Task


class CausalLM(Task):
    name = "causal-lm"
    export_task = "text-generation-with-past"
    ort_model_class = "ORTModelForCausalLM"
    primary_metric = "perplexity"
    higher_is_better = False
    auto_model = AutoModelForCausalLM

    def check_architecture(self, config: PretrainedConfig, source: str) -> None:
        if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            raise CompressError(f"{source} is a '{config.model_type}' model, which transformers cannot use as a causal LM",
                                "use a decoder-only checkpoint (GPT-2, Llama, Gemma, Qwen, ...)")

    def prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        # Batched generation and timing pad prompts on the left; generate() needs a pad id.
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise CompressError("the tokenizer has neither a pad nor an eos token, so prompts cannot be batched",
                                    "set tokenizer.pad_token (e.g. tokenizer.add_special_tokens({'pad_token': '<pad>'})) "
                                    "and save the tokenizer again")
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        if model.generation_config.pad_token_id is None:
            model.generation_config.pad_token_id = tokenizer.pad_token_id

    def metrics(self, outputs: Any, references: Any, baseline_outputs: Any | None) -> dict[str, float]:
        """`outputs`/`baseline_outputs` are `compress.tasks.causal_lm.evaluate.LMOutputs`; `references` is unused."""
        from compress.tasks.causal_lm.evaluate import lm_metrics

        return lm_metrics(outputs, baseline_outputs)
