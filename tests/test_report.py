"""Selection, ties, deltas and the report's typed schema, on entries with injected latencies (no timing luck)."""
import dataclasses
import json

import pytest
from edge_compress.compress.quantize.presets import preset_for
from edge_compress.compress.report.schema import SCHEMA_VERSION, Entry, Report, Tool
from edge_compress.compress.report.select import delta, latency_gate, select
from edge_compress.compress.report.writer import _pareto, markdown
from edge_compress.export.hardware import CpuInfo
from edge_compress.export.timing import RoundLatency, round_robin, summarize


def lat(p50, spread=0.0, batch_size=1):
    """A latency whose three rounds' p50 are p50 - spread, p50, p50 + spread."""
    return RoundLatency(p50, p50 * 1.2, p50, batch_size, 10.0, 20, (p50 - spread, p50, p50 + spread))


def entry(name, acc, p50, size=100, error=None, spread=0.0, precision="fp32", fmt="onnx"):
    return Entry(name, None if error else f"variants/{name}", fmt, precision, "CPUExecutionProvider", {"accuracy": acc},
                 latency_ms=lat(p50, spread), latency_ms_batch=lat(p50 * 8, batch_size=8), size_bytes=size, error=error)


def test_selects_fastest_within_budget():
    base = entry("pytorch", 90.0, 10.0, 400, fmt="pytorch")
    variants = [entry("a", 89.5, 3.0), entry("b", 88.0, 1.0), entry("c", 90.2, 4.0), entry("d", 0, 0.1, error="boom")]
    chosen = select(base, variants, "accuracy", True, 1.0)
    assert chosen.name == "a" and "within 1 points" in chosen.reason and chosen.tied == ["a"]
    assert select(base, variants, "accuracy", True, 2.0).name == "b"
    assert select(base, variants, "accuracy", True, 0.0).name == "c"


def test_select_does_not_change_its_inputs():
    base = entry("pytorch", 90.0, 10.0, 400, fmt="pytorch")
    variants = [entry("a", 89.5, 3.0, precision="int8"), entry("f", 90.0, 5.0)]
    before = [dataclasses.asdict(v) for v in variants]
    gates = latency_gate(variants)
    select(base, variants, "accuracy", True, 1.0)
    assert [dataclasses.asdict(v) for v in variants] == before and gates["a"]["cpu"].passed


def test_overlapping_latencies_are_tied_and_the_tie_goes_to_accuracy_then_size():
    base = entry("pytorch", 90.0, 10.0, 400, fmt="pytorch")
    # dynamic is a little faster, but its rounds overlap static's: the more accurate static wins
    dynamic, static = entry("dynamic", 89.0, 1.00, spread=0.06), entry("static", 89.6, 1.04, spread=0.05)
    chosen = select(base, [dynamic, static], "accuracy", True, 1.0)
    assert chosen.name == "static" and set(chosen.tied) == {"dynamic", "static"} and "tied" in chosen.reason
    # the same two, measured apart (no overlap): speed decides
    apart = entry("static", 89.6, 1.40, spread=0.05)
    assert select(base, [dynamic, apart], "accuracy", True, 1.0).name == "dynamic"
    # equal accuracy within a tie: the smaller one
    small, big = entry("small", 89.0, 1.02, size=50, spread=0.05), entry("big", 89.0, 1.00, size=90, spread=0.05)
    assert select(base, [big, small], "accuracy", True, 1.0).name == "small"


def test_nothing_within_budget_is_said_plainly():
    chosen = select(entry("p", 90, 10), [entry("a", 80, 1)], "accuracy", True, 1.0)
    assert chosen.name is None and "no variant" in chosen.reason and "kept" in chosen.reason


def test_lower_is_better_metric():
    base = entry("p", 20.0, 10)  # e.g. perplexity
    assert select(base, [entry("a", 20.5, 2), entry("b", 25, 1)], "accuracy", False, 1.0).name == "a"
    # a tie on a lower-is-better metric goes to the lower value
    assert select(base, [entry("a", 20.5, 2, spread=0.2), entry("c", 20.1, 2.1, spread=0.2)], "accuracy", False, 1.0).name == "c"


def test_deltas():
    base, v = entry("p", 90.0, 10.0, 400), entry("a", 89.0, 2.5, 100)
    assert dataclasses.asdict(delta(base, v, "accuracy")) == {"metric": -1.0, "latency_ratio": 0.25, "speedup": 4.0,
                                                             "speedup_batch": 4.0, "size_ratio": 0.25, "compression": 4.0}
    assert delta(base, entry("x", 0, 1, error="boom"), "accuracy") is None


def test_pareto_front():
    assert _pareto([1, 2, 3, 4], [80, 90, 85, 95], True) == [0, 1, 3]


