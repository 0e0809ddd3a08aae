"""report.md sections for deployment targets: one column group per target, the latency gate, the device package."""
from __future__ import annotations

from typing import Any

from edge_compress.compress.report.gate import gate_notes, target_result

GROUP = ["{metric}", "p50 ms", "p50 ms (b={batch})", "peak MB"]


def targets_lines(report: dict[str, Any]) -> list[str]:
    section = report.get("targets")
    if not section:
        return []
    metric, names = report["metric"], section["measured"] + (["mobile"] if "mobile" in section["requested"] else [])
    rows = [report["baseline"], *report["variants"]]
    batch = report["baseline"]["latency_ms_batch"]["batch_size"]
    headers = ["variant"] + [f"{t} " + h.format(metric=metric, batch=batch) for t in names for h in GROUP]
    lines = ["## Targets", "", (f"Requested: {', '.join(section['requested'])}; "
             f"measured per variant: {', '.join(section['measured'])}; "
             f"selection on **{section['selection']}**. Peak MB: memory growth while the model was loaded and run "
             "(host RSS high-water mark; on a GPU, device memory held by the session).")]
    lines += [f"- **{name} not available:** {why}" for name, why in section["unavailable"].items()]
    lines += ["", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for entry in rows:
        cells = [entry["name"]]
        for target in names:
            cells += _group(entry, target, metric)
        lines.append("| " + " | ".join(cells) + " |")
    notes = gate_notes(report["variants"])
    lines += ["", "Latency gate (int8 must beat the fastest fp32 ONNX variant on the target): "
              + ("every int8 variant passed." if not notes else "")]
    lines += [f"- {note}" for note in notes]
    return lines + [""]


def _group(entry: dict[str, Any], target: str, metric: str) -> list[str]:
    raw = entry if target == "cpu" else entry.get("targets", {}).get(target)
    if entry.get("error") is not None or (raw is not None and raw.get("error") is not None):
        return ["failed", "", "", ""]
    result = target_result(entry, target)
    if result is None:
        return ["–"] * len(GROUP)
    peak = result.get("peak_memory_mb")
    return [f"{result['metrics'][metric]:.2f}", f"{result['latency_ms']['p50']:.2f}", f"{result['latency_ms_batch']['p50']:.2f}",
            "" if peak is None else f"{peak:.0f}"]


def package_lines(report: dict[str, Any]) -> list[str]:
    package = report.get("package")
    if not package:
        return []
    lines = ["## Device package", "", f"From `{package['variant']}`"
             + (f" (int8 preset `{package['int8_preset']['name']}`)" if package.get("int8_preset") else "")
             + ", in `package/`:", "",
             "| file | KB |", "|---|---|"]
    lines += [f"| `{name}` | {size / 1024:.1f} |" for name, size in package["sizes"].items()]
    if package["ops_config"]:
        lines += ["", (f"Reduced-operator build config (input to ONNX Runtime's `build.sh --minimal_build "
                      f"--include_ops_by_config`, not shipped): `{package['ops_config']}`.")]
    for name, check in package["checks"].items():
        lines.append(f"- `{name}` loads and scores {report['metric']} {check['metrics'][report['metric']]:.2f} "
                     f"(agreement {check['metrics'].get('agreement', 100):.1f} %) on this host's CPU"
                     + (f", p50 {check['latency_ms']['p50']:.2f} ms" if check.get("latency_ms") else "")
                     + (f"; {check['truncated_texts']} eval texts truncated to {check['sequence']} tokens"
                        if check.get("truncated_texts") else ""))
    return lines + [""]


def environment_lines(report: dict[str, Any]) -> list[str]:
    cpu = report["environment"]["cpu"]
    if "fingerprint" not in cpu:
        return []
    features = ", ".join(k for k, on in cpu["features"].items() if on) or "none"
    return [f"- Hardware fingerprint: `{cpu['fingerprint']}` (features: {features})"]
