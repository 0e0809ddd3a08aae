"""SmoothQuant: the float model is unchanged, activation outliers move into the weights, unknown architectures are named."""
import copy

import pytest
import torch
from conftest import make_gemma3, make_gpt2, make_texts
from edge_compress.compress.quantize.smooth import SmoothError, smooth_
from transformers import AutoModelForSequenceClassification, AutoTokenizer, LlamaConfig, LlamaForCausalLM


def _batches(tokenizer, n=32, size=8):
    texts = [t for t, _ in make_texts(n, seed=4)]
    return [dict(tokenizer(texts[i:i + size], padding=True, return_tensors="pt")) for i in range(0, n, size)]


def _with_outlier_channel(model, block_norm: str):
    """A real-model trait the tiny random models lack: one hidden channel 50x larger after every block's norm."""
    with torch.no_grad():
        for name, module in model.named_modules():
            if name.endswith(block_norm):
                module.weight[3] += 50.0
    return model


def _classifier(folder):
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    return AutoModelForSequenceClassification.from_pretrained(folder).eval(), tokenizer


def _channel_spread(model, suffix: str, batches) -> float:
    """max over the `suffix` Linears of (largest / median per-channel input |max|), read with forward hooks on the
    module names (independent of compress.quantize.smooth's own resolution and measurement)."""
    maxima: dict[str, torch.Tensor] = {}

    def hook(name):
        def record(module, inputs, output):
            x = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(0)
            maxima[name] = torch.maximum(maxima[name], x) if name in maxima else x
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n.endswith(suffix)]
    assert len(handles) == model.config.num_hidden_layers, suffix
    with torch.no_grad():
        for batch in batches:
            model(**batch)
    for handle in handles:
        handle.remove()
    return max(float(x.max() / x.median()) for x in maxima.values())


# (maker, the norm that feeds the first Linears, those Linears, smoothings per block written out from the README's
# mappings: Gemma 3 input_layernorm -> q,k,v; pre_feedforward_layernorm -> gate,up; up -> down. GPT-2 ln_1 -> c_attn;
# ln_2 -> c_fc)
CASES = [(make_gemma3, "input_layernorm", "self_attn.q_proj", 3), (make_gpt2, "ln_1", "attn.c_attn", 2)]


@pytest.mark.parametrize("make, norm, first, per_block", CASES)
def test_smoothing_keeps_outputs_and_flattens_activations(make, norm, first, per_block, tmp_path):
    model, tokenizer = _classifier(make(tmp_path / "m"))
    model = _with_outlier_channel(model, norm)
    batches = _batches(tokenizer)
    smoothed = copy.deepcopy(model)
    record = smooth_(smoothed, batches, alpha=0.5)
    with torch.no_grad():
        for batch in batches:
            torch.testing.assert_close(smoothed(**batch).logits, model(**batch).logits, rtol=1e-4, atol=1e-5)
    before, after = _channel_spread(model, first, batches), _channel_spread(smoothed, first, batches)
    assert before > 10, before  # the injected outlier channel is there ...
    assert after < before / 3, (before, after)  # ... and smoothing flattened it
    assert record["smoothed_inputs"] == per_block * model.config.num_hidden_layers and record["alpha"] == 0.5


def test_llama_causal_lm_smooths_the_mlp_through_up_proj():
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2)).eval()
    ids = torch.randint(0, 64, (2, 12))
    reference = model(input_ids=ids).logits
    record = smooth_(model, [{"input_ids": ids}], alpha=0.8)
    torch.testing.assert_close(model(input_ids=ids).logits, reference, rtol=1e-4, atol=1e-5)
    assert record["smoothed_inputs"] == 2 * 3  # per block: attention input, MLP input, down_proj input


def test_gemma4_text_smooths_with_its_unit_offset_free_norms():
    """Gemma 4's RMSNorm multiplies by its weight (no 1 + weight): the map folds the scale into it as it is, so the
    outputs stay and an outlier channel after input_layernorm is flattened."""
    from transformers import Gemma4ForCausalLM, Gemma4TextConfig

    torch.manual_seed(0)
    model = Gemma4ForCausalLM(Gemma4TextConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=8, global_head_dim=16, sliding_window=4, layer_types=["sliding_attention", "full_attention"],
        vocab_size_per_layer_input=64, hidden_size_per_layer_input=8)).eval()
    model = _with_outlier_channel(model, "input_layernorm")
    batches = [{"input_ids": torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(i))} for i in range(3)]
    reference = [model(**b).logits for b in batches]
    before = _channel_spread(model, "self_attn.q_proj", batches)
    record = smooth_(model, batches, alpha=0.5)
    for batch, logits in zip(batches, reference):
        torch.testing.assert_close(model(**batch).logits, logits, rtol=1e-4, atol=1e-4)
    assert record["smoothed_inputs"] == 2 * 3 and _channel_spread(model, "self_attn.q_proj", batches) < before / 3


def test_unknown_architecture_and_bad_alpha_are_refused(tiny_bert):
    model, tokenizer = _classifier(tiny_bert)
    with pytest.raises(SmoothError, match="no SmoothQuant map for 'bert'.*SMOOTH_MAPS"):
        smooth_(model, _batches(tokenizer))
    with pytest.raises(SmoothError, match=r"alpha must be in \[0, 1\]"):
        smooth_(model, _batches(tokenizer), alpha=1.5)
