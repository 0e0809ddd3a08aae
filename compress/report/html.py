"""report.html: one self-contained page (inline CSS, base64 PNG figures, no script, no network) for a person.

Read top to bottom in ten seconds: which model to ship, how much smaller and faster it is,
whether its accuracy change is beyond noise and within budget, where its remaining bytes
sit, and what it got wrong; then the Pareto panels, every model in a table (numbered as in
the plots), the size breakdown, per-class metrics, confusion and the flipped examples.
Everything is rendered from the serialized report (report.json), so the page and the CI
contract never disagree.  Hand-written HTML rather than a template engine: one page, no
loops deeper than a table, and jinja2 would be a new dependency.
"""
from __future__ import annotations

import base64
from html import escape
from typing import TYPE_CHECKING, Any

from edge_compress.compress.report.gate import gate_notes
from edge_compress.compress.report.noise import describe, noise_from_dict
from edge_compress.compress.report.plot import numbered, png, size_figure

if TYPE_CHECKING:
    from edge_compress.compress.search.report import SearchView

SENSITIVITY_ROWS = 15  # as report.md: the most sensitive units; the chart shows up to 40

CSS = """
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:20px 24px 60px}
h1{font-size:26px;margin:0 0 6px}h2{font-size:19px;margin:34px 0 10px;border-bottom:1px solid #dde1e7;padding-bottom:4px}
h3{font-size:16px;margin:18px 0 6px}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;background:#eef0f4;padding:1px 4px;border-radius:3px}
.summary{background:#fff;border:1px solid #dde1e7;border-left:6px solid #2e9d52;border-radius:8px;padding:18px 22px}
.summary.none{border-left-color:#c8372d}
.kpis{display:flex;flex-wrap:wrap;gap:12px;margin:14px 0 10px}
.kpi{flex:1 1 200px;background:#f3f6f9;border-radius:6px;padding:10px 14px}
.kpi b{display:block;font-size:24px;line-height:1.2}.kpi small{color:#5b6472}
.kpi.good b{color:#1f7a3d}.kpi.bad b{color:#b3261e}.kpi.neutral b{color:#3c4656}
.facts{margin:8px 0 0;padding-left:20px}.facts li{margin:3px 0}
table{border-collapse:collapse;background:#fff;margin:8px 0;font-size:13.5px}
th,td{border:1px solid #dde1e7;padding:4px 8px;text-align:right;vertical-align:top}
th{background:#eef0f4}td.l,th.l{text-align:left}
tr.selected td{background:#e6f4ea;font-weight:600}tr.failed td{color:#8a8f98}
td.text{max-width:520px;text-align:left;white-space:normal}
img{max-width:100%;background:#fff;border:1px solid #dde1e7;border-radius:6px}
.bar{display:inline-block;height:9px;background:#3d7ae8;border-radius:2px;vertical-align:middle;margin-right:5px}
details{margin:10px 0;background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:6px 12px}
summary{cursor:pointer;font-weight:600}.muted{color:#5b6472}nav a{margin-right:14px}
"""


