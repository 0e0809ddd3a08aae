"""The one searched line (issue 15, items 1, 2 and 3): 4-bit embedding tables (GatherBlockQuantized) in the search
space, the searched variant built only on the run's last line (trimmed by default, pruned when prune: is set), and its
search shown in report.html as in report.md."""
import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import yaml
from conftest import FAST_RECIPE
from edge_compress.compress.quantize.int4 import constant_gathers, int4_tables, quantize_int4, weight_matmuls
from edge_compress.compress.quantize.presets import PRESETS
from edge_compress.compress.recipe import Recipe
from edge_compress.compress.run.pipeline import RunOptions, run
from edge_compress.compress.run.variants import Variant, for_line
from edge_compress.compress.search.schemes import Int8Dynamic

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def bert_onnx(tmp_path_factory):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=32)
    model = BertForSequenceClassification(config).eval()
    path = tmp_path_factory.mktemp("bert") / "model.onnx"
    ids = torch.randint(0, 100, (1, 8))
    torch.onnx.export(model, (ids, torch.ones_like(ids)), str(path), dynamo=False, input_names=["input_ids", "attention_mask"],
                      output_names=["logits"], dynamic_axes={"input_ids": {0: "b", 1: "t"}, "attention_mask": {0: "b", 1: "t"}})
    return path, model.bert.embeddings.word_embeddings.weight.detach().numpy()


def _word_table_rows(path, ids: np.ndarray) -> np.ndarray:
    """The word-embedding Gather's output for `ids`, read from the graph at `path` (the Gather exposed as an output)."""
    model = onnx.load(str(path))
    node = next(n for n in model.graph.node if n.op_type.startswith("Gather") and "word_embeddings" in "".join(n.input))
    model.graph.output.append(onnx.helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString())
    return sess.run([node.output[0]], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]


def test_int4_gather_runs_on_ort_and_reproduces_the_table_within_a_block_step(bert_onnx):
    path, table = bert_onnx
    model = onnx.load(str(path))
    gathers = constant_gathers(model)
    word = [g for g in gathers if any("word_embeddings" in i for n in model.graph.node if n.name == g for i in n.input)]
    assert len(gathers) == 3 and len(word) == 1  # word, position, token type
    quantized = quantize_int4(model, gathers=word)
    ops = [n.op_type for n in quantized.graph.node]
    assert ops.count("GatherBlockQuantized") == 1 and ops.count("Gather") >= 2  # the other tables untouched
    q = next(t for t in quantized.graph.initializer if t.name.endswith("word_embeddings.weight_Q4"))
    assert q.data_type == onnx.TensorProto.UINT4 and "bert.embeddings.word_embeddings.weight" not in {
        t.name for t in quantized.graph.initializer}
    out = path.parent / "int4.onnx"
    onnx.save(quantized, str(out))
    ids = np.arange(0, 100, 7, dtype=np.int64)[None]
    rows = _word_table_rows(out, ids)
    # RTN at 4 bits, blocks of 32 along the hidden axis: each value within half a step (range / 15 / 2) of the original
    blocks = table[ids[0]].reshape(len(ids[0]), -1, 32)
    step = (blocks.max(-1, keepdims=True) - np.minimum(blocks.min(-1, keepdims=True), 0)) / 15
    err = np.abs(rows.reshape(blocks.shape) - blocks)
    assert (err <= step / 2 + 1e-6).all() and err.max() > 0  # quantized, and no further off than rounding
    with pytest.raises(ValueError, match="constant table"):
        quantize_int4(model, gathers=["/bert/encoder/layer.0/attention/self/query/MatMul"])


