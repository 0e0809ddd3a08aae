"""Causal language modelling: perplexity (primary, lower is better), agreement with the float model, speed.

Metrics are computed in `compress.tasks.causal_lm.evaluate`, because they need the model itself
(sliding windows, generation, timing), not one array of logits per text.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from edge_compress.compress.console import warn
from edge_compress.compress.errors import CompressError
from edge_compress.compress.tasks.base import Scored, Task, TaskData
from transformers import AutoModelForCausalLM, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES


class CausalLM(Task):
    name = "causal-lm"
    primary_metric = "perplexity"
    higher_is_better = False
    auto_model = AutoModelForCausalLM
    # Variants are timed by generation through our ONNX Runtime loop (export.ort_lm) on the CPU; GPU runners for LMs are not built
    # yet. mobile: the ORT-format package (a KV-cache graph with pinned shapes would not generate, so no fixed shapes).
    targets = frozenset({"cpu", "mobile"})
    fixed_shapes = False
    # prune: KV groups and gated-FFN neurons (compress.prune's decoder specs), scored by the LM's next-token loss; the
    # pruned model runs the same variants (a `pruned-` line). distill: token-level KL from the float model.
    # QAT is not among them: its learned ranges are matched to the export by each Linear's weight, and the LM export packs
    # q/k/v and gate/up into one MatMul each (recipe.check says so).
    torch_stages = frozenset({"prune", "distill"})
    # No check_parity override: the fp32 export is judged by its metrics against PyTorch (next-token agreement, greedy
    # exact match, perplexity), since a logit tolerance that holds for a 2-layer test model does not for a 262k vocabulary.

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
        from edge_compress.compress.tasks.causal_lm.evaluate import lm_metrics

        return lm_metrics(outputs, baseline_outputs)

    # --- lifecycle steps ------------------------------------------------------------------------------------------

    def load_data(self, options: Any, ckpt: Any, recipe: Any) -> TaskData:
        """Eval text; calibration text = --calib-data, else train.* beside the eval file, else the eval text (warned).

        `train` (what torch stages such as decoder pruning score on) is every calibration text, unlabelled.
        """
        from edge_compress.compress.data import TextData, sibling_train_file
        from edge_compress.compress.tasks.causal_lm.data import load_lm_text

        spec = recipe.lm
        text = load_lm_text(options.eval_data, options.text_column)
        source = options.calib_data or sibling_train_file(options.eval_data)
        if source is None:
            texts, source = list(text.texts), "eval text"
            if spec.int8_static or spec.smoothquant_alpha is not None:
                warn("no calibration text given: calibrating static int8 on the eval text")
        else:
            texts = load_lm_text(source).texts
        calib = list(texts)
        random.Random(recipe.seed).shuffle(calib)
        calib = calib[:spec.calib_samples] if spec.int8_static or spec.smoothquant_alpha is not None else []
        return TaskData(text.texts, None, calib, train=TextData(texts, None, source, "text", None),
                        sections={"eval": {"source": text.source, "samples": len(text.texts), "context": spec.context,
                                           "stride": min(spec.stride, spec.context), "prompts": spec.prompts,
                                           "prompt_tokens": spec.prompt_tokens, "new_tokens": spec.new_tokens},
                                  "calibration": {"source": source if calib else "none (static int8 and SmoothQuant disabled)",
                                                  "samples": len(calib), "decode_steps": spec.calib_decode_steps}})

    def evaluation(self, ckpt: Any, data: TaskData, recipe: Any):
        from edge_compress.compress.tasks.causal_lm.evaluate import LMEvaluation

        config = ckpt.model.config
        positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
        evaluation = LMEvaluation(data.eval_texts, ckpt.tokenizer, recipe.lm, positions)
        data.sections["eval"].update(tokens=len(evaluation.ids), bos_per_window=len(evaluation.prefix) > 0,
                                     prompts=len(evaluation.prompts))
        return evaluation

    def export(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path, opset: int | None) -> Path:
        from edge_compress.compress.tasks.causal_lm.export import export_causal_lm

        return export_causal_lm(model, tokenizer, folder, opset)

    def open_torch(self, model: PreTrainedModel) -> Any:
        return model

    def open_onnx(self, path: Path, threads: int, target: Any = None, precision: str = "fp32", ctx: Any = None) -> Any:
        from edge_compress.export.ort_lm import load_ort_lm

        return load_ort_lm(path.parent, threads)

    def complete_folder(self, folder: Path, model: PreTrainedModel) -> None:
        """config and generation config beside model.onnx: `compress generate` and ExportedModel.from_pretrained(folder) work."""
        model.config.save_pretrained(folder)
        model.generation_config.save_pretrained(folder)

    def training_texts(self, source: str, config: PretrainedConfig, text_column: str | None,
                       label_column: str | None) -> Any:
        """Plain text (a .txt file's paragraphs or lines, or rows' text field): the next-token loss needs no labels."""
        from edge_compress.compress.data import TextData
        from edge_compress.compress.tasks.causal_lm.data import load_lm_text

        text = load_lm_text(source, text_column)
        return TextData(text.texts, None, text.source, "text", None)

    def prune_batches(self, ckpt: Any, data: Any, recipe: Any) -> list[dict[str, Any]]:
        """Windows of `lm.context` tokens (at most the model's positions) of the calibration text, `prune.batch_size`
        per batch (no padding)."""
        from edge_compress.compress.tasks.causal_lm.calibration import prune_windows

        config = ckpt.model.config
        positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
        return prune_windows(ckpt.tokenizer, data.texts, min(recipe.lm.context, positions or recipe.lm.context),
                             recipe.prune.batch_size, recipe.prune.num_calib_batches)

    def package_files(self, ctx: Any, variant: Path, out: Path) -> dict[str, str]:
        """genai_config.json for the package's ORT-format decoder, so `onnxruntime_genai.Model(package)` generates with
        the graph this run validated (export.genai); a layout genai cannot feed is warned about, the package stays."""
        from edge_compress.export.genai import CONFIG_FILE, GenaiError, write_genai_config
        from edge_compress.export.onnx_export import MODEL_FILE

        models = sorted(out.glob("*.ort"))
        if not models:
            return {}
        generation = variant / "generation_config.json"
        try:
            write_genai_config(variant / MODEL_FILE, json.loads((variant / "config.json").read_text()),
                               json.loads(generation.read_text()) if generation.exists() else None, folder=out,
                               filename=models[0].name)
        except GenaiError as err:
            warn(f"package/ has no {CONFIG_FILE}, so onnxruntime-genai cannot load it: {err.message} (fix: {err.fix})")
            return {}
        return {"onnxruntime-genai": CONFIG_FILE}

    def check_package_files(self, ctx: Any, out: Path, files: dict[str, str]) -> dict[str, Any]:
        """onnxruntime-genai loads the package and generates, greedily, the same tokens as ONNX Runtime on the packaged
        file (our loop, `export.ort_lm`) for the first eval prompts; not checked when onnxruntime-genai is not installed."""
        if "onnxruntime-genai" not in files:
            return {}
        try:
            import onnxruntime_genai as og
        except ImportError:
            return {"onnxruntime_genai": {"prompts": 0, "note": "onnxruntime-genai is not installed (pip install -e "
                                                                "'.[genai]'): not checked"}}
        import numpy as np
        import torch
        from edge_compress.export.ort_lm import OnnxCausalLM

        new_tokens, prompts = ctx.recipe.lm.new_tokens, [p.tolist() for p in ctx.evaluation.prompts[:2]]
        config = json.loads((out / files["onnxruntime-genai"]).read_text())["model"]
        ours = OnnxCausalLM(out / config["decoder"]["filename"], ctx.threads, config["eos_token_id"])
        model, same = og.Model(str(out)), 0
        for prompt in prompts:
            expected = ours.generate(torch.tensor([prompt]), max_new_tokens=new_tokens)[0].tolist()
            if expected[-1] in ours.eos and len(expected) < len(prompt) + new_tokens:
                expected = expected[:-1]  # genai stops at an EOS before max_length without keeping it
            params = og.GeneratorParams(model)
            params.set_search_options(max_length=len(prompt) + new_tokens, do_sample=False)
            generator = og.Generator(model, params)
            generator.append_tokens(np.array([prompt], dtype=np.int32))
            while not generator.is_done():
                generator.generate_next_token()
            same += [int(t) for t in generator.get_sequence(0)] == expected
        return {"onnxruntime_genai": {"prompts": len(prompts), "new_tokens": new_tokens, "same_greedy_tokens": same}}

    def package_check(self, ctx: Any, path: Path, baseline: Scored) -> dict[str, Any]:
        """Perplexity and next-token agreement of the ORT-format file on a plain session (untimed: generation on a device
        goes through its LLM runtime, not this host's loop)."""
        from edge_compress.export.ort_lm import OnnxCausalLM

        scored = ctx.evaluation.score(OnnxCausalLM(path, ctx.threads), f"package/{path.name}", generate=False)
        metrics, _ = ctx.evaluation.metrics(scored, baseline)
        return {"metrics": metrics, "open": None}
