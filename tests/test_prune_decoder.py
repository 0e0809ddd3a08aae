"""Structured pruning of grouped-query decoder LMs (Llama, Mistral, Qwen2/3, Gemma 1/2/3) on tiny random models.

Each model: hidden 32, 4 query heads in 2 KV groups of head size 8, gated FFN of 64, 2 layers. A head
unit is a KV group: one KV head and the two query heads that read it.
"""

from __future__ import annotations

import copy

import pytest
import torch
from edge_compress.compress.prune import PruneConfig, PrunePlan, apply_plan, load_pruned, prune
from edge_compress.compress.prune.costs import flops_model, params_model
from edge_compress.compress.prune.importance import mask_gradients
from edge_compress.compress.prune.masks import Masks, masked
from edge_compress.compress.prune.specs import layer_list, spec_for
from edge_compress.compress.prune.structure import read_structure
from transformers import (
    AutoModelForCausalLM,
    Gemma2Config,
    Gemma2ForCausalLM,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GemmaConfig,
    GemmaForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matrices: one thread is fastest
VOCAB = 64
SIZES = {"vocab_size": VOCAB, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "head_dim": 8, "max_position_embeddings": 128, "pad_token_id": 0, "bos_token_id": 1,
         "eos_token_id": 2}


def llama(**kw):
    return LlamaForCausalLM(LlamaConfig(**{**SIZES, **kw})).eval()


def qwen2(**kw):  # q/k/v biases
    return Qwen2ForCausalLM(Qwen2Config(**{**SIZES, **kw})).eval()


def qwen3(**kw):  # per-head q/k RMSNorm
    return Qwen3ForCausalLM(Qwen3Config(**{**SIZES, **kw})).eval()


def gemma3(**kw):  # sliding + full attention layers, q/k norms, scaled embeddings, tied LM head
    config = Gemma3TextConfig(**{**SIZES, "sliding_window": 4, "layer_types": ["sliding_attention", "full_attention"], **kw})
    return Gemma3ForCausalLM(config).eval()


MODELS = {
    "llama": llama,
    "qwen2": qwen2,
    "qwen3": qwen3,
    "gemma3_text": gemma3,
    "mistral": lambda: MistralForCausalLM(MistralConfig(**SIZES)).eval(),
    "gemma": lambda: GemmaForCausalLM(GemmaConfig(**SIZES)).eval(),
    "gemma2": lambda: Gemma2ForCausalLM(Gemma2Config(**SIZES, sliding_window=4)).eval(),
}


def batches(n: int = 3) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        ids = torch.randint(3, VOCAB, (4, 12), generator=g)
        mask = torch.ones_like(ids)
        mask[0, 9:] = 0  # right padding in one row
        out.append({"input_ids": ids, "attention_mask": mask})
    return out


def logits(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


def shapes(model) -> list[dict[str, int]]:
    """Per layer: the sliced dimensions of every projection pruning touches."""
    return [{"q": layer.self_attn.q_proj.out_features, "k": layer.self_attn.k_proj.out_features,
             "v": layer.self_attn.v_proj.out_features, "o": layer.self_attn.o_proj.in_features,
             "gate": layer.mlp.gate_proj.out_features, "up": layer.mlp.up_proj.out_features,
             "down": layer.mlp.down_proj.in_features} for layer in layer_list(model, spec_for(model))]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("name", MODELS)
def test_structure_counts_kv_groups(name):
    structure = read_structure(MODELS[name](), spec_for(MODELS[name]()))
    assert structure.heads == (2, 2) and structure.group == 2 and structure.head_dim == 8
    assert structure.unit_width == 16 and structure.neurons == (64, 64) and structure.hidden == 32


@pytest.mark.parametrize("name", MODELS)
def test_pruning_nothing_keeps_outputs(name):
    model = MODELS[name]()
    data = batches()
    before = logits(model, data[0])
    result = prune(model, PruneConfig(head_fraction=0.0, ffn_fraction=0.0), data)
    assert torch.equal(logits(model, data[0]), before)
    assert result.params_after == result.params_before
    assert result.heads_per_layer == [2, 2] and result.neurons_per_layer == [64, 64]


@pytest.mark.parametrize("name", MODELS)
def test_plan_shapes_and_outputs_equal_masking(name):
    """Removing KV group 1 of layer 0 and four neurons of layer 1 = masking them; shapes follow the plan."""
    model = MODELS[name]()
    spec = spec_for(model)
    data = batches()[0]
    structure = read_structure(model, spec)
    masks = Masks.ones(structure)
    masks.heads[0][1] = 0
    neurons = [0, 5, 17, 63]
    masks.neurons[1][neurons] = 0
    with masked(model, spec, masks, structure.unit_width):
        expected = logits(model, data)
    q_rows_kept = model.get_decoder().layers[0].self_attn.q_proj.weight[:16].clone()

    result = apply_plan(model, PrunePlan(heads={0: [1]}, neurons={1: neurons}))
    assert shapes(model) == [
        {"q": 16, "k": 8, "v": 8, "o": 16, "gate": 64, "up": 64, "down": 64},
        {"q": 32, "k": 16, "v": 16, "o": 32, "gate": 60, "up": 60, "down": 60},
    ]
    assert torch.equal(model.get_decoder().layers[0].self_attn.q_proj.weight, q_rows_kept)  # group 0's query heads
    assert read_structure(model, spec).heads == (1, 2)
    assert result.kept_heads == [[0], [0, 1]] and result.neurons_per_layer == [64, 60]
    assert result.params_after == sum(p.numel() for p in model.parameters())
    torch.testing.assert_close(logits(model, data), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_cost_models_price_a_group_and_a_neuron_exactly(name):
    model = MODELS[name]()
    spec = spec_for(model)
    structure = read_structure(model, spec)
    params, flops = params_model(model, structure), flops_model(model, spec, structure, 128)
    result = apply_plan(model, PrunePlan(heads={1: [0]}, neurons={0: list(range(10))}))
    assert result.params_before - result.params_after == params.head + 10 * params.neuron
    assert result.flops_before - result.flops_after == flops.head + 10 * flops.neuron
    assert params.neuron == 3 * 32  # gate row, up row, down column
    assert flops.head == 2 * 6 * 32 * 8 + 4 * 128 * 8 * 2  # q, o: 2 heads each; k, v: 1 head; attention: 2 heads


@pytest.mark.parametrize("name", MODELS)
def test_a_dead_group_scores_zero_and_its_removal_changes_nothing(name):
    """A KV group whose query heads feed nothing has zero importance; prune removes it and only it."""
    model = MODELS[name]()
    spec = spec_for(model)
    with torch.no_grad():  # layer 1, group 0 (query heads 0 and 1) contributes nothing
        layer_list(model, spec)[1].self_attn.o_proj.weight[:, :16] = 0
    data = batches()
    structure = read_structure(model, spec)
    heads, _ = mask_gradients(model, spec, structure, data).fisher()
    assert heads[1][0] == 0 and heads[1][1] > 0 and bool((heads[0] > 0).all())
    masks = Masks.ones(structure)
    masks.heads[1][0] = 0
    with masked(model, spec, masks, structure.unit_width):
        expected = logits(model, data[0])

    result = prune(model, PruneConfig(head_fraction=0.25, ffn_fraction=0.0, mask_tuning=False, uniform_heads=False), data)
    assert result.kept_heads == [[0, 1], [1]]
    torch.testing.assert_close(logits(model, data[0]), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_non_uniform_pruning_saves_and_reloads(name, tmp_path):
    model = MODELS[name]()
    data = batches()
    prune(model, PruneConfig(head_fraction=0.25, ffn_fraction=0.3, uniform_heads=False), data)
    recorded = model.config.edge_compress
    assert sorted(recorded["kv_heads"]) == [1, 2] and recorded["ffn_sizes"] != [64, 64]
    model.save_pretrained(tmp_path)
    loaded = load_pruned(tmp_path)
    assert type(loaded) is type(model) and shapes(loaded) == shapes(model)
    assert torch.equal(logits(loaded, data[1]), logits(model, data[1]))
    prompt = data[1]["input_ids"][:1, :5]
    with torch.no_grad():  # the KV cache follows each layer's own head count
        out = model.generate(prompt, max_new_tokens=6, do_sample=False, pad_token_id=0)
    assert out.shape == (1, 11)


@pytest.mark.parametrize("name", MODELS)
def test_uniform_pruning_reloads_with_plain_from_pretrained(name, tmp_path):
    model = MODELS[name]()
    data = batches()[0]
    apply_plan(model, PrunePlan(heads={0: [0], 1: [1]}, neurons={0: [1, 2], 1: [3, 4]}))
    config = model.config
    assert (config.num_key_value_heads, config.num_attention_heads, config.head_dim, config.intermediate_size) == (1, 2, 8, 62)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert shapes(loaded) == shapes(model)
    assert torch.equal(logits(loaded, data), logits(model, data))


@pytest.mark.parametrize("name", MODELS)
def test_causal_lms_keep_the_same_kv_heads_in_every_layer_by_default(name):
    """The KV cache must have one shape across layers for optimum's export and onnxruntime-genai."""
    model = MODELS[name]()
    result = prune(model, PruneConfig(head_fraction=0.25, ffn_fraction=0.25), batches())
    assert result.heads_per_layer == [1, 1]
    assert (model.config.num_key_value_heads, model.config.num_attention_heads) == (1, 2)
    assert sum(result.neurons_per_layer) == 96  # FFN widths are ranked globally: they do not shape the cache


def test_dropping_a_gemma3_layer_keeps_its_attention_type(tmp_path):
    model = gemma3(num_hidden_layers=3, layer_types=["sliding_attention", "full_attention", "sliding_attention"])
    data = batches()[0]
    apply_plan(model, PrunePlan(layers=[1]))
    assert model.config.num_hidden_layers == 2
    assert model.config.layer_types == ["sliding_attention", "sliding_attention"]
    model.save_pretrained(tmp_path)
    torch.testing.assert_close(logits(load_pruned(tmp_path), data), logits(model, data))


def _repeating_text_model() -> tuple[LlamaForCausalLM, torch.Tensor]:
    """A tiny Llama trained on a repeating random 16-token cycle over 6 symbols: learnable, but only with attention
    (a token's successor depends on where in the cycle it is)."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 9, (16,), generator=g).repeat(12)
    model = llama().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):
        starts = torch.randint(0, len(ids) - 33, (8,), generator=g)
        batch = torch.stack([ids[s:s + 32] for s in starts])
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), torch.stack([ids[s:s + 32] for s in range(0, 128, 16)])


def _perplexity(model, ids: torch.Tensor) -> float:
    with torch.no_grad():
        return float(model(input_ids=ids, labels=ids).loss.exp())


def test_pruning_the_least_important_units_keeps_perplexity_on_learnable_text():
    model, ids = _repeating_text_model()
    before = _perplexity(model, ids)
    assert before < 1.2  # it learnt the cycle
    calib = [{"input_ids": ids[i:i + 2], "attention_mask": torch.ones_like(ids[i:i + 2])} for i in range(0, 8, 2)]
    spec = spec_for(model)
    heads, _ = mask_gradients(model, spec, read_structure(model, spec), calib).fisher()
    most = max(((layer, unit) for layer in range(2) for unit in range(2)), key=lambda u: float(heads[u[0]][u[1]]))
    worst = copy.deepcopy(model)
    apply_plan(worst, PrunePlan(heads={most[0]: [most[1]]}))

    result = prune(model, PruneConfig(head_fraction=0.25, ffn_fraction=1 / 128, uniform_heads=False), calib)
    assert sum(result.heads_per_layer) == 3 and sum(result.neurons_per_layer) == 127
    assert result.kept_heads[most[0]] != [1 - most[1]]  # the most important group survived
    after = _perplexity(model, ids)
    assert after < 1.1 * before, (before, after)
    assert _perplexity(worst, ids) > 2 * after  # the ranking matters: removing the top group hurts


def test_gemma3_multimodal_prunes_its_text_decoder(tmp_path):
    """model_type gemma3 (Gemma3ForConditionalGeneration): the text decoder is pruned, the vision tower kept."""
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        SiglipVisionConfig,
    )

    text = Gemma3TextConfig(**{**SIZES, "vocab_size": 300, "sliding_window": 4,
                               "layer_types": ["sliding_attention", "full_attention"]})
    vision = SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                image_size=28, patch_size=14)
    config = Gemma3Config(text_config=text.to_dict(), vision_config=vision.to_dict(), mm_tokens_per_image=4,
                          image_token_index=299, boi_token_index=297, eoi_token_index=298)
    model = Gemma3ForConditionalGeneration(config).eval()
    vision_params = sum(p.numel() for p in model.model.vision_tower.parameters())
    data = batches()
    result = prune(model, PruneConfig(head_fraction=0.25, ffn_fraction=0.25), data)
    assert result.heads_per_layer == [1, 1] and sum(result.neurons_per_layer) == 96
    assert model.config.text_config.num_key_value_heads == 1
    assert sum(p.numel() for p in model.model.vision_tower.parameters()) == vision_params
    model.save_pretrained(tmp_path)  # saved under legacy key names, which load_pruned maps back
    torch.testing.assert_close(logits(load_pruned(tmp_path), data[0]), logits(model, data[0]))
