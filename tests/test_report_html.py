"""report.html in a real headless browser, the size breakdown, per-class metrics, flips, noise, model cards and the
recipe round trip, on tiny random checkpoints run through `compress.run.pipeline.run` (as the Python API would)."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import FAST_RECIPE
from edge_compress.compress.recipe import Recipe, load_recipe
from edge_compress.compress.report.analysis import classification_analysis, confusion, generation_analysis, per_class
from edge_compress.compress.report.noise import accuracy_noise, describe, perplexity_noise, sign_test
from edge_compress.compress.report.schema import Noise
from edge_compress.compress.report.select import select
from edge_compress.compress.run.pipeline import RunOptions, options_from_recipe, run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _recipe(**extra) -> Recipe:
    data = yaml.safe_load(FAST_RECIPE)
    data.setdefault("validate", {})["threads"] = 1
    return Recipe.model_validate({**data, **extra})


@pytest.fixture(scope="module")
def bert_out(tiny_bert, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("html") / "out"
    run(RunOptions(str(tiny_bert), out, str(data_dir / "eval.csv")), _recipe())
    return out


def _browser(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """Debian's chromium, headless, with a fresh profile and nothing that reaches the network."""
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={profile}", "--hide-scrollbars", *args],
                          check=False, capture_output=True, text=True, timeout=120)


def rendered_dom(html: Path, tmp_path: Path, height: int) -> str:
    """Screenshot `html` in headless Chromium (it must paint a real page) and return the DOM it built."""
    page = html.as_uri()
    shot = tmp_path / f"{html.stem}.png"
    result = _browser([f"--window-size=1280,{height}", f"--screenshot={shot}", page], tmp_path)
    assert shot.exists() and shot.stat().st_size > 50_000, result.stderr[-2000:]
    return _browser(["--dump-dom", page], tmp_path).stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_html_renders_in_headless_chromium_with_summary_plots_and_tables(bert_out, tmp_path):
    dom = rendered_dom(bert_out / "report.html", tmp_path, 2400)
    for ident in ("summary", "kpi-smaller", "kpi-faster", "kpi-metric", "kpi-budget", "pareto-plot", "variants-table",
                  "size-chart", "size-table", "focus-errors"):
        assert f'id="{ident}"' in dom, ident
    report = json.loads((bert_out / "report.json").read_text())
    assert f"Ship <code>{report['selected']}</code>" in dom
    focus = report["selected"]
    assert f'id="per-class-{focus}"' in dom and f'id="confusion-{focus}"' in dom
    assert dom.count("data:image/png;base64,") == 2
    # every model is a row of the table, numbered as in the plots
    rows = re.findall(r"<tr[^>]*><td class=\"l\">(\d+)</td>", dom.split('id="variants-table"')[1].split("</table>")[0])
    assert rows == [str(i + 1) for i in range(1 + len(report["variants"]))]


def test_html_is_self_contained(bert_out):
    page = (bert_out / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page and "@import" not in page and "url(" not in page
    assert "What it got wrong" in page and "Where the size sits" in page


def test_size_breakdown_sums_to_the_files_initializer_bytes(bert_out):
    import onnx
    from onnx import numpy_helper

    report = json.loads((bert_out / "report.json").read_text())
    for entry in report["variants"]:
        breakdown = entry["size_breakdown"]
        model = onnx.load(str(bert_out / entry["path"] / "model.onnx"))
        stored = sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer)
        assert sum(p["bytes"] for p in breakdown["parts"].values()) == breakdown["initializer_bytes"] == stored, entry["name"]
        assert abs(sum(p["share"] for p in breakdown["parts"].values()) - 1) < 1e-3
        # a BERT's weights are nearly all claimed by the table: embeddings, the blocks and the head
        assert {"embeddings", "encoder blocks", "head"} <= breakdown["parts"].keys(), breakdown
        assert breakdown["parts"].get("other", {"share": 0})["share"] < 0.02
    base = report["baseline"]["size_breakdown"]
    assert base["family"] == "encoder" and base["parts"]["embeddings"]["bytes"] > 0


def test_model_card_in_every_variant_folder_and_its_snippet_runs(bert_out):
    report = json.loads((bert_out / "report.json").read_text())
    for entry in report["variants"]:
        card = (bert_out / entry["path"] / "README.md").read_text()
        assert card.startswith(f"# {entry['name']}") and "## How it was made" in card and "## How to load it" in card
        assert f"{entry['metrics']['accuracy']:.2f}" in card and "onnxruntime" in card
        plain, exported = (block.split("```")[0] for block in card.split("```python\n")[1:3])
        scope: dict = {}
        exec(plain.replace('folder = "."', f'folder = "{bert_out / entry["path"]}"'), scope)  # noqa: S102  (our own card)
        assert scope["logits"].shape == (1, 3)
        exec(exported, scope)  # noqa: S102  (the ExportedModel snippet, same folder and tokenizer)
        assert np.allclose(scope["outputs"].logits.numpy(), scope["logits"], atol=1e-5)