def test_scheme_with_4bit_embeddings_keeps_non_low_tables_int8(bert_onnx, tmp_path):
    path, _ = bert_onnx
    scheme = Int8Dynamic(PRESETS["vnni"], embedding_bits=4)
    units = scheme.units(onnx.load(str(path)))
    tables, every = int4_tables(onnx.load(str(path))), constant_gathers(onnx.load(str(path)))
    small = set(every) - set(tables)
    assert set(every) <= set(units) and len(tables) == 1 and "word_embeddings" in "".join(tables)  # not position/type
    feed = {"input_ids": np.arange(8, dtype=np.int64)[None], "attention_mask": np.ones((1, 8), np.int64)}
    sizes = {}
    for name, low in {"none": [], "tables": tables, "all": units}.items():
        built = scheme.build(path, tmp_path / f"{name}.onnx", low)
        graph = onnx.load(str(built)).graph
        ops = [n.op_type for n in graph.node]
        assert ops.count("GatherBlockQuantized") == (len(tables) if name != "none" else 0), name
        int8_tables = [n for n in graph.node if n.op_type == "Gather" and n.input[0].endswith("_quantized")]
        # a 4-bit table not low is int8, never float; the small tables are plain units (int8 when low, float if not)
        assert len(int8_tables) == {"none": len(tables), "tables": 0, "all": len(small)}[name], name
        assert ("MatMulInteger" in ops) == (name == "all"), name
        ort.InferenceSession(str(built)).run(None, feed)
        sizes[name] = built.stat().st_size
    assert sizes["all"] < sizes["tables"] < sizes["none"]
    assert scheme.settings()["embedding_bits"] == 4 and "embedding_bits" not in Int8Dynamic(PRESETS["vnni"]).settings()


