"""report.json (the contract CI gates read), report.md (for people) and plots.

report.json fields are typed in `compress.report.schema` and documented in README "report.json".  Markdown is a table a
person reads in ten seconds; the PNG shows accuracy against size and latency,
with the baseline and the accuracy budget marked.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from compress.report.targets import environment_lines, package_lines, targets_lines

def write_json(out: Path, report: dict[str, Any]) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=2))


def write_report(out: Path, report: dict[str, Any]) -> None:
    """`report`: `Report.to_dict()` (compress.report.schema), paths already relative to `out`."""
    write_json(out, report)
    plot_path = plot(out, report)
    (out / "report.md").write_text(markdown(report, plot_path.name if plot_path else None))


def _rows(report: dict) -> list[dict]:
    return [report["baseline"], *report["variants"]]


def _fmt_row(entry: dict, metric: str, selected: str | None) -> list[str]:
    if entry.get("error") is not None:
        return [entry["name"], "failed", "", "", "", "", "", ""]
    d = entry.get("delta", {})
    mark = " ✔" if entry["name"] == selected else ""
    return [entry["name"] + mark, f"{entry['metrics'][metric]:.2f}", f"{d.get('metric', 0):+.2f}",
            f"{entry['metrics'].get('agreement', 100):.1f}", f"{entry['latency_ms']['p50']:.2f}" + _spread(entry),
            f"{d.get('speedup', 1):.2f}x", f"{entry['size_bytes'] / 1e6:.1f}", f"{d.get('compression', 1):.2f}x"]


def _spread(entry: dict) -> str:
    low, high = entry["latency_ms"].get("spread") or (None, None)
    return f" ({low:.2f}-{high:.2f})" if low is not None and high != low else ""


HEADERS = ["variant", "{metric}", "Δ pts", "agree %", "p50 ms (b=1, rounds min-max)", "speedup", "size MB", "smaller"]


def _qat_lines(report: dict) -> list[str]:
    """What QAT learned and the proof that the exported graph computes it with integer kernels."""
    lines = []
    for v in report["variants"]:
        qat = (v.get("settings") or {}).get("learned_scales")
        if qat and not v.get("error"):
            kernels = ", ".join(f"{k} ×{n}" for k, n in v["graph"]["int8_ops"].items()) or "none"
            lines += ["", f"QAT `{v['name']}`: {qat['scales']} activation ranges calibrated then learned (scales moved "
                      f"{qat['mean_relative_change']:.1%} on average, at most {qat['max_relative_change']:.1%}); fake-quantized "
                      f"PyTorch vs the int8 ONNX graph: max |logit diff| {v['settings']['fake_quant_vs_onnx_max_logit_diff']:.1e}; "
                      f"runtime kernels: {kernels}; weight MatMuls left in float: {v['graph']['float_weight_matmuls']}."]
    return lines


def markdown(report: dict, plot_name: str | None) -> str:
    metric, selected = report["metric"], report["selected"]
    headers = [h.format(metric=metric) for h in HEADERS]
    lines = [f"# edge-compress report: {report['task']}", "",
             f"**Selected:** `{selected}` — {report['selection_reason']}" if selected else f"**No variant selected:** {report['selection_reason']}",
             "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt_row(e, metric, selected)) + " |" for e in _rows(report)]
    env = report["environment"]
    if report.get("pruning"):
        p = report["pruning"]
        lines += ["", f"Pruned line: {p['params_after'] / 1e6:.2f}M of {p['params_before'] / 1e6:.2f}M parameters, "
                  f"{p['flops_after'] / p['flops_before']:.0%} of FLOPs (estimate at {p['seq_len']} tokens); "
                  f"heads per layer {p['heads_per_layer']}, FFN neurons per layer {p['neurons_per_layer']}"
                  + (f", dropped layers {p['dropped_layers']}" if p["dropped_layers"] else "")
                  + ("; distilled from the float model" if p.get("distilled") else "") + "."]
    lines += _qat_lines(report)
    timing = report["baseline"]["latency_ms"]
    lines += ["", f"Latency: batch 1, median over {timing['rounds']} interleaved rounds of the p50 over {timing['runs']} timed "
              f"calls, {env['threads']} threads; speedup and size are against the PyTorch fp32 baseline. "
              f"{report['metric']} is measured one text at a time at batch 1 without padding, as the artefact runs. "
              f"Eval set: {report['eval']['samples']} texts from `{report['eval']['source']}`.", ""]
    if report.get("tied") and len(report["tied"]) > 1:
        lines += [f"Tied within the measured latency spread: {', '.join(report['tied'])}.", ""]
    if plot_name:
        lines += [f"![accuracy vs size and latency]({plot_name})", ""]
    lines += targets_lines(report) + package_lines(report)
    lines += ["## Environment", "", f"- CPU: {env['cpu']['model']} ({env['cpu']['arch']}, {env['cpu']['logical_cores']} logical cores, "
              f"int8 flags: {', '.join(env['cpu']['flags']) or 'none'})", f"- int8 preset: `{env['int8_preset']['name']}` — {env['int8_preset']['reason']}",
              *environment_lines(report), "- " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()), ""]
    return "\n".join(lines)


def summary_table(report: dict) -> Table:
    metric, selected = report["metric"], report["selected"]
    table = Table(title=f"edge-compress: {report['task']} (budget {report['max_accuracy_drop']:g} pts)")
    for h in HEADERS:
        table.add_column(h.format(metric=metric), justify="left" if h == "variant" else "right", no_wrap=True)
    for entry in _rows(report):
        table.add_row(*_fmt_row(entry, metric, selected), style="bold green" if entry["name"] == selected else None)
    return table


def plot(out: Path, report: dict) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric, base = report["metric"], report["baseline"]
    ok = [e for e in _rows(report) if e.get("error") is None]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (key, label) in zip(axes, [("size", "size on disk (MB)"), ("latency", "p50 latency, batch 1 (ms)")]):
        xs = [e["size_bytes"] / 1e6 if key == "size" else e["latency_ms"]["p50"] for e in ok]
        ys = [e["metrics"][metric] for e in ok]
        front = _pareto(xs, ys, report["higher_is_better"])
        ax.plot([xs[i] for i in front], [ys[i] for i in front], color="tab:gray", lw=1, alpha=0.6, label="Pareto front")
        for i, e in enumerate(ok):
            is_base, is_sel = e is base, e["name"] == report["selected"]
            ax.scatter(xs[i], ys[i], s=90 if is_sel else 45, marker="*" if is_base else "o",
                       color="black" if is_base else ("tab:green" if is_sel else "tab:blue"), zorder=3)
            ax.annotate(e["name"], (xs[i], ys[i]), textcoords="offset points", xytext=(5, 4 + 10 * (i % 3)), fontsize=8)
        if max(xs) > 10 * min(xs):
            ax.set_xscale("log")
        floor = base["metrics"][metric] - report["max_accuracy_drop"] * (1 if report["higher_is_better"] else -1)
        ax.axhline(floor, ls="--", color="tab:red", lw=1, label=f"budget (−{report['max_accuracy_drop']:g} pts)")
        ax.set_xlabel(label)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{report['task']}: {metric} vs size and latency (★ = PyTorch fp32 baseline)")
    fig.tight_layout()
    path = out / "report.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _pareto(xs: list[float], ys: list[float], higher_is_better: bool) -> list[int]:
    """Indices of points no other point beats on both cost (x, lower is better) and metric, sorted by x."""
    sign = 1 if higher_is_better else -1
    order = sorted(range(len(xs)), key=lambda i: (xs[i], -sign * ys[i]))
    front, best = [], float("-inf")
    for i in order:
        if sign * ys[i] > best:
            front.append(i)
            best = sign * ys[i]
    return front
