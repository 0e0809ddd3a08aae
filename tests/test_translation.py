"""Translation library pieces: parallel data with optional references, BLEU/chrF, agreement, calib_data/translation."""
from __future__ import annotations

import math
import random

import pytest
from conftest import write_csv, write_jsonl
from edge_compress.compress.errors import CompressError
from edge_compress.compress.tasks.translation.data import load_translation_data
from edge_compress.compress.tasks.translation.metrics import agreement, bleu_chrf, translation_metrics

# --------------------------------------------------------------------------- metrics


def test_bleu_by_hand_on_a_tiny_pair():
    """"the cat sat on the mat" vs "the cat is on the mat", sacrebleu defaults (13a, exp smoothing):
    1-grams 5/6, 2-grams 3/5, 3-grams 1/4, 4-grams 0/3 -> smoothed to 1/(2*3); equal lengths, so no brevity penalty."""
    expected = 100 * math.exp((math.log(5 / 6) + math.log(3 / 5) + math.log(1 / 4) + math.log(1 / 6)) / 4)
    scores = bleu_chrf(["the cat sat on the mat"], ["the cat is on the mat"])
    assert scores["bleu"] == pytest.approx(expected)  # 37.99
    assert bleu_chrf(["Das ist gut."], ["Das ist gut."]) == {"bleu": pytest.approx(100.0), "chrf": pytest.approx(100.0)}


def test_brevity_penalty_by_hand():
    """A 4-word output of a 6-word reference: precisions all 1, BP = exp(1 - 6/4)."""
    scores = bleu_chrf(["the cat is on"], ["the cat is on the mat"])
    assert scores["bleu"] == pytest.approx(100 * math.exp(1 - 6 / 4))


def test_chrf_by_hand_on_a_tiny_pair():
    """"abc" vs "abd": character 1-grams 2/3, 2-grams 1/2, 3-grams 0/1 (orders 4-6 absent: sacrebleu averages
    over the 3 effective orders); P = R = 7/18, and F-beta with P = R is P."""
    assert bleu_chrf(["abc"], ["abd"])["chrf"] == pytest.approx(100 * 7 / 18)


def test_agreement_with_the_float_model():
    outputs = ["Guten Morgen!", "Der Hund schläft.", "Ich kaufe einen Tisch."]
    baseline = ["Guten Morgen!", "Der Hund schläft.", "Ich kaufe ein Tisch."]
    scores = agreement(outputs, baseline)
    assert scores["exact_match_vs_float"] == pytest.approx(200 / 3)
    assert 0 < scores["bleu_vs_float"] < 100 and 0 < scores["chrf_vs_float"] < 100
    assert agreement(baseline, baseline)["bleu_vs_float"] == pytest.approx(100.0)
    only = translation_metrics(outputs, None, baseline)
    assert set(only) == {"exact_match_vs_float", "bleu_vs_float", "chrf_vs_float"}  # agreement-only
    both = translation_metrics(outputs, baseline, baseline)
    assert {"bleu", "chrf", "exact_match_vs_float"} <= set(both)
    with pytest.raises(CompressError, match="neither references nor"):
        translation_metrics(outputs, None, None)
    with pytest.raises(CompressError, match="2 translations but 3"):
        bleu_chrf(outputs[:2], baseline)


