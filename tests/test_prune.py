"""Structured pruning on tiny random models (hidden 32, 4 heads, FFN 64, 2 layers)."""

from __future__ import annotations

import copy

import pytest
import torch
from edge_compress.compress.prune import PruneConfig, PruneError, PrunePlan, apply_plan, load_pruned, prune
from edge_compress.compress.prune.costs import flops_model
from edge_compress.compress.prune.importance import mask_gradients
from edge_compress.compress.prune.specs import spec_for
from edge_compress.compress.prune.structure import read_structure
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    GPT2Config,
    GPT2ForSequenceClassification,
    GPT2LMHeadModel,
    T5Config,
    T5ForConditionalGeneration,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matrices: one thread is fastest
VOCAB = 100


def bert():
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=32, num_attention_heads=4, intermediate_size=64,
                     num_hidden_layers=2, max_position_embeddings=64, num_labels=3)
    return BertForSequenceClassification(cfg).eval()


def distilbert():
    cfg = DistilBertConfig(vocab_size=VOCAB, dim=32, n_heads=4, hidden_dim=64, n_layers=2,
                           max_position_embeddings=64, num_labels=3)
    return DistilBertForSequenceClassification(cfg).eval()


def gpt2_cls():
    cfg = GPT2Config(vocab_size=VOCAB, n_embd=32, n_head=4, n_inner=64, n_layer=2, n_positions=64,
                     num_labels=3, pad_token_id=0)
    return GPT2ForSequenceClassification(cfg).eval()


def gpt2_lm():
    cfg = GPT2Config(vocab_size=VOCAB, n_embd=32, n_head=4, n_inner=64, n_layer=2, n_positions=64)
    return GPT2LMHeadModel(cfg).eval()


def roberta():
    from transformers import RobertaConfig, RobertaForSequenceClassification

    cfg = RobertaConfig(vocab_size=VOCAB, hidden_size=32, num_attention_heads=4, intermediate_size=64, num_hidden_layers=2,
                        max_position_embeddings=66, type_vocab_size=1, pad_token_id=1, num_labels=3)
    return RobertaForSequenceClassification(cfg).eval()


MODELS = {"bert": bert, "distilbert": distilbert, "gpt2": gpt2_cls, "gpt2-lm": gpt2_lm, "roberta": roberta}


def batches(n: int = 3, labels: bool = False) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        ids = torch.randint(1, VOCAB, (4, 12), generator=g)
        mask = torch.ones_like(ids)
        mask[0, 9:] = 0  # right padding in one row
        batch = {"input_ids": ids, "attention_mask": mask}
        if labels:
            batch["labels"] = torch.randint(0, 3, (4,), generator=g)
        out.append(batch)
    return out


def logits(model, batch, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **kwargs).logits


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("name", MODELS)
def test_pruning_nothing_keeps_outputs(name):
    model = MODELS[name]()
    data = batches()
    before = logits(model, data[0])
    result = prune(model, PruneConfig(head_fraction=0.0, ffn_fraction=0.0), data)
    assert torch.equal(logits(model, data[0]), before)
    assert result.params_after == result.params_before
    assert result.heads_per_layer == [4, 4] and result.neurons_per_layer == [64, 64]


def _zero_inputs(module: torch.nn.Module, features: list[int]) -> None:
    """Zero the weights reading input `features` (Linear stores [out, in], GPT-2's Conv1D [in, out])."""
    with torch.no_grad():
        if isinstance(module, torch.nn.Linear):
            module.weight[:, features] = 0
        else:
            module.weight[features, :] = 0


