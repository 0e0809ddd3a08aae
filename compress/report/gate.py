"""The latency gate: an int8 variant that is not faster than fp32 on a target is not worth its accuracy risk there.

Int8 is not always faster: without VNNI/dot-product instructions, at short
sequence lengths, or where the Q/DQ pairs do not fuse, it can lose to the fused
fp32 graph.  Each int8 variant is compared, per target, with the fastest fp32
ONNX variant measured there (batch-1 p50); the verdict is kept in
`entry["gate"][target]`, and a failed gate keeps the variant out of selection.
"""
from __future__ import annotations

from typing import Any


def target_result(entry: dict[str, Any], target: str) -> dict[str, Any] | None:
    """The entry's results on `target` (CPU: the top-level fields), or None if it was not measured there or failed."""
    if entry.get("error") is not None:
        return None
    result = entry if target == "cpu" else entry.get("targets", {}).get(target)
    return result if result and result.get("error") is None and "latency_ms" in result else None


def apply_latency_gate(variants: list[dict[str, Any]]) -> None:
    """Sets entry["gate"][target] = {passed, p50_ms, fp32_variant, fp32_p50_ms} for every int8 variant on every target."""
    targets = {"cpu", *(t for v in variants for t in v.get("targets", {}))}
    for target in sorted(targets):
        fp32 = [(r["latency_ms"]["p50"], v["name"]) for v in variants
                if v.get("precision") == "fp32" and v.get("format") == "onnx" and (r := target_result(v, target))]
        if not fp32:
            continue
        fastest_ms, fastest = min(fp32)
        for v in variants:
            result = target_result(v, target)
            if v.get("precision") == "int8" and result is not None:
                p50 = result["latency_ms"]["p50"]
                v.setdefault("gate", {})[target] = {"passed": p50 < fastest_ms, "p50_ms": p50, "fp32_variant": fastest,
                                                    "fp32_p50_ms": fastest_ms}


def gated_out(entry: dict[str, Any], target: str) -> bool:
    return not entry.get("gate", {}).get(target, {}).get("passed", True)


def gate_notes(variants: list[dict[str, Any]]) -> list[str]:
    """One sentence per failed gate, for report.md and the selection reason."""
    return [f"{v['name']} is not faster than {g['fp32_variant']} on {target} ({g['p50_ms']:.2f} vs {g['fp32_p50_ms']:.2f} ms "
            f"p50 at batch 1), so it is not selected there" for v in variants for target, g in v.get("gate", {}).items()
            if not g["passed"]]
