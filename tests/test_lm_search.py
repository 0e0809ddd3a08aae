"""The causal-LM side of compress.search on a hand-built graph (no exporter, seconds): int4 units are single
projections even when ORT's fusions packed them, a candidate assembled from the prepared 4-/8-bit copies is the
candidate a fresh build writes, and the relative budget."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from edge_compress.compress.search.schemes import Int4WeightOnly
from onnx import TensorProto, helper, numpy_helper

HIDDEN = 64
PACKED = "/layers.0/q_proj/MatMul|/layers.0/k_proj/MatMul"  # as export.lm_export names a packed MatMul
SINGLE = "/layers.0/o_proj/MatMul"


def packed_graph(path: Path) -> Path:
    """x -> packed MatMul (q|k) -> Split -> q + k -> o MatMul -> logits: one packed unit and one plain one (the graph's
    logits come through an Identity: a MatMul that writes `logits` itself is the head, never a unit)."""
    rng = np.random.default_rng(0)
    qk = rng.normal(0, 0.2, (HIDDEN, 2 * HIDDEN)).astype(np.float32)
    o = rng.normal(0, 0.2, (HIDDEN, HIDDEN)).astype(np.float32)
    inits = [numpy_helper.from_array(qk, "qk_w"), numpy_helper.from_array(o, "o_w"),
             numpy_helper.from_array(np.array([HIDDEN, HIDDEN], np.int64), "split_sizes")]
    nodes = [helper.make_node("MatMul", ["x", "qk_w"], ["qk"], name=PACKED),
             helper.make_node("Split", ["qk", "split_sizes"], ["q", "k"], axis=-1, name="split"),
             helper.make_node("Add", ["q", "k"], ["h"], name="add"),
             helper.make_node("MatMul", ["h", "o_w"], ["o"], name=SINGLE),
             helper.make_node("Identity", ["o"], ["logits"], name="out")]
    graph = helper.make_graph(nodes, "packed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", HIDDEN])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", HIDDEN])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def _bits(path: Path) -> dict[str, int]:
    return {n.name.rsplit("_Q", 1)[0]: next(a.i for a in n.attribute if a.name == "bits")
            for n in onnx.load(str(path)).graph.node if n.op_type == "MatMulNBits"}


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["logits"], {"x": x})[0]


def test_int4_units_are_the_parts_of_a_packed_matmul(tmp_path):
    src = packed_graph(tmp_path / "fp32.onnx")
    units = Int4WeightOnly().units(onnx.load(str(src)))
    assert units == ["/layers.0/q_proj/MatMul", "/layers.0/k_proj/MatMul", SINGLE]


@pytest.mark.parametrize("low", [(), ("/layers.0/k_proj/MatMul",), ("/layers.0/q_proj/MatMul", SINGLE),
                                 ("/layers.0/q_proj/MatMul", "/layers.0/k_proj/MatMul", SINGLE)])
def test_an_assembled_candidate_is_the_fresh_build(tmp_path, low):
    src = packed_graph(tmp_path / "fp32.onnx")
    scheme = Int4WeightOnly(block_size=32)
    prepared = scheme.prepare(src, tmp_path / "parts")
    assert prepared.settings() == scheme.settings()  # where the copies live is not part of the cache key
    fresh = scheme.build(src, tmp_path / "fresh.onnx", low)
    assembled = prepared.build(src, tmp_path / "assembled.onnx", low)
    units = scheme.units(onnx.load(str(src)))
    assert _bits(assembled) == _bits(fresh) == {u: 4 if u in low else 8 for u in units}
    x = np.random.default_rng(1).normal(0, 1, (5, HIDDEN)).astype(np.float32)
    np.testing.assert_array_equal(_run(assembled, x), _run(fresh, x))
    # 4 bits are further from float than 8: the check can fail if the wrong copy was picked
    error = np.abs(_run(assembled, x) - _run(src, x)).mean()
    all8 = np.abs(_run(prepared.build(src, tmp_path / "all8.onnx", ()), x) - _run(src, x)).mean()
    assert (error > all8) == bool(low) or error == pytest.approx(all8)
    # every initializer is read by a node: nothing of the swapped-out 8-bit nodes is left behind
    model = onnx.load(str(assembled))
    read = {name for node in model.graph.node for name in node.input}
    assert {t.name for t in model.graph.initializer} <= read


def test_assembling_an_unknown_unit_fails(tmp_path):
    src = packed_graph(tmp_path / "fp32.onnx")
    prepared = Int4WeightOnly().prepare(src, tmp_path / "parts")
    with pytest.raises(ValueError, match="not in the quantized copies"):
        prepared.build(src, tmp_path / "x.onnx", ["/layers.9/nothing/MatMul"])


def test_relative_budget_is_a_share_of_the_baseline():
    from edge_compress.compress.search.config import SearchSpec
    from edge_compress.compress.search.variants import _budget

    def ctx(**spec):
        return SimpleNamespace(recipe=SimpleNamespace(search=SearchSpec(**spec), max_accuracy_drop=1.0),
                               task=SimpleNamespace(higher_is_better=False))

    base = {"metric": 45.0, "items": {"nll": [1.0, 2.0], "tokens": [1, 1]}}
    assert _budget(ctx(budget_pct=6), base).max_drop == pytest.approx(2.7)
    assert _budget(ctx(budget=0.5, budget_pct=6), base).max_drop == pytest.approx(2.7)  # the share wins
    assert _budget(ctx(), base).max_drop == 1.0  # neither: the run's max_accuracy_drop
    assert _budget(ctx(), base).baseline_items == base["items"]  # judged by the bootstrap bound (default judge: upper)
    assert _budget(ctx(judge="point"), base).baseline_items is None
    with pytest.raises(ValueError):
        SearchSpec(budget_pct=0)


def _initializer_bytes(path: Path) -> int:
    from edge_compress.compress.search.schemes import _nbytes

    return sum(_nbytes(t) for t in onnx.load(str(path), load_external_data=False).graph.initializer)


def test_saved_bytes_are_what_a_unit_at_4_bits_saves(tmp_path):
    src = packed_graph(tmp_path / "fp32.onnx")
    prepared = Int4WeightOnly(block_size=32).prepare(src, tmp_path / "parts")
    saved = prepared.saved_bytes()
    assert set(saved) == set(prepared.units(onnx.load(str(src))))
    all8 = _initializer_bytes(prepared.build(src, tmp_path / "all8.onnx", ()))
    for unit, nbytes in saved.items():
        assert nbytes > 0
        assert all8 - _initializer_bytes(prepared.build(src, tmp_path / "one.onnx", [unit])) == nbytes
    with pytest.raises(ValueError, match="prepare"):
        Int4WeightOnly().saved_bytes()


def test_per_byte_order_puts_the_big_tolerant_unit_first():
    from edge_compress.compress.search.sensitivity import UnitScore
    from edge_compress.compress.search.variants import per_byte_order

    rows = [UnitScore("big", 0.02, 0.02), UnitScore("small", 0.01, 0.01), UnitScore("free", -0.001, -0.001)]
    sens = SimpleNamespace(rows=rows)
    assert per_byte_order(sens, {"big": 8000, "small": 1000, "free": 1000}) == ["free", "big", "small"]


def test_dequantized_weights_are_the_quantized_weights(tmp_path):
    from edge_compress.compress.search.lm_sensitivity import dequantized
    from edge_compress.compress.search.schemes import PARTS_FALLBACK, PARTS_LOW

    src = packed_graph(tmp_path / "fp32.onnx")
    prepared = Int4WeightOnly(block_size=32).prepare(src, tmp_path / "parts")
    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(src)).graph.initializer}
    exact = {"/layers.0/q_proj/MatMul": weights["qk_w"][:, :HIDDEN], "/layers.0/k_proj/MatMul": weights["qk_w"][:, HIDDEN:],
             SINGLE: weights["o_w"]}
    for copy, levels in ((PARTS_FALLBACK, 255), (PARTS_LOW, 15)):
        got = dequantized(Path(prepared.parts) / copy)
        assert set(got) == set(exact)
        for unit, w in exact.items():
            step = np.ptp(w.reshape(2, 32, HIDDEN), axis=1).max() / levels  # block 32 along K: the widest block's step
            assert got[unit].shape == w.shape and np.abs(got[unit] - w).max() <= step / 2 + 1e-6
            assert not np.array_equal(got[unit], w)


@pytest.mark.parametrize("factorized", [False, True], ids=["per-unit", "factorized"])
def test_pytorch_sensitivity_on_a_tiny_llama(tmp_path, factorized):
    import torch
    from edge_compress.compress.search.lm_sensitivity import torch_sensitivity
    from test_search import _export, _token_feeds
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=True)
    model = LlamaForCausalLM(config).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    src = _export(model, tmp_path / "llama.onnx", 96, seq_out=True)
    prepared = Int4WeightOnly(block_size=32).prepare(src, tmp_path / "parts")
    ids = [f["input_ids"][0] for f in _token_feeds(96, 2, 16, seed=0)]
    sens = torch_sensitivity(model, prepared, src, ids, cache=tmp_path / "cache.json", factorized=factorized)
    assert {r.unit for r in sens.rows} == set(prepared.units(onnx.load(str(src)))) and len(sens.rows) == 14
    assert len(sens.scheme["passes"]) == (7 + 2 if factorized else 14)  # 7 projection types + 2 layers, or one per unit
    assert sens.base_kl > 0 and all(r.kl >= 0 for r in sens.rows)
    assert sum(r.score > 0 for r in sens.rows) >= 10  # 4 bits of one unit on top of 8 bits everywhere hurts
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the float model is given back
    again = torch_sensitivity(torch.nn.Module(), prepared, src, ids, cache=tmp_path / "cache.json",  # cached: no model needed
                              factorized=factorized)
    assert again == sens


def test_factor_groups_need_a_layer_and_a_type_for_every_unit():
    from edge_compress.compress.search.lm_sensitivity import _factor_groups

    units = [f"/model/layers.{i}/mlp/{t}/MatMul" for i in range(3) for t in ("gate_proj", "up_proj", "down_proj")]
    groups = _factor_groups(units)
    assert set(groups) == {"type:gate_proj", "type:up_proj", "type:down_proj", "layer:layers.0", "layer:layers.1", "layer:layers.2"}
    assert groups["layer:layers.1"] == units[3:6]
    assert _factor_groups([*units, "node_MatMul_12"]) is None  # a unit without a layer: one pass per unit