@pytest.mark.parametrize("name", MODELS)
def test_removing_heads_equals_zeroing_them_and_neurons_equal_zeroing(name):
    """Zeroing the output projection's columns a head (or neuron) feeds removes exactly its contribution; slicing it
    out must give the same logits, so the q/k/v rows left behind are the remaining heads' own."""
    model = MODELS[name]()
    spec = spec_for(model)
    data = batches()[0]
    reference = copy.deepcopy(model)
    layers = reference.base_model.get_submodule(spec.layers)
    head = read_structure(model, spec).head_dim
    for layer, heads in ((0, [1, 3]), (1, [0])):
        _zero_inputs(layers[layer].get_submodule(spec.attn_out), [h * head + i for h in heads for i in range(head)])
    neurons = [0, 5, 17, 63]
    _zero_inputs(layers[1].get_submodule(spec.ffn_out), neurons)
    expected = logits(reference, data)

    apply_plan(model, PrunePlan(heads={0: [1, 3], 1: [0]}, neurons={1: neurons}))
    structure = read_structure(model, spec)
    assert structure.heads == (2, 3) and structure.neurons == (64, 60)
    assert model.config.edge_compress["heads"] == [2, 3]
    torch.testing.assert_close(logits(model, data), expected, atol=1e-5, rtol=1e-5)


def test_parameter_counts_and_flops_follow_the_formula():
    """Costs written out from the architecture (not from compress.prune.costs): per token at sequence length S, a head
    of width h costs its q/k/v/output projections (4 x 2dh FLOPs) and its attention (QK^T and AV: 2 x 2Sh); a FFN
    neuron its two weights (2 x 2d). Parameters: a head 4dh weights + 3h biases (q, k, v), a neuron 2d + 1."""
    model = bert()
    d, heads, layers, ffn = model.config.hidden_size, model.config.num_attention_heads, model.config.num_hidden_layers, 64
    h, seq = d // heads, 128
    linear_flops = sum(2 * m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))
    total_flops = linear_flops + layers * heads * 4 * seq * h
    result = apply_plan(model, PrunePlan(heads={0: [0, 1]}, neurons={1: list(range(10))}))
    assert result.params_before == sum(p.numel() for p in bert().parameters())
    assert result.flops_before == total_flops
    assert result.params_before - result.params_after == 2 * (4 * d * h + 3 * h) + 10 * (2 * d + 1)
    assert result.flops_before - result.flops_after == 2 * (8 * d * h + 4 * seq * h) + 10 * (4 * d)
    assert model.config.intermediate_size == ffn
    assert result.params_after == sum(p.numel() for p in model.parameters())
    assert result.kept_heads == [[2, 3], [0, 1, 2, 3]]


@pytest.mark.parametrize("name", MODELS)
def test_flops_budget_is_met_with_uneven_layers(name):
    model = MODELS[name]()
    result = prune(model, PruneConfig(flops_budget=0.6, mask_tuning=True), batches())
    assert result.flops_after <= 0.6 * result.flops_before
    assert result.flops_after > 0.5 * result.flops_before  # the search uses what the budget allows
    assert result.params_after == sum(p.numel() for p in model.parameters())
    logits(model, batches()[0])  # still runs


def test_fractions_and_params_budget_together():
    model = bert()
    result = prune(model, PruneConfig(head_fraction=0.5, ffn_fraction=0.25, params_budget=0.9), batches(labels=True))
    assert sum(result.heads_per_layer) <= 4
    assert sum(result.neurons_per_layer) <= 96
    assert result.params_after <= 0.9 * result.params_before
    assert all(h >= 1 for h in result.heads_per_layer)


def test_prune_layers_drops_a_layer_when_the_budget_needs_it():
    model = bert()
    spec = spec_for(model)
    structure = read_structure(model, spec)
    flops = flops_model(model, spec, structure, 128)
    total = flops.cost(8, 128)
    budget = (flops.cost(1, 1) + flops.head / 2) / total  # fits one thin layer, not two
    with pytest.raises(PruneError, match="prune_layers=True"):
        prune(copy.deepcopy(model), PruneConfig(flops_budget=budget), batches())
    data = batches()
    result = prune(model, PruneConfig(flops_budget=budget, prune_layers=True), data)
    assert len(result.dropped_layers) == 1
    assert model.config.num_hidden_layers == 1 and len(model.bert.encoder.layer) == 1
    assert result.flops_after <= budget * result.flops_before
    logits(model, data[0])


