"""`compress run --task question-answering` and `compress answer` end to end, on a tiny BERT-QA trained in the test."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import _bert_tokenizer, write_jsonl
from edge_compress.compress.cli import app
from edge_compress.compress.tasks.question_answering.data import Answer, QAExample
from edge_compress.compress.tasks.question_answering.features import prepare_features
from edge_compress.compress.tasks.question_answering.postprocess import postprocess
from typer.testing import CliRunner

VOCAB = ["the", "a", "my", "order", "is", "late", "please", "cancel", "it", "was", "great", "terrible", "movie", "film",
         "good", "bad", "not", "very", "love", "hate", "this", "package", "arrived", "never"]
QUESTION = "where is my refund"
VARIANTS = ["onnx-fp32", "onnx-fp32-optimized", "onnx-int8-dynamic", "onnx-int8-static"]
# Windows of 48 tokens with a stride of 16: contexts of 20-90 one-token words take one to four windows.
RECIPE = """
task: question-answering
qa:
  max_length: 48
  doc_stride: 16
  batch_size: 4
  calib_windows: 32
validate:
  latency_samples: 8
  warmup: 1
"""


def _examples(n: int, seed: int, words: tuple[int, int] = (20, 90)) -> list[QAExample]:
    """Contexts of one-token words with the answer "money back" somewhere in them."""
    rng = random.Random(seed)
    examples = []
    for i in range(n):
        tokens = [rng.choice(VOCAB) for _ in range(rng.randrange(*words))]
        at = rng.randrange(0, len(tokens) - 2)
        tokens[at:at + 2] = ["money", "back"]
        start = len(" ".join(tokens[:at])) + (1 if at else 0)
        examples.append(QAExample(f"s{seed}-{i}", QUESTION, " ".join(tokens), [Answer("money back", start)]))
    return examples


def _squad(examples: list[QAExample], extra: list[dict] = ()) -> dict:
    qas = [{"id": e.id, "question": e.question, "context": e.context,
            "answers": [{"text": a.text, "answer_start": a.start} for a in e.answers]} for e in examples]
    paragraphs = [{"context": q.pop("context"), "qas": [q]} for q in [*qas, *extra]]
    return {"version": "1.1", "data": [{"title": "generated", "paragraphs": paragraphs}]}


@pytest.fixture(scope="module")
def qa_model(tmp_path_factory) -> Path:
    """A tiny random BertForQuestionAnswering, trained for a few seconds to find "money back"."""
    import torch
    from transformers import BertConfig, BertForQuestionAnswering

    folder = tmp_path_factory.mktemp("ckpt") / "bert-qa"
    folder.mkdir()
    tokenizer = _bert_tokenizer(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128)
    model = BertForQuestionAnswering(config)
    train = prepare_features(tokenizer, _examples(48, seed=1), max_length=48, doc_stride=16, with_labels=True)
    batch = {k: torch.from_numpy(v) for k, v in train.inputs.items()}
    labels = {"start_positions": torch.from_numpy(train.start_positions), "end_positions": torch.from_numpy(train.end_positions)}
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model.train()
    for _ in range(40):
        optimizer.zero_grad()
        model(**batch, **labels).loss.backward()
        optimizer.step()
    torch.set_num_threads(threads)
    model.eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def qa_data(tmp_path_factory) -> Path:
    """SQuAD JSON eval (with one answer that is not in its context, one answer_start that is off) and train beside it."""
    folder = tmp_path_factory.mktemp("qa-data")
    eval_examples = _examples(20, seed=2)
    off = eval_examples[0]
    bad = [{"id": "not-in-context", "question": QUESTION, "context": off.context,
            "answers": [{"text": "a fish", "answer_start": 0}]},
           {"id": "moved", "question": QUESTION, "context": off.context,
            "answers": [{"text": "money back", "answer_start": off.answers[0].start + 3}]}]
    (folder / "eval.json").write_text(json.dumps(_squad(eval_examples, bad)))
    (folder / "train.json").write_text(json.dumps(_squad(_examples(30, seed=3))))
    (folder / "recipe.yaml").write_text(RECIPE)
    return folder


def _run(model: Path, out: Path, eval_data: Path, recipe: Path, *extra: str):
    return CliRunner().invoke(app, ["run", str(model), "--out", str(out), "--eval-data", str(eval_data), "--recipe", str(recipe),
                                    "--threads", "1", *extra])


@pytest.fixture(scope="module")
def qa_run(qa_model, qa_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "qa"
    result = _run(qa_model, out, qa_data / "eval.json", qa_data / "recipe.yaml")
    assert result.exit_code == 0, result.output
    return out


def test_every_variant_is_built_and_scored_by_em_f1(qa_run, bert_report_keys):
    report = json.loads((qa_run / "report.json").read_text())
    assert report["task"] == "question-answering" and report["metric"] == "f1" and report["higher_is_better"]
    assert [v["name"] for v in report["variants"]] == VARIANTS
    for entry in [report["baseline"], *report["variants"]]:
        assert entry.get("error") is None, entry.get("error")
        assert bert_report_keys <= entry.keys()  # the same fields as every other task's entries
        assert {"exact_match", "f1", "latency_ms_real_lengths", "latency_ms_full_window"} <= entry["metrics"].keys()
        assert entry["latency_ms"]["batch_size"] == 1 and entry["latency_ms_batch"]["batch_size"] == 4
        assert entry["latency_ms"]["seq_len"] <= 48 and entry["metrics_batch"] is None
    assert report["baseline"]["metrics"]["f1"] > 50  # the trained model finds the answer, across windows
    fp32 = report["variants"][0]["metrics"]
    assert fp32["agreement"] == 100 and fp32["agreement_f1"] == 100 and fp32["max_abs_logit_diff"] < 1e-3
    assert fp32["f1"] == report["baseline"]["metrics"]["f1"]
    assert report["selected"] in VARIANTS + [None]
    assert report["calibration"]["source"].endswith("train.json")  # the sibling train file, as for classifiers
    assert (qa_run / "report.md").read_text().count("|") > 20


def test_eval_section_reports_windows_and_bad_answers(qa_run):
    section = json.loads((qa_run / "report.json").read_text())["eval"]
    assert section["labelled"] and section["samples"] == 21  # 20 + the moved one; the one not in its context is skipped
    assert section["skipped"] == 1
    assert section["skipped_examples"] == [{"id": "not-in-context", "reason": "answer 'a fish' is not in the context"}]
    assert section["moved"] == 1 and section["moved_examples"][0]["id"] == "moved"
    assert section["windows"] > section["samples"] and section["questions_needing_stride"] > 0  # long contexts use the stride
    assert (section["max_length"], section["doc_stride"]) == (48, 16)


def test_int8_variants_run_integer_kernels(qa_run):
    report = json.loads((qa_run / "report.json").read_text())
    by_name = {v["name"]: v for v in report["variants"]}
    for name in ("onnx-int8-dynamic", "onnx-int8-static"):
        graph = by_name[name]["graph"]
        assert sum(graph["int8_ops"].values()) >= 8, graph  # 2 layers x (4 attention + 2 FFN) matmuls at least
        assert graph["float_weight_matmuls"] == 0, graph  # every Linear, the span head included, is int8
        assert by_name[name]["metrics"]["agreement_f1"] > 50


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_folders_load_in_onnxruntime_and_exported_model(qa_run, variant):
    import onnxruntime as ort
    from transformers import AutoTokenizer
    from transformers.exporters import ExportedModel
    from transformers.modeling_outputs import QuestionAnsweringModelOutput

    folder = qa_run / "variants" / variant
    tokenizer = AutoTokenizer.from_pretrained(folder)
    inputs = tokenizer(QUESTION, "my order money back please", return_tensors="np")
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    start, end = session.run(["start_logits", "end_logits"], {i.name: inputs[i.name] for i in session.get_inputs()})
    assert start.shape == end.shape == inputs["input_ids"].shape and np.isfinite(start).all()
    out = ExportedModel.from_pretrained(folder)(**tokenizer(QUESTION, "my order money back please", return_tensors="pt"))
    assert isinstance(out, QuestionAnsweringModelOutput)
    np.testing.assert_allclose(out.start_logits.numpy(), start, atol=1e-5)
    np.testing.assert_allclose(out.end_logits.numpy(), end, atol=1e-5)
    assert json.loads((folder / "manifest.json").read_text())["variant"] == variant


def _torch_span(model_dir: Path, example: QAExample, max_length: int = 48, doc_stride: int = 16) -> str:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir).eval()
    features = prepare_features(tokenizer, [example], max_length, doc_stride)
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in features.inputs.items()})
    return postprocess([example], features, out.start_logits.numpy(), out.end_logits.numpy())[example.id].text


def _answer(*args: str):
    return CliRunner().invoke(app, ["answer", *map(str, args)])


def test_answer_gives_the_float_models_span(qa_run, qa_model):
    example = _examples(1, seed=7, words=(25, 30))[0]
    result = _answer(qa_run / "variants" / "onnx-fp32", "--question", QUESTION, "--context", example.context, "--threads", "1")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == _torch_span(qa_model, example)
    # an OUT folder answers with its selected (else first built) variant
    assert _answer(qa_run, "--question", QUESTION, "--context", example.context).exit_code == 0


def test_answer_reads_a_context_far_longer_than_one_window_with_the_stride(qa_run, qa_model):
    """400 words (over 8 windows of 48 tokens): the answer near the end is found, so nothing was truncated."""
    rng = random.Random(11)
    tokens = [rng.choice(VOCAB) for _ in range(400)]
    tokens[371:373] = ["money", "back"]
    context = " ".join(tokens)
    example = QAExample("long", QUESTION, context, None)
    from transformers import AutoTokenizer

    windows = len(prepare_features(AutoTokenizer.from_pretrained(qa_model), [example], 48, 16))
    assert windows >= 8
    result = _answer(qa_run / "variants" / "onnx-fp32", "--question", QUESTION, "--context", context)
    assert result.exit_code == 0, result.output
    assert f"{windows} windows" in result.output
    assert result.output.splitlines()[0] == _torch_span(qa_model, example) == "money back"


@pytest.mark.parametrize("question, context, empty", [("  ", "my order money back", "question"), (QUESTION, "", "context")])
def test_answer_refuses_an_empty_question_or_context(qa_run, question, context, empty):
    result = _answer(qa_run, "--question", question, "--context", context)
    assert result.exit_code == 2
    assert f"error: the {empty} is empty" in result.output and "fix:" in result.output


def test_answer_refuses_a_run_of_another_task(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps({"task": "text-classification", "variants": []}))
    result = _answer(tmp_path, "--question", QUESTION, "--context", "my order")
    assert result.exit_code == 2 and "not a question-answering one" in result.output


def test_unlabelled_eval_data_is_scored_by_agreement_only(qa_model, qa_data, tmp_path):
    """JSONL rows without answers, in columns named by the recipe (qa.question_column / qa.context_column)."""
    rows = [{"id": e.id, "q_text": e.question, "doc": e.context} for e in _examples(12, seed=5)]
    eval_file = write_jsonl(tmp_path / "eval.jsonl", rows)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.replace("qa:\n", "qa:\n  question_column: q_text\n  context_column: doc\n")
                      + "quantize:\n  static:\n    enabled: false\noptimize:\n  enabled: false\n")
    out = tmp_path / "out"
    result = _run(qa_model, out, eval_file, recipe, "--calib-data", str(qa_data / "train.json"))
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["metric"] == "agreement_f1"
    assert not report["eval"]["labelled"] and "agreement with the float model only" in report["eval"]["metrics"]
    assert "f1" not in report["baseline"]["metrics"] and "exact_match" not in report["baseline"]["metrics"]
    assert report["baseline"]["metrics"]["agreement_f1"] == 100
    fp32 = report["variants"][0]
    assert fp32["metrics"]["agreement_f1"] == 100 and "f1" not in fp32["metrics"]
    assert report["selected"] is not None


def test_prune_and_qat_recipes_are_refused_before_any_work(qa_model, qa_data, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE + "prune:\n  head_fraction: 0.5\nqat:\n  epochs: 1\n")
    result = _run(qa_model, tmp_path / "out", qa_data / "eval.json", recipe)
    assert result.exit_code == 2
    assert "prune and qat stages are not implemented for question-answering" in result.output
    assert not (tmp_path / "out").exists()


def test_an_architecture_without_a_span_head_is_refused_with_a_fix(qa_data, tmp_path):
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES

    assert "ctrl" not in MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES
    folder = tmp_path / "ckpt"
    config = AutoConfig.for_model("ctrl")
    folder.mkdir()
    config.save_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"")
    result = _run(folder, tmp_path / "out", qa_data / "eval.json", qa_data / "recipe.yaml")
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and "extractive question answering" in output and "fix:" in output


def test_mobile_package_is_scored_by_em_f1(qa_model, qa_data, tmp_path):
    """--package-mobile: the selected variant in ORT format, scored (EM/F1, agreement) and timed on this host."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE + "quantize:\n  static:\n    enabled: false\n")
    out = tmp_path / "out"
    result = _run(qa_model, out, qa_data / "eval.json", recipe, "--package-mobile")
    assert result.exit_code == 0, result.output
    package = json.loads((out / "report.json").read_text())["package"]
    assert package["variant"] == json.loads((out / "report.json").read_text())["selected"]
    check = package["checks"]["ort_model"]
    assert check["error"] is None and check["metrics"]["agreement"] == 100 and "f1" in check["metrics"]
    assert (out / package["ort_model"]).exists() and (out / "package" / "tokenizer.json").exists()


@pytest.mark.parametrize("old, new, message", [
    ("max_length: 48", "max_length: 256", "qa.max_length 256 is longer than the model's 128 positions"),
    ("doc_stride: 16", "doc_stride: 48", "doc_stride (48) must be smaller than max_length (48)")])
def test_impossible_windows_are_refused_before_any_work(qa_model, qa_data, tmp_path, old, new, message):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.replace(old, new))
    result = _run(qa_model, tmp_path / "out", qa_data / "eval.json", recipe)
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and message in output and "fix:" in output, output
    assert not (tmp_path / "out").exists()
