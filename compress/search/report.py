"""Report pieces of a search, for the report writer to call: the sensitivity table and chart, the trials' front.

Same drawing conventions as compress/report/plot.py (Agg backend, tab: colours, the selected model green
with a black edge, the budget a dashed red line, the front a grey line); every function takes the plain
dicts that search.json / `Sensitivity.as_dict()` hold, so a report can be redrawn from the files alone.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_compress.compress.report.plot import _plt, png
from edge_compress.compress.search import pareto


def sensitivity_table(sensitivity: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per unit, most sensitive first: rank, unit, score, its share of all positive scores, KL, metric."""
    rows = sorted(sensitivity["rows"], key=lambda r: (-r["score"], r["unit"]))
    total = sum(max(r["score"], 0.0) for r in rows) or 1.0
    return [{"rank": i + 1, "unit": r["unit"], "score": r["score"], "share": max(r["score"], 0.0) / total, "kl": r["kl"],
             "metric": r.get("metric")} for i, r in enumerate(rows)]


def sensitivity_markdown(sensitivity: dict[str, Any], top: int | None = None) -> str:
    """The table as Markdown (report.md, model cards)."""
    lines = ["| # | unit | sensitivity (KL, nats) | share | metric |", "|---|---|---|---|---|"]
    for row in sensitivity_table(sensitivity)[:top]:
        metric = "" if row["metric"] is None else f"{row['metric']:.4g}"
        lines.append(f"| {row['rank']} | `{row['unit']}` | {row['score']:.3g} | {100 * row['share']:.1f} % | {metric} |")
    if sensitivity.get("proxy_check") is not None:
        lines.append(f"\nProxy check: Spearman rank correlation {sensitivity['proxy_check']:.2f} between the KL scores and "
                     "each unit's change of the task metric.")
    return "\n".join(lines)


def sensitivity_figure(sensitivity: dict[str, Any], top: int = 40):
    """Horizontal bars, most sensitive on top (at most `top` units: a 126-MatMul LM would be unreadable)."""
    plt = _plt()
    rows = sensitivity_table(sensitivity)[:top]
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(rows) + 1.4))
    scores = [max(r["score"], 0.0) for r in rows]
    ax.barh([r["unit"] for r in rows], scores, color="tab:blue", edgecolor="white")
    ax.invert_yaxis()
    positive = [s for s in scores if s > 0]
    if positive and max(positive) > 100 * min(positive):  # one outlier unit would flatten every other bar
        ax.set_xscale("log")
    ax.set_xlabel(f"KL divergence from the float model, one unit at the low precision ({sensitivity['direction']})")
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    scheme = sensitivity["scheme"].get("scheme", "")
    fig.suptitle(f"per-unit sensitivity ({scheme}), most sensitive first", fontsize=11)
    fig.tight_layout()
    return fig


def front_data(search: dict[str, Any]) -> dict[str, Any]:
    """Every trial with `on_front` and `selected` flags, the front's trial numbers, the winner and why it won."""
    front = set(search["pareto"])
    chosen = search["best"]["trial"] if search.get("best") else None
    trials = [{**t, "on_front": t["trial"] in front, "selected": t["trial"] == chosen} for t in search["trials"]]
    return {"trials": trials, "front": sorted(front), "selected": chosen, "reason": search["reason"],
            "budget": search["budget"], "objective": search["objective"]}


def search_figure(search: dict[str, Any]):
    """The metric of every trial against size (and latency when measured), the front, the budget, the winner."""
    plt = _plt()
    data = front_data(search)
    trials = [t for t in data["trials"] if t["error"] is None]
    keys = [("size_bytes", "size on disk (MB)", 1e-6)]
    if trials and all(t["latency_ms"] is not None for t in trials):
        keys.append(("latency_ms", "p50 latency, batch 1 (ms)", 1.0))
    budget = data["budget"]
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4.4), squeeze=False)
    for ax, (key, label, scale) in zip(axes[0], keys):
        xs = [t[key] * scale for t in trials]
        ys = [t["metric"] for t in trials]
        line = sorted(pareto.front([{"c": x, "metric": y} for x, y in zip(xs, ys)], ["c"], "metric", budget["higher_is_better"]),
                      key=lambda i: xs[i])
        ax.plot([xs[i] for i in line], [ys[i] for i in line], color="tab:gray", lw=1, alpha=0.6, zorder=1)
        for t, x, y in zip(trials, xs, ys):
            ax.scatter(x, y, s=110 if t["selected"] else 45, zorder=3, color="tab:green" if t["selected"] else
                       ("tab:blue" if t["within"] else "tab:orange"), edgecolor="black" if t["selected"] else "none")
            ax.annotate(str(t["trial"]), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
        sign = 1 if budget["higher_is_better"] else -1
        ax.axhline(budget["baseline"] - sign * budget["max_drop"], ls="--", color="tab:red", lw=1, zorder=2)
        ax.set_xlabel(label)
        ax.set_ylabel("metric")
        ax.grid(alpha=0.3)
    fig.suptitle(f"search trials (objective {data['objective']}): green = selected, orange = over budget", fontsize=11)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class SearchView:
    """One searched variant's search, read back from its `search/` files, with both charts drawn once
    (report.md writes them beside itself, report.html embeds the same bytes)."""
    name: str
    found: dict[str, Any]                   # the variant's settings["search"] (trials, reason, low, fallback, ...)
    trials: dict[str, Any] | None = None    # search.json
    sensitivity: dict[str, Any] | None = None  # sensitivity.json
    trials_png: bytes | None = None
    sensitivity_png: bytes | None = None
    error: str | None = None                # why the files could not be read


def searched_variants(out: Path, report: dict[str, Any]) -> list[SearchView]:
    """Every variant of `report` (paths relative to `out`) that a search built, in report order."""
    views = []
    for v in report["variants"]:
        found = (v.get("settings") or {}).get("search")
        if not isinstance(found, dict) or "trials" not in found or v.get("error") or not v.get("path"):
            continue
        folder = out / v["path"] / found.get("files", "search/")
        try:
            trials = json.loads((folder / "search.json").read_text())
            sensitivity = json.loads((folder / "sensitivity.json").read_text())
            views.append(SearchView(v["name"], found, trials, sensitivity, png(search_figure(trials)),
                                    png(sensitivity_figure(sensitivity))))
        except (OSError, ValueError, KeyError) as err:
            views.append(SearchView(v["name"], found, error=f"{type(err).__name__}: {err}"))
    return views
