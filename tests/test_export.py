"""export/onnx_export.py and export/optimize.py on their own: every tested architecture, both single-graph tasks."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import make_bert, make_encoder, make_gemma3, make_gpt2
from edge_compress.export.hf_manifest import finish_folder, read_manifest
from edge_compress.export.onnx_export import ExportError, export_to_onnx
from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification, AutoTokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")
MAKERS = {"bert": make_bert, "distilbert": lambda f: make_encoder(f, "distilbert"),
          "roberta": lambda f: make_encoder(f, "roberta"), "gpt2": make_gpt2, "gemma3_text": make_gemma3}
TEXTS = ["my order is late please", "a good film", "where is my refund money back today now please help me"]
QA_LABELS = {"num_labels": 2, "id2label": {0: "start", 1: "end"}, "label2id": {"start": 0, "end": 1}}


@pytest.mark.parametrize("task, auto, outputs", [
    ("text-classification", AutoModelForSequenceClassification, ("logits",)),
    ("question-answering", AutoModelForQuestionAnswering, ("start_logits", "end_logits"))])
@pytest.mark.parametrize("name", MAKERS)
def test_export_reproduces_the_model_and_loads_with_exported_model(name, task, auto, outputs, tmp_path):
    """Padded batches of another size and length than the traced sample: both axes are dynamic, the mask is honoured;
    the finished folder opens with transformers' ExportedModel and returns the same numbers."""
    if name == "gemma3_text" and task == "question-answering":
        pytest.skip("transformers has no Gemma 3 question-answering head")
    from transformers.exporters import ExportedModel

    ckpt = MAKERS[name](tmp_path / "ckpt")
    model = auto.from_pretrained(ckpt, **(QA_LABELS if task == "question-answering" else {})).eval()
    tokenizer = AutoTokenizer.from_pretrained(ckpt)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    folder = tmp_path / "onnx"
    path = export_to_onnx(model, folder, task, dict(tokenizer(TEXTS[:2], padding=True, return_tensors="pt")))
    model.config.save_pretrained(folder)
    finish_folder(folder, read_manifest(folder))
    feed = dict(tokenizer(TEXTS, padding=True, return_tensors="np"))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    got = session.run(list(outputs), {k: feed[k] for k in names})
    with torch.no_grad():
        expected = model(**{k: torch.from_numpy(v) for k, v in feed.items() if k in names})
    exported = ExportedModel.from_pretrained(folder)(**{k: torch.from_numpy(v) for k, v in feed.items()})
    for output, array in zip(outputs, got):
        np.testing.assert_allclose(array, getattr(expected, output).numpy(), atol=1e-5)
        np.testing.assert_allclose(getattr(exported, output).numpy(), array, atol=1e-6)


def test_export_failure_names_the_model_and_the_step(tiny_bert, tmp_path):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    sample = dict(tokenizer(TEXTS[:2], padding=True, return_tensors="pt"))
    with pytest.raises(ExportError, match="no single-graph ONNX export is defined for task 'summarization'"):
        export_to_onnx(model, tmp_path, "summarization", sample)
    sample["input_ids"] = sample["input_ids"] + 10_000  # out of the vocabulary: the forward itself fails
    with pytest.raises(ExportError, match=r"bert model \(BertForSequenceClassification\) failed while tracing: IndexError"):
        export_to_onnx(model, tmp_path, "text-classification", sample)


def test_finish_folder_externalizes_once_and_keeps_shape_tensors_inline(tmp_path):
    """A graph already stored as shipped is not written again; a small shape tensor stays readable at load time."""
    import onnx
    from edge_compress.export.hf_manifest import finish_folder
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(512, dtype=np.float32).reshape(2, 256), "weight")  # 2 KB: external
    shape = numpy_helper.from_array(np.array([256, 2], dtype=np.int64), "shape")  # 16 bytes: stays in the graph
    graph = helper.make_graph([helper.make_node("Reshape", ["weight", "shape"], ["flat"]),
                               helper.make_node("Add", ["flat", "x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [256, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [256, 2])], [weight, shape])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "model.onnx"))
    manifest = {"schema_version": 1, "components": {"model": {"file": "model.onnx"}}}

    finish_folder(tmp_path, manifest)
    stored = onnx.load(str(tmp_path / "model.onnx"), load_external_data=False)
    where = {t.name: t.data_location for t in stored.graph.initializer}
    assert where == {"weight": TensorProto.EXTERNAL, "shape": TensorProto.DEFAULT}
    first = [(p.name, p.stat().st_mtime_ns) for p in sorted(tmp_path.iterdir())]

    finish_folder(tmp_path, manifest)  # already as shipped: the graph and its weights are not rewritten
    assert [(p.name, p.stat().st_mtime_ns) for p in sorted(tmp_path.iterdir()) if p.name != "export.json"] == \
        [entry for entry in first if entry[0] != "export.json"]
    x = np.ones((256, 2), dtype=np.float32)
    y = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(y, np.arange(512, dtype=np.float32).reshape(256, 2) + 1)