def test_recipe_yaml_reruns_the_same_run(bert_out, tmp_path):
    recipe = load_recipe(str(bert_out / "recipe.yaml"))
    assert recipe.model and recipe.data.eval and recipe.data.calib and recipe.data.text_column == "text"
    assert recipe.validate_.threads == 1 and recipe.quantize.preset != "auto"
    again = tmp_path / "again"
    run(options_from_recipe(recipe, again), recipe)
    first, second = (json.loads((o / "report.json").read_text()) for o in (bert_out, again))
    for a, b in zip([first["baseline"], *first["variants"]], [second["baseline"], *second["variants"]]):
        assert (a["name"], a["metrics"], a["size_bytes"], a["analysis"], a.get("noise")) == \
               (b["name"], b["metrics"], b["size_bytes"], b["analysis"], b.get("noise"))
    assert first["eval"] == second["eval"] and first["calibration"] == second["calibration"]
    assert (again / "recipe.yaml").read_text() == (bert_out / "recipe.yaml").read_text()


def test_recipe_without_model_cannot_make_options(tmp_path):
    from edge_compress.compress.errors import CompressError

    with pytest.raises(CompressError, match="names no model"):
        options_from_recipe(Recipe(), tmp_path / "out")


# --- pure pieces on constructed cases ---------------------------------------------------------------------------------

def test_per_class_metrics_and_confusion_against_hand_computed_values():
    labels = np.array([0, 0, 0, 1, 1, 2])
    predictions = np.array([0, 0, 1, 1, 2, 2])
    # class 0: tp 2, fp 0, fn 1 -> P 100, R 66.67, F1 80; class 1: tp 1, fp 1, fn 1 -> 50/50/50; class 2: tp 1, fp 1, fn 0
    rows = per_class(predictions, labels, ["a", "b", "c"])
    assert [(r.label, r.precision, r.recall, r.f1, r.support) for r in rows] == [
        ("a", 100.0, 66.67, 80.0, 3), ("b", 50.0, 50.0, 50.0, 2), ("c", 50.0, 100.0, 66.67, 1)]
    assert confusion(predictions, labels, 3) == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_flipped_texts_are_listed_with_their_labels():
    texts = [f"text {i}" for i in range(6)]
    labels = np.array([0, 1, 1, 0, 1, 0])
    base = np.array([0, 1, 0, 0, 1, 1])
    variant = np.array([0, 0, 1, 0, 1, 0])   # text 1 flipped to wrong, 2 and 5 to right
    analysis = classification_analysis(variant, base, labels, ["neg", "pos"], texts, examples=2)
    assert analysis.flip_count == 3 and analysis.compared == 6
    assert [(f.index, f.text, f.label, f.baseline, f.variant) for f in analysis.flips] == [
        (1, "text 1", "pos", "pos", "neg"), (2, "text 2", "pos", "neg", "pos")]