def test_scheme_with_4bit_matmuls_has_int8_as_its_floor(bert_onnx, tmp_path):
    path, _ = bert_onnx
    model = onnx.load(str(path))
    scheme = Int8Dynamic(PRESETS["vnni"], embedding_bits=4, matmul_bits=4)
    units, matmuls = scheme.units(model), weight_matmuls(model)
    assert set(units) == set(matmuls) | set(int4_tables(model)) and matmuls
    feed = {"input_ids": np.arange(8, dtype=np.int64)[None], "attention_mask": np.ones((1, 8), np.int64)}
    half = matmuls[: len(matmuls) // 2]
    built = scheme.build(path, tmp_path / "half.onnx", half)
    nodes = onnx.load(str(built)).graph.node
    four = [n for n in nodes if n.op_type == "MatMulNBits"]
    assert len(four) == len(half) and all(next(a.i for a in n.attribute if a.name == "bits") == 4 for n in four)
    assert sum(n.op_type == "MatMulInteger" for n in nodes) == len(matmuls) - len(half)  # the others int8, none float
    assert not [n.name for n in nodes if n.op_type == "MatMul" and n.name in set(matmuls)]
    float_logits = ort.InferenceSession(str(path)).run(None, feed)[0]
    np.testing.assert_allclose(ort.InferenceSession(str(built)).run(None, feed)[0], float_logits, atol=0.05)


def test_searched_records_build_on_the_last_line_only():
    build = lambda inp: None
    every = Variant("onnx-int8-dynamic", "int8", build, ("text-classification",), 20)
    searched = Variant("onnx-int8-searched", "int8", build, ("text-classification",), 25, last_line_only=True)
    assert for_line([every, searched], last=False) == [every]
    assert for_line([every, searched], last=True) == [every, searched]


def _recipe(**extra) -> Recipe:
    data = yaml.safe_load(FAST_RECIPE)
    data.setdefault("validate", {})["threads"] = 1
    data["quantize"]["static"]["enabled"] = False  # three lines of variants: keep only what the searched line needs
    return Recipe.model_validate({**data, "precisions": ["int8"], **extra})


@pytest.fixture(scope="module")
def searched_out(tiny_bert, data_dir, tmp_path_factory):
    """One run: pruned line, then the trimmed line (search: turns trimming on), the searched variant on that last line.
    A budget of 100 points lets every unit go low, so the winner has 4-bit tables."""
    out = tmp_path_factory.mktemp("line") / "out"
    torch.set_num_threads(1)
    recipe = _recipe(prune={"head_fraction": 0.25, "num_calib_batches": 2, "batch_size": 8},
                     search={"executor": "inline", "max_trials": 3, "steps": 2, "search_samples": 20, "calib_samples": 4,
                             "budget": 100.0, "cache": str(out.parent / "sensitivity.json")})
    run(RunOptions(str(tiny_bert), out, str(data_dir / "eval.csv")), recipe)
    return out


def test_one_searched_line_is_pruned_then_trimmed_with_4bit_tables(searched_out):
    report = json.loads((searched_out / "report.json").read_text())
    names = [v["name"] for v in report["variants"]]
    assert [n for n in names if n.endswith("searched")] == ["pruned-trimmed-onnx-int8-searched"]
    assert "trimmed-onnx-int8-dynamic" not in names and "pruned-trimmed-onnx-int8-dynamic" in names  # lines: "", pruned-, pruned-trimmed-
    searched = next(v for v in report["variants"] if v["name"] == "pruned-trimmed-onnx-int8-searched")
    assert searched["error"] is None, searched["error"]
    found = searched["settings"]["search"]
    assert found["embeddings"] == "int4" and "pruning" in searched["settings"] and "trimming" in searched["settings"]
    graph = onnx.load(str(searched_out / searched["path"] / "model.onnx"), load_external_data=False).graph
    ops = [n.op_type for n in graph.node]
    assert "GatherBlockQuantized" in ops and "EmbedLayerNormalization" not in ops
    four_bit = {n.name.removesuffix("_Q4") for n in graph.node if n.op_type == "GatherBlockQuantized"}
    source = next(v for v in report["variants"] if v["name"] == "pruned-trimmed-onnx-fp32")
    large = set(int4_tables(onnx.load(str(searched_out / source["path"] / "model.onnx"))))
    # only the large tables (here the 66-token vocabulary and 128 positions) are 4-bit; token types stay int8
    assert four_bit == large and not any("token_type" in name for name in four_bit)
    table = next(t for t in graph.initializer if t.name.endswith("word_embeddings.weight_Q4"))
    assert table.dims[0] == report["trimming"]["vocab_after"]  # the trimmed line's table (a tiny vocabulary is all kept)
    inits = {t.name for t in graph.initializer}
    float_linear = [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in inits]
    assert float_linear == []  # the head, exported as Gemm, is a unit too: at a 100-point budget it is int8 as well
    assert any("classifier" in unit for unit in found["low"])
    written = yaml.safe_load((searched_out / "recipe.yaml").read_text())
    assert written["search"]["trim"] is True and written.get("trim") is None  # the rerun trims again


def test_report_html_has_the_search_section_like_report_md(searched_out):
    page = (searched_out / "report.html").read_text()
    name = "pruned-trimmed-onnx-int8-searched"
    md = (searched_out / "report.md").read_text()
    assert f"## Search: `{name}`" in md
    for ident in ("search", f"search-{name}", f"search-why-{name}", f"search-trials-chart-{name}", f"search-trials-{name}",
                  f"sensitivity-{name}", f"sensitivity-chart-{name}"):
        assert f'id="{ident}"' in page, ident
    found = next(v for v in json.loads((searched_out / "report.json").read_text())["variants"] if v["name"] == name)
    trials = json.loads((searched_out / found["path"] / "search" / "search.json").read_text())
    section = page[page.index(f'id="search-trials-{name}"'):]
    section = section[:section.index("</table>")]
    assert section.count("<tr") == len(trials["trials"]) + 1 and 'class="selected"' in section
    assert '<a href="#search">search</a>' in page


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_search_section_renders_in_headless_chromium(searched_out, tmp_path):
    from test_report_html import rendered_dom

    dom = rendered_dom(searched_out / "report.html", tmp_path, 6000)
    assert 'id="search-trials-chart-pruned-trimmed-onnx-int8-searched"' in dom