# --------------------------------------------------------------------------- data
def test_tsv_with_source_and_target(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text('source\ttarget\nGood morning!\tGuten Morgen!\nHe said "yes".\tEr sagte „ja".\n', encoding="utf-8")
    data = load_translation_data(str(path))
    assert data.sources == ["Good morning!", 'He said "yes".']
    assert data.references == ["Guten Morgen!", "Er sagte „ja\"."]
    assert not data.agreement_only and data.target_column == "target"


def test_custom_columns_and_datasets_translation_layout(tmp_path):
    path = write_csv(tmp_path / "p.csv", [("Hello", "Hallo")], header=("english", "german"))
    data = load_translation_data(str(path), source_column="english", target_column="german")
    assert (data.sources, data.references) == (["Hello"], ["Hallo"])
    wmt = write_jsonl(tmp_path / "wmt.jsonl", [{"translation": {"de": "Hallo", "en": "Hello"}}])
    data = load_translation_data(str(wmt))  # en / de are candidate source / target names
    assert (data.sources, data.references) == (["Hello"], ["Hallo"])


def test_missing_references_mean_agreement_only(tmp_path):
    sources_only = write_csv(tmp_path / "s.csv", [("Hello",), ("Good night",)], header=("source",))
    data = load_translation_data(str(sources_only))
    assert data.agreement_only and "no reference column" in data.agreement_only_reason
    partial = write_csv(tmp_path / "p.csv", [("Hello", "Hallo"), ("Good night", "")], header=("source", "target"))
    data = load_translation_data(str(partial))
    assert data.agreement_only and data.agreement_only_reason.startswith("1 of 2 rows")
    assert data.sources == ["Hello", "Good night"]


def test_empty_sources_are_an_error_with_a_fix(tmp_path):
    path = write_csv(tmp_path / "e.csv", [("Hello", "Hallo"), ("  ", "Leer"), ("", "Noch leer")], header=("source", "target"))
    with pytest.raises(CompressError, match=r"2 rows of .* have an empty 'source' \(data rows 2, 3\)") as err:
        load_translation_data(str(path))
    assert "fill in the source sentence" in err.value.hint


# --------------------------------------------------------------------------- calib_data/translation
def _pairs(name: str) -> list[tuple[str, str]]:
    from edge_compress.calib_data import ROOT

    lines = (ROOT / "translation" / f"{name}.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "source\ttarget"
    return [tuple(line.split("\t")) for line in lines[1:]]


def test_calib_data_translation_parses_with_varied_lengths():
    from edge_compress.calib_data import ROOT

    train, evals = (load_translation_data(str(ROOT / "translation" / f"{n}.tsv")) for n in ("train", "eval"))
    assert not train.agreement_only and not evals.agreement_only
    assert len(train.sources) + len(evals.sources) >= 500
    assert not set(train.sources) & set(evals.sources)
    words = [len(s.split()) for s in train.sources + evals.sources]
    assert min(words) <= 2 and sum(w >= 40 for w in words) >= 20 and sum(5 <= w < 40 for w in words) >= 300
    for source, target in _pairs("train") + _pairs("eval"):
        assert source.strip() == source and target.strip() == target
        assert source[0].isupper() and target[0].isupper()  # sentences and phrases start with a capital


def test_calib_data_translation_is_what_the_generator_writes():
    from edge_compress.calib_data import generate_translation

    train, evals = generate_translation.build(random.Random(generate_translation.SEED))
    assert (train, evals) == (_pairs("train"), _pairs("eval"))


@pytest.mark.parametrize("english, german", [
    ("the red car", "das rote Auto"),
    ("a new table", "ein neuer Tisch"),
])
def test_generator_german_noun_phrases(english, german):
    """Spot checks of the declension tables: nominative after der- and ein-words."""
    from edge_compress.calib_data.generate_translation import NP, OBJECTS

    by_name = {n.en: n for n in OBJECTS}
    adjective, noun = english.split()[1:]
    np_ = NP(by_name[noun], "def" if english.startswith("the") else "indef", False, adjective)
    assert (np_.en(), np_.de("nom")) == (english, german)


def test_generator_declension_across_cases():
    from edge_compress.calib_data.generate_translation import NP, NUMBERS, OBJECTS

    by_name = {n.en: n for n in OBJECTS}
    table = NP(by_name["table"], "indef", False, "new")
    assert [table.de(c) for c in ("nom", "acc", "dat")] == ["ein neuer Tisch", "einen neuen Tisch", "einem neuen Tisch"]
    assert table.de("acc", negated=True) == "keinen neuen Tisch"
    lamp = NP(by_name["lamp"], "my", False, "expensive")
    assert [lamp.de(c) for c in ("nom", "acc", "dat")] == ["meine teure Lampe", "meine teure Lampe", "meiner teuren Lampe"]
    books = NP(by_name["book"], "num", True, "old", NUMBERS[0])
    assert [books.de(c) for c in ("nom", "dat")] == ["zwei alte Bücher", "zwei alten Büchern"]
    cars = NP(by_name["car"], "def", True, None)
    assert cars.de("dat") == "den Autos"  # no dative -n after -s
    assert NP(by_name["apple"], "indef", False, "old").en() == "an old apple"
