"""report.json (the contract CI gates read), report.md (for people) and plots.

report.json fields are typed in `compress.report.schema` and documented in README "report.json".  Markdown is a table a
person reads in ten seconds; the PNG shows accuracy against size and latency,
with the baseline and the accuracy budget marked.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_compress.compress.report.html import render as render_html
from edge_compress.compress.report.noise import describe, noise_from_dict
from edge_compress.compress.report.plot import pareto as _pareto  # noqa: F401  (kept importable: tests and benches use it)
from edge_compress.compress.report.plot import pareto_figure, png
from edge_compress.compress.report.targets import environment_lines, package_lines, targets_lines
from rich.table import Table

if TYPE_CHECKING:
    from edge_compress.compress.search.report import SearchView


def write_json(out: Path, report: dict[str, Any]) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=2))


def write_report(out: Path, report: dict[str, Any]) -> None:
    """`report`: `Report.to_dict()` (compress.report.schema), paths already relative to `out`."""
    write_json(out, report)
    plot_path = plot(out, report)
    from edge_compress.compress.search.report import searched_variants

    searches = searched_variants(out, report)
    (out / "report.md").write_text(markdown(report, plot_path.name if plot_path else None) + "\n".join(search_lines(out, searches)))
    (out / "report.html").write_text(render_html(report, plot_path.read_bytes() if plot_path else None, searches))


def _rows(report: dict) -> list[dict]:
    return [report["baseline"], *report["variants"]]


def _fmt_row(entry: dict, metric: str, selected: str | None) -> list[str]:
    if entry.get("error") is not None:
        return [entry["name"], "failed", "", "", "", "", "", ""]
    d = entry.get("delta", {})
    mark = " ✔" if entry["name"] == selected else ""
    change = describe(noise_from_dict(entry.get("noise")), d["metric"], "").strip() if "metric" in d else "—"
    return [entry["name"] + mark, f"{entry['metrics'][metric]:.2f}", change,
            f"{entry['metrics'].get('agreement', 100):.1f}", f"{entry['latency_ms']['p50']:.2f}" + _spread(entry),
            f"{d.get('speedup', 1):.2f}x", f"{entry['size_bytes'] / 1e6:.1f}", f"{d.get('compression', 1):.2f}x"]


def _spread(entry: dict) -> str:
    low, high = entry["latency_ms"].get("spread") or (None, None)
    return f" ({low:.2f}-{high:.2f})" if low is not None and high != low else ""


HEADERS = ["variant", "{metric}", "Δ (95 % interval)", "agree %", "p50 ms (b=1, rounds min-max)", "speedup", "size MB", "smaller"]


def _qat_lines(report: dict) -> list[str]:
    """What QAT learned and the proof that the exported graph computes it with integer kernels."""
    lines = []
    for v in report["variants"]:
        qat = (v.get("settings") or {}).get("learned_scales")
        if qat and not v.get("error"):
            kernels = ", ".join(f"{k} ×{n}" for k, n in v["graph"]["int8_ops"].items()) or "none"
            lines += ["", (f"QAT `{v['name']}`: {qat['scales']} activation ranges calibrated then learned (scales moved "
                      f"{qat['mean_relative_change']:.1%} on average, at most {qat['max_relative_change']:.1%}); fake-quantized "
                      "PyTorch vs the int8 ONNX graph: max |logit diff| "
                      f"{v['settings']['fake_quant_vs_onnx_max_logit_diff']:.1e}; "
                      f"runtime kernels: {kernels}; weight MatMuls left in float: {v['graph']['float_weight_matmuls']}.")]
    return lines


def markdown(report: dict, plot_name: str | None) -> str:
    metric, selected = report["metric"], report["selected"]
    headers = [h.format(metric=metric) for h in HEADERS]
    lines = [f"# edge-compress report: {report['task']}", "",
             (f"**Selected:** `{selected}` — {report['selection_reason']}" if selected
              else f"**No variant selected:** {report['selection_reason']}"),
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
    if report.get("trimming"):
        t = report["trimming"]
        lines += ["", (f"Trimmed line: {t['vocab_after']:,} of {t['vocab_before']:,} vocabulary entries kept ({t['kept_fraction']:.0%}; "
                       f"the {t['corpus']} texts' tokens plus the safety set, top {t['keep_top_n']}), "
                       f"{t['params_after'] / 1e6:.2f}M of {t['params_before'] / 1e6:.2f}M parameters; "
                       f"{t['eval_fallback_rate']:.1%} of the eval tokens fall back to smaller pieces (words outside the corpus).")]
    lines += _qat_lines(report)
    timing = report["baseline"]["latency_ms"]
    lines += ["", (f"Latency: batch 1, median over {timing['rounds']} interleaved rounds of the p50 over {timing['runs']} timed "
              f"calls, {env['threads']} threads; speedup and size are against the PyTorch fp32 baseline. "
              f"{report['metric']} is measured one text at a time at batch 1 without padding, as the artefact runs. "
              f"Eval set: {report['eval']['samples']} texts from `{report['eval']['source']}`."), ""]
    if report.get("tied") and len(report["tied"]) > 1:
        lines += [f"Tied within the measured latency spread: {', '.join(report['tied'])}.", ""]
    lines += [("Δ: the change against the baseline; \"within noise\" when a paired bootstrap over the same eval items "
              "puts 0 inside its 95 % interval (report.json `noise`). The full report, with where the bytes sit and "
              "what each variant got wrong, is `report.html`."), ""]
    if plot_name:
        lines += [f"![accuracy vs size and latency]({plot_name})", ""]
    lines += targets_lines(report) + package_lines(report)
    cpu, preset = env["cpu"], env["int8_preset"]
    lines += ["## Environment", "", (f"- CPU: {cpu['model']} ({cpu['arch']}, {cpu['logical_cores']} logical cores, "
              f"int8 flags: {', '.join(cpu['flags']) or 'none'})"), f"- int8 preset: `{preset['name']}` — {preset['reason']}",
              *environment_lines(report), "- " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()), ""]
    return "\n".join(lines)


def search_lines(out: Path, searches: list[SearchView]) -> list[str]:
    """report.md's section per searched variant (`compress.search.report.searched_variants`): why it won, the trials'
    front and the sensitivity table, with their charts written beside report.md."""
    from edge_compress.compress.search.report import front_data, sensitivity_markdown

    lines: list[str] = []
    for view in searches:
        name, found = view.name, view.found
        if view.error is not None:
            lines += ["", f"Search of `{name}`: its files could not be read ({view.error})."]
            continue
        (out / f"{name}-trials.png").write_bytes(view.trials_png)
        (out / f"{name}-sensitivity.png").write_bytes(view.sensitivity_png)
        front = front_data(view.trials)
        lines += ["", f"## Search: `{name}`", "",
                  (f"{found['trials']} trials ({found['stopped']}); {found['reason']} "
                   f"{len(found['low'])} units at the low precision, {len(found['fallback'])} kept higher. "
                   f"Pareto front: trials {', '.join(map(str, front['front']))}. The search scored candidates on the "
                   "calibration data; the table above scores the winner on the eval set."), "",
                  f"![trials]({name}-trials.png)", "", "Most sensitive units (top 15):", "",
                  sensitivity_markdown(view.sensitivity, top=15), "", f"![sensitivity]({name}-sensitivity.png)", ""]
    return lines


def summary_table(report: dict) -> Table:
    metric, selected = report["metric"], report["selected"]
    table = Table(title=f"edge-compress: {report['task']} (budget {report['max_accuracy_drop']:g} pts)")
    for h in HEADERS:
        table.add_column(h.format(metric=metric), justify="left" if h == "variant" else "right", no_wrap=True)
    for entry in _rows(report):
        table.add_row(*_fmt_row(entry, metric, selected), style="bold green" if entry["name"] == selected else None)
    return table


def plot(out: Path, report: dict) -> Path | None:
    """report.png: the Pareto panels (compress.report.plot); report.html embeds the same figure."""
    path = out / "report.png"
    path.write_bytes(png(pareto_figure(report)))
    return path