def test_flips_through_the_classifier_evaluation():
    from edge_compress.compress.tasks.base import Scored
    from edge_compress.compress.tasks.text_classification.evaluate import ClassifierEvaluation

    evaluation = ClassifierEvaluation.__new__(ClassifierEvaluation)   # only what `details` reads
    evaluation.raw_texts, evaluation.labels, evaluation.label_names = ["x", "y", "z"], [0, 1, 1], ["neg", "pos"]
    base = Scored(np.array([[2.0, 1.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32))
    variant = Scored(np.array([[2.0, 1.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32))
    noise, analysis = evaluation.details(variant, base, examples=10)
    assert [f.text for f in analysis.flips] == ["y", "z"] and (noise.gained, noise.lost) == (1, 1)
    assert noise.delta == 0.0 and noise.within_noise
    _, baseline_analysis = evaluation.details(base, None, examples=10)
    assert baseline_analysis.flips == [] and baseline_analysis.per_class[0].support == 1


def test_lm_prompts_whose_continuation_diverges_earliest_first():
    base = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    variant = [[1, 2, 0], [4, 5, 6], [0, 8, 9]]
    analysis = generation_analysis(variant, base, ["p0", "p1", "p2"], lambda ids: " ".join(map(str, ids)))
    assert analysis.flip_count == 2 and analysis.compared == 3
    assert [(f.index, f.first_difference, f.variant) for f in analysis.flips] == [(2, 0, "0 8 9"), (0, 2, "1 2 0")]


def test_two_texts_on_350_are_within_noise_and_thirty_are_not():
    base = np.zeros(350, dtype=bool)
    base[:300] = True
    two = base.copy()
    two[300:302] = True                       # +2 texts = +0.57 points
    noise = accuracy_noise(two, base)
    assert noise.delta == pytest.approx(0.5714, abs=1e-4) and noise.low <= 0 <= noise.high and noise.within_noise
    assert (noise.gained, noise.lost) == (2, 0) and noise.p_value == 0.5
    assert describe(noise, noise.delta) == "within noise"
    assert accuracy_noise(two, base) == noise                         # seeded: the same interval every run
    thirty = base.copy()
    thirty[300:330] = True
    strong = accuracy_noise(thirty, base)
    assert strong.low > 0 and not strong.within_noise and strong.p_value < 1e-8
    assert describe(strong, strong.delta).startswith("+8.57 pts [")


def test_sign_test_is_exact():
    assert sign_test(0, 0) == 1.0
    assert sign_test(3, 0) == 0.25              # 2 * 0.5**3
    assert sign_test(1, 4) == pytest.approx(2 * (1 + 5) / 32)


def test_perplexity_noise_pairs_windows():
    rng = np.random.default_rng(1)
    tokens = np.full(40, 32)
    base = rng.uniform(60, 90, 40)
    same = perplexity_noise(base + rng.normal(0, 0.05, 40), base, tokens)
    assert same.within_noise and same.items == 40
    worse = perplexity_noise(base + 8.0, base, tokens)          # +0.25 nats per token in every window
    assert worse.low > 0 and worse.delta > 0


def _entry(name, acc, p50, size, noise=None):
    from edge_compress.compress.report.schema import Entry
    from edge_compress.export.timing import RoundLatency

    latency = RoundLatency(p50, p50, p50, 1, 10.0, 20, (p50 - 0.1, p50, p50 + 0.1))
    return Entry(name, f"variants/{name}", "onnx", "fp32", "CPUExecutionProvider", {"accuracy": acc}, latency_ms=latency,
                 size_bytes=size, noise=noise)


def test_a_tie_is_not_decided_by_a_change_within_noise():
    base = _entry("pytorch", 85.71, 10.0, 400)
    within = Noise("m", 0.57, -0.29, 1.43, 2000, 0, 350, 2, 0, 0.5)
    bigger = _entry("bigger", 86.28, 1.0, 90, within)             # +0.57, by chance
    smaller = _entry("smaller", 85.71, 1.05, 50, Noise("m", 0.0, -0.57, 0.57, 2000, 0, 350, 1, 1, 1.0))
    chosen = select(base, [bigger, smaller], "accuracy", True, 1.0)
    assert chosen.name == "smaller" and "within noise" in chosen.reason
    # the same accuracies without a noise figure: the higher one wins the tie, as before
    plain = select(base, [_entry("bigger", 86.28, 1.0, 90), _entry("smaller", 85.71, 1.05, 50)], "accuracy", True, 1.0)
    assert plain.name == "bigger"


@pytest.mark.timeout(600)
def test_causal_lm_report_html_cards_and_divergences(tmp_path):
    from test_causal_lm import LM_TEXT_EVAL, LM_TEXT_TRAIN, SPEC, make_tiny_lm

    ckpt = make_tiny_lm(tmp_path / "lm")
    spec = {**SPEC, "int8_static": False, "int8_weight_only": False}
    out = tmp_path / "out"
    run(RunOptions(str(ckpt), out, str(LM_TEXT_EVAL), calib_data=str(LM_TEXT_TRAIN)),
        _recipe(task="causal-lm", lm=spec, max_accuracy_drop=5))
    report = json.loads((out / "report.json").read_text())
    page = (out / "report.html").read_text()
    assert 'id="summary"' in page and 'id="size-table"' in page and "decoder blocks" in page
    for entry in report["variants"]:
        assert entry["noise"]["items"] > 1 and entry["noise"]["p_value"] is None
        assert entry["analysis"]["compared"] == SPEC["prompts"]
        assert entry["size_breakdown"]["family"] == "gpt2" and "embeddings" in entry["size_breakdown"]["parts"]
        assert "ExportedModel.from_pretrained" in (out / entry["path"] / "README.md").read_text()
        for flip in entry["analysis"]["flips"]:
            assert flip["baseline"] != flip["variant"] and f'id="flips-{entry["name"]}"' in page
    recipe = load_recipe(str(out / "recipe.yaml"))
    assert recipe.task == "causal-lm" and recipe.data.calib == str(LM_TEXT_TRAIN.resolve())


def test_html_says_when_nothing_is_selected_and_escapes_eval_texts(bert_out):
    from edge_compress.compress.report.html import render

    report = json.loads((bert_out / "report.json").read_text())
    report["selected"], report["selection_reason"] = None, "no variant stays within 0 points"
    victim = report["variants"][-1]
    victim["analysis"]["flips"] = [{"index": 0, "text": "<script>alert(1)</script>", "baseline": "neutral",
                                    "variant": "positive", "label": "neutral", "first_difference": None}]
    victim["analysis"]["flip_count"] = 1
    page = render(report, None)
    assert "No variant selected; closest" in page and 'class="summary none"' in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
