"""compress.search on tiny ONNX graphs built here (no exporter, no checkpoint): sensitivity order and cache,
budget, best-so-far on disk (also after a measure error and a SIGKILL), Pareto front, report pieces."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from edge_compress.compress.errors import CompressError
from edge_compress.compress.quantize.presets import PRESETS
from edge_compress.compress.search import pareto, report
from edge_compress.compress.search.executors import InlineExecutor, make_executor
from edge_compress.compress.search.schemes import Int4WeightOnly, Int8Dynamic
from edge_compress.compress.search.search import Budget, read_best, search
from edge_compress.compress.search.sensitivity import sensitivity
from onnx import TensorProto, helper, numpy_helper

HIDDEN, CLASSES = 64, 8
OUTLIER = "mm_1"  # the MatMul whose weights carry huge rows (and whose input never uses those rows)
OUTLIER_ROWS = [0, 32]  # one per int4 block of 32 along the input dimension


def tiny_graph(path: Path, layers: int = 4, seed: int = 0) -> Path:
    """x -> layers x (MatMul, Relu) -> MatMul -> logits. Layer OUTLIER's weight rows OUTLIER_ROWS are 60 everywhere
    while its input is always 0 there: the float output ignores them, but they set every column's int8 scale (every
    int4 block's), so the rest of that weight rounds to a few levels -- the unit a sensitivity pass must rank first."""
    rng = np.random.default_rng(seed)
    nodes, inits, current = [], [], "x"
    for i in range(layers):
        w = rng.normal(0, 1 / np.sqrt(HIDDEN), (HIDDEN, HIDDEN)).astype(np.float32)
        if f"mm_{i + 1}" == OUTLIER:
            w[:, OUTLIER_ROWS] = 0.0  # so the outlier layer's input is always 0 on those rows
        if f"mm_{i}" == OUTLIER:
            w[OUTLIER_ROWS, :] = 60.0
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes += [helper.make_node("MatMul", [current, f"w{i}"], [f"h{i}"], name=f"mm_{i}"),
                  helper.make_node("Relu", [f"h{i}"], [f"r{i}"], name=f"relu_{i}")]
        current = f"r{i}"
    inits.append(numpy_helper.from_array(rng.normal(0, 1 / np.sqrt(HIDDEN), (HIDDEN, CLASSES)).astype(np.float32), "head"))
    nodes.append(helper.make_node("MatMul", [current, "head"], ["logits"], name="head_mm"))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", HIDDEN])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", CLASSES])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def feeds(n: int = 4, seed: int = 1) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = np.abs(rng.normal(0, 1, (8, HIDDEN))).astype(np.float32)
        out.append({"x": x})
    return out


INT8 = Int8Dynamic(PRESETS["vnni"])
# Most tests run candidates inline (fast, deterministic); the library's default, a local process pool, is tested apart.
inline_search = partial(search, executor=InlineExecutor())
inline_sensitivity = partial(sensitivity, executor=InlineExecutor())
INT4 = Int4WeightOnly(block_size=32)


@pytest.mark.parametrize("scheme", [INT8, INT4], ids=["int8", "int4"])
def test_sensitivity_ranks_the_outlier_unit_first(tmp_path, scheme):
    src = tiny_graph(tmp_path / "fp32.onnx")
    result = sensitivity(src, scheme, feeds(), executor=InlineExecutor())
    units = [r.unit for r in result.rows]
    expected = {"mm_0", "mm_1", "mm_2", "mm_3"} | ({"head_mm"} if scheme is INT8 else set())  # LM: the logits head is not a unit
    assert set(units) == expected
    assert units[0] == OUTLIER
    assert result.rows[0].score > 5 * result.rows[1].score
    assert result.tolerant_first()[-1] == OUTLIER
    assert all(r.kl >= 0 for r in result.rows)


def test_leave_one_out_agrees_on_the_outlier(tmp_path):
    src = tiny_graph(tmp_path / "fp32.onnx")
    result = sensitivity(src, INT8, feeds(), direction="loo", executor=InlineExecutor())
    assert result.rows[0].unit == OUTLIER
    assert result.base_kl > 0  # the base of leave-one-out is everything quantized