def test_importance_ranks_a_dead_head_last():
    model = bert()
    spec = spec_for(model)
    with torch.no_grad():  # head 2 of layer 1 contributes nothing
        model.bert.encoder.layer[1].attention.output.dense.weight[:, 16:24] = 0
    structure = read_structure(model, spec)
    heads, _ = mask_gradients(model, spec, structure, batches()).fisher()
    assert int(heads[1].argmin()) == 2
    assert heads[1][2] == 0
    assert all(p.requires_grad for p in model.parameters())  # restored after scoring


@pytest.mark.parametrize("name", ["bert", "gpt2-lm"])
def test_save_and_load_pruned_gives_identical_outputs(name, tmp_path):
    model = MODELS[name]()
    data = batches()
    prune(model, PruneConfig(head_fraction=0.25, ffn_fraction=0.3), data)
    assert model.config.edge_compress["ffn_sizes"] != [64, 64]
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded = load_pruned(tmp_path)
    assert torch.equal(logits(loaded, data[1]), logits(model, data[1]))


@pytest.mark.parametrize("name", ["bert", "distilbert", "gpt2", "roberta"])
def test_uneven_head_pruning_round_trips_through_load_pruned(name, tmp_path):
    """transformers 5 no longer rebuilds pruned heads from config.pruned_heads, and classic attention derives its head
    size from the head count, so no config says "fewer heads of the same size": load_pruned restores the recorded
    per-layer heads; plain from_pretrained refuses the shapes rather than loading random weights."""
    model = MODELS[name]()
    data = batches()[0]
    apply_plan(model, PrunePlan(heads={0: [0, 2], 1: [3]}, neurons={0: [1, 2]}))
    model.save_pretrained(tmp_path)
    loaded = load_pruned(tmp_path)
    assert read_structure(loaded, spec_for(loaded)).heads == (2, 3)
    assert torch.equal(logits(loaded, data), logits(model, data))
    with pytest.raises(RuntimeError, match="mismatched"):
        AutoModelForSequenceClassification.from_pretrained(tmp_path)


@pytest.mark.parametrize("name", ["bert", "distilbert", "gpt2"])
def test_plain_from_pretrained_after_layer_pruning(name, tmp_path):
    model = MODELS[name]()
    data = batches()[0]
    apply_plan(model, PrunePlan(layers=[0]))
    assert model.config.num_hidden_layers == 1
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert torch.equal(logits(loaded, data), logits(model, data))
    assert torch.equal(logits(load_pruned(tmp_path), data), logits(model, data))


@pytest.mark.parametrize("name", ["bert", "gpt2"])
def test_onnx_export_of_pruned_model_matches_torch(name, tmp_path):
    import onnxruntime
    from edge_compress.export.onnx_export import export_to_onnx

    model = MODELS[name]()
    data = batches()
    prune(model, PruneConfig(head_fraction=0.4, ffn_fraction=0.4), data)
    assert sum(model.config.edge_compress["heads"]) < 8 and sum(model.config.edge_compress["ffn_sizes"]) < 128
    path = export_to_onnx(model, tmp_path, "text-classification", data[1])
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    feed = {k: v.numpy() for k, v in data[0].items() if k in names}
    (out,) = session.run(["logits"], feed)
    torch.testing.assert_close(torch.from_numpy(out), logits(model, data[0]), atol=1e-4, rtol=1e-4)


