"""export/onnx_export.py and export/optimize.py on their own: every tested architecture, both single-graph tasks."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import make_bert, make_encoder, make_gemma3, make_gpt2
from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification, AutoTokenizer

from export.hf_manifest import finish_folder, read_manifest
from export.onnx_export import ExportError, export_to_onnx

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
