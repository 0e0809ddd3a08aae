"""The latency gate as report.md shows it (read from report.json's serialized entries); computed in `select.py`."""
from __future__ import annotations

from typing import Any


def target_result(entry: dict[str, Any], target: str) -> dict[str, Any] | None:
    """A serialized entry's results on `target` (CPU: the top-level fields), or None if not measured there or failed."""
    if entry.get("error") is not None:
        return None
    result = entry if target == "cpu" else entry.get("targets", {}).get(target)
    return result if result and result.get("error") is None and result.get("latency_ms") else None


def gate_notes(variants: list[dict[str, Any]]) -> list[str]:
    """One sentence per failed gate, for report.md."""
    return [f"{v['name']} is not faster than {g['fp32_variant']} on {target} ({g['p50_ms']:.2f} vs {g['fp32_p50_ms']:.2f} ms "
            f"p50 at batch 1), so it is not selected there" for v in variants for target, g in v.get("gate", {}).items()
            if not g["passed"]]