# --- bad input, raised before any work ---------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "no target"),
        ({"head_fraction": 1.0}, "head_fraction"),
        ({"ffn_fraction": 1.5}, "ffn_fraction"),
        ({"head_fraction": -0.1}, "head_fraction"),
        ({"flops_budget": 0.0}, "budget of 0"),
        ({"params_budget": 1.2}, "params_budget"),
        ({"flops_budget": 0.5, "method": "magnitude"}, "method"),
        ({"flops_budget": 0.5, "num_calib_batches": 0}, "num_calib_batches"),
    ],
)
def test_bad_config_is_rejected(kwargs, match):
    with pytest.raises(PruneError, match=match):
        PruneConfig(**kwargs)


def _unchanged(model, reference) -> bool:
    a, b = model.state_dict(), reference.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "config, match",
    [
        (PruneConfig(flops_budget=0.01), "cannot be met.*floor|embeddings"),
        (PruneConfig(params_budget=0.05, prune_layers=True), "cannot be met"),
        (PruneConfig(head_fraction=0.9), "head_fraction"),
    ],
)
def test_unreachable_targets_fail_before_work(config, match):
    model = bert()
    reference = copy.deepcopy(model)
    with pytest.raises(PruneError, match=match):
        prune(model, config, batches())
    assert _unchanged(model, reference)


@pytest.mark.parametrize(
    "plan, match",
    [
        (PrunePlan(heads={0: [4]}), "has heads 0..3"),
        (PrunePlan(heads={5: [0]}), "layers 0..1"),
        (PrunePlan(heads={0: [0, 1, 2, 3]}), "keep at least one"),
        (PrunePlan(neurons={1: list(range(64))}), "keep at least one"),
        (PrunePlan(layers=[0, 1]), "all 2 layers"),
    ],
)
def test_bad_plans_fail_before_work(plan, match):
    model = bert()
    reference = copy.deepcopy(model)
    with pytest.raises(PruneError, match=match):
        apply_plan(model, plan)
    assert _unchanged(model, reference)


def test_unsupported_architecture_lists_supported_ones():
    cfg = T5Config(vocab_size=VOCAB, d_model=32, d_ff=64, num_layers=1, num_heads=4, d_kv=8)
    with pytest.raises(PruneError, match="bert, distilbert, gpt2, roberta"):
        prune(T5ForConditionalGeneration(cfg), PruneConfig(head_fraction=0.5), batches())


def test_empty_calibration_data_is_rejected():
    with pytest.raises(PruneError, match="empty"):
        prune(bert(), PruneConfig(head_fraction=0.5), [])


def test_prune_error_is_a_value_error():
    assert issubclass(PruneError, ValueError)


def test_mask_tuning_brings_outputs_closer_to_the_unpruned_model():
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=32, num_attention_heads=4, intermediate_size=64,
                     num_hidden_layers=3, max_position_embeddings=64, num_labels=3, initializer_range=0.3)
    base = BertForSequenceClassification(cfg).eval()  # large init: confident, input-dependent logits
    data = batches(5)
    reference = torch.cat([logits(base, b) for b in data])
    errors = []
    for tuning in (False, True):
        model = copy.deepcopy(base)
        prune(model, PruneConfig(flops_budget=0.6, mask_tuning=tuning), data[:3])
        errors.append(float((torch.cat([logits(model, b) for b in data]) - reference).pow(2).mean()))
    assert errors[1] < errors[0]