def test_sensitivity_cache_is_hit_on_rerun_and_missed_on_new_feeds(tmp_path, monkeypatch):
    src, cache = tiny_graph(tmp_path / "fp32.onnx"), tmp_path / "cache.json"
    first = inline_sensitivity(src, INT8, feeds(), cache=cache, metric=_first_logit)
    assert all(r.metric is not None for r in first.rows) and first.proxy_check is not None

    def boom(self, src, dst, low):
        raise AssertionError("rebuilt a cached candidate")

    monkeypatch.setattr(Int8Dynamic, "build", boom)
    again = inline_sensitivity(src, INT8, feeds(), cache=cache, metric=_first_logit)
    assert again == first
    with pytest.raises(AssertionError, match="rebuilt"):
        inline_sensitivity(src, INT8, feeds(seed=2), cache=cache, metric=_first_logit)


def _first_logit(path: Path) -> float:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return float(sess.run(["logits"], feeds(1)[0])[0][0, 0])


def test_sensitivity_on_a_process_pool_matches_inline(tmp_path):
    src = tiny_graph(tmp_path / "fp32.onnx")
    inline = sensitivity(src, INT8, feeds(), executor=InlineExecutor())
    with make_executor("process", 2) as pool:
        pooled = sensitivity(src, INT8, feeds(), executor=pool)
    assert [r.unit for r in pooled.rows] == [r.unit for r in inline.rows]
    assert [r.kl for r in pooled.rows] == pytest.approx([r.kl for r in inline.rows])


# --- search --------------------------------------------------------------------------------------------------------

class Agreement:
    """A real measure: argmax agreement (%) with the float graph on fixed inputs; picklable for the process pool."""

    def __init__(self, src: Path) -> None:
        self.src = str(src)

    def __call__(self, candidate) -> dict[str, float]:
        x = np.concatenate([f["x"] for f in feeds(16, seed=3)])
        ref = ort.InferenceSession(self.src, providers=["CPUExecutionProvider"]).run(["logits"], {"x": x})[0]
        got = ort.InferenceSession(str(candidate.path), providers=["CPUExecutionProvider"]).run(["logits"], {"x": x})[0]
        return {"metric": 100.0 * float((ref.argmax(-1) == got.argmax(-1)).mean())}


def _quantized_nodes(path: Path) -> int:
    return sum(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in onnx.load(str(path)).graph.node)


def test_search_keeps_the_sensitive_unit_float_within_budget(tmp_path):
    src = tiny_graph(tmp_path / "fp32.onnx")
    order = sensitivity(src, INT8, feeds()).tolerant_first()
    budget = Budget(baseline=100.0, max_drop=2.0)
    with make_executor("process", 2) as pool:
        result = search(src, INT8, order, Agreement(src), budget, tmp_path / "out", executor=pool, parallel=2)
    assert result.best is not None and result.best["drop"] <= 2.0
    assert all(t["within"] == (t["drop"] <= 2.0) for t in result.trials)
    assert OUTLIER not in result.best["low"] and len(result.best["low"]) == 4
    path, record = read_best(tmp_path / "out")
    ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert record["trial"]["low"] == result.best["low"] and record["fallback"] == [OUTLIER]
    assert _quantized_nodes(path) == len(record["trial"]["low"])
    saved = json.loads((tmp_path / "out" / "search.json").read_text())
    assert saved["best"]["trial"] == result.best["trial"] and saved["stopped"] == "converged"
    assert not (tmp_path / "out" / "trials").exists()


class Injected:
    """measure() from a table: cut -> (metric, latency); size falls with the cut. Picklable."""

    def __init__(self, metric: dict[int, float], latency: dict[int, float] | None = None, fail_from: int | None = None) -> None:
        self.metric, self.latency, self.fail_from = metric, latency, fail_from

    def __call__(self, candidate) -> dict[str, float]:
        if self.fail_from is not None and candidate.trial >= self.fail_from:
            raise RuntimeError("measurement failed")
        key = candidate.cut if candidate.cut is not None else len(candidate.low)  # a seed: by how many units are low
        out = {"metric": self.metric[key], "size_bytes": 1000 - 10 * key}
        if self.latency is not None:
            out["latency_ms"] = self.latency[key]
        return out