def test_presets_follow_the_cpu():
    vnni = CpuInfo("x", "x86_64", 2, ("avx2", "avx512_vnni"))
    avx2 = CpuInfo("x", "x86_64", 2, ("avx2",))
    arm = CpuInfo("x", "aarch64", 2, ("asimddp",))
    assert preset_for(vnni).name == "vnni" and not preset_for(vnni).reduce_range
    assert preset_for(avx2).name == "avx2" and preset_for(avx2).reduce_range
    assert preset_for(arm).name == "arm64" and preset_for(arm).weight_symmetric
    assert preset_for(vnni, "avx2").name == "avx2"


def test_report_serializes_tool_protocol_and_spread():
    base = entry("pytorch-fp32", 90.0, 10.0, 400, fmt="pytorch")
    v = dataclasses.replace(entry("onnx-fp32", 90.0, 5.0, spread=0.5), delta=delta(base, entry("onnx-fp32", 90.0, 5.0), "accuracy"))
    report = Report(Tool("edge-compress", "0.1.0", "compress run m --out o", "2026-01-01T00:00:00+00:00", 12.5), "text-classification",
                    "accuracy", True, 1.0, base, [v, entry("broken", 0, 0, error="boom")], "onnx-fp32", "fastest", ["onnx-fp32"],
                    {"threads": 1}, {"load": 1.0, "measure": 2.0}, {"eval": {"samples": 3}})
    data = json.loads(json.dumps(report.to_dict()))
    assert data["schema_version"] == SCHEMA_VERSION == 3
    assert data["tool"] == {"name": "edge-compress", "version": "0.1.0", "command": "compress run m --out o",
                            "started": "2026-01-01T00:00:00+00:00", "duration_s": 12.5}
    assert data["durations_s"] == {"load": 1.0, "measure": 2.0} and "metrics" in data["protocol"]
    ok = data["variants"][0]
    assert ok["latency_ms"]["spread"] == [4.5, 5.5] and ok["latency_ms"]["rounds"] == 3 and ok["targets"]["cpu"]["metrics"]
    assert data["variants"][1] == {"name": "broken", "path": None, "format": "onnx", "precision": "fp32", "settings": {},
                                   "error": "boom"}


def test_round_robin_times_every_subject_in_every_round_in_turn():
    order = []

    def subject(name):
        def open_block():
            order.append(f"open {name}")
            return lambda: {"single": [float(len(order))]}
        return open_block

    samples = round_robin({"a": subject("a"), "b": subject("b")}, 3)
    assert order == ["open a", "open b"] * 3
    assert [s["single"] for s in samples["a"]] == [[1.0], [3.0], [5.0]]
    summary = summarize([s["single"] for s in samples["b"]], 1, 4.0)
    assert summary.p50 == 4.0 and summary.spread == (2.0, 6.0) and summary.rounds == 3
    with pytest.raises(ValueError):
        round_robin({"a": subject("a")}, 0)


def test_markdown_marks_ties_and_spreads():
    base = entry("pytorch-fp32", 90.0, 10.0, 400, fmt="pytorch")
    report = Report(Tool("edge-compress", "0", "c", "t", 1.0), "text-classification", "accuracy", True, 1.0, base,
                    [entry("a", 90.0, 2.0, spread=0.1), entry("b", 90.0, 2.05, spread=0.1)], "a", "tied", ["a", "b"],
                    {"threads": 1, "cpu": {"model": "x", "arch": "x", "logical_cores": 1, "flags": []},
                     "int8_preset": {"name": "vnni", "reason": "r"}, "versions": {}}, {}, {"eval": {"samples": 1, "source": "e"}})
    md = markdown(report.to_dict(), None)
    assert "Tied within the measured latency spread: a, b" in md and "(1.90-2.10)" in md and "3 interleaved rounds" in md


def test_measure_records_a_model_whose_timing_fails_and_times_the_rest():
    from edge_compress.compress.run.measure import Subject, measure

    class Evaluation:
        seq_len, batch_size, batch_seq_len = 4.0, 2, 4.0

        def timing(self, model):
            if model == "broken":
                raise RuntimeError("no kernel")
            return lambda: {"single": [1.0, 2.0, 3.0], "batch": [4.0], "ttft": [7.0]}

    opened = []
    subjects = [Subject(name, "cpu", lambda name=name: opened.append(name) or name) for name in ("ok", "broken")]
    results = measure(Evaluation(), subjects, 3)
    assert results[("broken", "cpu")] == "RuntimeError: no kernel"
    ok = results[("ok", "cpu")]
    assert ok.single.p50 == 2.0 and ok.single.rounds == 3 and ok.batch.batch_size == 2 and ok.extras == {"ttft": 7.0}
    assert opened == ["ok", "broken", "ok", "ok"]  # reopened each round; a failed model is not retried