@pytest.mark.parametrize("unit_size", [1, 3])
def test_tuning_normal_equations_match_explicit_least_squares(unit_size):
    from edge_compress.compress.prune.modules import weight_out_in
    from edge_compress.compress.prune.tuning import _normal_equations
    from transformers.pytorch_utils import Conv1D

    for module in (torch.nn.Linear(12, 5), Conv1D(5, 12)):
        u, y = torch.randn(30, 12), torch.randn(30, 5)
        columns = []
        for i in range(12 // unit_size):
            only_i = torch.zeros_like(u)
            only_i[:, i * unit_size:(i + 1) * unit_size] = u[:, i * unit_size:(i + 1) * unit_size]
            columns.append((module(only_i) - module.bias).reshape(-1))
        a = torch.stack(columns, 1).double()
        gram, rhs = _normal_equations(
            module, (u.t() @ u).double(), (u * (y @ weight_out_in(module))).sum(0).double(), unit_size
        )
        torch.testing.assert_close(gram, a.t() @ a, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(rhs, a.t() @ y.reshape(-1).double(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("heads", [{0: [1], 1: [2]}, {0: [0, 2], 1: [3]}])
def test_ort_fusions_of_a_head_pruned_bert_keep_its_logits(heads, tmp_path):
    """transformers 5 reshapes attention to (-1, head size), so ORT's fusions take the head count from the config
    when the layers agree, and from the graph (pinned per layer) when they kept different counts: either way one
    Attention per layer, with the logits of the pruned model."""
    import collections

    import onnx
    import onnxruntime
    from edge_compress.export.onnx_export import export_to_onnx
    from edge_compress.export.optimize import optimize_graph

    model = bert()
    data = batches()
    apply_plan(model, PrunePlan(heads=heads))
    export_to_onnx(model, tmp_path / "fp32", "text-classification", data[1])
    path = optimize_graph(tmp_path / "fp32", tmp_path / "fused", 2, fuse_embeddings=True, config=model.config)
    ops = collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)
    assert ops["Attention"] == 2, ops
    fused_heads = [a.i for n in onnx.load(str(path)).graph.node if n.op_type == "Attention" for a in n.attribute
                   if a.name == "num_heads"]
    assert fused_heads == model.config.edge_compress["heads"], fused_heads
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    (out,) = session.run(["logits"], {k: v.numpy() for k, v in data[0].items() if k in names})
    torch.testing.assert_close(torch.from_numpy(out), logits(model, data[0]), atol=1e-4, rtol=1e-4)


def test_pinned_head_counts_replace_the_minus_one_and_leave_no_orphans(tmp_path):
    """Each layer's q, k and v reshapes get that layer's own head count; the -1 constants they read are gone
    (ORT warns of every unused initializer it finds)."""
    import onnx
    from edge_compress.export.onnx_export import export_to_onnx
    from edge_compress.export.optimize import pin_head_counts

    model = bert()
    apply_plan(model, PrunePlan(heads={0: [0, 2], 1: [3]}))
    export_to_onnx(model, tmp_path / "fp32", "text-classification", batches()[1])
    graph = onnx.load(str(tmp_path / "fp32" / "model.onnx"))
    head_size = model.config.hidden_size // model.config.num_attention_heads
    assert pin_head_counts(graph, head_size) == 3 * model.config.num_hidden_layers
    pinned = sorted(int(onnx.numpy_helper.to_array(t)[0]) for t in graph.graph.initializer if t.name.endswith("/pinned_heads"))
    assert pinned == sorted(3 * model.config.edge_compress["heads"]), pinned
    read = {name for node in graph.graph.node for name in node.input}
    assert all(n.output[0] in read for n in graph.graph.node if n.op_type == "Constant")


def test_pinned_head_counts_also_rewrite_a_constant_shape():
    """Exporters that fold the shape to one constant ([0, 0, -1, head size]) get it pinned too; the graph still runs."""
    import numpy as np
    import onnxruntime
    from edge_compress.export.optimize import pin_head_counts
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((8, 12), dtype=np.float32), "weight")
    shape = numpy_helper.from_array(np.array([0, 0, -1, 4], dtype=np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "weight"], ["q"]), helper.make_node("Reshape", ["q", "shape"], ["y"], name="split")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weight, shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert pin_head_counts(model, 4) == 1
    pinned = {t.name: numpy_helper.to_array(t).tolist() for t in model.graph.initializer}
    assert pinned == {"weight": np.ones((8, 12)).tolist(), "split/pinned_heads": [0, 0, 3, 4]}  # the old shape is gone
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert session.run(None, {"x": np.ones((1, 5, 8), dtype=np.float32)})[0].shape == (1, 5, 3, 4)