UNITS = [f"mm_{i}" for i in range(4)] + ["head_mm"]


def test_search_never_selects_over_budget_and_bisects_to_the_cut(tmp_path):
    """Also the library's default executor: a local process pool (Injected is picklable)."""
    src = tiny_graph(tmp_path / "fp32.onnx")
    metric = {0: 90.0, 1: 89.9, 2: 89.5, 3: 89.1, 4: 88.7, 5: 80.0}  # within 1.0 up to cut 3
    result = search(src, INT8, UNITS, Injected(metric), Budget(90.0, 1.0), tmp_path / "out", steps=2, parallel=1)
    assert result.best["cut"] == 3
    assert all(t["within"] == (metric[t["cut"]] >= 89.0) for t in result.trials)
    assert {t["phase"] for t in result.trials} == {"greedy", "refine"}
    assert len(result.trials) <= 5
    _, record = read_best(tmp_path / "out")
    assert record["trial"]["cut"] == 3 and "within the budget" in record["reason"]


def _flips(lost: int, gained: int, n: int = 400) -> list[float]:
    """Per-text correctness against a baseline that gets the first half right: `lost` of those wrong, `gained` of the rest right."""
    correct = [1.0] * (n // 2) + [0.0] * (n - n // 2)
    for i in range(lost):
        correct[i] = 0.0
    for i in range(gained):
        correct[n // 2 + i] = 1.0
    return correct


class WithItems:
    """measure() from a table: cut -> per-text correctness; metric and items as ClassifierAccuracy returns them."""

    def __init__(self, correct: dict[int, list[float]]) -> None:
        self.correct = correct

    def __call__(self, candidate) -> dict:
        key = candidate.cut if candidate.cut is not None else len(candidate.low)
        c = self.correct[key]
        return {"metric": 100.0 * sum(c) / len(c), "size_bytes": 1000 - 10 * key, "items": {"correct": c}}


def test_budget_judges_by_the_bootstrap_upper_bound_when_items_are_given():
    base = _flips(0, 0)
    budget = Budget(50.0, 1.0, baseline_items={"correct": base})
    noisy = _flips(20, 18)  # -2 texts of 400: a 0.5 point drop, but 38 flips make its bound ~3.5 points
    steady = _flips(1, 0)  # 0.25 points, one flip
    assert budget.drop(100 * sum(noisy) / 400) == pytest.approx(0.5)
    assert budget.upper_drop({"correct": noisy}) > 2.0 and not budget.within(50.0 - 0.5, {"correct": noisy})
    assert 0.25 <= budget.upper_drop({"correct": steady}) <= 1.0 and budget.within(50.0 - 0.25, {"correct": steady})
    assert budget.upper_drop({"correct": base}) == 0.0  # no flips: the bound is the (zero) drop
    # without items, or without the baseline's: the point estimate, as before
    assert budget.within(50.0 - 0.5) and Budget(50.0, 1.0).within(50.0 - 0.5, {"correct": noisy})
    assert budget.as_dict()["judge"] == "upper" and Budget(50.0, 1.0).as_dict()["judge"] == "point"


def test_search_with_the_upper_judge_does_not_pass_a_cut_that_fits_by_noise(tmp_path):
    """Cut 2 is within a 1-point budget by its point estimate (0.5) but not by its bound; the point judge would pick it."""
    src = tiny_graph(tmp_path / "fp32.onnx")
    correct = {0: _flips(0, 0), 1: _flips(1, 0), 2: _flips(20, 18), 3: _flips(30, 10), 4: _flips(40, 0), 5: _flips(60, 0)}
    measure = WithItems(correct)
    upper = inline_search(src, INT8, UNITS, measure, Budget(50.0, 1.0, baseline_items={"correct": correct[0]}),
                          tmp_path / "upper", steps=5)
    point = inline_search(src, INT8, UNITS, measure, Budget(50.0, 1.0), tmp_path / "point", steps=5)
    assert upper.best["cut"] == 1 and point.best["cut"] == 2
    trial = next(t for t in upper.trials if t["cut"] == 2)
    assert trial["drop"] == pytest.approx(0.5) and trial["drop_upper"] > 1.0 and not trial["within"]
    saved = json.loads((tmp_path / "upper" / "search.json").read_text())
    assert saved["budget"]["judge"] == "upper" and "95 % upper bound" in saved["reason"]
    assert all("items" not in t for t in saved["trials"])  # per-item scores judge the trial; only the bound is kept


def test_search_with_nothing_within_budget_selects_nothing(tmp_path):
    src = tiny_graph(tmp_path / "fp32.onnx")
    result = inline_search(src, INT8, UNITS, Injected(dict.fromkeys(range(6), 50.0)), Budget(90.0, 1.0), tmp_path / "out")
    assert result.best is None and result.path is None and result.stopped == "no cut within budget"
    assert not (tmp_path / "out" / "best.onnx").exists() and "no trial within the budget" in result.reason


def test_search_respects_max_trials(tmp_path):
    src = tiny_graph(tmp_path / "fp32.onnx")
    result = inline_search(src, INT8, UNITS, Injected({c: 90.0 - 0.3 * c for c in range(6)}), Budget(90.0, 1.0), tmp_path / "out",
                    max_trials=2, steps=5)
    assert len(result.trials) == 2 and result.stopped == "max_trials" and result.best["cut"] == 1


def test_a_failing_measure_leaves_the_best_so_far(tmp_path):
    src = tiny_graph(tmp_path / "fp32.onnx")
    result = inline_search(src, INT8, UNITS, Injected(dict.fromkeys(range(6), 90.0), fail_from=1), Budget(90.0, 1.0), tmp_path / "out",
                    steps=5)
    assert result.trials[0]["error"] is None and len(result.trials) > 1 and all(t["error"] for t in result.trials[1:])
    path, record = read_best(tmp_path / "out")
    assert record["trial"]["trial"] == 0 and _quantized_nodes(path) == 0


def test_seeds_are_measured_first_and_compete(tmp_path):
    src = tiny_graph(tmp_path / "fp32.onnx")
    metric = {0: 90.0, 1: 89.9, 2: 89.5, 3: 80.0, 4: 80.0, 5: 80.0}
    seed = ["mm_3", "mm_0"]  # two units low, given out of order: the trial lists them in the search's order
    result = inline_search(src, INT8, UNITS, Injected(metric), Budget(90.0, 1.0), tmp_path / "out", steps=5, seeds=[seed])
    first = result.trials[0]
    assert first["phase"] == "seed" and first["cut"] is None and first["low"] == ["mm_0", "mm_3"]
    assert result.best["trial"] == 0 and "a seed" in result.reason  # same size and drop as cut 2: the earlier trial wins
    refined = inline_search(src, INT8, UNITS, Injected(metric), Budget(90.0, 1.0), tmp_path / "out2", steps=2, seeds=[seed])
    assert [(t["phase"], t["cut"]) for t in refined.trials] == [("seed", None), ("greedy", 0), ("greedy", 3), ("refine", 2)]
    assert refined.best["trial"] == 0


class DiesOnSecondTrial:
    """A worker killed mid-measurement (what the OOM killer does): os._exit, no exception, no cleanup."""

    def __call__(self, candidate) -> dict[str, float]:
        if candidate.trial >= 1:
            os._exit(1)
        return {"metric": 90.0}


def test_a_dead_worker_stops_the_search_and_leaves_the_best_so_far(tmp_path):
    src = tiny_graph(tmp_path / "fp32.onnx")
    with make_executor("process", 2) as pool:
        result = search(src, INT8, UNITS, DiesOnSecondTrial(), Budget(90.0, 1.0), tmp_path / "out", steps=5, executor=pool,
                        parallel=1)
    assert result.stopped.startswith("executor failed") and "BrokenProcessPool" in result.trials[1]["error"]
    path, record = read_best(tmp_path / "out")
    assert record["trial"]["trial"] == 0 and _quantized_nodes(path) == 0


def test_objective_latency_needs_latency(tmp_path):
    src = tiny_graph(tmp_path / "fp32.onnx")
    with pytest.raises(CompressError, match="needs latency"):
        inline_search(src, INT8, UNITS, Injected(dict.fromkeys(range(6), 90.0)), Budget(90.0, 1.0), tmp_path / "out", objective="latency")


def test_objective_latency_picks_the_fastest_within_budget_and_the_front_is_right(tmp_path):
    src = tiny_graph(tmp_path / "fp32.onnx")
    metric = {0: 90.0, 1: 89.8, 2: 89.6, 3: 89.4, 4: 89.2, 5: 85.0}
    latency = {0: 10.0, 1: 9.0, 2: 7.0, 3: 8.0, 4: 9.5, 5: 5.0}  # cut 2 fastest within budget; 3 and 4 dominated by 2 on latency
    result = inline_search(src, INT8, UNITS, Injected(metric, latency), Budget(90.0, 1.0), tmp_path / "out", objective="latency", steps=5)
    assert result.best["cut"] == 2
    # front on (size, latency, metric): 0 has the best metric and 5 the smallest size: both on it whatever the rest
    by_cut = {t["cut"]: t["trial"] for t in result.trials}
    expected = pareto.front(result.trials, ["size_bytes", "latency_ms"], "metric")
    assert result.front == [result.trials[i]["trial"] for i in expected]
    assert by_cut[5] in result.front and by_cut[0] in result.front


def test_pareto_front_on_injected_points():
    points = [{"size_bytes": 10, "latency_ms": 5, "metric": 90},   # 0 front (best metric)
              {"size_bytes": 5, "latency_ms": 5, "metric": 89},    # 1 front
              {"size_bytes": 6, "latency_ms": 6, "metric": 88},    # 2 dominated by 1
              {"size_bytes": 4, "latency_ms": 9, "metric": 80},    # 3 front (smallest)
              {"size_bytes": 5, "latency_ms": 5, "metric": 89},    # 4 equal to 1: neither dominates
              {"size_bytes": 1, "latency_ms": None, "metric": 99}]  # 5 no latency: left out
    assert pareto.front(points, ["size_bytes", "latency_ms"]) == [0, 1, 3, 4]
    assert pareto.front(points, ["size_bytes"]) == [5]  # smallest and best: dominates all
    perplexity = [{"size_bytes": 3, "metric": 10.0}, {"size_bytes": 2, "metric": 11.0}, {"size_bytes": 2, "metric": 12.0}]
    assert pareto.front(perplexity, ["size_bytes"], higher_is_better=False) == [0, 1]


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from edge_compress.compress.quantize.presets import PRESETS
    from edge_compress.compress.search.executors import InlineExecutor
    from edge_compress.compress.search.schemes import Int8Dynamic
    from edge_compress.compress.search.search import Budget, search

    out = Path(sys.argv[2])

    def measure(candidate):
        if candidate.trial >= 1:
            (out / "started-second").write_text("x")
            time.sleep(600)  # killed here
        return {"metric": 90.0}

    search(Path(sys.argv[1]), Int8Dynamic(PRESETS["vnni"]), ["mm_0", "mm_2", "mm_3", "head_mm", "mm_1"], measure,
           Budget(90.0, 1.0), out, steps=5, executor=InlineExecutor())
""")


def test_sigkill_mid_search_leaves_a_complete_best_with_its_record(tmp_path):
    src = tiny_graph(tmp_path / "fp32.onnx")
    script, out = tmp_path / "run_search.py", tmp_path / "out"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, str(script), str(src), str(out)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not (out / "started-second").exists():
            assert proc.poll() is None, "the search exited before its second trial"
            assert time.monotonic() < deadline
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    path, record = read_best(out)
    onnx.checker.check_model(onnx.load(str(path)))
    ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert record["trial"]["trial"] == 0 and record["trial"]["low"] == [] and _quantized_nodes(path) == 0
    assert json.loads((out / "search.json").read_text())["best"]["trial"] == 0


# --- report pieces -------------------------------------------------------------------------------------------------

def test_report_pieces(tmp_path):
    src = tiny_graph(tmp_path / "fp32.onnx")
    sens = inline_sensitivity(src, INT8, feeds()).as_dict()
    table = report.sensitivity_table(sens)
    assert table[0]["unit"] == OUTLIER and [r["rank"] for r in table] == list(range(1, len(table) + 1))
    assert [r["score"] for r in table] == sorted((r["score"] for r in table), reverse=True)
    assert OUTLIER in report.sensitivity_markdown(sens).splitlines()[2]
    assert report.png(report.sensitivity_figure(sens)).startswith(b"\x89PNG")
    metric = {0: 90.0, 1: 89.8, 2: 89.6, 3: 89.4, 4: 89.2, 5: 85.0}
    inline_search(src, INT8, UNITS, Injected(metric, dict.fromkeys(range(6), 1.0)), Budget(90.0, 1.0), tmp_path / "out", steps=5)
    saved = json.loads((tmp_path / "out" / "search.json").read_text())
    data = report.front_data(saved)
    assert sum(t["selected"] for t in data["trials"]) == 1 and data["selected"] == saved["best"]["trial"]
    assert report.png(report.search_figure(saved)).startswith(b"\x89PNG")


# --- on torch-exported models (TorchScript exporter, as the brief's graphs are made without compress' exporters) --------

def _export(model, path: Path, vocab: int, seq_out: bool) -> Path:
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits

    ids = torch.randint(0, vocab, (1, 12))
    axes = {"input_ids": {0: "b", 1: "t"}, "attention_mask": {0: "b", 1: "t"}, "logits": {0: "b", 1: "t"} if seq_out else {0: "b"}}
    torch.onnx.export(Logits(model.eval()), (), str(path), kwargs={"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                      dynamo=False, input_names=["input_ids", "attention_mask"], output_names=["logits"], dynamic_axes=axes)
    return path


def _token_feeds(vocab: int, n: int, length: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"input_ids": rng.integers(0, vocab, (1, length), dtype=np.int64), "attention_mask": np.ones((1, length), np.int64)}
            for _ in range(n)]


def test_searched_int8_on_an_exported_bert_classifier(tmp_path):
    import torch
    from edge_compress.compress.search.measures import ClassifierAccuracy
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                        max_position_embeddings=64, num_labels=3)
    src = _export(BertForSequenceClassification(config), tmp_path / "bert.onnx", 60, seq_out=False)
    sens = sensitivity(src, INT8, _token_feeds(60, 4, 10, seed=0), executor=InlineExecutor())
    units = {r.unit for r in sens.rows}
    assert "/inner/bert/embeddings/word_embeddings/Gather" in units and "/inner/bert/encoder/layer.1/output/dense/MatMul" in units
    assert "/inner/bert/encoder/layer.0/attention/self/MatMul" not in units  # activation x activation stays float
    eval_feeds = _token_feeds(60, 24, 10, seed=1)
    float_predictions = [int(l.argmax()) for l in (ort.InferenceSession(str(src)).run(["logits"], f)[0] for f in eval_feeds)]
    measure = ClassifierAccuracy(tuple(eval_feeds), tuple(float_predictions))
    result = inline_search(src, INT8, sens.tolerant_first(), measure, Budget(100.0, 5.0), tmp_path / "out", steps=4)
    path, record = read_best(tmp_path / "out")
    assert record["trial"]["drop"] <= 5.0 and len(record["trial"]["low"]) > 0
    assert measure(type("C", (), {"path": path})())["metric"] >= 95.0  # re-measured from the file left on disk
    assert result.best["size_bytes"] < src.stat().st_size


def test_searched_int4_keep_8bit_list_on_an_exported_llama(tmp_path):
    import torch
    from edge_compress.compress.search.measures import Perplexity
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=True)
    src = _export(LlamaForCausalLM(config), tmp_path / "llama.onnx", 96, seq_out=True)
    sens = sensitivity(src, INT4, _token_feeds(96, 3, 16, seed=0), executor=InlineExecutor())
    assert len(sens.rows) == 14 and all("lm_head" not in r.unit for r in sens.rows)  # 7 projections x 2 layers; head apart
    measure = Perplexity(tuple((f["input_ids"], 15) for f in _token_feeds(96, 4, 16, seed=1)))
    base = measure(type("C", (), {"path": src})())["metric"]
    hand_tuned = [r.unit for r in sens.rows if any(p in r.unit for p in ("q_proj", "k_proj", "gate_proj"))]  # LMSpec's 4-bit set
    result = inline_search(src, INT4, sens.tolerant_first(), measure, Budget(base, 0.02 * base, higher_is_better=False),
                    tmp_path / "out", steps=4, seeds=[hand_tuned])
    assert result.trials[0]["phase"] == "seed"
    path, record = read_best(tmp_path / "out")
    bits = {n.name.rsplit("_Q", 1)[0]: next(a.i for a in n.attribute if a.name == "bits")
            for n in onnx.load(str(path)).graph.node if n.op_type == "MatMulNBits"}
    assert {u for u, b in bits.items() if b == 4} == set(record["trial"]["low"])
    assert {u for u, b in bits.items() if b == 8 and "lm_head" not in u} == set(record["fallback"])  # the keep-8-bit list
    assert record["trial"]["drop"] <= 0.02 * base


# --- the variant records and the recipe section ---------------------------------------------------------------------

def _ctx(tmp_path, task_name: str, model, tokenizer, texts: list[str], labels: list[int] | None, **search):
    from types import SimpleNamespace

    from edge_compress.compress.data import TextData
    from edge_compress.compress.recipe import Recipe
    from edge_compress.compress.search.config import SearchSpec
    from edge_compress.compress.tasks import get_task
    from edge_compress.compress.tasks.base import TaskData

    recipe = Recipe(task=task_name, search=SearchSpec(executor="inline", cache=str(tmp_path / "cache.json"), **search))
    train = TextData(texts, labels, "memory", "text", "label" if labels else None)
    data = TaskData(texts, labels, texts, train=train)
    return SimpleNamespace(recipe=recipe, task=get_task(task_name), tokenizer=tokenizer, preset=PRESETS["vnni"], data=data,
                           ckpt=SimpleNamespace(model=model), threads=1)


def test_onnx_int8_searched_variant_builds_from_the_recipe_section(tmp_path):
    from conftest import WORDS, make_bert
    from edge_compress.compress.run.variants import BuildInput, catalogue
    from edge_compress.compress.search.variants import SEARCH_DIR
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = make_bert(tmp_path / "ckpt")
    model, tokenizer = AutoModelForSequenceClassification.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    src = _export(model, tmp_path / "fp32.onnx", len(tokenizer), seq_out=False)
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, 6)) for _ in range(20)]
    float_run = ort.InferenceSession(str(src))
    labels = [int(float_run.run(["logits"], {k: v for k, v in tokenizer([t], return_tensors="np").items()
                                             if k != "token_type_ids"})[0].argmax()) for t in texts]
    ctx = _ctx(tmp_path, "text-classification", model, tokenizer, texts, labels, max_trials=5, budget=10.0)
    record = next(v for v in catalogue() if v.name == "onnx-int8-searched")
    assert record.enabled(ctx) and record.parent == ("onnx-fp32-optimized", "onnx-fp32")
    out = tmp_path / "variant"
    out.mkdir()
    path, extra = record.build(BuildInput(ctx, None, out, src, {}))
    ort.InferenceSession(str(path))
    assert extra["search"]["trials"] <= 5 and extra["search"]["search_baseline"] == 100.0
    assert extra["search"]["judge"] == "upper" and extra["search"]["search_drop_upper"] >= 0.0  # judged by the bound
    assert 100.0 - extra["search"]["search_metric"] <= 10.0
    assert {"search.json", "sensitivity.json"} <= {p.name for p in (out / SEARCH_DIR).iterdir()}
    assert not (out / SEARCH_DIR / "best.onnx").exists()  # moved to model.onnx, not shipped twice


def test_onnx_int4_searched_variant_is_seeded_with_the_hand_tuned_list(tmp_path, monkeypatch):
    import torch
    from edge_compress.compress.tasks.causal_lm import calibration

    def prefill_only(path, tokenizer, texts, max_length, decode_steps, threads):  # decode steps need a KV-cache graph
        ids = [tokenizer(t, truncation=True, max_length=max_length, return_tensors="np")["input_ids"] for t in texts]
        return [{"input_ids": i.astype(np.int64), "attention_mask": np.ones_like(i, dtype=np.int64)} for i in ids]

    monkeypatch.setattr(calibration, "calibration_feeds", prefill_only)
    from conftest import WORDS, _gpt2_tokenizer
    from edge_compress.compress.run.variants import BuildInput, catalogue
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _gpt2_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128))
    src = _export(model, tmp_path / "fp32.onnx", len(tokenizer), seq_out=True)
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, 40)) for _ in range(6)]
    ctx = _ctx(tmp_path, "causal-lm", model, tokenizer, texts, None, max_trials=4, calib_samples=2, budget=1e6)
    ctx.data.calib_texts = []  # as the causal-LM task loads it with static int8 and SmoothQuant off (the default search run)
    ctx.recipe.lm.context, ctx.recipe.lm.stride = 32, 16
    record = next(v for v in catalogue() if v.name == "onnx-int4-searched")
    out = tmp_path / "variant"
    out.mkdir()
    path, extra = record.build(BuildInput(ctx, None, out, src, {}))
    saved = json.loads((out / "search" / "search.json").read_text())
    assert set(extra["search"]["fallback"]) | set(extra["search"]["low"]) == set(saved["order"])  # the per-model keep-8-bit list
    assert saved["trials"][0]["phase"] == "seed"
    assert saved["budget"]["judge"] == "upper" and saved["trials"][0]["drop_upper"] is not None  # over perplexity windows
    assert all("v_proj" not in u and "down_proj" not in u for u in saved["trials"][0]["low"])  # LMSpec keeps these at 8 bits
    assert any(n.op_type == "MatMulNBits" for n in onnx.load(str(path)).graph.node)


def test_executors_by_name():
    assert isinstance(make_executor("inline"), InlineExecutor)
    with pytest.raises(CompressError, match="unknown executor"):
        make_executor("slurm")
    try:
        import ray  # noqa: F401
    except ImportError:
        with pytest.raises(CompressError, match="pip install"):
            make_executor("ray")


def test_recipe_search_section(tmp_path):
    from edge_compress.compress.recipe import validate_recipe

    recipe = validate_recipe({"search": {"objective": "both", "max_trials": 8}}, "test")
    assert recipe.search.objective == "both" and recipe.search.budget is None
    assert validate_recipe({}, "test").search is None
    with pytest.raises(CompressError, match="search"):
        validate_recipe({"task": "question-answering", "search": {}}, "test")
    with pytest.raises(CompressError, match="max_trials"):
        validate_recipe({"search": {"max_trials": 0}}, "test")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_search_on_a_local_ray_cluster(tmp_path):
    """`--executor ray`: the same search on ray.init(num_cpus=2); measure and scheme come from the package, so Ray's
    workers import them without this test module."""
    ray = pytest.importorskip("ray")
    from edge_compress.compress.search.executors import RayExecutor
    from edge_compress.compress.search.measures import ClassifierAccuracy

    src = tiny_graph(tmp_path / "fp32.onnx")
    eval_feeds = feeds(12, seed=3)
    labels = [int(l.argmax(-1)[0]) for l in (ort.InferenceSession(str(src)).run(["logits"], f)[0] for f in eval_feeds)]
    try:
        executor = RayExecutor(num_cpus=2)
        order = sensitivity(src, INT8, feeds(), executor=executor).tolerant_first()
        result = search(src, INT8, order, ClassifierAccuracy(tuple(eval_feeds), tuple(labels)), Budget(100.0, 10.0),
                        tmp_path / "out", executor=executor, steps=3)
    finally:
        ray.shutdown()
    assert order[-1] == OUTLIER and result.best is not None and result.best["drop"] <= 10.0
    assert executor._max_workers == 2 and read_best(tmp_path / "out")[1]["trial"]["trial"] == result.best["trial"]
