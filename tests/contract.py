"""The report contract, checked on every report.json a test makes (conftest wraps `compress.run.pipeline.run`).

Written from the README ("report.json" schema 3, "`compress run`", the latency gate), NOT from compress/report/select.py:
the deltas, the latency gate and the selection are recomputed here from the report's own numbers and budget, so a
change to the product's selection code that breaks the documented rule fails every test that runs the pipeline.

Figures in report.json are rounded (latencies to 1e-4 ms), so a comparison closer than ROUNDING to its threshold is
ambiguous: there the contract only checks the weaker properties (the selected variant is within budget, not gated).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 3
ROUNDING = 2e-4  # ms: two units of report.json's latency rounding
TOP_KEYS = {"schema_version", "tool", "task", "metric", "higher_is_better", "max_accuracy_drop", "protocol", "baseline",
            "variants", "selected", "selection_reason", "tied", "eval", "calibration", "targets", "durations_s", "environment"}
TOOL_KEYS = {"name", "version", "command", "started", "duration_s"}
ENTRY_KEYS = {"name", "path", "format", "precision", "provider", "metrics", "metrics_batch", "latency_ms", "latency_ms_batch",
              "peak_memory_mb", "size_bytes", "params", "graph", "settings", "targets", "error"}
FAILED_KEYS = {"name", "path", "format", "precision", "settings", "error"}
LATENCY_KEYS = {"p50", "p90", "mean", "batch_size", "seq_len", "runs", "rounds", "round_p50", "spread"}
DELTA_KEYS = {"metric", "latency_ratio", "speedup", "speedup_batch", "size_ratio", "compression"}
GRAPH_KEYS = {"int8_ops", "weight_only_ops", "float_matmul_ops", "float_weight_matmuls"}
GATED = ("int8", "int4")


class ContractError(AssertionError):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ContractError(message)


def check_report_folder(out: Path, load_models: bool = True) -> dict[str, Any]:
    """Every check below on OUT/report.json; returns the report."""
    out = Path(out)
    report = json.loads((out / "report.json").read_text())
    check_schema(report)
    check_paths(report, out, load_models)
    check_deltas(report)
    check_gates(report)
    check_selection(report)
    return report


# --- schema ---------------------------------------------------------------------------------------------------------

def _latency(value: Any, where: str) -> None:
    check(isinstance(value, dict) and LATENCY_KEYS <= value.keys(), f"{where}: latency fields {LATENCY_KEYS}, got {value}")
    check(all(isinstance(value[k], (int, float)) and value[k] >= 0 for k in ("p50", "p90", "mean", "seq_len")), f"{where}: {value}")
    check(isinstance(value["batch_size"], int) and value["batch_size"] >= 1, f"{where}: batch_size")
    check(len(value["round_p50"]) == value["rounds"] >= 1, f"{where}: one p50 per round")
    low, high = value["spread"]
    check(math.isclose(low, min(value["round_p50"]), abs_tol=1e-4) and math.isclose(high, max(value["round_p50"]), abs_tol=1e-4),
          f"{where}: spread is min/max of round_p50")
    check(low - 1e-4 <= value["p50"] <= high + 1e-4, f"{where}: p50 (median of rounds) inside the spread")


def _entry(entry: dict[str, Any], where: str) -> None:
    check(isinstance(entry.get("name"), str) and entry["name"], f"{where}: name")
    if entry.get("error") is not None:
        check(set(entry) == FAILED_KEYS and entry["path"] is None and isinstance(entry["error"], str) and entry["error"],
              f"{where}: a failed entry has only {FAILED_KEYS} and says why: {entry}")
        return
    check(ENTRY_KEYS <= entry.keys(), f"{where}: missing {ENTRY_KEYS - entry.keys()}")
    check(entry["format"] in ("pytorch", "onnx"), f"{where}: format {entry['format']}")
    check(isinstance(entry["precision"], str) and isinstance(entry["settings"], dict), f"{where}: precision/settings")
    check(isinstance(entry["metrics"], dict) and entry["metrics"] and
          all(isinstance(v, (int, float)) for v in entry["metrics"].values()), f"{where}: numeric metrics")
    check(isinstance(entry["size_bytes"], int) and entry["size_bytes"] > 0, f"{where}: size_bytes")
    check(isinstance(entry["params"], int) and entry["params"] > 0, f"{where}: params")
    _latency(entry["latency_ms"], f"{where}.latency_ms")
    if entry["latency_ms_batch"] is not None:
        _latency(entry["latency_ms_batch"], f"{where}.latency_ms_batch")
    check("cpu" in entry["targets"], f"{where}: targets has cpu")
    cpu = entry["targets"]["cpu"]
    check(cpu["metrics"] == entry["metrics"] and cpu["latency_ms"] == entry["latency_ms"], f"{where}: targets.cpu = top level")
    for name, result in entry["targets"].items():
        if result.get("error") is None and result.get("latency_ms") is not None:
            _latency(result["latency_ms"], f"{where}.targets.{name}")
    if entry["format"] == "onnx":
        check(isinstance(entry["graph"], dict) and GRAPH_KEYS <= entry["graph"].keys(), f"{where}: graph {entry['graph']}")


def check_schema(report: dict[str, Any]) -> None:
    check(report.get("schema_version") == SCHEMA_VERSION, f"schema_version {report.get('schema_version')} != {SCHEMA_VERSION}")
    check(TOP_KEYS <= report.keys(), f"report misses {TOP_KEYS - report.keys()}")
    check(set(report["tool"]) == TOOL_KEYS and report["tool"]["name"] == "edge-compress", f"tool {report['tool']}")
    check(report["tool"]["started"].endswith("+00:00"), "tool.started in UTC")
    check(isinstance(report["higher_is_better"], bool) and isinstance(report["max_accuracy_drop"], (int, float)), "budget types")
    check(isinstance(report["selected"], (str, type(None))) and isinstance(report["selection_reason"], str), "selected")
    check(isinstance(report["tied"], list), "tied is a list")
    check(all(isinstance(v, (int, float)) and v >= 0 for v in report["durations_s"].values()), "durations_s")
    # every figure is rounded to 1 ms on its own: the sum may exceed the total by half a millisecond per step
    slack = 5e-4 * (len(report["durations_s"]) + 1)
    check(sum(report["durations_s"].values()) <= report["tool"]["duration_s"] + slack, "steps sum within the total")
    _entry(report["baseline"], "baseline")
    check(report["baseline"].get("error") is None and report["baseline"]["format"] == "pytorch", "baseline is the PyTorch model")
    names = [v["name"] for v in report["variants"]]
    check(len(names) == len(set(names)), f"variant names repeat: {names}")
    for variant in report["variants"]:
        _entry(variant, variant.get("name", "?"))
    check(report["metric"] in report["baseline"]["metrics"], f"primary metric {report['metric']} in the baseline's metrics")


# --- paths ----------------------------------------------------------------------------------------------------------

def check_paths(report: dict[str, Any], out: Path, load_models: bool) -> None:
    import onnxruntime as ort

    for variant in report["variants"]:
        if variant.get("error") is not None:
            check(not (out / "variants" / variant["name"]).exists(), f"failed {variant['name']} left a folder behind")
            continue
        path = Path(variant["path"])
        check(not path.is_absolute() and ".." not in path.parts, f"{variant['name']}: path {path} relative to OUT")
        folder = out / path
        check(folder.is_dir(), f"{variant['name']}: {folder} exists")
        models = sorted(folder.glob("*.onnx"))
        check(bool(models), f"{variant['name']}: an .onnx model in {folder}")
        # what transformers' ExportedModel.from_pretrained reads; size_bytes counts the graph and its weights
        check((folder / "export.json").exists(), f"{variant['name']}: export.json in {folder}")
        graphs = [entry["file"] for entry in json.loads((folder / "export.json").read_text())["components"].values()]
        files = [name for graph in graphs for name in (graph, graph + ".data")]  # a seq2seq folder has two graphs
        check(all((folder / name).exists() for name in files), f"{variant['name']}: {', '.join(files)} in {folder}")
        stored = sum((folder / name).stat().st_size for name in files)
        check(variant["size_bytes"] == stored,
              f"{variant['name']}: size_bytes {variant['size_bytes']} = graph + weights {stored}")
        if load_models:
            for model in models:
                ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    for key in ("ort_model", "ops_config", "fixed_shape_model"):
        value = (report.get("package") or {}).get(key)
        if value:
            check(not Path(value).is_absolute() and (out / value).exists(), f"package.{key} {value} relative and present")


# --- deltas, gate, selection ----------------------------------------------------------------------------------------

def _close(a: float, b: float, rel: float = 5e-3, abs_: float = 2e-3) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def check_deltas(report: dict[str, Any]) -> None:
    """delta = the variant's figures vs the baseline's (README: points, latency_ratio, speedup, size_ratio, compression)."""
    base, metric = report["baseline"], report["metric"]
    for v in report["variants"]:
        if v.get("error") is not None:
            check("delta" not in v, f"{v['name']}: a failed entry has no delta")
            continue
        d = v["delta"]
        check(set(d) == DELTA_KEYS, f"{v['name']}: delta keys {set(d)}")
        b50, v50 = base["latency_ms"]["p50"], v["latency_ms"]["p50"]
        # rounding of p50 to 1e-4 ms: the ratio can be off by about 1e-4 / p50
        rel = 5e-3 + 2e-4 / max(min(b50, v50), 1e-6)
        check(_close(d["metric"], v["metrics"][metric] - base["metrics"][metric]), f"{v['name']}: delta.metric {d}")
        check(_close(d["latency_ratio"], v50 / b50, rel), f"{v['name']}: latency_ratio {d['latency_ratio']} vs {v50 / b50}")
        check(_close(d["speedup"], b50 / v50, rel), f"{v['name']}: speedup {d['speedup']} vs {b50 / v50}")
        check(_close(d["size_ratio"], v["size_bytes"] / base["size_bytes"]), f"{v['name']}: size_ratio")
        check(_close(d["compression"], base["size_bytes"] / v["size_bytes"]), f"{v['name']}: compression")
        if base["latency_ms_batch"] and v["latency_ms_batch"]:
            batch = base["latency_ms_batch"]["p50"] / v["latency_ms_batch"]["p50"]
            check(d["speedup_batch"] is not None and _close(d["speedup_batch"], batch, rel), f"{v['name']}: speedup_batch")


def _on(v: dict[str, Any], target: str) -> dict[str, Any] | None:
    if v.get("error") is not None:
        return None
    result = v["targets"].get(target)
    return result if result and result.get("error") is None and result.get("latency_ms") else None


def check_gates(report: dict[str, Any]) -> None:
    """README: every int8/int4 variant is compared, per target, with the fastest fp32 ONNX variant measured there."""
    variants = report["variants"]
    targets = {t for v in variants if v.get("error") is None for t in v["targets"]}
    for target in targets:
        fp32 = [(r["latency_ms"]["p50"], v["name"]) for v in variants
                if v["precision"] == "fp32" and v["format"] == "onnx" and (r := _on(v, target))]
        for v in variants:
            result = _on(v, target)
            if v["precision"] not in GATED or result is None or not fp32:
                check(target not in (v.get("gate") or {}), f"{v['name']}: gated on {target} without a reason")
                continue
            fastest_ms, fastest = min(fp32)
            gate = v["gate"][target]
            check(math.isclose(gate["p50_ms"], result["latency_ms"]["p50"], abs_tol=1e-4), f"{v['name']}: gate p50 on {target}")
            check(math.isclose(gate["fp32_p50_ms"], fastest_ms, abs_tol=1e-4), f"{v['name']}: gate fp32 p50 on {target}")
            if abs(result["latency_ms"]["p50"] - fastest_ms) > ROUNDING:
                check(gate["fp32_variant"] == fastest, f"{v['name']}: gate compares with {gate['fp32_variant']}, not {fastest}")
                check(gate["passed"] == (result["latency_ms"]["p50"] < fastest_ms), f"{v['name']} gate on {target}: {gate}")


def expected_selection(report: dict[str, Any]) -> tuple[set[str | None], set[str]]:
    """(acceptable selections, the tied set when unambiguous) by the README rule, from the report's numbers.

    More than one acceptable name only when a decisive comparison lies within the rounding of report.json."""
    target = (report.get("targets") or {}).get("selection", "cpu")
    metric, higher, budget = report["metric"], report["higher_is_better"], report["max_accuracy_drop"]
    base = report["baseline"]["metrics"][metric]

    def lost(value: float) -> float:
        return base - value if higher else value - base

    def judged(v: dict[str, Any], r: dict[str, Any]) -> float:
        """README (schema 3): in a tie, a metric change within noise (the CPU eval's paired interval holds 0) counts as
        none, i.e. as the baseline's value."""
        noise = v.get("noise")
        return base if target == "cpu" and noise and noise.get("within_noise") else r["metrics"][metric]

    measured = [(v, r) for v in report["variants"] if (r := _on(v, target))]
    within = [(v, r) for v, r in measured if lost(r["metrics"][metric]) <= budget + 1e-9]
    ok = [(v, r) for v, r in within if (v.get("gate") or {}).get(target, {}).get("passed", True)]
    if not ok:
        return {None}, set()
    best_p50 = min(r["latency_ms"]["p50"] for _, r in ok)
    acceptable: set[str | None] = set()
    tied_sets = []
    # the fastest and every variant within rounding of it: each could be "the fastest" before rounding
    for fastest, fastest_r in [(v, r) for v, r in ok if r["latency_ms"]["p50"] - best_p50 <= ROUNDING]:
        ceiling = fastest_r["latency_ms"]["spread"][1]
        tied = [(v, r) for v, r in ok if r["latency_ms"]["spread"][0] <= ceiling + ROUNDING]
        sure = [(v, r) for v, r in ok if r["latency_ms"]["spread"][0] <= ceiling - ROUNDING]
        for group in (tied, sure or [(fastest, fastest_r)]):
            sign = 1 if higher else -1
            best = min(group, key=lambda vr: (-sign * judged(vr[0], vr[1]), vr[0]["size_bytes"], vr[1]["latency_ms"]["p50"]))
            acceptable.add(best[0]["name"])
        tied_sets.append({v["name"] for v, _ in tied} if len(tied) == len(sure) else None)
    unambiguous = tied_sets[0] if len(tied_sets) == 1 and tied_sets[0] is not None else set()
    return acceptable, unambiguous


def check_selection(report: dict[str, Any]) -> None:
    acceptable, tied = expected_selection(report)
    check(report["selected"] in acceptable, f"selected {report['selected']!r}, the README rule gives {sorted(map(str, acceptable))}")
    if tied and report["selected"] is not None:
        check(set(report["tied"]) == tied, f"tied {report['tied']} != {sorted(tied)}")
    if report["selected"] is None:
        check("no variant" in report["selection_reason"], "a null selection says why")
