"""onnxruntime-genai on the project's decoder export: genai_config.json written from the graph, greedy tokens
equal to PyTorch's `generate(do_sample=False)`, and layouts genai cannot feed rejected with the mismatch named.

Tiny random decoders (hidden 32, 2 layers), initialised with a wide range so greedy choices are not near-ties.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from edge_compress.compress.prune import PrunePlan, apply_plan
from edge_compress.compress.tasks.causal_lm.export import export_causal_lm
from edge_compress.export.genai import CONFIG_FILE, GenaiError, genai_config, write_genai_config
from transformers import (
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

og = pytest.importorskip("onnxruntime_genai", reason="pip install -e '.[genai]'")
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matrices: one thread is fastest

VOCAB = 96
EOS = 2
DECODER = {"vocab_size": VOCAB, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
           "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "max_position_embeddings": 128,
           "bos_token_id": 1, "eos_token_id": EOS, "pad_token_id": 0, "initializer_range": 0.2}


def _tokenizer() -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<pad>": 0, "<s>": 1, "</s>": EOS, **{f"w{i}": i for i in range(3, VOCAB)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


MODELS = {
    "gpt2": lambda: GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=128,
                                               bos_token_id=1, eos_token_id=EOS, initializer_range=0.2)),
    "llama": lambda: LlamaForCausalLM(LlamaConfig(**DECODER)),
    "qwen2": lambda: Qwen2ForCausalLM(Qwen2Config(**DECODER)),
    "qwen3": lambda: Qwen3ForCausalLM(Qwen3Config(**DECODER)),
    "gemma3_text": lambda: Gemma3ForCausalLM(Gemma3TextConfig(**DECODER, sliding_window=4,
                                                              layer_types=["sliding_attention", "full_attention"])),
}
PROMPTS = [[5, 9, 17, 3, 40, 11], [7, 7, 30]]


def _build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS[name]().eval()


def _export(model: torch.nn.Module, folder: Path) -> Path:
    path = export_causal_lm(model, _tokenizer(), folder)
    model.config.save_pretrained(folder)
    return path


def _genai_tokens(folder: Path, prompt: list[int], max_length: int) -> list[int]:
    model = og.Model(str(folder))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=max_length, do_sample=False)
    generator = og.Generator(model, params)
    generator.append_tokens(np.array([prompt], dtype=np.int32))
    while not generator.is_done():
        generator.generate_next_token()
    return [int(t) for t in generator.get_sequence(0)]


def _torch_tokens(model: torch.nn.Module, prompt: list[int], max_length: int) -> list[int]:
    """Greedy tokens; a final EOS is dropped, as genai stops on EOS without appending it to the sequence."""
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_length=max_length, do_sample=False, pad_token_id=0)
    tokens = out[0].tolist()
    return tokens[:-1] if tokens[-1] == EOS and len(tokens) < max_length else tokens


def _write(folder: Path) -> dict:
    hf = json.loads((folder / "config.json").read_text())
    generation = json.loads((folder / "generation_config.json").read_text())
    write_genai_config(folder / "model.onnx", hf, generation)
    return json.loads((folder / CONFIG_FILE).read_text())


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if n not in ("gpt2", "llama") else [])
                                  for n in MODELS])
def test_genai_generates_the_same_greedy_tokens_as_pytorch(name, tmp_path):
    model = _build(name)
    _export(model, tmp_path)
    config = _write(tmp_path)
    decoder = config["model"]["decoder"]
    assert decoder["num_hidden_layers"] == 2 and decoder["head_size"] == 8
    assert decoder["num_key_value_heads"] == (4 if name == "gpt2" else 2)
    assert decoder["inputs"]["past_key_names"] == "past_key_values.layers.%d.keys"
    assert decoder["outputs"]["present_value_names"] == "cache.layers.%d.values"
    for prompt in PROMPTS:
        expected = _torch_tokens(model, prompt, 24)
        assert len(expected) > len(prompt) + 2  # it generated something to compare
        assert _genai_tokens(tmp_path, prompt, 24) == expected


def test_a_uniformly_pruned_llama_generates_in_genai(tmp_path):
    model = _build("llama")
    apply_plan(model, PrunePlan(heads={0: [1], 1: [0]}, neurons={0: [3, 4, 5], 1: list(range(10))}))
    _export(model, tmp_path)
    config = _write(tmp_path)
    assert config["model"]["decoder"]["num_key_value_heads"] == 1
    assert config["model"]["decoder"]["num_attention_heads"] == 2
    assert _genai_tokens(tmp_path, PROMPTS[0], 20) == _torch_tokens(model, PROMPTS[0], 20)


def _ort_greedy(path: Path, prompt: list[int], max_length: int) -> list[int]:
    """Greedy decoding with onnxruntime directly: the reference for quantized graphs, which PyTorch does not run."""
    import onnxruntime as ort

    return ort_greedy(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]), prompt, max_length, EOS)


def ort_greedy(session, prompt: list[int], max_length: int, eos: int) -> list[int]:
    """Greedy decoding on an ONNX Runtime session of a KV-cache decoder (plain onnxruntime, written out here)."""
    pasts = [i for i in session.get_inputs() if i.name.startswith("past_key_values")]
    cache = {i.name: np.zeros([1, i.shape[1], 0, i.shape[3]], np.float32) for i in pasts}
    tokens, step = list(prompt), list(prompt)
    while len(tokens) < max_length:
        feed = {"input_ids": np.array([step], np.int64), "attention_mask": np.ones((1, len(tokens)), np.int64),
                "position_ids": np.arange(len(tokens) - len(step), len(tokens), dtype=np.int64)[None], **cache}
        logits, *presents = session.run(None, feed)
        cache = {i.name: p for i, p in zip(pasts, presents)}
        step = [int(logits[0, -1].argmax())]
        if step[0] == eos:
            break
        tokens += step
    return tokens


@pytest.mark.parametrize("variant", ["int8-dynamic", "int4-weight-only"])
def test_quantized_llama_variants_generate_in_genai(variant, llama_export, tmp_path):
    from edge_compress.compress.quantize.lm import HeadSpec, quantize_dynamic_lm, quantize_weight_only
    from edge_compress.compress.quantize.presets import PRESETS

    path, hf = llama_export
    out = tmp_path / "model.onnx"
    if variant == "int8-dynamic":
        quantize_dynamic_lm(path, out, PRESETS["avx2"], HeadSpec())
    else:
        quantize_weight_only(path, out, 4, 32, HeadSpec(bits=4, block_size=32))
    ops = {node.op_type for node in onnx.load(str(out)).graph.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeMatMul", "MatMulNBits"}
    write_genai_config(out, hf, {"eos_token_id": EOS})
    for prompt in PROMPTS:
        assert _genai_tokens(tmp_path, prompt, 24) == _ort_greedy(out, prompt, 24)


def test_the_ort_format_copy_of_a_mobile_package_generates_in_genai(llama_export, tmp_path):
    from edge_compress.export.mobile import convert_to_ort

    path, hf = llama_export
    (ort_model,), _ = convert_to_ort([path], tmp_path)
    write_genai_config(path, hf, {"eos_token_id": EOS}, folder=tmp_path, filename=ort_model.name)
    assert not list(tmp_path.glob("*.onnx"))
    assert _genai_tokens(tmp_path, PROMPTS[0], 24) == _ort_greedy(path, PROMPTS[0], 24)


def _graph_with(path: Path, edit) -> Path:
    model = onnx.load(str(path))
    edit(model.graph)
    out = path.with_name("edited.onnx")
    onnx.save(model, str(out))
    return out


@pytest.fixture(scope="module")
def llama_export(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("llama")
    model = _build("llama")
    path = _export(model, folder)
    assert _ort_greedy(path, PROMPTS[0], 24) == _torch_tokens(model, PROMPTS[0], 24)  # the reference is right
    return path, json.loads((folder / "config.json").read_text())


def _set_dim(value, index: int, size: int) -> None:
    value.type.tensor_type.shape.dim[index].dim_value = size


@pytest.mark.parametrize("edit, match", [
    (lambda g: [_set_dim(i, 1, 1) for i in g.input if i.name.startswith("past_key_values.layers.0.")],
     r"(?s)KV heads per layer differ \(\[1, 2\]\).*uniform_heads=True"),
    (lambda g: g.input.extend([onnx.helper.make_tensor_value_info("cache_position", onnx.TensorProto.INT64, [1])]),
     "cache_position"),
    (lambda g: [g.input.remove(i) for i in list(g.input) if i.name.endswith("values")],
     "one tensor per layer holding key and value together"),
    (lambda g: g.input.remove(g.input[0]), "no input_ids"),
    (lambda g: [d.CopyFrom(onnx.TensorShapeProto.Dimension(dim_param="heads"))
                for d in [g.input[3].type.tensor_type.shape.dim[1]]], r"\(batch, kv_heads, sequence, head_size\)"),
])
def test_layouts_genai_cannot_feed_are_named(llama_export, edit, match):
    path, hf = llama_export
    with pytest.raises(GenaiError, match=match):
        genai_config(_graph_with(path, edit), hf)


def test_missing_eos_is_a_clear_error(llama_export):
    path, hf = llama_export
    with pytest.raises(GenaiError, match="eos_token_id"):
        genai_config(path, {k: v for k, v in hf.items() if k != "eos_token_id"}, {})


def test_config_tokens_come_from_the_generation_config(llama_export):
    path, hf = llama_export
    config = genai_config(path, copy.deepcopy(hf), {"eos_token_id": [2, 7], "do_sample": True, "top_k": 5})
    assert config["model"]["eos_token_id"] == [2, 7] and config["model"]["pad_token_id"] == 0
    assert config["search"]["do_sample"] is True and config["search"]["top_k"] == 5
    assert config["model"]["type"] == "llama" and config["model"]["vocab_size"] == VOCAB


def test_int4_keep_8bit_reaches_inside_packed_projections(llama_export, tmp_path):
    """ORT's fusions pack q/k/v and gate/up into one MatMul each; int4 with v_proj and up_proj kept at 8 bits unpacks
    them, so q, k and gate are 4-bit and v and up 8-bit, as on an unfused graph; the result still generates in genai."""
    from edge_compress.compress.quantize.lm import HeadSpec, quantize_weight_only

    path, hf = llama_export
    assert any("|" in n.name for n in onnx.load(str(path)).graph.node)  # packed by the fusions
    out = quantize_weight_only(path, tmp_path / "model.onnx", 4, 32, HeadSpec(bits=4, block_size=32),
                               keep_8bit=["*/v_proj/*", "*/up_proj/*"])
    bits = {n.name.rsplit("/", 1)[0].rsplit("/", 1)[-1]: onnx.helper.get_attribute_value(next(a for a in n.attribute if a.name == "bits"))
            for n in onnx.load(str(out)).graph.node if n.op_type == "MatMulNBits" and "layers.0" in n.name}
    assert bits == {"q_proj": 4, "k_proj": 4, "v_proj": 8, "o_proj": 4, "gate_proj": 4, "up_proj": 8, "down_proj": 4}, bits
    write_genai_config(out, hf, {"eos_token_id": EOS})
    assert _genai_tokens(tmp_path, PROMPTS[0], 24) == _ort_greedy(out, PROMPTS[0], 24)