def _img(data: bytes | None, alt: str, ident: str) -> str:
    if not data:
        return ""
    return f'<img id="{ident}" alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _table(ident: str, headers: list[str], rows: list[list[str]], classes: list[str] | None = None, left: int = 1) -> str:
    """Cells are already escaped HTML; the first `left` columns are left-aligned."""
    head = "".join(f'<th class="l">{h}</th>' if i < left else f"<th>{h}</th>" for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cls = f' class="{classes[r]}"' if classes and classes[r] else ""
        cells = "".join(f'<td class="l">{c}</td>' if i < left else f"<td>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<table id="{ident}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _mb(size: int | None) -> str:
    if size is None:
        return ""
    return f"{size / 1e6:.1f}" if size >= 1e6 else f"{size / 1e6:.3f}"


def _unit(report: dict) -> str:
    return "pts" if report["higher_is_better"] and report["metric"] in ("accuracy", "macro_f1", "f1", "exact_match") else ""


def _focus(report: dict) -> dict | None:
    """The model the page is about: the selected one, else the best-scoring variant that measured."""
    ok = [e for e in report["variants"] if e.get("error") is None]
    if report["selected"]:
        return next(e for e in ok if e["name"] == report["selected"])
    if not ok:
        return None
    sign = 1 if report["higher_is_better"] else -1
    return max(ok, key=lambda e: sign * e["metrics"][report["metric"]])


def _noise_text(entry: dict) -> str:
    noise = entry.get("noise")
    if not noise:
        return ""
    text = f"95 % interval [{noise['low']:+.2f}, {noise['high']:+.2f}] over {noise['items']} paired items"
    if noise.get("gained") is not None:
        text += f"; {noise['gained']} gained, {noise['lost']} lost (sign test p = {noise['p_value']:.2g})"
    return text


def summary(report: dict) -> str:
    metric, base, focus = report["metric"], report["baseline"], _focus(report)
    selected = report["selected"]
    if focus is None:
        return (f'<header id="summary" class="summary none"><h1>No model to ship</h1><p>{escape(report["selection_reason"])}'
                "</p></header>")
    d, unit = focus.get("delta") or {}, _unit(report)
    noise = noise_from_dict(focus.get("noise"))
    change = describe(noise, d.get("metric", 0.0), unit)
    drop = (base["metrics"][metric] - focus["metrics"][metric]) * (1 if report["higher_is_better"] else -1)
    within = drop <= report["max_accuracy_drop"] + 1e-9
    title = (f"Ship <code>{escape(selected)}</code>" if selected else
             f"No variant selected; closest: <code>{escape(focus['name'])}</code>")
    compression = d.get("compression", 1)
    kpis = [("kpi-smaller", "good" if compression >= 1 else "bad",
             f"{compression:.2f}x smaller" if compression >= 1 else f"{1 / compression:.2f}x larger",
             f"{_mb(base['size_bytes'])} → {_mb(focus['size_bytes'])} MB"),
            ("kpi-faster", "good" if d.get("speedup", 1) > 1 else "bad", f"{d.get('speedup', 1):.2f}x faster",
             f"p50 batch 1: {base['latency_ms']['p50']:.2f} → {focus['latency_ms']['p50']:.2f} ms"),
            ("kpi-metric", "neutral" if noise is not None and noise.within_noise else ("good" if within else "bad"),
             f"{metric} {escape(change)}",
             f"{focus['metrics'][metric]:.2f} vs {base['metrics'][metric]:.2f} float. {escape(_noise_text(focus))}"),
            ("kpi-budget", "good" if within else "bad", "within budget" if within else "over budget",
             f"{drop:+.2f} {unit} drop of {report['max_accuracy_drop']:g} allowed".replace("+-", "-"))]
    cards = "".join(f'<div class="kpi {cls}" id="{ident}"><b>{big}</b><small>{small}</small></div>'
                    for ident, cls, big, small in kpis)
    facts = [f"Why: {escape(report['selection_reason'])}."]
    parts = ((focus.get("size_breakdown") or {}).get("parts") or {})
    if parts:
        top, info = max(parts.items(), key=lambda kv: kv[1]["bytes"])
        facts.append(f"Where the size sits: <b>{escape(top)}</b> hold {info['bytes'] / 1e6:.1f} MB "
                     f"({info['share']:.0%}) of its weights (<a href=\"#size\">breakdown</a>).")
    analysis = focus.get("analysis") or {}
    if analysis.get("compared"):
        what = "texts changed their label" if analysis.get("per_class") else "prompts' greedy continuations diverged"
        facts.append(f"What it got wrong: {analysis['flip_count']} of {analysis['compared']} {what} against the float "
                     f"model (<a href=\"#errors\">examples</a>); agreement {focus['metrics'].get('agreement', 100):.1f} %.")
    facts += [escape(n) for n in gate_notes(report["variants"])]
    return (f'<header id="summary" class="summary{"" if selected else " none"}"><h1>{title}</h1>'
            f'<div class="muted">{escape(report["task"])} · {escape(base["path"] or base["name"])} · '
            f'{report["eval"]["samples"]} eval items · edge-compress {escape(report["tool"]["version"])}</div>'
            f'<div class="kpis">{cards}</div><ul class="facts">{"".join(f"<li>{f}</li>" for f in facts)}</ul></header>')


def variants_table(report: dict) -> str:
    metric, unit = report["metric"], _unit(report)
    rows, classes = [], []
    numbers = {e["name"]: n for n, e in numbered(report)}
    for i, e in enumerate([report["baseline"], *report["variants"]]):
        if e.get("error") is not None:
            rows.append([str(i + 1), escape(e["name"]), f"failed: {escape(e['error'])}", *[""] * 8])
            classes.append("failed")
            continue
        d = e.get("delta") or {}
        change = describe(noise_from_dict(e.get("noise")), d["metric"], unit) if "metric" in d else "baseline"
        interval = f"[{e['noise']['low']:+.2f}, {e['noise']['high']:+.2f}]" if e.get("noise") else ""
        lat = e["latency_ms"]
        rows.append([str(numbers[e["name"]]), f"<code>{escape(e['name'])}</code>", f"{e['metrics'][metric]:.2f}", escape(change),
                     interval, f"{e['metrics'].get('agreement', 100):.1f}",
                     f"{lat['p50']:.2f} ({lat['spread'][0]:.2f}–{lat['spread'][1]:.2f})" if lat.get("spread") else
                     f"{lat['p50']:.2f}", f"{d.get('speedup', 1):.2f}x", _mb(e["size_bytes"]), f"{d.get('compression', 1):.2f}x",
                     escape(e["precision"])])
        classes.append("selected" if e["name"] == report["selected"] else "")
    headers = ["#", "model", escape(metric), "Δ", "95 % interval", "agree %", "p50 ms b=1 (rounds)", "faster", "MB",
               "smaller", "precision"]
    return _table("variants-table", headers, rows, classes, left=2)


def size_section(report: dict, chart: bytes | None) -> str:
    rows_in = [(n, e) for n, e in numbered(report) if e.get("size_breakdown")]
    if not rows_in:
        return ""
    parts: list[str] = []
    for _, e in rows_in:
        parts += [p for p in e["size_breakdown"]["parts"] if p not in parts]
    rows = []
    for n, e in rows_in:
        b = e["size_breakdown"]
        cells = [str(n), f"<code>{escape(e['name'])}</code>"]
        for p in parts:
            info = b["parts"].get(p)
            cells.append("–" if info is None else
                         f'<span class="bar" style="width:{max(1, round(info["share"] * 60))}px"></span>'
                         f"{info['bytes'] / 1e6:.2f} MB ({info['share']:.0%})")
        cells += [f"{b['initializer_bytes'] / 1e6:.2f}", f"{b['file_bytes'] / 1e6:.2f}"]
        rows.append(cells)
    headers = ["#", "model", *map(escape, parts), "weights MB", "file MB"]
    return ('<section id="size"><h2>Where the size sits</h2><p class="muted">Bytes of the stored weights (ONNX initializers; '
            "the PyTorch baseline: its parameters) per part of the architecture; weights that no rule claims are "
            f"<i>other</i>. Family table: <code>{escape(rows_in[-1][1]['size_breakdown']['family'])}</code> "
            "(compress/report/size.py).</p>" + _img(chart, "stacked bars: bytes per part for each model", "size-chart")
            + _table("size-table", headers, rows, left=2) + "</section>")


def _per_class(analysis: dict, ident: str) -> str:
    rows = [[escape(c["label"]), f"{c['precision']:.1f}", f"{c['recall']:.1f}", f"{c['f1']:.1f}", str(c["support"])]
            for c in analysis["per_class"]]
    return _table(ident, ["class", "precision %", "recall %", "F1 %", "texts"], rows)


def _confusion(analysis: dict, ident: str) -> str:
    """Columns numbered like the rows (names would make a 14-class table wider than the page), most-confused pairs first."""
    labels, counts = analysis["labels"], analysis["confusion"]
    rows = [[f"{i + 1} {escape(labels[i])}"] + [f"<b>{v}</b>" if i == j else (str(v) if v else "·") for j, v in enumerate(row)]
            for i, row in enumerate(counts)]
    pairs = sorted(((v, i, j) for i, row in enumerate(counts) for j, v in enumerate(row) if i != j and v), reverse=True)[:5]
    top = "; ".join(f"{escape(labels[i])} → {escape(labels[j])} ({v})" for v, i, j in pairs)
    summary = f'<p id="{ident}-summary">Most confused (true → predicted): {top or "none"}.</p>'
    table = _table(ident, ["true ↓ / predicted →", *(str(j + 1) for j in range(len(labels)))], rows)
    return summary + f'<div style="overflow-x:auto">{table}</div>'



def _flips(analysis: dict, ident: str, lm: bool) -> str:
    flips = analysis.get("flips") or []
    if not analysis.get("compared"):
        return ""
    if not flips:
        return f'<p id="{ident}">No {"prompt" if lm else "text"} changed against the float model.</p>'
    if lm:
        rows = [[str(f["index"]), escape(f["text"]), escape(f["baseline"]), escape(f["variant"]), str(f["first_difference"])]
                for f in flips]
        headers = ["prompt #", "prompt", "float model continues", "this model continues", "first differing token"]
    else:
        rows = [[str(f["index"]), escape(f["text"]), escape(f["label"] or ""), escape(f["baseline"]), escape(f["variant"]),
                 "now right" if f["variant"] == f["label"] else ("now wrong" if f["baseline"] == f["label"] else "both wrong")]
                for f in flips]
        headers = ["text #", "text", "true label", "float model", "this model", "verdict"]
    table = _table(ident, headers, rows, left=2)
    return table.replace('<td class="l">', '<td class="l text">')


def errors_section(report: dict) -> str:
    focus = _focus(report)
    lm = report["task"] == "causal-lm"
    blocks = []
    entries = [e for e in [report["baseline"], *report["variants"]] if e.get("error") is None and e.get("analysis")]
    if not entries:
        return ""
    for e in sorted(entries, key=lambda e: e is not focus):
        a, ident = e["analysis"], e["name"].replace(" ", "-")
        body = ""
        if a.get("compared"):
            shown = len(a.get("flips") or [])
            what = ("prompts whose greedy continuation diverged (earliest first)" if lm
                    else "texts whose predicted label flipped")
            body += (f"<h3>{what}: {a['flip_count']} of {a['compared']}"
                     + (f", first {shown} shown" if shown < a["flip_count"] else "") + "</h3>" + _flips(a, f"flips-{ident}", lm))
            if e.get("noise"):
                body += f'<p class="muted">Noise: {escape(_noise_text(e))}.</p>'
        if a.get("per_class"):
            body += ("<h3>Per-class metrics (batch 1)</h3>" + _per_class(a, f"per-class-{ident}")
                     + "<h3>Confusion</h3>" + _confusion(a, f"confusion-{ident}"))
        if not body:
            continue
        title = f"<code>{escape(e['name'])}</code>" + (" (selected)" if e["name"] == report["selected"] else "")
        if e is focus:
            blocks.insert(0, f'<div id="focus-errors"><h3>{title}</h3>{body}</div>')
        else:
            blocks.append(f"<details><summary>{title}</summary>{body}</details>")
    return '<section id="errors"><h2>What it got wrong</h2>' + "".join(blocks) + "</section>"


def _trials_table(ident: str, data: dict) -> str:
    """Every trial of a search: what was low, its metric and costs, whether it was within budget / on the front / chosen."""
    rows, classes = [], []
    for t in data["trials"]:
        if t.get("error"):
            rows.append([str(t["trial"]), escape(t.get("phase", "")), "" if t["cut"] is None else str(t["cut"]),
                         str(len(t["low"])), f"failed: {escape(t['error'])}", "", "", "", "", ""])
            classes.append("failed")
            continue
        rows.append([str(t["trial"]), escape(t.get("phase", "")), "seed" if t["cut"] is None else str(t["cut"]),
                     str(len(t["low"])), f"{t['metric']:.4g}", _drop_cell(t), _mb(t["size_bytes"]),
                     "" if t.get("latency_ms") is None else f"{t['latency_ms']:.2f}", "yes" if t["within"] else "over",
                     ("chosen" if t["selected"] else "front") if t["on_front"] or t["selected"] else ""])
        classes.append("selected" if t["selected"] else "")
    headers = ["trial", "phase", "cut", "units low", "metric", "drop", "MB", "ms b=1", "budget", "Pareto"]
    return _table(ident, headers, rows, classes, left=2)


def _drop_cell(trial: dict) -> str:
    """The drop, and the 95 % upper bound the search judged it by (judge: upper)."""
    bound = trial.get("drop_upper")
    return f"{trial['drop']:+.3g}" + ("" if bound is None else f" (≤ {bound:+.3g})")


def _sensitivity_rows(ident: str, sensitivity: dict) -> str:
    from edge_compress.compress.search.report import sensitivity_table

    ranked = sensitivity_table(sensitivity)[:SENSITIVITY_ROWS]
    with_metric = any(r["metric"] is not None for r in ranked)  # only when the pass also measured the task metric
    rows = []
    for r in ranked:
        bar = f'<span class="bar" style="width:{max(1, round(r["share"] * 120))}px"></span>'
        rows.append([str(r["rank"]), f"<code>{escape(r['unit'])}</code>", f"{bar}{r['score']:.3g}", f"{100 * r['share']:.1f} %",
                     f"{r['kl']:.3g}", *([] if not with_metric else ["" if r["metric"] is None else f"{r['metric']:.4g}"])])
    headers = ["#", "unit", "sensitivity (KL, nats)", "share", "KL of that candidate", *(["metric"] if with_metric else [])]
    table = _table(ident, headers, rows, left=2)
    check = sensitivity.get("proxy_check")
    if check is not None:
        table += (f'<p class="muted">Proxy check: Spearman rank correlation {check:.2f} between the KL scores and each '
                  "unit's change of the task metric.</p>")
    return table


def search_section(searches: list[SearchView]) -> str:
    """Per searched variant, what report.md says: why it won, every trial with the Pareto front and its chart,
    the most sensitive units as a table and a chart (the search/ files in the variant folder hold all of it)."""
    from edge_compress.compress.search.report import front_data

    if not searches:
        return ""
    blocks = []
    for view in searches:
        ident, found = view.name.replace(" ", "-"), view.found
        title = f"<h3>Search: <code>{escape(view.name)}</code></h3>"
        if view.error is not None:
            blocks.append(f'<div id="search-{ident}">{title}<p>Its files could not be read ({escape(view.error)}).</p></div>')
            continue
        data = front_data(view.trials)
        scheme = escape(str(view.sensitivity.get("scheme", {}).get("scheme", "")))
        why = (f'<p id="search-why-{ident}"><b>Why it won:</b> {escape(found["reason"])}. {found["trials"]} trials '
               f'({escape(found["stopped"])}), objective {escape(data["objective"])}; {len(found["low"])} units at the low '
               f"precision, {len(found['fallback'])} kept higher ({scheme}). Pareto front: trials "
               f"{', '.join(map(str, data['front'])) or 'none'}. The search scored candidates on the calibration data "
               "(baseline "
               f"{found['search_baseline']:.4g}, winner {found['search_metric']:.4g}); the tables above score the winner "
               "on the eval set.</p>")
        blocks.append(f'<div id="search-{ident}">{title}{why}'
                      + _img(view.trials_png, "metric of every trial against size, the front and the budget",
                             f"search-trials-chart-{ident}")
                      + _trials_table(f"search-trials-{ident}", data)
                      + f"<h3>Most sensitive units (top {SENSITIVITY_ROWS} of {len(view.sensitivity['rows'])})</h3>"
                      + _sensitivity_rows(f"sensitivity-{ident}", view.sensitivity)
                      + _img(view.sensitivity_png, "per-unit sensitivity, most sensitive first", f"sensitivity-chart-{ident}")
                      + "</div>")
    return ('<section id="search"><h2>Search</h2><p class="muted">Each unit (a weight MatMul or embedding Gather) was '
            "scored by the KL divergence of the output from the float model with only that unit at the low precision; "
            "the search then took the most tolerant units first, measuring every cut for real.</p>"
            + "".join(blocks) + "</section>")


def environment_section(report: dict) -> str:
    env, lat = report["environment"], report["baseline"]["latency_ms"]
    items = [(f"CPU: {escape(env['cpu']['model'])} ({escape(env['cpu']['arch'])}, {env['cpu']['logical_cores']} logical cores), "
             f"{env['threads']} threads; int8 preset <code>{escape(env['int8_preset']['name'])}</code>"),
             (f"Latency: batch 1, median over {lat['rounds']} interleaved rounds of the p50 over {lat['runs']} calls; "
             f"{escape(report['metric'])} measured one item at a time at batch 1, as the artefact runs"),
             f"Eval: {report['eval']['samples']} items from <code>{escape(str(report['eval']['source']))}</code>",
             "Versions: " + escape(", ".join(f"{k} {v}" for k, v in env["versions"].items())),
             (f"Command: <code>{escape(report['tool']['command'])}</code>; recipe: <code>recipe.yaml</code>; "
             "machine-readable: <code>report.json</code>")]
    listed = "".join(f"<li>{i}</li>" for i in items)
    return f'<section id="environment"><h2>How it was measured</h2><ul>{listed}</ul></section>'


def render(report: dict[str, Any], pareto_png: bytes | None, searches: list[SearchView] = ()) -> str:
    """The page for `report` (Report.to_dict()); `pareto_png`: report.png's bytes, embedded; `searches`: the searched
    variants' files (compress.search.report.searched_variants), one section each."""
    figure = size_figure(report)
    chart = png(figure) if figure is not None else None
    links = [("pareto", "plots"), ("variants", "all models"), ("size", "size"), ("errors", "errors"),
             *([("search", "search")] if searches else []), ("environment", "how measured")]
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in links)
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>edge-compress report: {escape(report['task'])}</title><style>{CSS}</style></head><body><main>"
            + summary(report) + f"<nav>{nav}</nav>"
            + '<section id="pareto"><h2>Accuracy against size and latency</h2><p class="muted">Numbered as in the table below; '
              "the star is the float baseline, green the selected model, the dashed line the accuracy budget.</p>"
            + _img(pareto_png, f"{report['metric']} against size and against latency, numbered markers", "pareto-plot")
            + "</section>"
            + '<section id="variants"><h2>All models</h2>' + variants_table(report)
            + '<p class="muted">Δ: against the float baseline; "within noise" when the paired bootstrap\'s 95 % interval '
              "holds 0.</p></section>"
            + size_section(report, chart) + errors_section(report) + search_section(list(searches))
            + environment_section(report)
            + "</main></body></html>")
